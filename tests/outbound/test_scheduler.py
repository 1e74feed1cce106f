"""The campaign scheduler end to end through ``tick``: priority, due times, customer-local
windows, DNC, the pre-dial check, concurrency, blending, caller IDs, two nodes at once.

The channel is the only test double: ``RecordingAdapter`` implements ``PlacesAttempts`` (the
channel boundary) and records the orders; everything else is the real domain on PostgreSQL
(and SQLite where marked). ``now`` is pinned; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web
from sqlalchemy import func, select

from omni.channels import AttemptOrder, ChannelNotReady, DeliveryReceipt, OutboundMessage
from omni.db import Database, HeldConnection
from omni.db import models as m
from omni.db.models.outbound import CampaignState, Outcome, TargetState
from omni.domain.conversations import InboundMessage, do_accept_offer, do_close, do_ingest_inbound
from omni.domain.errors import Conflict
from omni.domain.outbound.lifecycle import Opening, attempt_dict, do_close_attempt, do_open_attempts
from omni.domain.outbound.numbers import parse_number, zone_of
from omni.domain.outbound.scheduler import Scheduler, free_for_outbound, tick
from omni.domain.routing import do_route_pending
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite
from tests.helpers import until

EVERY_DAY_9_TO_21 = {str(d): [["09:00", "21:00"]] for d in range(1, 8)}
TUESDAY_0800_MSK = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
"""08:00 in Moscow, 15:00 in Vladivostok, 07:00 in Kaliningrad."""
NOON_MSK = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class RecordingAdapter:
    """The voice channel's boundary as the engine sees it: records what it is asked to place."""

    kind: ClassVar[str] = "voice"
    orders: list[AttemptOrder] = field(default_factory=list)
    not_ready: bool = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt("sent")

    async def place(self, order: AttemptOrder) -> None:
        if self.not_ready:
            raise ChannelNotReady("AMI link down")
        self.orders.append(order)


@dataclass
class World:
    services: Services
    adapter: RecordingAdapter
    queue_id: int
    campaign_id: int
    operators: list[int]

    @property
    def db(self) -> Database:
        return self.services.db

    async def targets(self, *raw: str, due: datetime | None = None, **kw: Any) -> list[int]:
        ids = []
        async with self.db.transaction() as s:
            campaign = await s.get_one(m.Campaign, self.campaign_id)
            for n, number in enumerate(raw):
                parsed = parse_number(number)
                t = m.CampaignTarget(
                    campaign_id=self.campaign_id,
                    name=f"customer {n}",
                    phone=parsed.e164,
                    phones=[parsed.e164],
                    timezone=zone_of(parsed, "", campaign.timezone),
                    region=parsed.region,
                    fields={"debt": 100 + n},
                    next_due_at=(due or datetime(2026, 11, 1, tzinfo=UTC)) + timedelta(seconds=n),
                    **kw,
                )
                s.add(t)
                await s.flush()
                ids.append(t.id)
        return ids

    async def target(self, target_id: int) -> m.CampaignTarget:
        async with self.db.transaction() as s:
            return await s.get_one(m.CampaignTarget, target_id)

    async def attempts(self, **where: Any) -> list[m.CampaignAttempt]:
        async with self.db.transaction() as s:
            q = select(m.CampaignAttempt).order_by(m.CampaignAttempt.id)
            for k, v in where.items():
                q = q.where(getattr(m.CampaignAttempt, k) == v)
            return list(await s.scalars(q))

    async def close(self, attempt_id: int, outcome: Outcome, now: datetime) -> m.CampaignTarget:
        async with self.db.transaction() as s:
            attempt = await s.get_one(m.CampaignAttempt, attempt_id)
            return await do_close_attempt(s, attempt, outcome, now=now)

    async def update(self, **values: Any) -> None:
        async with self.db.transaction() as s:
            campaign = await s.get_one(m.Campaign, self.campaign_id)
            for k, v in values.items():
                setattr(campaign, k, v)


