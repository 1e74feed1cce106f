"""Calling windows in the customer's local time: weekdays, time ranges, holidays, dates.

Pure functions over a campaign's ``schedule`` document, so the scheduler, the admin form's
validation and the tests agree on one reading: ``{"1": [["09:00", "21:00"]], ...}`` keyed by
ISO weekday, ranges half-open ``[from, to)`` in local wall time; a day that is absent or empty
has no calls; ``holidays`` are local ISO dates.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from omni.domain.errors import InvalidInput

__all__ = ["Window", "check_schedule", "is_open", "next_open", "parse_windows"]

Window = tuple[time, time]

_END_OF_DAY = time(23, 59, 59, 999999)


def _clock(text: Any, *, field: str) -> time:
    if not isinstance(text, str):
        raise InvalidInput("time '{value}' is not HH:MM", value=str(text), field=field)
    if text == "24:00":
        return _END_OF_DAY
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput("time '{value}' is not HH:MM", value=text, field=field) from exc


def parse_windows(schedule: Mapping[str, Any]) -> dict[int, list[Window]]:
    """``schedule`` checked and read: ISO weekday → sorted, non-empty ranges."""
    days: dict[int, list[Window]] = {}
    for key, ranges in schedule.items():
        if key not in {"1", "2", "3", "4", "5", "6", "7"}:
            raise InvalidInput("unknown weekday '{day}' (1 = Monday … 7 = Sunday)", day=key, field="schedule")
        if not isinstance(ranges, list):
            raise InvalidInput(
                "weekday {day}: a list of [from, to] ranges expected", day=key, field="schedule"
            )
        out: list[Window] = []
        for pair in ranges:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InvalidInput(
                    "weekday {day}: a list of [from, to] ranges expected", day=key, field="schedule"
                )
            start, end = _clock(pair[0], field="schedule"), _clock(pair[1], field="schedule")
            if end <= start:
                raise InvalidInput(
                    "weekday {day}: {start} is not before {end}",
                    day=key,
                    start=pair[0],
                    end=pair[1],
                    field="schedule",
                )
            out.append((start, end))
        days[int(key)] = sorted(out)
    return days


def check_schedule(schedule: Any, holidays: Any) -> tuple[dict[str, Any], list[str]]:
    """The documents as stored, or ``InvalidInput`` naming the wrong part."""
    if not isinstance(schedule, Mapping):
        raise InvalidInput("the schedule must map weekdays to time ranges", field="schedule")
    parse_windows(schedule)
    if not isinstance(holidays, list):
        raise InvalidInput("holidays must be a list of dates", field="holidays")
    clean: list[str] = []
    for value in holidays:
        try:
            clean.append(date.fromisoformat(str(value)).isoformat())
        except ValueError as exc:
            raise InvalidInput(
                "'{value}' is not a date (YYYY-MM-DD)", value=str(value), field="holidays"
            ) from exc
    return dict(schedule), sorted(set(clean))


def is_open(days: Mapping[int, Sequence[Window]], holidays: Container[str], local: datetime) -> bool:
    """May a customer whose wall clock shows ``local`` be called now?"""
    if local.date().isoformat() in holidays:
        return False
    now = local.time().replace(tzinfo=None)
    return any(start <= now < end for start, end in days.get(local.isoweekday(), ()))


def next_open(
    days: Mapping[int, Sequence[Window]],
    holidays: Container[str],
    zone: str,
    after: datetime,
    *,
    horizon_days: int = 14,
) -> datetime | None:
    """The first instant at or after ``after`` (aware) when the window is open in ``zone``;
    ``None`` when nothing opens within ``horizon_days`` (an empty schedule)."""
    tz = ZoneInfo(zone)
    local = after.astimezone(tz)
    if is_open(days, holidays, local):
        return after
    for offset in range(horizon_days + 1):
        day = local.date() + timedelta(days=offset)
        if day.isoformat() in holidays:
            continue
        for start, _end in days.get(day.isoweekday(), ()):
            candidate = datetime.combine(day, start, tzinfo=tz)
            if candidate > local:
                return candidate.astimezone(after.tzinfo)
    return None
