"""The daily status tier (``report_status_days``) gives the figures of the hourly rows.

Uses the hand-built fixture of test_operators.py (Moscow, spans crossing intervals and local
midnight): reports by day/total read the daily tier, reports by hour read the hourly rows; the
two must agree per local day and operator, also after a partial rebuild and a zone change.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from omni.db import models as m
from omni.domain.reports import Grouping
from omni.domain.reports.config import check_update_config
from omni.domain.reports.rollups import rebuild_range
from omni.services import Services
from tests import factories as f
from tests.helpers import lock_waits, until
from tests.reports.test_operators import DAY10, World, _rows, _run, at, world

__all__ = ["world"]

SECONDS = (
    "logged_in_time",
    "status_available",
    "status_dnd",
    "status_lunch",
    "ringing",
    "talking",
    "hold",
    "wrap_up",
    "idle",
)


def _by_day(rows: list[dict[str, Any]]) -> dict[tuple[date, str], tuple[float, ...]]:
    sums: dict[tuple[date, str], list[float]] = defaultdict(lambda: [0.0] * len(SECONDS))
    for r in rows:
        key = (r["period"].date(), r["operator"])
        for i, col in enumerate(SECONDS):
            sums[key][i] += r[col]
    return {k: tuple(round(v, 1) for v in vs) for k, vs in sums.items()}


async def _day_and_hour(services: Services, world: World) -> tuple[dict[Any, Any], dict[Any, Any]]:
    by_day = await _run(services, world.admin, "operator_status", grouping=Grouping.DAY)
    by_hour = await _run(services, world.admin, "operator_status", grouping=Grouping.HOUR)
    return _by_day(_rows(by_day)), _by_day(_rows(by_hour))


async def _tier(services: Services) -> list[tuple[datetime, int, str, float]]:
    async with services.db.transaction() as s:
        d = m.ReportStatusDay
        rows = await s.execute(
            select(d.day, d.user_id, d.status_code, d.seconds).order_by(d.day, d.user_id, d.status_code)
        )
        return [(day, uid, code, round(secs, 3)) for day, uid, code, secs in rows]


async def test_day_tier_and_hour_tier_give_the_same_status_report(services: Services, world: World) -> None:
    days, hours = await _day_and_hour(services, world)
    assert days == hours
    assert days[(date(2026, 3, 11), "op_a")][0] == 4800.0  # the hand count of test_operators
    before = await _tier(services)
    assert before, "the status rollup fills the daily tier"
    # a rebuild of one interval re-sums its whole local day from the hours, not just the interval
    async with services.db.transaction() as s:
        await rebuild_range(s, at("21:15"), at("21:30"))
    assert await _tier(services) == before
    async with services.db.transaction() as s:
        tier = await s.scalar(select(func.sum(m.ReportStatusDay.seconds)))
        t = m.ReportStatusInterval
        intervals = await s.scalar(select(func.sum(t.seconds)).where(t.status_code != m.StatusKind.OFFLINE))
    assert tier == intervals
    async with services.db.transaction() as s:
        hold = await s.scalar(select(func.sum(m.ReportHoldDay.hold_sum)))
        o = m.ReportOperatorInterval
        assert hold == await s.scalar(select(func.sum(o.hold_sum))) == 90.0  # op_a 60 + op_b 30


async def test_a_zone_change_rebuilds_the_daily_tier_at_the_new_midnights(
    services: Services, world: World
) -> None:
    moscow = {day for day, *_ in await _tier(services)}
    assert {d.astimezone(ZoneInfo("Europe/Moscow")).time().hour for d in moscow} == {0}
    async with services.db.transaction() as s:
        admin = await s.get_one(m.User, world.admin.id)
        await check_update_config(s, f.who(admin), timezone="Asia/Tokyo")
    tokyo = {day for day, *_ in await _tier(services)}
    # Tokyo midnight is 15:00 UTC: no row is left at a Moscow midnight (21:00 UTC)
    assert {d.astimezone(ZoneInfo("Asia/Tokyo")).time().hour for d in tokyo} == {0}
    assert DAY10 - timedelta(hours=9) in tokyo
    async with services.db.transaction() as s:
        hold_days = set(await s.scalars(select(m.ReportHoldDay.day)))
    assert hold_days and hold_days <= tokyo
    days, hours = await _day_and_hour(services, world)
    assert days == hours
    # Tokyo days start at 15:00 UTC: op_a's 20:50–21:05 of 9 March is 10 March (900 s); all of
    # 10 March UTC from 20:30 on (6000 s closed + 600 s open until NOW) is 11 March
    assert days[(date(2026, 3, 10), "op_a")][0] == 900.0
    assert days[(date(2026, 3, 11), "op_a")][0] == 6600.0


async def test_a_zone_change_during_a_rollup_pass_waits_for_it_and_leaves_no_day_at_the_old_midnight(
    services: Services, world: World
) -> None:
    """A node's pass rebuilds an interval (and re-sums its Moscow day) while an admin moves the
    install to Tokyo. The change waits for the pass, then deletes what the pass committed; before,
    its DELETE ran on a snapshot from before the pass's commit, so the pass's Moscow-day rows
    stayed beside the new Tokyo days and the daily tier counted those seconds twice."""

    async def change_zone() -> None:
        async with services.db.transaction() as s:
            admin = await s.get_one(m.User, world.admin.id)
            await check_update_config(s, f.who(admin), timezone="Asia/Tokyo")

    async with services.db.transaction() as s:
        await rebuild_range(s, at("21:15"), at("21:30"))  # the pass's rebuild, not committed yet
        changing = asyncio.create_task(change_zone())
        await until(lambda: lock_waits(services.db), what="the zone change waiting for the pass")
    await changing
    tokyo = {day for day, *_ in await _tier(services)}
    assert {d.astimezone(ZoneInfo("Asia/Tokyo")).time().hour for d in tokyo} == {0}
    async with services.db.transaction() as s:
        tier = await s.scalar(select(func.sum(m.ReportStatusDay.seconds)))
        t = m.ReportStatusInterval
        intervals = await s.scalar(select(func.sum(t.seconds)).where(t.status_code != m.StatusKind.OFFLINE))
    assert tier == intervals