async def _world(services: Services, *, operators: int = 1, **campaign: Any) -> World:
    adapter = RecordingAdapter()
    services.adapters.register(adapter)
    async with services.db.transaction() as s:
        ops = [await f.user(s, f"op{i}") for i in range(operators)]
        for op in ops:
            await f.set_status(s, op)
        q = await f.queue(s, "Outbound", ops)
        values: dict[str, Any] = dict(
            name="Debts",
            queue_id=q.id,
            state="running",
            dial_mode="progressive",
            schedule=EVERY_DAY_9_TO_21,
            retry_rules={"busy": [15, 60, 1440], "no_answer": [30, 120], "congestion": [5], "dropped": [10]},
            max_attempts=10,
            max_concurrency=10,
        )
        values.update(campaign)
        c = m.Campaign(**values)
        s.add(c)
        await s.flush()
        return World(services, adapter, q.id, c.id, [op.id for op in ops])


# --- retry rules through tick -----------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "minutes"),
    [
        (Outcome.BUSY, [15, 60, 1440]),
        (Outcome.NO_ANSWER, [30, 120, 120]),
        (Outcome.CONGESTION, [5, 5]),
        (Outcome.DROPPED, [10]),
    ],
)
async def test_every_outcome_is_retried_exactly_at_its_due_time(
    services: Services, outcome: Outcome, minutes: list[int]
) -> None:
    w = await _world(services)
    (tid,) = await w.targets("+7 495 123-45-67")
    now = NOON_MSK
    for n, wait in enumerate(minutes, start=1):
        assert await tick(services, now) == 1
        attempt = (await w.attempts(target_id=tid))[-1]
        assert (attempt.number, attempt.operator_id, attempt.phone) == (n, w.operators[0], "+74951234567")
        target = await w.close(attempt.id, outcome, now)
        due = now + timedelta(minutes=wait)
        assert (target.state, target.next_due_at) == (TargetState.PENDING, due)
        assert await tick(services, due - timedelta(seconds=1)) == 0  # not a second early
        now = due
    assert len(w.adapter.orders) == len(minutes)


async def test_an_outcome_without_a_rule_fails_the_target_and_answered_waits_for_the_result(
    services: Services,
) -> None:
    w = await _world(services, operators=2)
    await w.targets("+7 495 123-45-67", "+7 495 123-45-68")
    assert await tick(services, NOON_MSK) == 2
    first, second = await w.attempts()
    assert (await w.close(first.id, Outcome.MACHINE, NOON_MSK)).state == TargetState.FAILED
    assert (await w.close(second.id, Outcome.ANSWERED, NOON_MSK)).state == TargetState.IN_PROGRESS
    assert await tick(services, NOON_MSK + timedelta(days=1)) == 0


# --- customer-local windows -------------------------------------------------------------


async def test_a_vladivostok_number_is_called_at_0800_moscow_but_not_at_0800_vladivostok(
    services: Services,
) -> None:
    """Both readings of "a Vladivostok number is not called at 08:00": at 08:00 in Vladivostok
    (01:00 Moscow) it is not; at 08:00 Moscow (15:00 there) it is — while a Moscow number,
    whose 08:00 it is, waits for its own 09:00."""
    w = await _world(services, operators=2)
    vvo, msk = await w.targets("+7 423 222-33-44", "+7 495 123-45-67")
    assert (await w.target(vvo)).timezone == "Asia/Vladivostok"
    at_0800_vvo = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # 01:00 in Moscow: closed there too
    assert await tick(services, at_0800_vvo) == 0
    assert await tick(services, TUESDAY_0800_MSK) == 1
    assert [o.target_id for o in w.adapter.orders] == [vvo]
    assert (await w.target(msk)).state == TargetState.PENDING
    assert await tick(services, TUESDAY_0800_MSK + timedelta(hours=1)) == 1  # 09:00 in Moscow
    assert [o.target_id for o in w.adapter.orders] == [vvo, msk]


@pytest.mark.parametrize(
    "at_2130_local",
    [datetime(2026, 12, 1, 19, 30, tzinfo=UTC), datetime(2026, 7, 7, 19, 30, tzinfo=UTC)],
    ids=["winter", "summer"],
)
async def test_a_kaliningrad_number_is_not_called_at_2130_local(
    services: Services, at_2130_local: datetime
) -> None:
    w = await _world(services)
    (kgd,) = await w.targets("+7 4012 55-66-77", due=at_2130_local - timedelta(days=30))
    assert (await w.target(kgd)).timezone == "Europe/Kaliningrad"
    assert await tick(services, at_2130_local) == 0
    assert await w.attempts() == []  # not touched: no refused attempt either
    assert await tick(services, at_2130_local - timedelta(minutes=31)) == 1  # 20:59 local


