"""Named holiday calendars ("Russia 2027"): whole days off shared by queues and campaigns.

A calendar holds dated days (``2027-01-07``) and days that come back every year (``05-09``),
each with an optional name. A queue lists the calendars it follows in
``business_hours.calendars`` and a campaign in ``calendar_ids``; their own dates
(``business_hours.holidays``, ``campaigns.holidays``) keep working next to them. The one
question the rest of the code asks is :func:`closed_days`: the set of local days that are off,
which ``omni.domain.hours`` (routing, after-hours answers) and the dialer's calling windows
check a local date against.

Admins create, edit and delete calendars (audited); supervisors and auditors read them. A
calendar still followed by a queue or campaign cannot be deleted (409 naming them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal, check_role
from omni.domain.errors import Conflict, InvalidInput, NotFound

MAX_DAYS = 1000
"""Dated plus yearly days in one calendar (a few years of a country's holidays fit easily)."""
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEARLY = re.compile(r"\d{2}-\d{2}")


@dataclass(frozen=True)
class ClosedDays:
    """Local days that are off: ``"2027-01-07" in closed``. Yearly days match any year."""

    dates: frozenset[str] = field(default_factory=frozenset)
    yearly: frozenset[str] = field(default_factory=frozenset)

    def __contains__(self, iso_day: object) -> bool:
        if not isinstance(iso_day, str):
            return False
        return iso_day in self.dates or iso_day[5:10] in self.yearly

    def __bool__(self) -> bool:
        return bool(self.dates or self.yearly)


async def closed_days(
    session: AsyncSession, calendar_ids: Iterable[Any] | None, extra_dates: Iterable[str] = ()
) -> ClosedDays:
    """The days off of these calendars plus ``extra_dates`` (a queue's or campaign's own); a
    calendar id that no longer exists is skipped (deleting a followed calendar is refused)."""
    ids = [int(i) for i in calendar_ids or () if isinstance(i, int)]
    dates = {str(d) for d in extra_dates}
    yearly: set[str] = set()
    if ids:
        for cal in await session.scalars(select(m.HolidayCalendar).where(m.HolidayCalendar.id.in_(ids))):
            dates.update(str(d.get("date", "")) for d in cal.dates or [])
            yearly.update(str(d.get("date", "")) for d in cal.yearly or [])
    return ClosedDays(frozenset(dates), frozenset(yearly))


# --- reading ------------------------------------------------------------------------------


def calendar_dict(cal: m.HolidayCalendar) -> dict[str, Any]:
    return {
        "id": cal.id,
        "name": cal.name,
        "dates": [dict(d) for d in cal.dates or []],
        "yearly": [dict(d) for d in cal.yearly or []],
    }


async def list_calendars(session: AsyncSession, who: Principal) -> list[m.HolidayCalendar]:
    """Every calendar by name; supervisors see them to attach to their queues."""
    check_role(who, m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.AUDITOR)
    return list(await session.scalars(select(m.HolidayCalendar).order_by(m.HolidayCalendar.name)))


async def get_calendar(session: AsyncSession, who: Principal, calendar_id: int) -> m.HolidayCalendar:
    check_role(who, m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.AUDITOR)
    cal = await session.get(m.HolidayCalendar, calendar_id)
    if cal is None:
        raise NotFound("holiday calendar {calendar_id} not found", calendar_id=calendar_id)
    return cal


async def check_calendar_ids(session: AsyncSession, value: Any, field: str) -> list[int]:
    """A list of existing calendar ids, each once (what queues and campaigns store)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InvalidInput("{field} must be a list of calendar ids", field=field)
    ids = list(dict.fromkeys(value))
    if ids:
        known = set(await session.scalars(select(m.HolidayCalendar.id).where(m.HolidayCalendar.id.in_(ids))))
        missing = [i for i in ids if i not in known]
        if missing:
            raise InvalidInput(
                "holiday calendar {calendar_id} does not exist", calendar_id=missing[0], field=field
            )
    return ids


# --- validation -----------------------------------------------------------------------------


def _days(field: str, value: Any, *, yearly: bool) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("{field} must be a list of days", field=field)
    out: dict[str, dict[str, str]] = {}
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("date"), str):
            raise InvalidInput("{field} needs a date", field=where)
        unknown = set(item) - {"date", "name"}
        if unknown:
            raise InvalidInput("unknown {field} keys: {keys}", keys=", ".join(sorted(unknown)), field=where)
        day = item["date"].strip()
        name = item.get("name") or ""
        if not isinstance(name, str) or len(name.strip()) > 128:
            raise InvalidInput("{field} name must be text of at most 128 characters", field=where)
        try:
            if yearly:
                if not _YEARLY.fullmatch(day):
                    raise ValueError(day)
                date.fromisoformat(f"2000-{day}")  # a leap year: 02-29 is a valid yearly day
            else:
                if not _DATE.fullmatch(day):
                    raise ValueError(day)
                date.fromisoformat(day)
        except ValueError:
            example = "12-31 (month-day)" if yearly else "2027-12-31"
            raise InvalidInput(
                "'{value}' is not a date like {example}", value=day[:20], example=example, field=where
            ) from None
        if day in out:
            raise InvalidInput("{value} is listed twice", value=day, field=where)
        out[day] = {"date": day, "name": name.strip()}
    return [out[k] for k in sorted(out)]


def _clean(data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    unknown = set(data) - {"name", "dates", "yearly"}
    if unknown:
        raise InvalidInput(
            "unknown fields: {keys}", keys=", ".join(sorted(unknown)), field=sorted(unknown)[0]
        )
    clean: dict[str, Any] = {}
    problems: list[InvalidInput] = []
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(InvalidInput("a calendar needs a name", field="name"))
        elif len(name.strip()) > 128:
            problems.append(
                InvalidInput("name must be at most {max_len} characters", max_len=128, field="name")
            )
        else:
            clean["name"] = name.strip()
    for key, yearly in (("dates", False), ("yearly", True)):
        if key in data:
            try:
                clean[key] = _days(key, data[key], yearly=yearly)
            except InvalidInput as exc:
                problems.append(exc)
    if problems:
        first = problems[0]
        first.errors = list(problems) if len(problems) > 1 else []
        raise first
    if len(clean.get("dates", [])) + len(clean.get("yearly", [])) > MAX_DAYS:
        raise InvalidInput("a calendar holds at most {n} days", n=MAX_DAYS, field="dates")
    return clean


async def _unique_name(session: AsyncSession, name: str, own_id: int | None) -> None:
    stmt = select(m.HolidayCalendar.id).where(func.lower(m.HolidayCalendar.name) == name.lower())
    if own_id is not None:
        stmt = stmt.where(m.HolidayCalendar.id != own_id)
    if await session.scalar(stmt) is not None:
        raise InvalidInput("a calendar named '{value}' already exists", value=name, field="name")


def _audit_data(cal: m.HolidayCalendar) -> dict[str, Any]:
    return {"name": cal.name, "dates": len(cal.dates or []), "yearly": len(cal.yearly or [])}


# --- changes ------------------------------------------------------------------------------


async def check_create_calendar(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.HolidayCalendar:
    check_role(who, m.Role.ADMIN)
    clean = _clean(data, partial=False)
    await _unique_name(session, clean["name"], None)
    now = datetime.now(UTC)
    cal = m.HolidayCalendar(
        name=clean["name"],
        dates=clean.get("dates", []),
        yearly=clean.get("yearly", []),
        created_at=now,
        updated_at=now,
    )
    session.add(cal)
    await session.flush()
    audit.record(
        session, who, "calendar.create", object_type="calendar", object_id=cal.id, data=_audit_data(cal)
    )
    return cal


async def check_update_calendar(
    session: AsyncSession, who: Principal, calendar_id: int, data: Mapping[str, Any]
) -> m.HolidayCalendar:
    check_role(who, m.Role.ADMIN)
    cal = await get_calendar(session, who, calendar_id)
    clean = _clean(data, partial=True)
    if "name" in clean:
        await _unique_name(session, clean["name"], cal.id)
    for key, value in clean.items():
        setattr(cal, key, value)
    cal.updated_at = datetime.now(UTC)
    await session.flush()
    audit.record(
        session, who, "calendar.update", object_type="calendar", object_id=cal.id, data=_audit_data(cal)
    )
    return cal


async def followers(session: AsyncSession, calendar_id: int) -> tuple[list[str], list[str]]:
    """Names of the queues and campaigns that follow the calendar."""
    queues = [
        q.name
        for q in await session.scalars(select(m.Queue).order_by(m.Queue.name))
        if calendar_id in ((q.business_hours or {}).get("calendars") or [])
    ]
    campaigns = [
        c.name
        for c in await session.scalars(select(m.Campaign).order_by(m.Campaign.name))
        if calendar_id in (c.calendar_ids or [])
    ]
    return queues, campaigns


async def check_delete_calendar(session: AsyncSession, who: Principal, calendar_id: int) -> None:
    check_role(who, m.Role.ADMIN)
    cal = await get_calendar(session, who, calendar_id)
    queues, campaigns = await followers(session, cal.id)
    if queues or campaigns:
        raise Conflict(
            "the calendar is still followed by {names}; detach it there first",
            names=", ".join([*queues, *campaigns]),
        )
    audit.record(
        session, who, "calendar.delete", object_type="calendar", object_id=cal.id, data=_audit_data(cal)
    )
    await session.delete(cal)
    await session.flush()


# --- text import ----------------------------------------------------------------------------

_LINE = re.compile(r"(\d{4}-\d{2}-\d{2}|\d{2}-\d{2})\s*[,;\t]?\s*(.*)")
_ICS_DATE = re.compile(r"DTSTART[^:]*:(\d{4})(\d{2})(\d{2})")


def parse_lines(lines: Sequence[str], field: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Form/CSV lines (``2027-01-07 Christmas``, ``2027-01-07,Christmas``, ``05-09 Victory Day``)
    or an ICS file's events (``DTSTART;VALUE=DATE:20270107`` with ``SUMMARY:``) as
    (dated days, yearly days). A line that is neither is refused with its text."""
    text = "\n".join(lines)
    if "BEGIN:VEVENT" in text.upper():
        return _parse_ics(text), []
    dates: list[dict[str, str]] = []
    yearly: list[dict[str, str]] = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or line.lower().startswith("date"):
            continue  # blank, a comment, a CSV header
        match = _LINE.fullmatch(line)
        if match is None:
            raise InvalidInput(
                "each line is a date and an optional name, like 2027-01-07 Christmas or 05-09 "
                "Victory Day (got '{text}')",
                text=line[:80],
                field=field,
            )
        day = {"date": match[1], "name": match[2].strip().strip('"')}
        (dates if len(match[1]) == 10 else yearly).append(day)
    return dates, yearly


def _parse_ics(text: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for event in re.split(r"(?i)BEGIN:VEVENT", text)[1:]:
        start = _ICS_DATE.search(event)
        if start is None:
            continue
        summary = re.search(r"(?im)^SUMMARY[^:]*:(.*)$", event)
        out.append(
            {"date": f"{start[1]}-{start[2]}-{start[3]}", "name": summary[1].strip() if summary else ""}
        )
    return out
