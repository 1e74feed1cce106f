"""The daily tiers: status seconds and hold per local day of the install's zone.

Reports over whole local days grouped by day, week, month or total read these rows instead of
the hourly ones (a month: ~7,000 rows instead of ~227,000). The status rollup re-sums every
local day its rebuilt range touches, from the hourly rows when the zone's days start on whole
UTC hours, else from the 15-minute rows; a zone change rebuilds the whole tier.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import DateTime, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports.config import get_config
from omni.domain.reports.period import Grouping, Period, floor_interval, local_midnight

DAY_GROUPINGS = (Grouping.DAY, Grouping.WEEK, Grouping.MONTH, Grouping.TOTAL)


def day_start(day: datetime, tz: tzinfo) -> datetime:
    """The UTC start of the local day containing ``day``, on the 15-minute grid like ``Period``."""
    return floor_interval(local_midnight(day.astimezone(tz).date(), tz))


def local_days(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[datetime, datetime]]:
    """The ``[lo, hi)`` bounds of every local day ``[start, end)`` touches."""
    out: list[tuple[datetime, datetime]] = []
    local = start.astimezone(tz).date()
    while True:
        lo = floor_interval(local_midnight(local, tz))
        if lo >= end:
            return out
        hi = floor_interval(local_midnight(local + timedelta(days=1), tz))
        if hi > start:
            out.append((lo, hi))
        local += timedelta(days=1)


async def rebuild_days(
    session: AsyncSession, start: datetime, end: datetime, tz: tzinfo | None = None
) -> None:
    """Re-sum the status seconds of the local days ``[start, end)`` touches (delete, then insert)."""
    if start >= end:
        return
    zone = tz if tz is not None else (await get_config(session)).tz
    D = m.ReportStatusDay
    for lo, hi in local_days(start, end, zone):
        await session.execute(delete(D).where(D.day == lo))
        src: Any = m.ReportStatusInterval
        at: Any = src.bucket
        if lo.minute == 0 and hi.minute == 0:  # whole UTC hours: a quarter of the rows
            src = m.ReportStatusHour
            at = src.hour
        sums = (
            select(literal(lo, DateTime(timezone=True)), src.user_id, src.status_code, func.sum(src.seconds))
            .where(at >= lo, at < hi, src.status_code != m.StatusKind.OFFLINE)
            .group_by(src.user_id, src.status_code)
        )
        await session.execute(insert(D).from_select(["day", "user_id", "status_code", "seconds"], sums))


async def rebuild_hold_days(
    session: AsyncSession, start: datetime, end: datetime, tz: tzinfo | None = None
) -> None:
    """Re-sum the hold of the local days ``[start, end)`` touches from the operator rollup."""
    if start >= end:
        return
    zone = tz if tz is not None else (await get_config(session)).tz
    D = m.ReportHoldDay
    for lo, hi in local_days(start, end, zone):
        await session.execute(delete(D).where(D.day == lo))
        src: Any = m.ReportOperatorInterval
        if lo.minute == 0 and hi.minute == 0:
            src = m.ReportOperatorHour
        sums = (
            select(literal(lo, DateTime(timezone=True)), src.user_id, src.channel, func.sum(src.hold_sum))
            .where(src.bucket >= lo, src.bucket < hi, src.hold_sum > 0)
            .group_by(src.user_id, src.channel)
        )
        await session.execute(insert(D).from_select(["day", "user_id", "channel", "hold_sum"], sums))


async def rebuild_all_days(session: AsyncSession, tz: tzinfo) -> None:
    """Rebuild both daily tiers for the zone ``tz`` (after a zone change): every day the
    15-minute rows cover."""
    step = timedelta(minutes=15)
    await session.execute(delete(m.ReportStatusDay))
    T = m.ReportStatusInterval
    lo, hi = (await session.execute(select(func.min(T.bucket), func.max(T.bucket)))).one()
    if lo is not None:
        await rebuild_days(session, lo, hi + step, tz)
    await session.execute(delete(m.ReportHoldDay))
    op = m.ReportOperatorInterval
    lo, hi = (await session.execute(select(func.min(op.bucket), func.max(op.bucket)))).one()
    if lo is not None:
        await rebuild_hold_days(session, lo, hi + step, tz)


def whole_days(period: Period, grouping: Grouping) -> bool:
    """The report's rows are whole local days of the period's zone (the tier's, checked by the caller)."""
    return (
        grouping in DAY_GROUPINGS
        and period.start == floor_interval(local_midnight(period.first_day, period.tz))
        and period.end == floor_interval(local_midnight(period.last_day + timedelta(days=1), period.tz))
    )


__all__ = [
    "DAY_GROUPINGS",
    "day_start",
    "local_days",
    "rebuild_all_days",
    "rebuild_days",
    "rebuild_hold_days",
    "whole_days",
]
