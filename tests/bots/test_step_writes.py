"""A bot step writes its session row once, at the end, and reads the queue only when the
scenario needs it (a fact, ``{{queue.name}}``, a hand-off or running out of nodes): on
PostgreSQL and on SQLite (the embedded mode), through the same services the app builds."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bots import runner, service
from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.auth import Principal
from omni.services import Services
from tests import factories as f

RUNS_OUT: dict[str, Any] = {
    "name": "asks once", "start": "ask", "variables": [{"name": "who"}],
    "nodes": [{"id": "ask", "type": "ask", "input": "text", "content": {"text": "Your name?"},
               "variable": "who", "timeout_seconds": 60, "retries": 1,
               "ports": {"next": "bye", "on_no_input": "bye", "on_max_retries": "bye"}},
              {"id": "bye", "type": "close", "message": {"text": "Bye {{who}}"}}],
}  # fmt: skip
QUEUE_FACTS: dict[str, Any] = {
    "name": "queue facts", "start": "check", "variables": [],
    "nodes": [{"id": "check", "type": "condition",
               "when": {"op": "gt", "left": {"fact": "agents_online"}, "right": {"value": 0}},
               "ports": {"true": "yes", "false": "no"}},
              {"id": "yes", "type": "close", "message": {"text": "{{queue.name}} has agents"}},
              {"id": "no", "type": "close", "message": {"text": "{{queue.name}} is empty"}}],
}  # fmt: skip


@pytest.fixture
async def svc(svc: Services) -> Services:
    """The shared services on PostgreSQL and SQLite, with the bot runner installed."""
    runner.install(svc.db)
    return svc


async def _inbox(svc: Services, key: str, doc: dict[str, Any], *, staffed: bool = False) -> int:
    async with svc.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        ib = await f.inbox(s, await f.queue(s, "front", [op]))
        if staffed:
            await f.set_status(s, op, "available")
        row = await service.create(s, Principal.of(admin), key, key, doc)
        await service.publish(s, Principal.of(admin), row.id)
        ib.config = {"scenario": key}
        return ib.id


async def _say(svc: Services, inbox_id: int, body: str) -> int:
    async with svc.db.transaction() as s:
        msg = c.InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value="cust", body=body)
        return (await c.do_ingest_inbound(s, msg)).conversation.id


async def _bodies(svc: Services, conv_id: int) -> list[str]:
    async with svc.db.transaction() as s:
        rows = await s.scalars(
            select(m.Message.body)
            .where(m.Message.conversation_id == conv_id, m.Message.direction == "out")
            .order_by(m.Message.id)
        )
        return list(rows)


async def test_bot_timer_token_written_at_the_end_of_the_step_matches_its_deadline(svc: Services) -> None:
    conv_id = await _say(svc, await _inbox(svc, "runs-out", RUNS_OUT), "hello")
    async with svc.db.transaction() as s:
        bot = await s.get_one(m.BotSession, conv_id)
        timers = (await s.scalars(select(m.Deadline).where(m.Deadline.ref_id == conv_id))).all()
        assert bot.status == "running" and bot.timer_token > 0
        assert [t.payload["token"] for t in timers if t.kind == runner.BOT_TIMER] == [bot.timer_token]
    assert await _bodies(svc, conv_id) == ["Your name?"]


async def test_bot_step_that_needs_no_queue_row_still_closes_with_the_variables(svc: Services) -> None:
    inbox_id = await _inbox(svc, "runs-out", RUNS_OUT)
    conv_id = await _say(svc, inbox_id, "hello")
    assert await _say(svc, inbox_id, "Ann") == conv_id
    async with svc.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        bot = await s.get_one(m.BotSession, conv_id)
        assert bot.status == "closed" and conv.status == m.ConversationStatus.CLOSED
        assert conv.variables["who"] == "Ann"
        assert await s.scalar(select(m.BotStep.id).where(m.BotStep.node == "bye")) is not None
    assert await _bodies(svc, conv_id) == ["Your name?", "Bye Ann"]


@pytest.mark.parametrize("staffed", [True, False])
async def test_bot_step_that_names_the_queue_or_asks_for_agents_reads_the_queue(
    svc: Services, staffed: bool
) -> None:
    conv_id = await _say(svc, await _inbox(svc, "facts", QUEUE_FACTS, staffed=staffed), "hello")
    assert await _bodies(svc, conv_id) == ["front has agents" if staffed else "front is empty"]
