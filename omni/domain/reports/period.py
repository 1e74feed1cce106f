"""Periods, the 15-minute interval grid and grouping, in the install's time zone.

Every rollup keys its rows by the UTC start of a 15-minute interval. Every zone in use today is
offset from UTC by a whole number of quarter hours, so a local hour, day, week or month is always
a whole run of intervals: a report over any period reads whole intervals and never raw rows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from omni.domain.errors import InvalidInput

INTERVAL = timedelta(minutes=15)
INTERVAL_SECONDS = 900
MAX_PERIOD_DAYS = 400
"""A report covers at most this many days (a year and a bit: this year against last)."""


class Grouping(enum.StrEnum):
    INTERVAL = "interval"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"


class Preset(enum.StrEnum):
    TODAY = "today"
    YESTERDAY = "yesterday"
    THIS_WEEK = "this_week"
    LAST_WEEK = "last_week"
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    LAST_7_DAYS = "last_7_days"
    LAST_30_DAYS = "last_30_days"


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC, both on the interval grid, and the zone its days are counted in."""

    start: datetime
    end: datetime
    tz: tzinfo
    first_day: date
    last_day: date
    """Inclusive local dates the period was asked as (what a report header shows)."""

    def intervals(self) -> Iterator[datetime]:
        at = self.start
        while at < self.end:
            yield at
            at += INTERVAL


def floor_interval(at: datetime) -> datetime:
    """The UTC start of the 15-minute interval holding ``at``."""
    at = at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """Local midnight of ``day`` in ``tz`` as aware UTC (a DST gap moves it to the first valid time)."""
    naive = datetime.combine(day, time())
    local = naive.replace(tzinfo=tz)
    # Round-trip through UTC: a non-existent local time (a DST gap at midnight) lands on the
    # first valid instant after it.
    return local.astimezone(UTC)


def days(first: date, last: date, tz: tzinfo) -> Period:
    """The local days ``first`` … ``last`` (inclusive), refused when reversed or too long."""
    if last < first:
        raise InvalidInput("{field}: the period ends before it starts", field="until")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(
            "{field}: a report covers at most {days} days", field="until", days=MAX_PERIOD_DAYS
        )
    return Period(
        start=floor_interval(local_midnight(first, tz)),
        end=floor_interval(local_midnight(last + timedelta(days=1), tz)),
        tz=tz,
        first_day=first,
        last_day=last,
    )


def preset(which: Preset, now: datetime, tz: tzinfo) -> Period:
    """A named period relative to ``now``'s local day (weeks start on Monday)."""
    today = now.astimezone(tz).date()
    if which == Preset.TODAY:
        return days(today, today, tz)
    if which == Preset.YESTERDAY:
        y = today - timedelta(days=1)
        return days(y, y, tz)
    if which == Preset.THIS_WEEK:
        return days(today - timedelta(days=today.weekday()), today, tz)
    if which == Preset.LAST_WEEK:
        monday = today - timedelta(days=today.weekday() + 7)
        return days(monday, monday + timedelta(days=6), tz)
    if which == Preset.THIS_MONTH:
        return days(today.replace(day=1), today, tz)
    if which == Preset.LAST_MONTH:
        last = today.replace(day=1) - timedelta(days=1)
        return days(last.replace(day=1), last, tz)
    if which == Preset.LAST_7_DAYS:
        return days(today - timedelta(days=6), today, tz)
    return days(today - timedelta(days=29), today, tz)


def group_start(bucket: datetime, grouping: Grouping, tz: tzinfo) -> datetime:
    """The local start of the group (hour, day, week, month) an interval belongs to.

    Returned as an aware datetime in ``tz``: it is the row label, shown as local time.
    """
    local = bucket.astimezone(tz)
    if grouping == Grouping.INTERVAL:
        return local
    if grouping == Grouping.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if grouping == Grouping.DAY:
        return day
    if grouping == Grouping.WEEK:
        monday = day.date() - timedelta(days=day.weekday())
        return local_midnight(monday, tz).astimezone(tz)
    if grouping == Grouping.MONTH:
        return local_midnight(day.date().replace(day=1), tz).astimezone(tz)
    return TOTAL_LABEL  # one group for the whole period: reports label it with the period


TOTAL_LABEL = datetime(2000, 1, 1, tzinfo=UTC)
"""The group key of ``Grouping.TOTAL`` (every interval in one row)."""
