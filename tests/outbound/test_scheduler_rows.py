"""The tick's plain-row path: the claim reads rows, ``lifecycle.do_open_claimed`` opens them
(on PostgreSQL one statement, no ORM object; on SQLite the ORM path), a do-not-call hit is
opened and closed ``refused`` by that same statement, and the node loop's held connection
plans its statements once (``generic_plans``).

Each behaviour runs on both databases with the same assertions: what PostgreSQL's statement
writes is what the ORM path (``do_open_attempt`` + ``do_close_attempt``) writes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from omni.db import HeldConnection
from omni.db import models as m
from omni.db.models.outbound import Outcome, TargetState
from omni.domain.conversations import InboundMessage, do_ingest_inbound
from omni.domain.errors import Conflict
from omni.domain.outbound.free import free_for_outbound, free_rows
from omni.domain.outbound.lifecycle import (
    CLAIMED_COLUMNS,
    Attempt,
    Claimed,
    RowOpening,
    attempt_dict,
    do_open_claimed,
)
from omni.domain.outbound.scheduler import _campaigns_statement, tick
from omni.services import Services
from tests import factories as f
from tests.outbound.test_scheduler import EVERY_DAY_9_TO_21, NOON_MSK, World, _world
from tests.outbound.test_scheduler import sqlite_services as sqlite_services  # the fixture


async def _events(w: World, target_id: int) -> list[tuple[str, dict[str, Any], int | None, int | None]]:
    async with w.db.transaction() as s:
        rows = await s.scalars(select(m.Event).order_by(m.Event.id))
        return [
            (e.type, e.payload, e.queue_id, e.user_id)
            for e in rows
            if e.type.startswith("campaign.attempt_") and e.payload["target_id"] == target_id
        ]


async def _claimed(w: World, target_id: int) -> Claimed:
    async with w.db.transaction() as s:
        t = await s.get_one(m.CampaignTarget, target_id)
        return Claimed(*(getattr(t, name) for name in CLAIMED_COLUMNS))


async def _dnc_hit_on_the_record(either: Services) -> None:
    """A listed number claimed by the tick: the attempt is on the record, opened and ended at
    once (``refused``, cause ``dnc``, no operator, no caller ID), the target is ``dnc`` with no
    attempt used up, and its two events follow each other with ``do_close_attempt``'s payload;
    the operator it would have had gets the next target."""
    w = await _world(either, operators=1)
    listed, called = await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    async with either.db.transaction() as s:
        s.add(m.DncEntry(campaign_id=None, number="+74950000001"))
        s.add(m.CampaignCallerId(campaign_id=w.campaign_id, number="+74950001111", region="RU"))
    assert await tick(either, NOON_MSK) == 1
    assert [(o.target_id, o.operator_id) for o in w.adapter.orders] == [(called, w.operators[0])]
    target = await w.target(listed)
    assert (target.state, target.attempts, target.last_outcome, target.next_due_at, target.updated_at) == (
        TargetState.DNC,
        0,
        Outcome.REFUSED,
        None,
        NOON_MSK,
    )
    (attempt,) = await w.attempts(target_id=listed)
    assert (attempt.number, attempt.phone, attempt.caller_id, attempt.operator_id) == (
        1,
        "+74950000001",
        "",
        None,
    )
    assert (attempt.outcome, attempt.cause, attempt.created_at, attempt.ended_at, attempt.started_at) == (
        Outcome.REFUSED,
        "dnc",
        NOON_MSK,
        NOON_MSK,
        None,
    )
    ended = json.loads(json.dumps(attempt_dict(attempt)))
    started = ended | {"outcome": None, "cause": "", "ended_at": None}
    assert await _events(w, listed) == [
        ("campaign.attempt_started", started, w.queue_id, None),
        ("campaign.attempt_ended", ended | {"target_state": "dnc", "next_due_at": None}, w.queue_id, None),
    ]
    (other,) = await w.attempts(target_id=called)
    assert (other.outcome, other.caller_id, other.operator_id) == (None, "+74950001111", w.operators[0])
    assert [e[0] for e in await _events(w, called)] == ["campaign.attempt_started"]


async def test_a_dnc_hit_is_opened_and_refused_on_the_record_by_the_opening_statement(
    services: Services,
) -> None:
    await _dnc_hit_on_the_record(services)


async def test_a_dnc_hit_is_opened_and_refused_on_the_record_on_sqlite(sqlite_services: Services) -> None:
    await _dnc_hit_on_the_record(sqlite_services)


async def _open_claimed_rows(either: Services) -> None:
    """``do_open_claimed`` returns the attempts in the order given, with the ids written; a
    target that is no longer pending refuses the whole batch and nothing is written."""
    w = await _world(either, operators=2)
    a, b, c = await w.targets("+7 495 000-00-01", "+7 495 000-00-02", "+7 495 000-00-03")
    async with either.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, b)
        target.phones, target.phone_index, target.attempts = ["+74950000002", "+74950000009"], 1, 2
    ra, rb, rc = [await _claimed(w, t) for t in (a, b, c)]
    async with either.db.transaction() as s:
        opened = await do_open_claimed(
            s,
            [
                RowOpening(rb, "+74950001111", w.operators[0], "voice", w.queue_id),
                RowOpening(rc, "", None, "voice", w.queue_id, dnc=True),
                RowOpening(ra, "", w.operators[1], "voice", w.queue_id),
            ],
            now=NOON_MSK,
        )
    rows = {x.id: x for x in await w.attempts()}
    assert opened == [
        Attempt(opened[0].id, w.campaign_id, b, 3, "+74950000009", "+74950001111", "voice", w.operators[0]),
        Attempt(opened[1].id, w.campaign_id, c, 1, "+74950000003", "", "voice", None),
        Attempt(opened[2].id, w.campaign_id, a, 1, "+74950000001", "", "voice", w.operators[1]),
    ]
    assert [
        (rows[x.id].target_id, rows[x.id].number, rows[x.id].phone, rows[x.id].outcome) for x in opened
    ] == [
        (b, 3, "+74950000009", None),
        (c, 1, "+74950000003", Outcome.REFUSED),
        (a, 1, "+74950000001", None),
    ]
    assert [(await w.target(t)).state for t in (a, b, c)] == [
        TargetState.IN_PROGRESS,
        TargetState.IN_PROGRESS,
        TargetState.DNC,
    ]
    (d,) = await w.targets("+7 495 000-00-04")
    rd = await _claimed(w, d)
    with pytest.raises(Conflict):
        async with either.db.transaction() as s:
            await do_open_claimed(
                s,
                [
                    RowOpening(rd, "", None, "voice", w.queue_id),
                    RowOpening(ra, "", None, "voice", w.queue_id),
                ],
                now=NOON_MSK,
            )
    assert (await w.target(d)).state == TargetState.PENDING
    assert len(await w.attempts()) == 3


async def test_claimed_rows_open_in_order_and_a_busy_one_refuses_the_batch(services: Services) -> None:
    await _open_claimed_rows(services)


async def test_claimed_rows_open_in_order_and_a_busy_one_refuses_the_batch_on_sqlite(
    sqlite_services: Services,
) -> None:
    await _open_claimed_rows(sqlite_services)


async def test_the_held_connection_plans_generically_and_goes_back_to_the_pool_as_it_came(
    services: Services,
) -> None:
    """``generic_plans``: inside every pass of the held connection ``plan_cache_mode`` is
    ``force_generic_plan`` and JIT is off (a generic plan's cost of a claim over one big zone
    crosses ``jit_above_cost``: 0.5 s of compiling per pass); once it is closed the same server
    connection, back in the pool, reads the server's defaults again (another user of the pool
    never inherits them)."""
    async with services.db.transaction() as s:
        default_jit = await s.scalar(text("SELECT current_setting('jit')"))
    held = HeldConnection(services.db, generic_plans=True)
    settings = text("SELECT current_setting('plan_cache_mode'), current_setting('jit')")
    try:
        for _ in range(2):
            async with held.transaction() as s:
                assert tuple((await s.execute(settings)).one()) == ("force_generic_plan", "off")
                pid = await s.scalar(text("SELECT pg_backend_pid()"))
    finally:
        await held.close()
    seen = set()
    for _ in range(services.db.engine.pool.size() + 1):  # type: ignore[attr-defined]
        async with services.db.transaction() as s:
            seen.add((await s.scalar(text("SELECT pg_backend_pid()")), *(await s.execute(settings)).one()))
    assert (pid, "auto", default_jit) in seen
    assert all(mode == "auto" and jit == default_jit for _, mode, jit in seen)
    plain = HeldConnection(services.db)
    try:
        async with plain.transaction() as s:
            assert tuple((await s.execute(settings)).one()) == ("auto", default_jit)
    finally:
        await plain.close()


# --- who is free, read with the campaigns (PostgreSQL) -------------------------------------


async def _both_reads(s: Any, campaign_id: int) -> tuple[list[int], list[int]]:
    """``free_for_outbound`` by its own statement and from the campaigns read's column."""
    row = (await s.execute(_campaigns_statement("postgresql").where(m.Campaign.id == campaign_id))).one()
    campaign = row[0]
    return await free_for_outbound(s, campaign), await free_for_outbound(s, campaign, read=free_rows(row[5]))


