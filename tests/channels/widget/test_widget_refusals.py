"""What the widget's server side refuses and how (retryable or for good), pre-chat enforcement,
the customer's language reaching the bot, and the visitor hearing that the chat was closed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from bots import service
from omni.db import models as m
from omni.domain.auth import Principal
from omni.domain.conversations import MAX_BODY
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import LiveServer
from tests.helpers import until
from tests.test_realtime import OperatorClient, token_for


@pytest.fixture
async def widget(live_server: LiveServer) -> dict[str, Any]:
    async with live_server.services.db.transaction() as s:
        op = await f.user(s, "op")
        ib = await f.inbox(s, await f.queue(s, "web", [op]), channel="widget")
        token = ib.public_token
    return {"token": token, "op_token": await token_for(live_server, "op")}


async def _count(server: LiveServer, model: type[Any]) -> int:
    async with server.services.db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def _set_config(server: LiveServer, token: str, config: dict[str, Any]) -> None:
    async with server.services.db.transaction() as s:
        inbox = await s.scalar(select(m.Inbox).where(m.Inbox.public_token == token))
        assert inbox is not None
        inbox.config = config


async def test_nul_byte_message_was_retried_forever(live_server: LiveServer, widget: dict[str, Any]) -> None:
    """It used to fail in the database and come back ``unavailable``: resent on every reconnect."""
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    ack = await visitor.send("hello\x00world", "c-1")
    assert ack["ok"] is False and ack["retry"] is False
    assert (ack["error"], ack["field"]) == ("bad_characters", "body")
    bad_name = await visitor.sio.call(
        "message", {"client_id": "c-2", "body": "hi", "name": "A\x00nn"}, namespace="/widget", timeout=10
    )
    assert bad_name["retry"] is False and bad_name["field"] == "name"
    assert await _count(live_server, m.Message) == 0
    await visitor.sio.disconnect()


async def test_too_long_message_was_refused_without_saying_it_is_for_good(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    visitor = Visitor(live_server.url)
    welcome = await visitor.connect(inbox=widget["token"])
    assert welcome["limits"] == {
        "max_body": MAX_BODY,
        "max_message_bytes": live_server.settings.socketio_max_message_bytes,
        "max_upload_bytes": live_server.settings.widget.max_upload_bytes,
    }
    ack = await visitor.send("x" * 20_000, "c-1")
    assert ack["ok"] is False and ack["retry"] is False
    assert (ack["error"], ack["field"], ack["max"]) == ("too_long", "body", MAX_BODY)
    assert (await visitor.send("x" * MAX_BODY, "c-2"))["ok"], "the limit itself is accepted"
    await visitor.sio.disconnect()


async def test_oversized_frame_closes_only_that_connection_at_the_configured_size(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    """The engine.io limit is the setting the widget is told, not an accident of the default."""
    limit = live_server.settings.socketio_max_message_bytes
    assert live_server.services.settings.socketio_max_message_bytes == limit
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    gone = asyncio.Event()
    visitor.sio.on("disconnect", gone.set, namespace="/widget")
    await visitor.sio.emit("message", {"client_id": "c-1", "body": "x" * (limit + 1)}, namespace="/widget")
    await asyncio.wait_for(gone.wait(), 10)
    assert await _count(live_server, m.Message) == 0
    fresh = Visitor(live_server.url)
    await fresh.connect(inbox=widget["token"])
    assert (await fresh.send("still here", "c-1"))["ok"]
    await fresh.sio.disconnect()


async def test_rate_limited_message_waited_for_the_next_message(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    """The refusal says it is worth retrying and when the window reopens, so the widget sends
    it then instead of waiting for the customer to type something else."""
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    limit = live_server.settings.widget.messages_per_minute
    for i in range(limit):
        assert (await visitor.send(f"m{i}", f"c-{i}"))["ok"]
    refused = await visitor.send("one too many", "c-x")
    assert refused["ok"] is False and refused["error"] == "rate_limited" and refused["retry"] is True
    assert 1 <= refused["retry_after"] <= 60
    await visitor.sio.disconnect()


async def test_first_message_without_required_prechat_fields_made_a_nameless_contact(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    await _set_config(
        live_server,
        widget["token"],
        {"prechat": [{"name": "name", "required": True}, {"name": "email", "required": False}]},
    )
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    early = await visitor.sio.call(
        "message", {"client_id": "c-1", "body": "typed before the form"}, namespace="/widget", timeout=10
    )
    assert early["ok"] is False and early["retry"] is False
    assert (early["error"], early["field"]) == ("prechat_required", "name")
    assert await _count(live_server, m.Conversation) == 0 and await _count(live_server, m.Contact) == 0
    blank = await visitor.sio.call(
        "message", {"client_id": "c-1", "body": "x", "name": "   "}, namespace="/widget", timeout=10
    )
    assert blank["error"] == "prechat_required"
    ok = await visitor.send("typed before the form", "c-1")  # Visitor.send fills name=Ann
    assert ok["ok"]
    later = await visitor.sio.call(
        "message", {"client_id": "c-2", "body": "and more"}, namespace="/widget", timeout=10
    )
    assert later["ok"], "the contact's name is known now"
    async with live_server.services.db.transaction() as s:
        assert (await s.scalar(select(m.Contact.name))) == "Ann"
    await visitor.sio.disconnect()


BILINGUAL: dict[str, Any] = {
    "name": "Greeter",
    "start": "menu",
    "nodes": [
        {"id": "menu", "type": "menu", "content": {"text": "What is it about?", "text_ru": "О чём вопрос?"},
         "options": [{"id": "pay", "label": "Payment", "label_ru": "Оплата"}],
         "ports": {"opt:pay": "agent", "on_max_retries": "agent"}},
        {"id": "agent", "type": "handoff", "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
        {"id": "bye", "type": "close", "message": {"text": "Bye", "text_ru": "До свидания"}},
    ],
}  # fmt: skip


async def test_bot_spoke_english_to_a_russian_widget_customer(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        row = await service.create(s, Principal.of(admin), "greeter", "Greeter", BILINGUAL)
        await service.publish(s, Principal.of(admin), row.id)
    await _set_config(live_server, widget["token"], {"scenario": "greeter"})
    russian, english = Visitor(live_server.url), Visitor(live_server.url)
    await russian.connect(inbox=widget["token"])
    await english.connect(inbox=widget["token"])
    for visitor, lang in ((russian, "ru-RU"), (english, "en")):
        ack = await visitor.sio.call(
            "message", {"client_id": "c-1", "body": "hi", "lang": lang}, namespace="/widget", timeout=10
        )
        assert ack["ok"], ack
    await until(lambda: bool(russian.messages and english.messages), what="the bot's first prompts")
    assert russian.messages[0]["body"] == "О чём вопрос?"
    assert russian.messages[0]["attachments"][0]["buttons"] == [{"id": "pay", "label": "Оплата"}]
    assert english.messages[0]["body"] == "What is it about?"
    async with live_server.services.db.transaction() as s:
        langs = sorted((await s.scalars(select(m.Conversation.variables))).all(), key=str)
        assert sorted(v["lang"] for v in langs) == ["en", "ru"]
    await russian.sio.disconnect()
    await english.sio.disconnect()


async def test_visitor_was_not_told_the_conversation_was_closed(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    await _set_config(
        live_server,
        widget["token"],
        {"csat": {"question": "How did we do?", "labels": ["bad", "ok", "good"]}},
    )
    async with live_server.services.db.transaction() as s:
        code_id = (await f.result_code(s)).id
    op = OperatorClient(live_server.url, widget["op_token"])
    await op.connect()
    visitor = Visitor(live_server.url)
    closed: list[dict[str, Any]] = []
    visitor.sio.on("closed", closed.append, namespace="/widget")
    welcome = await visitor.connect(inbox=widget["token"])
    assert welcome["closed"] is None
    ack = await visitor.send("help", "c-1")
    conv_id = ack["conversation_id"]
    offer = await op.wait_for("conversation.offered", id=conv_id)
    assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
    closing = await op.call("close", {"conversation_id": conv_id, "result_code_id": code_id})
    assert closing["ok"], closing
    await until(lambda: bool(closed), what="the closed notice")
    csat = {"question": "How did we do?", "labels": ["bad", "ok", "good"]}
    assert closed == [{"conversation_id": conv_id, "csat": csat}]
    # A reload still shows it (with the question until it is answered).
    again = Visitor(live_server.url)
    assert (await again.connect(inbox=widget["token"], visitor=welcome["visitor"]))["closed"] == closed[0]
    rated = await visitor.sio.call("rate", {"rating": 3}, namespace="/widget", timeout=10)
    assert rated == {"ok": True, "recorded": True}
    assert (await visitor.sio.call("rate", {"rating": 9}, namespace="/widget", timeout=10))["ok"] is False
    third = Visitor(live_server.url)
    reloaded = await third.connect(inbox=widget["token"], visitor=welcome["visitor"])
    assert reloaded["closed"] == {"conversation_id": conv_id, "csat": None}, "rated: no question again"
    # Writing again starts a new conversation (not a silent reopen of the closed one).
    fresh = await visitor.send("one more thing", "c-2")
    assert fresh["ok"] and fresh["conversation_id"] != conv_id and fresh["position"] == 1
    async with live_server.services.db.transaction() as s:
        old = await s.get_one(m.Conversation, conv_id)
        assert old.status == "closed" and old.variables["csat"] == 3
    for client in (visitor, again, third):
        await client.sio.disconnect()
    await op.sio.disconnect()


async def test_visitor_who_left_gets_no_closed_notice(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    visitor = Visitor(live_server.url)
    welcome = await visitor.connect(inbox=widget["token"])
    await visitor.send("anyone?", "c-1")
    assert (await visitor.sio.call("leave", {}, namespace="/widget", timeout=10))["ok"]
    await visitor.sio.disconnect()
    back = Visitor(live_server.url)
    assert (await back.connect(inbox=widget["token"], visitor=welcome["visitor"]))["closed"] is None
    await back.sio.disconnect()