async def test_holidays_start_and_end_dates_keep_the_campaign_silent(services: Services) -> None:
    w = await _world(services, holidays=["2026-12-01"])
    await w.targets("+7 495 123-45-67")
    assert await tick(services, NOON_MSK) == 0
    await w.update(holidays=[], starts_on=date(2026, 12, 2))
    assert await tick(services, NOON_MSK) == 0
    await w.update(starts_on=None, ends_on=date(2026, 11, 30))
    assert await tick(services, NOON_MSK) == 0
    async with services.db.transaction() as s:  # the pass finished it: its end date is gone
        assert (await s.get_one(m.Campaign, w.campaign_id)).state == CampaignState.FINISHED
    await w.update(ends_on=date(2026, 12, 1), state=CampaignState.RUNNING)
    assert await tick(services, NOON_MSK) == 1


# --- DNC ----------------------------------------------------------------------------------


async def test_dnc_numbers_and_prefixes_are_refused_on_the_record_and_others_called(
    services: Services,
) -> None:
    w = await _world(services)
    listed, ranged, whole, fine = await w.targets(
        "+7 495 123-45-67", "+7 812 111-22-33", "+7 343 000-11-22", "+7 495 765-43-21"
    )
    async with services.db.transaction() as s:
        s.add(m.DncEntry(campaign_id=None, number="+74951234567"))
        s.add(m.DncEntry(campaign_id=w.campaign_id, number="+7812", prefix=True))
        s.add(m.DncEntry(campaign_id=w.campaign_id, number="+73430001122", prefix=True))  # covers itself
    assert await tick(services, NOON_MSK) == 1
    assert [o.target_id for o in w.adapter.orders] == [fine]
    for tid in (listed, ranged, whole):
        target = await w.target(tid)
        assert (target.state, target.attempts, target.next_due_at) == (TargetState.DNC, 0, None)
        (attempt,) = await w.attempts(target_id=tid)
        assert (attempt.outcome, attempt.cause, attempt.operator_id) == (Outcome.REFUSED, "dnc", None)


# --- the pre-dial check -------------------------------------------------------------------