async def test_who_is_free_read_with_the_campaigns_is_the_same_as_its_own_statement(
    services: Services,
) -> None:
    """Statuses that don't take outbound, no room left, named operators, an open attempt and
    blending (a queued inbound call is the operator's first, with ``inbound_priority`` only):
    the column of the campaigns read gives what the statement of its own gives."""
    w = await _world(services, operators=4)
    op0, op1, op2, op3 = w.operators
    async with services.db.transaction() as s:
        s.add(
            m.OperatorStatus(
                code="inbound_only",
                name="Inbound only",
                kind="available",
                receives_voice=True,
                receives_chats=True,
                takes_outbound=False,
            )
        )
        await s.flush()
        await f.set_status(s, await s.get_one(m.User, op0), "inbound_only")
        await f.set_status(s, await s.get_one(m.User, op1), "pause")
        named = await f.user(s, "named")
        await f.set_status(s, named)
        s.add(m.CampaignOperator(campaign_id=w.campaign_id, user_id=named.id))
        await s.flush()
        assert await _both_reads(s, w.campaign_id) == ([op2, op3, named.id],) * 2
        inbox = await f.inbox(s, await s.get_one(m.Queue, w.queue_id))
        chat = (
            await do_ingest_inbound(
                s,
                InboundMessage(
                    inbox_id=inbox.id,
                    identity_kind="email",
                    identity_value="c@x.org",
                    external_id="c1",
                    body="hi",
                ),
            )
        ).conversation
        chat.status, chat.assigned_user_id = m.ConversationStatus.ACTIVE, op2
        await s.flush()
        assert await _both_reads(s, w.campaign_id) == ([op3, named.id],) * 2
        voice = await f.inbox(s, await s.get_one(m.Queue, w.queue_id), channel="voice")
        await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=voice.id,
                identity_kind="phone",
                identity_value="+79161230000",
                external_id="lid-1",
                medium=m.Medium.VOICE,
                body="Incoming call",
            ),
        )
        await s.flush()
        assert await _both_reads(s, w.campaign_id) == ([named.id],) * 2  # the queue's call first
        (await s.get_one(m.Campaign, w.campaign_id)).inbound_priority = False
        await s.flush()
        assert await _both_reads(s, w.campaign_id) == ([op3, named.id],) * 2


