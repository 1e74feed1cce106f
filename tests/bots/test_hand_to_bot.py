"""An operator hands a conversation back to a bot (a CSAT survey) over ``/operator``: the
handling ends, the survey runs, the answer lands in the conversation's variables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bots import service
from omni.db import models as m
from omni.domain.auth import Principal
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import until
from tests.test_realtime import OperatorClient, post_inbound, token_for

SURVEY: dict[str, Any] = {
    "name": "CSAT",
    "start": "rate",
    "variables": [{"name": "rating", "type": "choice"}],
    "nodes": [
        {"id": "rate", "type": "survey", "question": {"text": "How did we do?"}, "kind": "single",
         "options": [{"id": "good", "label": "Good"}, {"id": "bad", "label": "Bad"}],
         "variable": "rating", "ports": {"next": "bye"}},
        {"id": "bye", "type": "close", "result_code": "done", "message": {"text": "Thanks!"}},
    ],
}  # fmt: skip


async def test_operator_sends_a_survey(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        await f.result_code(s, "done")
        q = await f.queue(s, "chat", [op, other], operator_timeout_seconds=60)
        ib = await f.inbox(s, q)
        row = await service.create(s, Principal.of(admin), "csat", "CSAT", SURVEY)
        await service.create(s, Principal.of(admin), "draft", "Draft only", SURVEY)
        await service.publish(s, Principal.of(admin), row.id)
        inbox_id = ib.id
    admin_token = await token_for(live_server, "admin")
    client = OperatorClient(live_server.url, await token_for(live_server, "op"))
    await client.connect()
    try:
        await client.wait_for("presence.changed", status="available")
        conv_id = await post_inbound(live_server, admin_token, inbox_id, "cust", "hello")
        offer = await client.wait_for("conversation.offered", id=conv_id)
        assert (await client.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]

        view = await client.call("open", {"conversation_id": conv_id})
        assert view["bot_scenarios"] == [{"key": "csat", "name": "CSAT"}]

        refused = await client.call("hand_to_bot", {"conversation_id": conv_id, "scenario": "draft"})
        assert refused["ok"] is False and refused["field"] == "scenario"

        ack = await client.call("hand_to_bot", {"conversation_id": conv_id, "scenario": "csat"})
        assert ack["ok"], ack
        assert ack["conversation"]["status"] == "bot"
        event = await client.wait_for("conversation.handed_to_bot", id=conv_id)
        assert event["data"]["scenario"] == "csat"

        async with live_server.services.db.transaction() as s:
            conv = await s.get(m.Conversation, conv_id)
            assert conv is not None and conv.status == "bot" and conv.assigned_user_id == op.id
            assert conv.wrap_up_at is not None  # the handling ended when the bot took over
            said = await s.scalars(
                select(m.Message.body).where(
                    m.Message.conversation_id == conv_id, m.Message.direction == "out"
                )
            )
            assert "How did we do?" in list(said)

        await post_inbound(live_server, admin_token, inbox_id, "cust", "Good")

        async def closed() -> m.Conversation | None:
            async with live_server.services.db.transaction() as s:
                row = await s.get(m.Conversation, conv_id)
            assert row is not None
            return row if row.status == "closed" else None

        conv = await until(closed, 5, what="the bot to close the conversation")
        assert conv.status == "closed" and conv.variables["rating"] == "good"
        view = await client.call("open", {"conversation_id": conv_id})
        assert view["conversation"]["variables"]["rating"] == "good"  # the card's "Bot data"

        # Only the handling operator (or a supervisor) may do it, and only while handling.
        again = await client.call("hand_to_bot", {"conversation_id": conv_id, "scenario": "csat"})
        assert again["ok"] is False and again["error"] == "conflict"
    finally:
        await client.sio.disconnect()


async def test_another_operator_cannot_hand_it_over(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        q = await f.queue(s, "chat", [op, other], operator_timeout_seconds=60)
        ib = await f.inbox(s, q)
        row = await service.create(s, Principal.of(admin), "csat", "CSAT", SURVEY)
        await service.publish(s, Principal.of(admin), row.id)
        inbox_id = ib.id
    admin_token = await token_for(live_server, "admin")
    mine = OperatorClient(live_server.url, await token_for(live_server, "op"))
    theirs = OperatorClient(live_server.url, await token_for(live_server, "other"))
    await mine.connect()
    try:
        await mine.wait_for("presence.changed", status="available")
        conv_id = await post_inbound(live_server, admin_token, inbox_id, "cust", "hello")
        offer = await mine.wait_for("conversation.offered", id=conv_id)
        assert (await mine.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        await theirs.connect()
        ack = await theirs.call("hand_to_bot", {"conversation_id": conv_id, "scenario": "csat"})
        assert ack["ok"] is False and ack["error"] == "forbidden"
        async with live_server.services.db.transaction() as s:
            conv = await s.get(m.Conversation, conv_id)
            assert conv is not None and conv.status == "active" and conv.assigned_user_id == op.id
            assert other.id != op.id
    finally:
        await mine.sio.disconnect()
        await theirs.sio.disconnect()
