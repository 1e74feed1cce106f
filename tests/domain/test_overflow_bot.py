# ruff: noqa: E501  (scenario documents read best one node per line)
"""Queue-timeout overflow to a bot (``overflow_action = "bot"``) starts the queue's scenario."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.exc import SAWarning

from bots import runner, service
from omni.db import models as m
from omni.domain import admin
from omni.domain import conversations as c
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import InvalidInput
from omni.domain.routing import do_route_pending
from omni.services import Services
from tests import factories as f


@dataclass
class World:
    services: Services
    who: Principal
    queue_id: int
    backup_id: int
    inbox_id: int
    carol_id: int


def _scenario(backup_id: int) -> dict[str, Any]:
    return {
        "name": "Nobody answered",
        "start": "sorry",
        "nodes": [
            {"id": "sorry", "type": "message", "content": {"text": "Sorry for the wait, passing you on"},
             "ports": {"next": "backup"}},
            {"id": "backup", "type": "handoff", "queue_id": backup_id, "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "bye", "type": "close", "result_code": ""},
        ],
    }  # fmt: skip


@pytest_asyncio.fixture
async def world(services: Services) -> AsyncIterator[World]:
    runner.install(services.db)
    async with services.db.transaction() as s:
        boss = await f.user(s, "boss", role=m.Role.ADMIN)
        alice = await f.user(s, "alice")
        carol = await f.user(s, "carol")
        backup = await f.queue(s, "backup", [carol])
        q = await f.queue(s, "support", [alice], queue_timeout_seconds=60)
        ib = await f.inbox(s, q)
        who = Principal.of(boss)
        row = await service.create(s, who, "overflow", "Nobody answered", _scenario(backup.id))
        await service.publish(s, who, row.id)
        await f.set_status(s, carol, "available")
        values = (q.id, backup.id, ib.id, carol.id)
    yield World(services, who, *values)


async def _waiting_customer(w: World) -> int:
    async with w.services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s, InboundMessage(inbox_id=w.inbox_id, identity_kind="external", identity_value="cust", body="hi")
        )
        return res.conversation.id


async def _queue_times_out(w: World) -> None:
    await run_due_deadlines(w.services.db, now=datetime.now(UTC) + timedelta(seconds=61))


async def test_queue_timeout_overflow_to_bot_runs_the_queue_scenario_which_routes_on(world: World) -> None:
    """``overflow_action = "bot"`` set the status ``bot`` and started nothing: the customer was
    never routed, closed or marked missed."""
    async with world.services.db.transaction() as s:
        await admin.check_update_queue(
            s, world.who, world.queue_id, {"overflow_action": "bot", "overflow_scenario": "overflow"}
        )
    cid = await _waiting_customer(world)
    await _queue_times_out(world)
    await do_route_pending(world.services.db)
    async with world.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, cid)
        said = list(
            await s.scalars(
                select(m.Message.body).where(m.Message.conversation_id == cid, m.Message.direction == "out")
            )
        )
        bot = await s.get_one(m.BotSession, cid)
        overflowed = await s.scalar(
            select(m.Event).where(m.Event.conversation_id == cid, m.Event.type == "conversation.overflowed")
        )
    assert said == ["Sorry for the wait, passing you on"], "the scenario spoke to the customer"
    assert bot.status == "handed_off"
    assert (conv.status, conv.queue_id, conv.assigned_user_id) == ("offered", world.backup_id, world.carol_id)
    assert overflowed is not None and overflowed.payload["scenario"] == "overflow"


async def test_overflow_to_a_bot_that_cannot_run_is_missed_with_a_callback_and_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async with world.services.db.transaction() as s:
        q = await s.get_one(m.Queue, world.queue_id)  # e.g. set before the scenario was archived
        q.overflow_action, q.overflow_scenario = "bot", "gone"
    cid = await _waiting_customer(world)
    with caplog.at_level(logging.ERROR, logger="omni.domain.conversations"):
        await _queue_times_out(world)
    async with world.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, cid)
        callback = await s.scalar(select(m.Callback).where(m.Callback.conversation_id == cid))
    assert (conv.status, conv.closed_by) == ("missed", "timeout")
    assert callback is not None and (callback.reason, callback.state) == ("missed", "open")
    assert "overflow_scenario 'gone' is not published" in caplog.text


async def test_admin_refuses_overflow_to_a_bot_without_a_published_scenario(world: World) -> None:
    async with world.services.db.transaction() as s:
        draft = await service.create(s, world.who, "draft", "Draft", _scenario(world.backup_id))
        assert draft.active_revision_id is None
    for data, needle in (
        ({"overflow_action": "bot"}, "needs overflow_scenario"),
        ({"overflow_action": "bot", "overflow_scenario": "draft"}, "'draft' is not a published scenario"),
        ({"overflow_action": "bot", "overflow_scenario": "nope"}, "'nope' is not a published scenario"),
    ):
        with pytest.raises(InvalidInput) as refused:
            async with world.services.db.transaction() as s:
                await admin.check_update_queue(s, world.who, world.queue_id, data)
        assert refused.value.field == "overflow_scenario" and needle in str(refused.value), data
    with pytest.raises(InvalidInput) as refused:
        async with world.services.db.transaction() as s:
            await admin.check_create_queue(s, world.who, {"name": "new", "overflow_action": "bot"})
    assert refused.value.field == "overflow_scenario"
    async with world.services.db.transaction() as s:
        q = await s.get_one(m.Queue, world.queue_id)
        assert (q.overflow_action, q.overflow_scenario) == ("callback", ""), "nothing was stored"


async def test_closed_queue_overflowing_to_a_bot_greets_a_new_customer_once(world: World) -> None:
    """Outside business hours ``do_enqueue`` overflows at once, while the first message is being
    ingested: the bot it starts must not be started a second time, nor get that message as
    the answer to its question."""
    closed = {"timezone": "UTC", "days": {str((datetime.now(UTC).weekday() + 3) % 7): [["00:00", "23:59"]]}}
    leave_a_number = {
        "name": "Closed", "start": "ask", "variables": [{"name": "phone"}],
        "nodes": [
            {"id": "ask", "type": "ask", "content": {"text": "We are closed. Your phone number?"}, "input": "phone",
             "variable": "phone", "ports": {"next": "bye", "on_max_retries": "bye"}},
            {"id": "bye", "type": "close", "result_code": "", "message": {"text": "We will call you back"}},
        ],
    }  # fmt: skip
    async with world.services.db.transaction() as s:
        row = await service.create(s, world.who, "closed", "Closed", leave_a_number)
        await service.publish(s, world.who, row.id)
        await admin.check_update_queue(
            s,
            world.who,
            world.queue_id,
            {"overflow_action": "bot", "overflow_scenario": "closed", "business_hours": closed},
        )
    cid = await _waiting_customer(world)

    async def said() -> list[str]:
        async with world.services.db.transaction() as s:
            return list(
                await s.scalars(
                    select(m.Message.body)
                    .where(m.Message.conversation_id == cid, m.Message.direction == "out")
                    .order_by(m.Message.id)
                )
            )

    assert await said() == ["We are closed. Your phone number?"]
    async with world.services.db.transaction() as s:
        await c.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=world.inbox_id,
                identity_kind="external",
                identity_value="cust",
                body="+7 912 345-67-89",
            ),
        )
    assert await said() == ["We are closed. Your phone number?", "We will call you back"]
    async with world.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, cid)
    assert (conv.status, conv.variables.get("phone")) == ("closed", "+79123456789")
    # The customer writes again: the closed conversation reopens, the closed queue overflows to
    # the bot again, and a new run starts in place of the ended one (whose session row the
    # ingest look-up has already read and locked with the conversation).
    with warnings.catch_warnings():
        warnings.simplefilter("error", SAWarning)  # two rows for one conversation in the session
        async with world.services.db.transaction() as s:
            again = await c.do_ingest_inbound(
                s,
                InboundMessage(
                    inbox_id=world.inbox_id, identity_kind="external", identity_value="cust", body="hi"
                ),
            )
    assert again.conversation.id == cid
    assert (await said())[-1] == "We are closed. Your phone number?"
    async with world.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, cid)
        bot = await s.get_one(m.BotSession, cid)
    assert (conv.status, bot.status, bot.state["node"]) == ("bot", "running", "ask")
