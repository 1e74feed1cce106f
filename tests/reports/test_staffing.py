"""The staffing report: Erlang C needed per interval next to actual staffing and SL.

A hand-built fixture in Moscow (UTC+3): queue interval rows inserted with known arrivals and
handle times (the rollup is filled by its own code elsewhere), status spans with known times
crossing an interval boundary, an offline span, an open span, and rows either side of local
midnight. Every expected figure is computed here, Erlang C by the exact closed form with
rationals (not the module under test).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import reports
from omni.domain.errors import InvalidInput
from omni.domain.reports import FilterParams, ReportFilter, Scope
from omni.domain.reports.config import check_update_config, get_config
from omni.domain.reports.operators import STATUS_TIMES
from omni.domain.reports.period import days
from omni.services import Services
from tests import factories as f
from tests.reports.test_erlang import exact_erlang_c

MSK = ZoneInfo("Europe/Moscow")
DAY = date(2026, 3, 10)  # a Tuesday


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def exact_needed(calls: int, aht: int, seconds: int, answer: int, target: Fraction = Fraction(4, 5)) -> int:
    """Fewest servers with SL ≥ target by the closed form: 1 − C·e^(−(N−A)t/AHT)."""
    a = Fraction(calls * aht, seconds)
    n = math.floor(a) + 1
    while 1 - float(exact_erlang_c(n, a)) * math.exp(-float(n - a) * answer / aht) < float(target):
        n += 1
    return n


def qi(
    bucket: datetime, queue: m.Queue, channel: str, offered: int, in_sl: int, aht: int
) -> m.ReportQueueInterval:
    # AHT split 150 talk / 10 hold / rest wrap-up, as the rollup would store the sums.
    return m.ReportQueueInterval(
        bucket=bucket,
        queue_id=queue.id,
        channel=channel,
        inbox_id=0,
        result_code_id=0,
        offered=offered,
        answered=offered,
        answered_in_sl=in_sl,
        handled=offered,
        talk_sum=150.0 * offered,
        hold_sum=10.0 * offered,
        wrap_sum=float(aht - 160) * offered,
    )


async def span(s: AsyncSession, u: m.User, code: str, began: datetime, ended: datetime | None) -> None:
    status = await s.scalar(select(m.OperatorStatus).where(m.OperatorStatus.code == code))
    assert status is not None
    s.add(
        m.StatusHistory(user_id=u.id, status_id=status.id, status_code=code, started_at=began, ended_at=ended)
    )


async def fixture(s: AsyncSession) -> dict[str, Any]:
    admin = await f.user(s, "adm", m.Role.ADMIN)
    await check_update_config(s, f.who(admin), timezone="Europe/Moscow")
    a, b, c, d = [await f.user(s, n, capacity=3, chat_weight=1) for n in ("a", "b", "c", "d")]
    other = await f.user(s, "e", capacity=3, chat_weight=1)
    voice = await f.queue(s, "voice", [a, b, c, d], sla_seconds=20)
    chat = await f.queue(s, "chat", [a, b, c, d], sla_seconds=60)
    await s.execute(delete(m.StatusHistory))
    s.add_all(
        [
            # 09:00 MSK: 50 calls of 180 s = 10 erlangs; 30 chats of 600 s = 20 erlangs of chat.
            qi(utc(10, 6), voice, "voice", 50, 40, 180),
            qi(utc(10, 6), chat, "telegram", 30, 27, 600),
            # 09:15 MSK: 25 calls of 180 s = 5 erlangs.
            qi(utc(10, 6, 15), voice, "voice", 25, 24, 180),
            # 23:45 MSK on the day counts; 00:00 MSK the next day and 23:45 the day before don't.
            qi(utc(10, 20, 45), voice, "voice", 10, 10, 180),
            qi(utc(10, 21), voice, "voice", 99, 0, 180),
            qi(utc(9, 20, 45), voice, "voice", 99, 0, 180),
        ]
    )
    await span(s, a, "available", utc(10, 5, 50), utc(10, 6, 20))  # across 06:15
    await span(s, b, "talking", utc(10, 6), utc(10, 6, 10))
    await span(s, b, "pause", utc(10, 6, 10), utc(10, 6, 30))  # logged in, not staffed
    await span(s, c, "offline", utc(10, 6), utc(10, 7))  # neither
    await span(s, d, "available", utc(10, 6, 5), None)  # still open
    await span(s, other, "available", utc(10, 6), utc(10, 7))  # in no queue
    await s.flush()
    await STATUS_TIMES.rebuild(s, utc(9, 0), utc(11, 0))  # as the rollup driver keeps it
    return {"admin": admin, "voice": voice, "chat": chat}


def row_at(table: reports.ReportTable, local: datetime) -> dict[str, Any]:
    for row in table.as_dicts():
        label = row["interval"]
        assert isinstance(label, datetime)
        if label == local:
            return row
    raise AssertionError(f"no row {local}")


async def scope_of(s: AsyncSession, who: m.User, f_: ReportFilter, now: datetime, **extra: object) -> Scope:
    config = await get_config(s)
    base = await reports.resolve_scope(s, f.who(who), f_, config, now)
    return Scope(base.filter, base.config, base.who, base.queue_ids, base.user_ids, base.now, dict(extra))


async def test_staffing_per_15_minutes_puts_erlang_c_needed_next_to_staffed_and_sl(
    services: Services,
) -> None:
    now = utc(12, 12)
    async with services.db.transaction() as s:
        fx = await fixture(s)
        table = await reports.run_params(
            s, f.who(fx["admin"]), "staffing", FilterParams(since=DAY, until=DAY), now
        )
    assert len(table.rows) == 96  # the local day, 15-minute intervals
    first = row_at(table, datetime(2026, 3, 10, 0, 0, tzinfo=MSK))
    assert first["interval"] == datetime(2026, 3, 10, 0, 0, tzinfo=MSK)

    nine = row_at(table, datetime(2026, 3, 10, 9, 0, tzinfo=MSK))
    voice_needed = exact_needed(50, 180, 900, 20)
    chat_slots = exact_needed(30, 600, 900, 60)
    assert (voice_needed, chat_slots) == (14, 24)  # 10 erlangs: the published 80/20 answer is 14
    assert nine["basis"] == "actual"
    assert nine["offered"] == 80
    assert nine["aht"] == round((50 * 180 + 30 * 600) / 80, 1)
    assert nine["needed_voice"] == 14
    assert nine["needed_chat"] == math.ceil(chat_slots / 3) == 8
    assert nine["needed"] == 22
    assert nine["traffic"] == round(10 + 20 / 3, 2)
    # a 900 s (06:00-06:15 of 05:50-06:20) + b talking 600 s + d (open) 600 s + e 900 s (in no
    # queue, but no queue was asked for); b's pause only logs in, c's offline span neither.
    assert nine["staffed"] == round(3000 / 900, 2)
    assert nine["logged_in"] == round(3300 / 900, 2)
    assert nine["staffing_gap"] == round(3000 / 900 - 22, 2)
    assert nine["sl"] == round(100 * 67 / 80, 1)

    quarter = row_at(table, datetime(2026, 3, 10, 9, 15, tzinfo=MSK))
    assert quarter["needed"] == exact_needed(25, 180, 900, 20)
    assert quarter["staffed"] == round((300 + 900 + 900) / 900, 2)  # a's last 5 min + d + e
    assert quarter["sl"] == 96.0

    late = row_at(table, datetime(2026, 3, 10, 23, 45, tzinfo=MSK))
    assert late["offered"] == 10  # before local midnight; the next day's 99 are not in the day
    assert table.totals is not None
    totals = dict(zip([c.key for c in table.columns], table.totals, strict=True))
    assert totals["offered"] == 80 + 25 + 10
    assert totals["needed"] == 22  # the peak
    assert totals["sl"] == round(100 * (67 + 24 + 10) / 115, 1)


async def test_thirty_minute_intervals_add_arrivals_over_1800_seconds(services: Services) -> None:
    now = utc(12, 12)
    async with services.db.transaction() as s:
        fx = await fixture(s)
        f_ = FilterParams(since=DAY, until=DAY).resolve(MSK, now)
        table = await reports.get("staffing").run(
            s, await scope_of(s, fx["admin"], f_, now, interval_minutes=30)
        )
    assert len(table.rows) == 48
    nine = row_at(table, datetime(2026, 3, 10, 9, 0, tzinfo=MSK))
    assert nine["offered"] == 105
    assert nine["needed_voice"] == exact_needed(75, 180, 1800, 20)
    assert nine["needed_chat"] == math.ceil(exact_needed(30, 600, 1800, 60) / 3)
    # a 1200 s + b talking 600 s + d 1500 s + e 1800 s over 1800 s.
    assert nine["staffed"] == round(5100 / 1800, 2)


async def test_a_queue_filter_counts_only_its_members_and_a_higher_target_needs_more(
    services: Services,
) -> None:
    now = utc(12, 12)
    async with services.db.transaction() as s:
        fx = await fixture(s)
        f_ = ReportFilter(period=days(DAY, DAY, MSK), queue_ids=(fx["voice"].id,))
        table = await reports.get("staffing").run(s, await scope_of(s, fx["admin"], f_, now, target_sl=90))
        nine = row_at(table, datetime(2026, 3, 10, 9, 0, tzinfo=MSK))
        assert nine["offered"] == 50
        assert nine["needed"] == exact_needed(50, 180, 900, 20, Fraction(9, 10)) == 15
        assert nine["needed_chat"] == 0
        assert nine["staffed"] == round(2100 / 900, 2)  # the queue's members only: not e
        with pytest.raises(InvalidInput) as exc:
            await reports.get("staffing").run(s, await scope_of(s, fx["admin"], f_, now, interval_minutes=20))
        assert exc.value.field == "interval_minutes"


async def test_a_future_day_is_forecast_from_the_same_weekday_of_the_last_weeks(services: Services) -> None:
    now = utc(16, 12)  # Monday; the report asks for Tuesday 17 March
    async with services.db.transaction() as s:
        fx = await fixture(s)  # Tuesday 10 March: 50 calls at 09:00 MSK
        voice = fx["voice"]
        s.add_all(
            [
                qi(utc(3, 6), voice, "voice", 30, 0, 240),  # two weeks back
                qi(utc(24, 6, month=2), voice, "voice", 40, 0, 180),  # three weeks back
                # four weeks back (17 Feb) has no row: counts as no arrivals
                qi(utc(10, 6, month=2), voice, "voice", 500, 0, 180),  # five weeks back: ignored
            ]
        )
        await s.flush()
        day = date(2026, 3, 17)
        f_ = FilterParams(since=day, until=day, queue_ids=(voice.id,)).resolve(MSK, now)
        table = await reports.get("staffing").run(s, await scope_of(s, fx["admin"], f_, now))
        two = await reports.get("staffing").run(s, await scope_of(s, fx["admin"], f_, now, weeks=2))
    nine = row_at(table, datetime(2026, 3, 17, 9, 0, tzinfo=MSK))
    assert nine["basis"] == "forecast"
    assert nine["offered"] == (50 + 30 + 40 + 0) / 4
    aht = (50 * 180 + 30 * 240 + 40 * 180) / 120
    assert nine["aht"] == round(aht, 1)
    # 30 calls in 15 minutes at that AHT, answered 80 % in 20 s.
    a = Fraction(30) * Fraction(50 * 180 + 30 * 240 + 40 * 180, 120) / 900
    n = math.floor(a) + 1
    while 1 - float(exact_erlang_c(n, a)) * math.exp(-float(n - a) * 20 / aht) < 0.8:
        n += 1
    assert nine["needed"] == n
    assert (nine["staffed"], nine["sl"]) == (None, None)  # not there yet
    assert row_at(two, datetime(2026, 3, 17, 9, 0, tzinfo=MSK))["offered"] == (50 + 30) / 2


async def test_a_supervisor_of_another_group_gets_an_empty_staffing_report(services: Services) -> None:
    now = utc(12, 12)
    async with services.db.transaction() as s:
        await fixture(s)
        theirs = m.Group(name="theirs")
        s.add(theirs)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        await s.flush()
        s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=theirs.id))
        await s.flush()
        table = await reports.run_params(s, f.who(sup), "staffing", FilterParams(since=DAY, until=DAY), now)
    assert table.rows == []


async def test_status_spans_split_in_python_equal_the_database_split(services: Services) -> None:
    """SQLite installs split the spans in Python: the same seconds as PostgreSQL's split."""
    from omni.domain.reports import staffing

    now = utc(12, 12)
    async with services.db.transaction() as s:
        fx = await fixture(s)
        f_ = FilterParams(since=DAY, until=DAY).resolve(MSK, now)
        scope = await scope_of(s, fx["admin"], f_, now)
        end = min(scope.period.end, now)
        for minutes in (15, 30):
            in_pg = await staffing._presence(s, scope, None, end, MSK, minutes, in_database=True)
            in_py = await staffing._presence(s, scope, None, end, MSK, minutes, in_database=False)
            assert in_pg == in_py
            assert in_pg[0][datetime(2026, 3, 10, 9, 0, tzinfo=MSK)] == (3000 if minutes == 15 else 5100)