@pytest.fixture
async def crm() -> AsyncIterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """A loopback CRM: answers by the phone's last digit — call, dont_call, later, hangs,
    garbage, a 500 — and records what it was asked."""
    answers: dict[str, Any] = {}
    asked: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def check(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        asked.append(body)
        answer = answers.get(body["phone"], {"answer": "call"})
        if answer == "hang":
            await release.wait()
        if answer == "garbage":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if answer == "500":
            return web.Response(status=500, text="boom")
        return web.Response(text=json.dumps(answer), content_type="application/json")

    app = web.Application()
    app.router.add_post("/check", check)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # the bound port
    try:
        yield f"http://127.0.0.1:{port}/check", answers, asked
    finally:
        release.set()
        await runner.cleanup()


async def test_the_predial_check_decides_call_dont_call_and_later(
    services: Services, crm: tuple[str, dict[str, Any], list[dict[str, Any]]]
) -> None:
    url, answers, asked = crm
    w = await _world(services, operators=3, predial_url=url, predial_timeout_ms=5000)
    call, dont, later = await w.targets("+7 495 000-00-01", "+7 495 000-00-02", "+7 495 000-00-03")
    at = NOON_MSK + timedelta(hours=5)
    answers["+74950000002"] = {"answer": "dont_call"}
    answers["+74950000003"] = {"answer": "later", "at": at.isoformat()}
    assert await tick(services, NOON_MSK) == 1
    assert [o.target_id for o in w.adapter.orders] == [call]
    assert {a["phone"] for a in asked} == {"+74950000001", "+74950000002", "+74950000003"}
    first = next(a for a in asked if a["phone"] == "+74950000001")
    assert (first["campaign"], first["target_id"], first["fields"]) == (w.campaign_id, call, {"debt": 100})
    target = await w.target(dont)
    assert (target.state, target.attempts) == (TargetState.DNC, 0)
    assert (await w.attempts(target_id=dont))[0].cause == "predial_dont_call"
    target = await w.target(later)
    assert (target.state, target.next_due_at, target.attempts) == (TargetState.PENDING, at, 0)
    # The operators the refusals reserved are free again at once.
    async with services.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        assert len(await free_for_outbound(s, campaign)) == 2


@pytest.mark.parametrize(
    ("policy", "state", "outcome", "placed"),
    [
        ("call", TargetState.IN_PROGRESS, None, True),
        ("skip", TargetState.PENDING, Outcome.SKIPPED, False),
        ("later", TargetState.PENDING, Outcome.REFUSED, False),
    ],
)
@pytest.mark.parametrize("failure", ["hang", "garbage", "500", "refused"])
async def test_a_predial_check_that_hangs_or_talks_garbage_follows_the_timeout_policy(
    services: Services,
    crm: tuple[str, dict[str, Any], list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
    policy: str,
    state: TargetState,
    outcome: Outcome | None,
    placed: bool,
    failure: str,
) -> None:
    url, answers, _ = crm
    if failure == "refused":
        url = "http://127.0.0.1:9/check"  # discard port: nothing listens
    w = await _world(
        services,
        predial_url=url,
        predial_timeout_ms=300,
        predial_on_timeout=policy,
        retry_rules={"skipped": [45]},
    )
    (tid,) = await w.targets("+7 495 000-00-09")
    answers["+74950000009"] = failure
    assert await tick(services, NOON_MSK) == (1 if placed else 0)
    assert bool(w.adapter.orders) is placed
    target = await w.target(tid)
    assert (target.state, target.attempts) == (state, 1 if placed else 0)
    (attempt,) = await w.attempts()
    assert attempt.outcome == outcome
    if policy == "skip":
        assert target.next_due_at == NOON_MSK + timedelta(minutes=45)
    if policy == "later":
        assert target.next_due_at == NOON_MSK + timedelta(minutes=15)
    assert any(
        f"campaign {w.campaign_id}" in r.getMessage() and url in r.getMessage() for r in caplog.records
    )


# --- concurrency, priority, callbacks ---------------------------------------------------


async def test_concurrency_caps_a_campaign_and_the_higher_priority_one_gets_operators_first(
    services: Services,
) -> None:
    w = await _world(services, operators=4, max_concurrency=3, priority=1)
    low_ids = await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    async with services.db.transaction() as s:
        high = m.Campaign(
            name="Urgent",
            queue_id=w.queue_id,
            state="running",
            dial_mode="progressive",
            schedule=EVERY_DAY_9_TO_21,
            priority=5,
            max_concurrency=3,
            retry_rules={"no_answer": [30]},
        )
        s.add(high)
        await s.flush()
        high_id = high.id
        for n in range(5):
            s.add(
                m.CampaignTarget(
                    campaign_id=high_id,
                    phone=f"+7495111000{n}",
                    phones=[f"+7495111000{n}"],
                    timezone="Europe/Moscow",
                    next_due_at=NOON_MSK - timedelta(hours=1),
                )
            )
    assert await tick(services, NOON_MSK) == 4
    by_campaign = [o.campaign_id for o in w.adapter.orders]
    assert by_campaign == [high_id, high_id, high_id, w.campaign_id]  # 3 = Urgent's limit
    assert len({o.operator_id for o in w.adapter.orders}) == 4  # one attempt per operator
    assert await tick(services, NOON_MSK) == 0  # everyone holds an open attempt
    # An operator freed: the higher priority campaign is still capped, so the low one gets them.
    await w.close(w.adapter.orders[3].attempt_id, Outcome.NO_ANSWER, NOON_MSK)
    assert await tick(services, NOON_MSK) == 1
    assert w.adapter.orders[-1].target_id == low_ids[1]


async def test_a_callback_for_me_waits_for_that_operator(services: Services) -> None:
    w = await _world(services, operators=2)
    mine, anyone = await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    async with services.db.transaction() as s:
        (await s.get_one(m.CampaignTarget, mine)).callback_user_id = w.operators[1]
        await f.set_status(s, await s.get_one(m.User, w.operators[1]), "pause")
    assert await tick(services, NOON_MSK) == 1
    assert [(o.target_id, o.operator_id) for o in w.adapter.orders] == [(anyone, w.operators[0])]
    async with services.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, w.operators[1]))
    assert await tick(services, NOON_MSK) == 1
    assert w.adapter.orders[-1].target_id == mine and w.adapter.orders[-1].operator_id == w.operators[1]


