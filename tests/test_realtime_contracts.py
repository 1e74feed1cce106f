"""Socket.IO contracts over a real client: every call payload is decoded into a typed struct
(bad input gets an ack naming the field), live sockets follow queue-membership changes, and
private notes / whispers reach only those allowed to read them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import OperatorClient, post_inbound, token_for


@pytest.fixture
async def world(live_server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        op2 = await f.user(s, "op2")
        other = await f.user(s, "other")
        russian = await f.user(s, "ivan")
        russian.language = "ru"
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        q = await f.queue(s, "chat", [op, op2, russian], operator_timeout_seconds=60)
        q2 = await f.queue(s, "elsewhere", [other], operator_timeout_seconds=60)
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=q.id))
        ib = await f.inbox(s, q)
        ib2 = await f.inbox(s, q2)
        ids: dict[str, Any] = {
            "op": op.id,
            "op2": op2.id,
            "other": other.id,
            "q": q.id,
            "q2": q2.id,
            "inbox": ib.id,
            "inbox2": ib2.id,
        }
    for name in ("admin", "op", "op2", "ivan", "sup"):
        ids[f"{name}_token"] = await token_for(live_server, name)
    yield ids


async def _messages(server: LiveServer) -> int:
    async with server.services.db.transaction() as s:
        return int(await s.scalar(select(func.count(m.Message.id))) or 0)


def _refused(ack: dict[str, Any], field: str | None) -> None:
    assert ack["ok"] is False and ack["error"] == "invalid", ack
    assert ack["detail"], ack
    if field is not None:
        assert ack["field"] == field, ack


async def test_non_object_payloads_get_an_ack_instead_of_an_attribute_error(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, world["op_token"])
    await op.connect()
    try:
        for event in ("set_status", "send", "hold", "canned_save", "transfer", "schedule_callback"):
            for payload in ([1, 2], "hello", 7):
                ack = await op.sio.call(event, payload, namespace="/operator", timeout=10)
                _refused(ack, None)
                assert ack["detail"] == "The request must be an object"
        # The socket still works afterwards.
        assert (await op.call("snapshot", {}))["ok"]
    finally:
        await op.sio.disconnect()


async def test_ids_beyond_bigint_are_refused_naming_the_field_not_an_overflow(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, world["op_token"])
    sup = OperatorClient(live_server.url, world["sup_token"], namespace="/supervisor")
    await op.connect()
    await sup.connect()
    try:
        huge = 2**63
        for event, payload, field in (
            ("accept", {"offer_id": huge}, "offer_id"),
            ("open", {"conversation_id": huge}, "conversation_id"),
            ("close", {"conversation_id": 1, "result_code_id": huge}, "result_code_id"),
            ("resume", {"after": huge}, "after"),
            ("resume", {"after": -1}, "after"),
            ("claim_callback", {"callback_id": "12"}, "callback_id"),
            ("transfer", {"conversation_id": 1, "to_queue_id": 10**22}, "to_queue_id"),
        ):
            _refused(await op.call(event, payload), field)
        for event, payload, field in (
            ("take_over", {"conversation_id": huge}, "conversation_id"),
            ("message_operator", {"user_id": huge, "text": "hi"}, "user_id"),
            ("whisper", {"conversation_id": 1, "text": {"a": 1}}, "text"),
        ):
            _refused(await sup.call(event, payload), field)
    finally:
        await op.sio.disconnect()
        await sup.sio.disconnect()


async def test_a_dict_body_is_refused_not_stored_as_its_python_repr(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, world["op_token"])
    await op.connect()
    try:
        conv_id = await post_inbound(live_server, world["admin_token"], world["inbox"], "cust")
        offer = await op.wait_for("conversation.offered", id=conv_id)
        assert offer["user_id"] == world["op"], "the only operator online gets the offer"
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        before = await _messages(live_server)
        _refused(await op.call("send", {"conversation_id": conv_id, "body": {"text": "hi"}}), "body")
        _refused(await op.call("send", {"conversation_id": conv_id, "body": "a\x00b"}), "body")
        _refused(
            await op.call("send", {"conversation_id": conv_id, "body": "hi", "private": "yes"}), "private"
        )
        assert await _messages(live_server) == before, "nothing was stored"
        sent = await op.call("send", {"conversation_id": conv_id, "body": "hi"})
        assert sent["ok"] and sent["message"]["body"] == "hi"
    finally:
        await op.sio.disconnect()


async def test_refusals_are_in_the_callers_language(live_server: LiveServer, world: dict[str, Any]) -> None:
    ivan = OperatorClient(live_server.url, world["ivan_token"])
    await ivan.connect()
    try:
        ack = await ivan.sio.call("send", ["x"], namespace="/operator", timeout=10)
        assert ack == {"ok": False, "error": "invalid", "detail": "Запрос должен быть объектом"}
        bad = await ivan.call("open", {"conversation_id": 2**63})
        assert bad["field"] == "conversation_id" and "недопустимое значение" in bad["detail"], bad
    finally:
        await ivan.sio.disconnect()


async def _set_members(server: LiveServer, world: dict[str, Any], queue_id: int, user_ids: list[int]) -> None:
    """The admin staffs a queue over REST; the admin action emits ``queue.members_changed``."""
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {world['admin_token']}"}, timeout=HTTP_TIMEOUT
    ) as c:
        resp = await c.put(
            f"/api/v1/queues/{queue_id}/members", json={"members": [{"user_id": u} for u in user_ids]}
        )
        assert resp.status_code == 200, resp.text


async def test_operator_added_to_a_queue_gets_its_conversations_without_reconnecting(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    await _follows_membership(live_server, world)


async def test_embedded_sockets_follow_queue_membership_too(tmp_path: Path) -> None:
    """One process, no Redis: the relay's sink moves the sockets itself."""
    settings = Settings(data_dir=tmp_path, secret_key="x" * 40, database_url="", redis_url="")
    assert settings.embedded
    server = LiveServer(settings)
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
            op = await f.user(s, "op")
            other = await f.user(s, "other")
            q = await f.queue(s, "chat", [op], operator_timeout_seconds=60)
            q2 = await f.queue(s, "elsewhere", [other], operator_timeout_seconds=60)
            ib, ib2 = await f.inbox(s, q), await f.inbox(s, q2)
            world = {"op": op.id, "other": other.id, "q2": q2.id, "inbox": ib.id, "inbox2": ib2.id}
        world["admin_token"] = await token_for(server, "admin")
        world["op_token"] = await token_for(server, "op")
        await _follows_membership(server, world)
    finally:
        await server.stop()