async def test_an_operator_a_preview_expiry_frees_gets_an_attempt_in_the_same_pass(
    services: Services,
) -> None:
    """Who is free comes with the campaigns read, before the housekeeping; when a preview
    waits (it may expire and free its operator) it is read again after it."""
    w = await _world(services, operators=1, priority=10)
    (op,) = w.operators
    async with services.db.transaction() as s:
        preview = m.Campaign(
            name="Preview",
            queue_id=w.queue_id,
            state="running",
            dial_mode="preview",
            schedule=EVERY_DAY_9_TO_21,
            preview_seconds=30,
            priority=0,
        )
        s.add(preview)
        await s.flush()
        s.add(
            m.CampaignTarget(
                campaign_id=preview.id,
                phone="+74950000009",
                phones=["+74950000009"],
                timezone="Europe/Moscow",
                next_due_at=NOON_MSK - timedelta(hours=1),
            )
        )
    assert await tick(services, NOON_MSK) == 1  # the preview card, to the only operator
    (card,) = await w.attempts()
    assert (card.campaign_id, card.operator_id) == (preview.id, op)
    (target,) = await w.targets("+7 495 000-00-01")
    assert await tick(services, NOON_MSK + timedelta(seconds=31)) == 1
    assert [(o.target_id, o.operator_id) for o in w.adapter.orders] == [(target, op)]
    expired = await w.attempts(id=card.id)
    assert expired[0].outcome == Outcome.REFUSED