async def test_preview_attempts_reserve_the_operator_and_are_not_dialed(services: Services) -> None:
    w = await _world(services, operators=1, dial_mode="preview")
    (tid,) = await w.targets("+7 495 000-00-01")
    assert await tick(services, NOON_MSK) == 1
    assert w.adapter.orders == []
    (attempt,) = await w.attempts()
    assert (attempt.operator_id, attempt.started_at, attempt.ended_at) == (w.operators[0], None, None)
    assert (await w.target(tid)).state == TargetState.IN_PROGRESS


async def test_a_channel_not_ready_refuses_the_attempt_and_the_target_keeps_its_place(
    services: Services,
) -> None:
    w = await _world(services)
    (tid,) = await w.targets("+7 495 000-00-01")
    due = (await w.target(tid)).next_due_at
    w.adapter.not_ready = True
    assert await tick(services, NOON_MSK) == 0
    target = await w.target(tid)
    assert (target.state, target.next_due_at, target.attempts) == (TargetState.PENDING, due, 0)
    (attempt,) = await w.attempts()
    assert (attempt.outcome, attempt.cause) == (Outcome.REFUSED, "channel_not_ready")
    w.adapter.not_ready = False
    assert await tick(services, NOON_MSK) == 1


# --- caller IDs ---------------------------------------------------------------------------


async def test_caller_ids_rotate_least_recently_used_and_prefer_the_customers_region(
    services: Services,
) -> None:
    w = await _world(services, operators=4)
    await w.targets("+7 495 000-00-01", "+7 495 000-00-02", "+44 20 7946 0018", "+44 20 7946 0019")
    async with services.db.transaction() as s:
        s.add_all(
            [
                m.CampaignCallerId(campaign_id=w.campaign_id, number="+74950001111", region="RU"),
                m.CampaignCallerId(campaign_id=w.campaign_id, number="+74950002222", region="RU"),
                m.CampaignCallerId(
                    campaign_id=w.campaign_id, number="+74950003333", region="RU", active=False
                ),
            ]
        )
    assert await tick(services, NOON_MSK) == 4
    got = [(o.phone[:3], o.caller_id) for o in w.adapter.orders]
    assert got[:2] == [("+74", "+74950001111"), ("+74", "+74950002222")]
    # No British number in the pool: the least recently used of the others, in turn.
    assert [c for _, c in got[2:]] == ["+74950001111", "+74950002222"]
    async with services.db.transaction() as s:
        s.add(m.CampaignCallerId(campaign_id=w.campaign_id, number="+442079460000", region="GB"))
        stamped = await s.scalar(select(func.max(m.CampaignCallerId.last_used_at)))
        assert stamped == NOON_MSK
    for o in w.adapter.orders:
        await w.close(o.attempt_id, Outcome.BUSY, NOON_MSK)
    later = NOON_MSK + timedelta(minutes=15)
    assert await tick(services, later) == 4
    assert {o.caller_id for o in w.adapter.orders[4:] if o.phone.startswith("+44")} == {"+442079460000"}


# --- who is free: status flag, capacity, blending -----------------------------------------


async def test_only_statuses_that_take_outbound_and_operators_with_room_get_attempts(
    services: Services,
) -> None:
    w = await _world(services, operators=3)
    async with services.db.transaction() as s:
        inbound_only = m.OperatorStatus(
            code="inbound_only",
            name="Inbound only",
            kind="available",
            receives_voice=True,
            receives_chats=True,
            takes_outbound=False,
        )
        s.add(inbound_only)
        await s.flush()
        await f.set_status(s, await s.get_one(m.User, w.operators[0]), "inbound_only")
        await f.set_status(s, await s.get_one(m.User, w.operators[1]), "pause")
        named = await f.user(s, "named")
        await f.set_status(s, named)
        s.add(m.CampaignOperator(campaign_id=w.campaign_id, user_id=named.id))
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        assert set(await free_for_outbound(s, campaign)) == {w.operators[2], named.id}
        # A chat in hand leaves no room for a call (3 chats or 1 call).
        inbox = await f.inbox(s, await s.get_one(m.Queue, w.queue_id))
        result = await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox.id,
                identity_kind="email",
                identity_value="c1@example.com",
                external_id="x1",
                body="hi",
            ),
        )
        conv = result.conversation
        conv.status = m.ConversationStatus.ACTIVE
        conv.assigned_user_id = named.id
        await s.flush()
        assert await free_for_outbound(s, campaign) == [w.operators[2]]


