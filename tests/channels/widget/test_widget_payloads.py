"""Every ``/widget`` event payload is decoded into a typed struct: a wrong shape gets an ack
``{ok: false, error, detail, field}`` and nothing is stored (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest
import socketio
from sqlalchemy import func, select

from omni.db import models as m
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import LiveServer


@pytest.fixture
async def visitor(live_server: LiveServer) -> Any:
    async with live_server.services.db.transaction() as s:
        op = await f.user(s, "op")
        ib = await f.inbox(s, await f.queue(s, "web", [op]), channel="widget")
        token = ib.public_token
    v = Visitor(live_server.url)
    await v.connect(inbox=token)
    yield v
    await v.sio.disconnect()


async def _call(visitor: Visitor, event: str, data: Any) -> dict[str, Any]:
    ack: dict[str, Any] = await visitor.sio.call(event, data, namespace="/widget", timeout=10)
    return ack


async def _stored(server: LiveServer) -> tuple[int, int]:
    async with server.services.db.transaction() as s:
        messages = await s.scalar(select(func.count()).select_from(m.Message))
        conversations = await s.scalar(select(func.count()).select_from(m.Conversation))
    return int(messages or 0), int(conversations or 0)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("message", "request"),
        ("seen", "request"),
        ("resume", "after"),
        ("rate", "request"),
        ("typing", "request"),
        ("leave", "request"),
    ],
)
async def test_non_object_payload_raised_attribute_error_without_an_ack(
    live_server: LiveServer, visitor: Visitor, event: str, field: str
) -> None:
    ack = await _call(visitor, event, ["not", "an", "object"])
    assert ack["ok"] is False and ack["error"] == "invalid" and ack["field"] == field
    assert ack["detail"], "the refusal says why"
    assert await _stored(live_server) == (0, 0)


async def test_dict_body_was_stored_as_its_python_repr(live_server: LiveServer, visitor: Visitor) -> None:
    ack = await _call(visitor, "message", {"client_id": "c-1", "body": {"text": "hi"}, "name": "Ann"})
    assert ack["ok"] is False and ack["retry"] is False
    assert (ack["error"], ack["field"]) == ("invalid", "body")
    assert await _stored(live_server) == (0, 0)
    sent = await visitor.send("hi", "c-2")  # the connection is fine, a good message still goes
    assert sent["ok"] and sent["message"]["body"] == "hi"


async def test_out_of_range_ids_overflowed_instead_of_being_refused(
    live_server: LiveServer, visitor: Visitor
) -> None:
    sent = await visitor.send("hi", "c-1")
    before = await _stored(live_server)
    seen = await _call(visitor, "seen", {"message_id": 2**63, "state": "read"})
    assert seen["ok"] is False and seen["field"] == "message_id"
    resumed = await _call(visitor, "resume", {"after": 2**64})
    assert resumed["ok"] is False and resumed["field"] == "after"
    rated = await _call(visitor, "rate", {"rating": 2**40})
    assert rated["ok"] is False and rated["field"] == "rating"
    assert await _stored(live_server) == before
    async with live_server.services.db.transaction() as s:
        assert (await s.get_one(m.Message, sent["message"]["id"])).delivery == "stored"


async def test_nul_in_text_fields_is_refused_naming_the_field(
    live_server: LiveServer, visitor: Visitor
) -> None:
    body = await _call(visitor, "message", {"client_id": "c-1", "body": "a\x00b", "name": "Ann"})
    assert (body["ok"], body["error"], body["field"]) == (False, "bad_characters", "body")
    client_id = await _call(visitor, "message", {"client_id": "c\x00", "body": "hi", "name": "Ann"})
    assert (client_id["ok"], client_id["field"]) == (False, "client_id")
    button = await _call(visitor, "message", {"client_id": "c-3", "body": "hi", "button": "b\x00"})
    assert (button["ok"], button["field"]) == (False, "button")
    attachment = await _call(visitor, "message", {"client_id": "c-4", "body": "hi", "attachments": ["f\x00"]})
    assert (attachment["ok"], attachment["field"]) == (False, "attachments[0]")
    assert await _stored(live_server) == (0, 0)


async def test_connect_auth_of_the_wrong_shape_is_refused(live_server: LiveServer) -> None:
    """A dict user id used to become the identity ``user:<inbox>:{...}`` by its repr."""
    async with live_server.services.db.transaction() as s:
        token = (await f.inbox(s, await f.queue(s, "web"), channel="widget")).public_token
    for auth in ({"inbox": token, "user_id": {"id": 1}, "user_hash": "x"}, {"inbox": token, "visitor": 5}):
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                live_server.url, wait_timeout=10, namespaces=["/widget"], transports=["websocket"], auth=auth
            )
    good = Visitor(live_server.url)
    assert (await good.connect(inbox=token))["visitor"]
    await good.sio.disconnect()