async def test_today_is_actual_up_to_now_and_forecast_from_the_current_interval_on(
    services: Services,
) -> None:
    now = utc(10, 6, 20)  # 09:20 in Moscow on the fixture's day
    async with services.db.transaction() as s:
        fx = await fixture(s)
        s.add(qi(utc(3, 6, 15), fx["voice"], "voice", 40, 0, 180))  # a week before, 09:15
        await s.flush()
        table = await reports.run_params(
            s, f.who(fx["admin"]), "staffing", FilterParams(since=DAY, until=DAY), now
        )
    nine = row_at(table, datetime(2026, 3, 10, 9, 0, tzinfo=MSK))
    assert (nine["basis"], nine["offered"], nine["needed"]) == ("actual", 80, 22)
    assert nine["staffed"] == round(3000 / 900, 2)
    current = row_at(table, datetime(2026, 3, 10, 9, 15, tzinfo=MSK))
    assert current["basis"] == "forecast"
    assert current["offered"] == 40 / 4  # one of the last 4 weeks had 40 calls; today's 25 aren't used
    assert (current["staffed"], current["sl"]) == (None, None)


async def test_staffed_read_from_the_status_rollup_equals_the_raw_split_with_now_mid_interval(
    services: Services,
) -> None:
    """The report reads the status-time rollup (a month's spans are too many to split per run);
    the open span and the interval cut short by "now" (06:20, two spans closed after it) still
    count as the raw split counts them."""
    from omni.domain.reports import staffing

    async with services.db.transaction() as s:
        fx = await fixture(s)
        everyone = {u.id for u in await s.scalars(select(m.User))}
        for now in (utc(10, 6, 20), utc(12, 12)):
            f_ = FilterParams(since=DAY, until=DAY).resolve(MSK, now)
            scope = await scope_of(s, fx["admin"], f_, now)
            end = min(scope.period.end, now)
            for users in (None, everyone):
                for minutes in (15, 30):
                    raw = await staffing._presence(s, scope, users, end, MSK, minutes, in_database=True)
                    rolled = await staffing._rollup_presence(s, scope, users, end, MSK, minutes)
                    assert [_rounded(d) for d in rolled] == [_rounded(d) for d in raw]
                    assert rolled[0]  # something was staffed


def _rounded(d: dict[datetime, float]) -> dict[datetime, float]:
    return {k: round(v, 6) for k, v in d.items() if round(v, 6)}