async def test_blending_an_inbound_call_goes_first_and_outbound_resumes_after(services: Services) -> None:
    w = await _world(services, operators=1, retry_rules={"no_answer": [1]})
    await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    op = w.operators[0]
    assert await tick(services, NOON_MSK) == 1
    await w.close(w.adapter.orders[0].attempt_id, Outcome.NO_ANSWER, NOON_MSK)
    # An inbound call arrives for the operator's queue just as they are free again.
    async with services.db.transaction() as s:
        inbox = await f.inbox(s, await s.get_one(m.Queue, w.queue_id), channel="voice")
        call = await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox.id,
                identity_kind="phone",
                identity_value="+79161230000",
                external_id="lid-1",
                medium=m.Medium.VOICE,
                body="Incoming call",
            ),
        )
        conv_id = call.conversation.id
    assert await tick(services, NOON_MSK) == 0  # the waiting caller is theirs first
    (assigned,) = await do_route_pending(services.db)
    assert assigned.user_ids == (op,)
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == conv_id))
        assert offer is not None
        await do_accept_offer(s, conv, offer)
    assert await tick(services, NOON_MSK) == 0  # on the inbound call: no room
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        await do_close(s, conv, None)
    assert await tick(services, NOON_MSK + timedelta(minutes=1)) == 1  # outbound resumes
    assert [o.operator_id for o in w.adapter.orders] == [op, op]
    # Without inbound priority the campaign does not wait for the queue.
    await w.close(w.adapter.orders[1].attempt_id, Outcome.NO_ANSWER, NOON_MSK)
    await w.update(inbound_priority=False)
    async with services.db.transaction() as s:
        await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox.id,
                identity_kind="phone",
                identity_value="+79161230001",
                external_id="lid-2",
                medium=m.Medium.VOICE,
                body="Incoming call",
            ),
        )
    assert await tick(services, NOON_MSK + timedelta(minutes=2)) == 1


async def test_an_operator_ringing_a_campaign_call_is_not_offered_an_inbound_call_too(
    services: Services,
) -> None:
    """Regression: inbound capacity did not count open campaign attempts, so the router rang an
    operator whose progressive call was already ringing the customer."""
    w = await _world(services, operators=1)
    await w.targets("+7 495 000-00-01")
    assert await tick(services, NOON_MSK) == 1
    async with services.db.transaction() as s:
        inbox = await f.inbox(s, await s.get_one(m.Queue, w.queue_id), channel="voice")
        await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox.id,
                identity_kind="phone",
                identity_value="+79161230000",
                external_id="lid-1",
                medium=m.Medium.VOICE,
                body="Incoming call",
            ),
        )
    assert await do_route_pending(services.db) == []
    await w.close(w.adapter.orders[0].attempt_id, Outcome.NO_ANSWER, NOON_MSK)
    (assigned,) = await do_route_pending(services.db)
    assert assigned.user_ids == (w.operators[0],)


async def test_the_node_loop_wakes_when_an_operator_comes_free(services: Services) -> None:
    w = await _world(services, operators=1)
    await w.targets("+7 495 000-00-01", due=datetime.now(UTC) - timedelta(days=1))
    await w.update(schedule={str(d): [["00:00", "24:00"]] for d in range(1, 8)})
    async with services.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, w.operators[0]), "pause")
    loop = Scheduler(services, poll_seconds=3600)  # only a nudge can wake it in time
    await loop.start()
    try:
        await until(lambda: loop.passes >= 1, what="the first pass")
        async with services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.operators[0]))
        await until(lambda: w.adapter.orders, what="an attempt after the operator came free")
    finally:
        await loop.stop()


# --- two nodes, SQLite ----------------------------------------------------------------------