async def _follows_membership(live_server: LiveServer, world: dict[str, Any]) -> None:
    op = OperatorClient(live_server.url, world["op_token"])
    await op.connect()
    try:
        await _set_members(live_server, world, world["q2"], [world["other"], world["op"]])
        joined = await op.wait_for("queue.members_changed", queue_id=world["q2"])
        assert joined["data"]["user_ids"] == sorted([world["other"], world["op"]])
        conv_id = await post_inbound(live_server, world["admin_token"], world["inbox2"], "new-queue")
        created = await op.wait_for("conversation.created", id=conv_id)
        assert created["queue_id"] == world["q2"]
        waiting = await op.call("queue", {})
        assert waiting["ok"]

        await _set_members(live_server, world, world["q2"], [world["other"]])
        left = await op.wait_for("queue.members_changed", queue_id=world["q2"], user_ids=[world["other"]])
        after_leaving = left["seq"]
        gone = await post_inbound(live_server, world["admin_token"], world["inbox2"], "after-removal")
        # Sentinel: a conversation of the operator's remaining queue arrives after that one.
        sentinel = await post_inbound(live_server, world["admin_token"], world["inbox"], "sentinel")
        await op.wait_for("conversation.created", id=sentinel)
        assert not [e for e in op.events if e["seq"] > after_leaving and e["data"].get("id") == gone], (
            "a removed member still receives the queue's events"
        )
    finally:
        await op.sio.disconnect()


async def test_private_notes_and_whispers_reach_the_handler_and_supervisors_only(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, world["op_token"])
    op2 = OperatorClient(live_server.url, world["op2_token"])
    sup = OperatorClient(live_server.url, world["sup_token"], namespace="/supervisor")
    for client in (op, op2, sup):
        await client.connect()
    try:
        conv_id = await post_inbound(live_server, world["admin_token"], world["inbox"], "cust")
        offer = await op.wait_for("conversation.offered", id=conv_id)
        handler, bystander = (op, op2) if offer["user_id"] == world["op"] else (op2, op)
        assert (await handler.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        note = await handler.call(
            "send", {"conversation_id": conv_id, "body": "vip customer", "private": True}
        )
        assert note["ok"] and note["message"]["direction"] == "note"
        whisper = await sup.call("whisper", {"conversation_id": conv_id, "text": "offer the discount"})
        assert whisper["ok"], whisper
        reply = await handler.call("send", {"conversation_id": conv_id, "body": "Hello!"})
        assert reply["ok"]
        for allowed in (handler, sup):
            await allowed.wait_for("message.created", body="vip customer", direction="note")
            await allowed.wait_for("message.created", body="offer the discount", direction="note")
        # Sentinel: the public reply reaches the other operator of the queue, the notes never do.
        await bystander.wait_for("message.created", body="Hello!")
        notes = [
            e for e in bystander.events if e["type"] == "message.created" and e["data"]["direction"] == "note"
        ]
        assert notes == [], "another operator of the queue received a private note"
        replay = await bystander.call("resume", {"after": 0})
        replayed = {e["data"]["body"] for e in replay["events"] if e["type"] == "message.created"}
        assert "Hello!" in replayed and not replayed & {"vip customer", "offer the discount"}, replayed
        handler_replay = await handler.call("resume", {"after": 0})
        assert {"vip customer", "offer the discount"} <= {
            e["data"]["body"] for e in handler_replay["events"] if e["type"] == "message.created"
        }
        # The REST event feed (a CRM, a console reloading) keeps the same rule.
        tokens = {op: world["op_token"], op2: world["op2_token"]}
        for client, sees_notes in ((bystander, False), (handler, True)):
            async with httpx.AsyncClient(
                base_url=live_server.url,
                headers={"Authorization": f"Bearer {tokens[client]}"},
                timeout=HTTP_TIMEOUT,
            ) as c:
                feed = (await c.get("/api/v1/events", params={"after": 0})).json()
            bodies = {e["data"]["body"] for e in feed if e["type"] == "message.created"}
            assert "Hello!" in bodies, bodies
            assert bool(bodies & {"vip customer", "offer the discount"}) == sees_notes, bodies
    finally:
        for client in (op, op2, sup):
            await client.sio.disconnect()
