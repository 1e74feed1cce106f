"""Predictive pacing: the controller's cap and fallbacks (pure), ``measure`` over real attempts
on PostgreSQL, and the scheduler opening predictive attempts with nobody reserved."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from omni.db import Database
from omni.db import models as m
from omni.db.models.outbound import DialMode, Outcome
from omni.domain.outbound import pacing, stats
from omni.domain.outbound.pacing import Controller, measure, measured_load
from omni.domain.outbound.policy import DialStats, Load, policy_for
from omni.domain.outbound.scheduler import free_for_outbound, tick
from omni.services import Services
from tests.outbound.test_scheduler import NOON_MSK, World, _world
from tests.outbound.test_scheduler import sqlite_services as sqlite_services  # the fixture

GOOD = DialStats(
    samples=600,
    answer_rate=0.3,
    ring_seconds=8.0,
    fail_seconds=20.0,
    talk_seconds=120.0,
    wrap_seconds=15.0,
    abandon_rate=0.01,
    abandon_rate_today=0.01,
    answered_today=400,
    answered=180,
    talked=170,
)


def _load(**kw: Any) -> Load:
    values: dict[str, Any] = dict(
        free_operators=10,
        open_attempts=0,
        max_concurrency=1000,
        operators=50,
        busy_seconds_left=tuple(float(5 + 3 * i) for i in range(40)),
        stats=GOOD,
        max_lines_per_operator=3.0,
        target_abandon_pct=3.0,
        ringing_seconds=(),
    )
    values.update(kw)
    return Load(**values)


def _cap(load: Load) -> int:
    return min(
        math.floor(load.max_lines_per_operator * max(load.operators, load.free_operators)),
        load.max_concurrency,
    )


# --- the cap over adversarial sequences ----------------------------------------------------

_step = st.one_of(
    st.tuples(st.just("answers"), st.integers(0, 400)),  # a burst of answers takes lines and operators
    st.tuples(st.just("wrap_all"), st.just(0)),  # every busy operator goes to wrap-up at once
    st.tuples(st.just("free_all"), st.just(0)),  # ... and comes free at once
    st.tuples(st.just("leave"), st.integers(0, 200)),  # operators log off while lines ring
    st.tuples(st.just("join"), st.integers(0, 200)),
    st.tuples(st.just("stats"), st.integers(0, 10_000)),  # the measured figures jump
    st.tuples(st.just("ring_out"), st.integers(0, 400)),  # lines end unanswered
)


@settings(max_examples=300, deadline=None)
@given(
    operators=st.integers(1, 200),
    max_lines=st.sampled_from([1.0, 1.5, 2.0, 3.0, 10.0]),
    concurrency=st.integers(1, 2000),
    target=st.sampled_from([0.0, 1.0, 3.0, 50.0]),
    steps=st.lists(_step, min_size=1, max_size=40),
    seeds=st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8),
)
def test_the_controller_never_exceeds_its_cap_over_adversarial_sequences(
    operators: int,
    max_lines: float,
    concurrency: int,
    target: float,
    steps: list[tuple[str, int]],
    seeds: list[float],
) -> None:
    controller = Controller()
    free, busy, lines = operators, 0, 0
    left: list[float] = []
    ringing: list[float] = []
    stats = GOOD
    for kind, n in steps:
        if kind == "answers":
            k = min(n, lines)
            lines -= k
            ringing = ringing[k:]
            took = min(k, free)
            free -= took
            busy += took
            left += [200.0 * seeds[0]] * took
        elif kind == "wrap_all":
            left = [1.0 + 10 * seeds[1]] * busy
        elif kind == "free_all":
            free, busy, left = free + busy, 0, []
        elif kind == "leave":
            gone = min(n, free)
            free -= gone
        elif kind == "join":
            free += n
        elif kind == "stats":
            stats = DialStats(
                samples=n,
                answer_rate=seeds[2],
                ring_seconds=60 * seeds[3],
                fail_seconds=60 * seeds[4],
                talk_seconds=600 * seeds[5],
                wrap_seconds=60 * seeds[6],
                abandon_rate=0.05 * seeds[7],
                abandon_rate_today=0.05 * seeds[0],
                answered_today=n,
                answered=n // 3,
                talked=n // 4,
            )
        elif kind == "ring_out":
            k = min(n, lines)
            lines -= k
            ringing = ringing[k:]
        load = Load(
            free_operators=free,
            open_attempts=lines,
            max_concurrency=concurrency,
            operators=free + busy,
            busy_seconds_left=tuple(left),
            stats=stats,
            max_lines_per_operator=max_lines,
            target_abandon_pct=target,
            ringing_seconds=tuple(ringing),
        )
        decision = controller.decide(load)
        cap = _cap(load)
        assert decision.calls >= 0
        assert lines + decision.calls <= max(cap, lines), (decision, load)
        if lines >= cap:
            assert decision.calls == 0
        if decision.mode == "progressive":
            assert lines + decision.calls <= max(free, lines)
        lines += decision.calls
        ringing = [age + 1.0 for age in ringing] + [0.0] * decision.calls


def test_a_burst_of_answers_with_everyone_in_wrap_up_does_not_dial_past_the_cap() -> None:
    load = _load(free_operators=0, operators=50, busy_seconds_left=(1.0,) * 50, open_attempts=140)
    decision = Controller().decide(load)
    assert 140 + decision.calls <= 150
    assert Controller().decide(replace(load, open_attempts=150)).calls == 0
    assert Controller().decide(replace(load, open_attempts=170)).calls == 0  # operators left: over cap


# --- fallbacks -------------------------------------------------------------------------------


def test_too_little_data_dials_progressive_one_call_per_free_operator() -> None:
    for few in (
        None,
        replace(GOOD, samples=pacing.MIN_SAMPLES - 1),
        replace(GOOD, answered=pacing.MIN_ANSWERED - 1),
        replace(GOOD, talked=pacing.MIN_ANSWERED - 1),
    ):
        decision = Controller().decide(_load(stats=few, free_operators=10, open_attempts=3))
        assert (decision.calls, decision.mode, decision.reason) == (7, "progressive", "few_samples")


def test_over_the_abandon_target_in_the_window_or_today_dials_progressive() -> None:
    window = Controller().decide(_load(stats=replace(GOOD, abandon_rate=0.031)))
    assert (window.calls, window.mode, window.reason) == (10, "progressive", "over_target_window")
    today = Controller().decide(_load(stats=replace(GOOD, abandon_rate_today=0.05)))
    assert (today.calls, today.mode, today.reason) == (10, "progressive", "over_target_today")
    stricter = Controller().decide(_load(target_abandon_pct=0.5))  # the campaign's own target
    assert stricter.mode == "progressive"


def test_with_enough_data_under_target_it_dials_ahead_of_free_operators() -> None:
    decision = Controller().decide(_load())
    assert decision.mode == "predictive"
    assert decision.calls > 10  # more than one line per free operator at a 30 % answer rate
    assert decision.calls <= 150
    # A lower answer rate needs more lines for the same operators; a higher one fewer.
    low = Controller().decide(_load(stats=replace(GOOD, answer_rate=0.15))).calls
    high = Controller().decide(_load(stats=replace(GOOD, answer_rate=0.6))).calls
    assert low > decision.calls > high
    # Lines already ringing count against what is placed now.
    assert Controller().decide(_load(ringing_seconds=(1.0,) * 20, open_attempts=20)).calls < decision.calls


def test_predictive_is_registered_and_reserves_nobody() -> None:
    predictive = policy_for(DialMode.PREDICTIVE)
    assert predictive is not None
    assert predictive.reserves_operator is False
    assert predictive.wanted(_load()) == Controller().decide(_load()).calls


# --- measure() over real attempts --------------------------------------------------------------


async def _history(
    w: World | Database,
    now: datetime,
    *,
    placed: int,
    answered: int,
    dropped: int,
    age: timedelta = timedelta(minutes=5),
    talk: float = 100.0,
    wrap: float = 10.0,
    ring: float = 6.0,
    fail: float = 20.0,
    campaign_id: int | None = None,
) -> None:
    """``placed`` ended attempts ``age`` ago: ``answered`` of them bridged (with their
    conversation: ``talk`` then ``wrap`` seconds), ``dropped`` dropped, the rest no answer."""
    db, cid = (w.db, w.campaign_id) if isinstance(w, World) else (w, campaign_id)
    assert cid is not None
    async with db.transaction() as s:
        contact = m.Contact(name="customer")
        s.add(contact)
        await s.flush()
        target = m.CampaignTarget(campaign_id=cid, phone=f"+7495{age.seconds:07d}", phones=[])
        s.add(target)
        await s.flush()
        at = now - age
        for i in range(placed):
            human = i < answered + dropped
            attempt = m.CampaignAttempt(
                campaign_id=cid,
                target_id=target.id,
                phone=target.phone,
                created_at=at,
                started_at=at,
                answered_at=at + timedelta(seconds=ring) if human else None,
                ended_at=at + timedelta(seconds=ring if human else fail),
                outcome=Outcome.ANSWERED if i < answered else Outcome.DROPPED if human else Outcome.NO_ANSWER,
            )
            if i < answered:
                accepted = at + timedelta(seconds=ring)
                conv = m.Conversation(
                    contact_id=contact.id,
                    channel="voice",
                    medium=m.Medium.VOICE,
                    status=m.ConversationStatus.CLOSED,
                    accepted_at=accepted,
                    wrap_up_at=accepted + timedelta(seconds=talk),
                    closed_at=accepted + timedelta(seconds=talk + wrap),
                )
                s.add(conv)
                await s.flush()
                attempt.conversation_id = conv.id
            s.add(attempt)
        await s.flush()


async def test_measure_reads_the_window_and_today_from_the_attempts(services: Services) -> None:
    w = await _world(services, operators=2, dial_mode="predictive", timezone="Europe/Moscow")
    now = NOON_MSK  # 12:00 in Moscow
    # Two hours ago (today, outside the window): a bad hour, 20 dropped of 50 answered.
    await _history(w, now, placed=100, answered=30, dropped=20, age=timedelta(hours=2))
    # In the window: 200 placed, 60 answered (3 dropped), talk 100 s, wrap 10 s, ring 6 s.
    await _history(w, now, placed=200, answered=57, dropped=3)
    # Yesterday (Moscow): not today.
    await _history(w, now, placed=10, answered=0, dropped=10, age=timedelta(hours=13))
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        stats = await measure(s, campaign, now)
    assert stats.samples == 200
    assert math.isclose(stats.answer_rate, 0.3)
    assert math.isclose(stats.abandon_rate, 3 / 60)
    assert stats.answered == 60 and stats.talked == 57
    assert math.isclose(stats.ring_seconds, 6.0, abs_tol=0.01)
    assert math.isclose(stats.fail_seconds, 20.0, abs_tol=0.01)
    assert math.isclose(stats.talk_seconds, 100.0, abs_tol=0.01)
    assert math.isclose(stats.wrap_seconds, 10.0, abs_tol=0.01)
    assert stats.answered_today == 110
    assert math.isclose(stats.abandon_rate_today, 23 / 110)
    # 5 % dropped in the window and 21 % today: over the 3 % target, back to progressive.
    assert Controller().decide(_load(stats=stats)).reason == "over_target_window"
    assert Controller().decide(_load(stats=replace(stats, abandon_rate=0.0))).reason == "over_target_today"


async def test_measure_and_measured_load_run_on_sqlite(sqlite_services: Services) -> None:
    w = await _world(sqlite_services, operators=2, dial_mode="predictive")
    now = NOON_MSK
    await _history(w, now, placed=200, answered=57, dropped=3)
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        load = await measured_load(s, campaign, free_operators=2, open_attempts=0, now=now)
    stats = load.stats
    assert stats is not None
    assert (stats.samples, stats.answered, stats.talked, stats.answered_today) == (200, 60, 57, 60)
    assert math.isclose(stats.talk_seconds, 100.0, abs_tol=0.01)
    assert math.isclose(stats.ring_seconds, 6.0, abs_tol=0.01)
    assert math.isclose(stats.abandon_rate, 0.05)


async def test_todays_abandon_rate_follows_calls_ended_after_it_was_counted(services: Services) -> None:
    """Today's settled counts are kept between ticks (``pacing._today``): calls that end later,
    and a clock that goes back, must still give the true count."""
    w = await _world(services, dial_mode="predictive", timezone="Europe/Moscow")
    now = NOON_MSK
    await _history(w, now, placed=40, answered=20, dropped=0, age=timedelta(hours=1))
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        assert (await measure(s, campaign, now)).answered_today == 20
    later = now + timedelta(minutes=10)
    await _history(w, later, placed=10, answered=5, dropped=5, age=timedelta(minutes=3))
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        stats = await measure(s, campaign, later)
        assert (stats.answered_today, stats.abandon_rate_today) == (30, 5 / 30)
        assert (await measure(s, campaign, later + timedelta(minutes=5))).answered_today == 30
        earlier = await measure(s, campaign, now - timedelta(minutes=30))  # before the second batch
        assert earlier.answered_today == 30  # ended later that day: still today's
        assert (await measure(s, campaign, now - timedelta(hours=13))).answered_today == 0  # yesterday


async def test_campaign_figures_show_a_predictive_campaigns_answer_and_abandon_rates(
    services: Services,
) -> None:
    w = await _world(services, dial_mode="predictive")
    now = NOON_MSK
    await _history(w, now, placed=100, answered=30, dropped=2, age=timedelta(hours=2))
    await _history(w, now, placed=100, answered=40, dropped=0)
    async with w.db.transaction() as s:
        figures = (await stats.campaign_figures(s, [w.campaign_id], now=now))[w.campaign_id]
    assert figures["pacing"] == {
        "answer_rate": 40.0,
        "abandon_rate": 0.0,
        "abandon_rate_today": round(100 * 2 / 72, 1),
        "answered_today": 72,
        "window_attempts": 100,
        "target_abandon_pct": 3.0,
        "over_target": False,
    }
    await w.update(dial_mode="progressive")
    async with w.db.transaction() as s:
        assert (await stats.campaign_figures(s, [w.campaign_id], now=now))[w.campaign_id]["pacing"] is None
    await w.update(dial_mode="predictive", target_abandon_pct=2.0)  # today's 2.8 % is over 2 %
    async with w.db.transaction() as s:
        figures = (await stats.campaign_figures(s, [w.campaign_id], now=now))[w.campaign_id]
    assert figures["pacing"]["over_target"] is True


async def test_measured_load_counts_busy_operators_ringing_lines_and_waiting_answers(
    services: Services,
) -> None:
    w = await _world(services, operators=3, dial_mode="predictive")
    now = NOON_MSK
    await _history(w, now, placed=100, answered=30, dropped=0)
    busy, wrapping, _free = w.operators
    async with w.db.transaction() as s:
        contact = m.Contact(name="x")
        s.add(contact)
        await s.flush()
        target = m.CampaignTarget(campaign_id=w.campaign_id, phone="+74950000001", phones=[])
        s.add(target)
        await s.flush()
        for uid, status, since in (
            (busy, m.ConversationStatus.ACTIVE, now - timedelta(seconds=30)),
            (wrapping, m.ConversationStatus.WRAP_UP, now - timedelta(seconds=4)),
        ):
            conv = m.Conversation(
                contact_id=contact.id,
                channel="voice",
                medium=m.Medium.VOICE,
                status=status,
                assigned_user_id=uid,
                accepted_at=now - timedelta(seconds=60),
                wrap_up_at=since if status == m.ConversationStatus.WRAP_UP else None,
            )
            s.add(conv)
            await s.flush()
            s.add(
                m.CampaignAttempt(
                    campaign_id=w.campaign_id,
                    target_id=target.id,
                    phone=target.phone,
                    created_at=now - timedelta(seconds=70),
                    started_at=now - timedelta(seconds=70),
                    answered_at=now - timedelta(seconds=60),
                    ended_at=now - timedelta(seconds=60),
                    outcome=Outcome.ANSWERED,
                    conversation_id=conv.id,
                )
            )
        # Two lines ringing (3 s and 12 s), one answered waiting for an operator.
        for rung, answered in ((3, False), (12, False), (5, True)):
            s.add(
                m.CampaignAttempt(
                    campaign_id=w.campaign_id,
                    target_id=target.id,
                    phone=target.phone,
                    created_at=now - timedelta(seconds=rung),
                    started_at=now - timedelta(seconds=rung),
                    answered_at=now if answered else None,
                )
            )
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        load = await measured_load(s, campaign, free_operators=1, open_attempts=3, now=now)
    assert (load.operators, load.free_operators, load.waiting) == (3, 1, 1)
    assert sorted(load.ringing_seconds or ()) == [3.0, 12.0]
    assert load.stats is not None
    talk, wrap = load.stats.talk_seconds, load.stats.wrap_seconds
    assert sorted(load.busy_seconds_left) == [
        max(wrap - 4.0, 1.0),
        max(talk - 60.0, 0.5 * talk) + wrap,
    ]


# --- the scheduler opens predictive attempts with nobody reserved ---------------------------


async def test_the_scheduler_opens_predictive_attempts_with_no_operator_per_the_controller(
    services: Services,
) -> None:
    w = await _world(services, operators=10, dial_mode="predictive", max_concurrency=100)
    numbers = [f"+7 495 200-{i // 100:02d}-{i % 100:02d}" for i in range(60)]
    await w.targets(*numbers)
    # No history yet: progressive, one call per free operator.
    assert await tick(services, NOON_MSK) == 10
    first = await w.attempts()
    assert len(first) == 10 and {a.operator_id for a in first} == {None}
    assert all(o.operator_id is None and o.dial_mode == "predictive" for o in w.adapter.orders)
    for a in first:  # those calls rang out
        await w.close(a.id, Outcome.NO_ANSWER, NOON_MSK + timedelta(seconds=25))
    # Half an hour of history at 30 % answered, none dropped: it dials ahead of the operators.
    later = NOON_MSK + timedelta(minutes=10)
    await _history(w, later, placed=200, answered=60, dropped=0)
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        expected = Controller().decide(
            await measured_load(s, campaign, free_operators=10, open_attempts=0, now=later)
        )
    assert expected.mode == "predictive" and expected.calls > 10
    assert await tick(services, later) == expected.calls
    opened = [a for a in await w.attempts() if a.ended_at is None]
    assert len(opened) == expected.calls <= 3 * 10
    assert {a.operator_id for a in opened} == {None}
    # Nobody is held by those attempts: an answered call takes whoever is free then.
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        assert len(await free_for_outbound(s, campaign)) == 10


async def _callback_for(w: World, target_id: int, operator_id: int) -> None:
    async with w.db.transaction() as s:
        (await s.get_one(m.CampaignTarget, target_id)).callback_user_id = operator_id


async def _pause(w: World, operator_id: int, status: str = "pause") -> None:
    from tests import factories as f

    async with w.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, operator_id), status)


async def test_predictive_callback_for_an_operator_is_placed_only_for_that_operator_and_reserves_them(
    services: Services,
) -> None:
    """A predictive campaign dialled a callback promised by one operator with nobody reserved:
    whoever was free took it (or it was dropped). Now it waits for that operator, as in
    progressive, and the attempt holds them."""
    w = await _world(services, operators=2, dial_mode="predictive", max_concurrency=10)
    mine, *others = await w.targets("+7 495 300-00-01", "+7 495 300-00-02", "+7 495 300-00-03")
    promised = w.operators[1]
    await _callback_for(w, mine, promised)
    await _pause(w, promised)
    # The operator is away: the callback waits; the others are dialled with nobody reserved.
    assert await tick(services, NOON_MSK) == 1  # no history: progressive pacing, 1 free operator
    assert [(o.target_id, o.operator_id) for o in w.adapter.orders] == [(others[0], None)]
    await _pause(w, promised, "available")
    assert await tick(services, NOON_MSK) >= 1
    placed = [o for o in w.adapter.orders if o.target_id == mine]
    assert len(placed) == 1 and placed[0].operator_id == promised and placed[0].dial_mode == "predictive"
    (attempt,) = [a for a in await w.attempts() if a.target_id == mine]
    assert attempt.operator_id == promised and attempt.ended_at is None
    # The operator is held by the callback: not free for the predictive claim meanwhile.
    async with w.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, w.campaign_id)
        assert promised not in await free_for_outbound(s, campaign)


async def test_predictive_callback_for_an_operator_on_sqlite(sqlite_services: Services) -> None:
    w = await _world(sqlite_services, operators=2, dial_mode="predictive", max_concurrency=10)
    (mine,) = await w.targets("+7 495 300-00-11")
    await _callback_for(w, mine, w.operators[0])
    assert await tick(sqlite_services, NOON_MSK) == 1
    assert [(o.target_id, o.operator_id) for o in w.adapter.orders] == [(mine, w.operators[0])]