async def test_two_concurrent_ticks_never_open_two_attempts_for_one_target_or_operator(
    services: Services, settings: Settings
) -> None:
    w = await _world(services, operators=12, max_concurrency=100)
    # Three zones, all open at noon in Moscow: the claim merges them (the costlier statement).
    await w.targets(*(f"+7 {('495', '423', '343')[n % 3]} 000-{n:02d}-00" for n in range(36)))
    other = Database(settings.effective_database_url, pool_size=2)
    try:
        now = NOON_MSK
        for _round in range(4):
            a, b = await asyncio.gather(
                tick(services.db, now, adapters=services.adapters),
                tick(other, now, adapters=services.adapters),
            )
            open_ = await w.attempts(ended_at=None)
            assert a + b == len(open_) == 12
            assert len({x.target_id for x in open_}) == len(open_)
            assert len({x.operator_id for x in open_}) == len(open_)
            for attempt in open_:
                await w.close(attempt.id, Outcome.BUSY, now)
            now += timedelta(minutes=15)
    finally:
        await other.dispose()


@pytest.fixture
async def sqlite_services(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


async def test_the_same_tick_runs_on_sqlite(sqlite_services: Services) -> None:
    w = await _world(sqlite_services, operators=2)
    await w.targets("+7 423 222-33-44", "+7 495 000-00-01", "+7 4012 55-66-77")
    async with sqlite_services.db.transaction() as s:
        s.add(m.CampaignCallerId(campaign_id=w.campaign_id, number="+74950001111", region="RU"))
    assert await tick(sqlite_services, TUESDAY_0800_MSK + timedelta(hours=1)) == 2  # 09:00 MSK, 08:00 KGD
    assert {o.phone for o in w.adapter.orders} == {"+74232223344", "+74950000001"}
    assert {o.caller_id for o in w.adapter.orders} == {"+74950001111"}


async def test_attempts_opened_together_are_each_on_the_record_and_a_busy_target_refuses_all(
    services: Services,
) -> None:
    w = await _world(services, operators=2)
    a, b = await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    async with services.db.transaction() as s:
        ta, tb = await s.get_one(m.CampaignTarget, a), await s.get_one(m.CampaignTarget, b)
        opened = await do_open_attempts(
            s, [Opening(ta, "+74950001111", w.operators[0]), Opening(tb, "", w.operators[1])], now=NOON_MSK
        )
        assert [(x.target_id, x.number, x.caller_id, x.operator_id) for x in opened] == [
            (a, 1, "+74950001111", w.operators[0]),
            (b, 1, "", w.operators[1]),
        ]
        assert (ta.state, ta.attempts, ta.next_due_at) == (TargetState.IN_PROGRESS, 1, None)
        await s.flush()
        started = list(await s.scalars(select(m.Event).where(m.Event.type == "campaign.attempt_started")))
        assert [(e.payload["target_id"], e.user_id) for e in started] == [
            (a, w.operators[0]),
            (b, w.operators[1]),
        ]
    (c,) = await w.targets("+7 495 000-00-03")
    with pytest.raises(Conflict):
        async with services.db.transaction() as s:
            ta, tc = await s.get_one(m.CampaignTarget, a), await s.get_one(m.CampaignTarget, c)
            await do_open_attempts(s, [Opening(tc), Opening(ta)], now=NOON_MSK)
    assert (await w.target(c)).state == TargetState.PENDING


async def test_the_worker_tick_opens_previews_and_leaves_dialing_to_nodes_with_a_channel(
    services: Services,
) -> None:
    """Celery beat's ``omni.outbound.tick`` runs ``tick`` on a bare database: no adapters there,
    so a preview (no channel until the operator dials) opens and a progressive campaign waits."""
    from omni import worker

    entry = worker.celery_app.conf.beat_schedule["omni.outbound.tick"]
    assert entry["task"] == "omni.outbound.tick" and entry["schedule"] == worker.OUTBOUND_TICK_SECONDS
    w = await _world(services, operators=2)
    (progressive,) = await w.targets("+7 495 000-00-01")
    async with services.db.transaction() as s:
        preview = m.Campaign(
            name="Preview",
            queue_id=w.queue_id,
            state="running",
            dial_mode="preview",
            schedule=EVERY_DAY_9_TO_21,
        )
        s.add(preview)
        await s.flush()
        s.add(
            m.CampaignTarget(
                campaign_id=preview.id,
                phone="+74950000002",
                phones=["+74950000002"],
                timezone="Europe/Moscow",
                next_due_at=NOON_MSK - timedelta(hours=1),
            )
        )
    assert await tick(services.db, NOON_MSK) == 1
    (attempt,) = await w.attempts()
    assert attempt.campaign_id != w.campaign_id and attempt.operator_id in w.operators
    assert (await w.target(progressive)).state == TargetState.PENDING
    assert w.adapter.orders == []


# --- the claim's DNC check and the one-statement opening, on both databases ----------------


async def _dnc_checks_the_number_dialed(either: Services) -> None:
    """The claim folds the DNC lookup in (``dnc.covers`` on the number at ``phone_index``): a
    contact whose second number is listed is refused when that number's turn comes, and one
    whose listed first number is behind it is called on the second."""
    w = await _world(either, operators=2)
    second_listed, first_listed = await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    async with either.db.transaction() as s:
        for tid, phones in (
            (second_listed, ["+74950000001", "+78121112233"]),
            (first_listed, ["+74950000002", "+74950000003"]),
        ):
            target = await s.get_one(m.CampaignTarget, tid)
            target.phones, target.phone_index = phones, 1
        s.add(m.DncEntry(campaign_id=w.campaign_id, number="+7812", prefix=True))
        s.add(m.DncEntry(campaign_id=None, number="+74950000002"))
    assert await tick(either, NOON_MSK) == 1
    assert [(o.target_id, o.phone) for o in w.adapter.orders] == [(first_listed, "+74950000003")]
    target = await w.target(second_listed)
    assert (target.state, target.attempts) == (TargetState.DNC, 0)
    (attempt,) = await w.attempts(target_id=second_listed)
    assert (attempt.phone, attempt.outcome, attempt.cause) == ("+78121112233", Outcome.REFUSED, "dnc")


async def _opened_on_the_record(either: Services, *, held: bool = False) -> None:
    """``do_open_attempts`` writes rows and events itself on PostgreSQL: every column and each
    ``campaign.attempt_started`` payload is what the ORM path (SQLite) writes. ``held``: the
    pass runs as the node's loop runs it, on its held connection."""
    w = await _world(either, operators=2)
    a, b = await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    async with either.db.transaction() as s:
        s.add(m.CampaignCallerId(campaign_id=w.campaign_id, number="+74950001111", region="RU"))
    connection = HeldConnection(either.db) if held else None
    try:
        assert await tick(either, NOON_MSK, held=connection) == 2
    finally:
        if connection is not None:
            await connection.close()
    attempts = await w.attempts()
    assert [(x.target_id, x.number, x.caller_id, x.external_id, x.amd, x.cause) for x in attempts] == [
        (a, 1, "+74950001111", "", "", ""),
        (b, 1, "+74950001111", "", "", ""),
    ]
    assert {x.operator_id for x in attempts} == set(w.operators)
    assert all(x.created_at == NOON_MSK and x.started_at is None and x.outcome is None for x in attempts)
    for tid in (a, b):
        target = await w.target(tid)
        assert (target.state, target.attempts, target.next_due_at, target.updated_at) == (
            TargetState.IN_PROGRESS,
            1,
            None,
            NOON_MSK,
        )
    async with either.db.transaction() as s:
        events = list(
            await s.scalars(
                select(m.Event).where(m.Event.type == "campaign.attempt_started").order_by(m.Event.id)
            )
        )
    assert [e.payload for e in events] == [json.loads(json.dumps(attempt_dict(x))) for x in attempts]
    assert [(e.queue_id, e.user_id) for e in events] == [(w.queue_id, x.operator_id) for x in attempts]
    assert [o.attempt_id for o in w.adapter.orders] == [x.id for x in attempts]
    async with either.db.transaction() as s:
        assert await s.scalar(select(m.CampaignCallerId.last_used_at)) == NOON_MSK


async def test_dnc_checks_the_number_the_attempt_would_dial_not_the_first_one(services: Services) -> None:
    await _dnc_checks_the_number_dialed(services)


async def test_dnc_checks_the_number_the_attempt_would_dial_on_sqlite(sqlite_services: Services) -> None:
    await _dnc_checks_the_number_dialed(sqlite_services)


async def test_attempts_opened_by_a_tick_are_on_the_record_with_their_events(services: Services) -> None:
    await _opened_on_the_record(services)


async def test_attempts_opened_by_a_tick_are_on_the_record_on_sqlite(sqlite_services: Services) -> None:
    await _opened_on_the_record(sqlite_services)
