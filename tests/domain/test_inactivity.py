"""Operator inactivity (issue 16): a silent chat is closed after the queue's limit with the
customer told why in their language, freeing the operator; an operator who lets N offers in a
row ring out is paused with the reason supervisors see. Through the deadlines engine, on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import presence
from omni.domain.conversations import InboundMessage
from omni.domain.engine import run_due_deadlines
from omni.domain.routing import do_route_pending
from omni.i18n import enum_label
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite


@pytest_asyncio.fixture
async def services(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    svc = build_services(settings, run_background=False)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def inbound(services: Services, inbox_id: int, who: str, language: str = "") -> int:
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox_id,
                identity_kind="external",
                identity_value=who,
                body="hello",
                language=language,
            ),
        )
        return res.conversation.id


async def at(services: Services, delta: timedelta) -> None:
    """Fire what is due ``delta`` from now, then route."""
    await run_due_deadlines(services.db, now=datetime.now(UTC) + delta)
    await do_route_pending(services.db)


async def offers_of(services: Services, user_id: int, state: str = "pending") -> list[m.Offer]:
    async with services.db.transaction() as s:
        return list(
            await s.scalars(
                select(m.Offer).where(m.Offer.user_id == user_id, m.Offer.state == state).order_by(m.Offer.id)
            )
        )


async def test_idle_chat_is_closed_after_the_queue_limit_customer_told_in_their_language_capacity_freed(
    services: Services,
) -> None:
    async with services.db.transaction() as s:
        alice = await f.user(s, "alice", capacity=1)
        code = await f.result_code(s, "idle")
        q = await f.queue(
            s,
            "support",
            [alice],
            idle_close_minutes=5,
            default_result_code_id=code.id,
            queue_timeout_seconds=3600,
        )
        ib = await f.inbox(s, q)
        await f.set_status(s, alice)
    first = await inbound(services, ib.id, "cust-1", language="ru")
    await do_route_pending(services.db)
    [offer] = await offers_of(services, alice.id)
    async with services.db.transaction() as s:
        await c.check_accept_offer(s, f.who(alice), offer.id)
        accepted = await s.get_one(m.Conversation, first)
        assert accepted.accepted_at is not None
        # The customer wrote 3 minutes after the operator took the chat.
        accepted.last_message_at = accepted.accepted_at + timedelta(minutes=3)
    second = await inbound(services, ib.id, "cust-2")
    await do_route_pending(services.db)
    assert await offers_of(services, alice.id) == []  # alice is full (capacity 1)

    await at(services, timedelta(minutes=5, seconds=1))  # 5 minutes after accepting: not silent for 5
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Conversation, first)).status == "active"

    await at(services, timedelta(minutes=8, seconds=1))  # 5 minutes after the customer's message
    async with services.db.transaction() as s:
        closed = await s.get_one(m.Conversation, first)
        assert (closed.status, closed.closed_by, closed.result_code_id) == ("closed", "idle", code.id)
        told = await s.scalar(
            select(m.Message)
            .where(m.Message.conversation_id == first, m.Message.direction == "out")
            .order_by(m.Message.id.desc())
        )
        assert told is not None and told.author_user_id is None
        assert told.body == "Чат закрыт: сообщений не было 5 мин. Напишите нам снова в любое время."
    [offer2] = await offers_of(services, alice.id)  # her capacity is free: the waiting chat comes
    assert offer2.conversation_id == second


async def test_an_operator_missing_n_offers_in_a_row_is_paused_with_a_reason_supervisors_see(
    services: Services,
) -> None:
    async with services.db.transaction() as s:
        alice = await f.user(s, "alice", capacity=3)
        q = await f.queue(s, "support", [alice], missed_offers_pause=2, operator_timeout_seconds=20)
        ib = await f.inbox(s, q)
        await f.set_status(s, alice)
    await inbound(services, ib.id, "cust-1")
    await do_route_pending(services.db)
    [first] = await offers_of(services, alice.id)
    async with services.db.transaction() as s:
        await c.check_decline_offer(s, f.who(alice), first.id)  # a decline is no miss, and ends a run
    await do_route_pending(services.db)
    assert await offers_of(services, alice.id), "offered to her again (nobody else is there)"

    await at(services, timedelta(seconds=21))  # that one rings out: 1 missed
    async with services.db.transaction() as s:
        assert (await presence.get_presence(s, alice.id)).reason == ""
    assert await offers_of(services, alice.id), "and offered again"
    await at(services, timedelta(seconds=42))  # the next ones ring out too: 2 in a row
    async with services.db.transaction() as s:
        p = await presence.get_presence(s, alice.id)
        status = await s.get_one(m.OperatorStatus, p.status_id)
        assert status.code == "pause" and p.reason == "missed_offers"
        assert enum_label("ru", "presence_reason", p.reason) == "пропустил предложения подряд"
        event = await s.scalar(
            select(m.Event).where(m.Event.type == "presence.changed").order_by(m.Event.id.desc())
        )
        assert event is not None and event.payload["reason"] == "missed_offers"
        assert event.payload["status"] == "pause"
    assert await offers_of(services, alice.id) == []  # paused: nothing more is offered

    async with services.db.transaction() as s:
        await f.set_status(s, alice)  # back: a new count starts
    await do_route_pending(services.db)
    assert await offers_of(services, alice.id)
    await at(services, timedelta(seconds=63))
    async with services.db.transaction() as s:
        p = await presence.get_presence(s, alice.id)
        assert (await s.get_one(m.OperatorStatus, p.status_id)).code == "available"
