"""Scheduled report mailings: who may set one up, what is valid, and when it is due.

A schedule belongs to the person who made it: supervisors manage their own, admins every one,
auditors read them all. The stored filter is the filter as chosen (``FilterParams``: "yesterday"),
so each mail resolves it anew; the report runs with the *owner's* scope at send time
(``omni.domain.reports.mailing``), never the scope of whoever edits or sends it.

Times: a schedule fires at a local wall time (``HH:MM``) in the install's zone
(``get_config``), daily, on a weekday or on a day of the month; ``next_slot`` finds the next
such instant in UTC, so 08:00 stays 08:00 across a DST change (the UTC hour moves).
"""

from __future__ import annotations

import calendar
import enum
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal
from omni.domain.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from omni.domain.reports.config import get_config
from omni.domain.reports.filters import FilterParams
from omni.domain.reports.registry import REPORTS
from omni.domain.reports.writers import Format
from omni.i18n import LANGUAGES

MAX_RECIPIENTS = 20
"""Recipients per schedule: a report mail is for a team, not a mailing list."""
MAX_SCHEDULES_PER_OWNER = 100
EMAIL_MAX = 254
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
"""A plain ``local@domain.tld`` (no display names, quotes or comments: nothing that could
smuggle a header); international domains in their ``xn--`` form."""
TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MANAGERS = (m.Role.ADMIN, m.Role.SUPERVISOR)
READERS = (m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.AUDITOR)
FIELDS = (
    "report_key",
    "filters",
    "format",
    "frequency",
    "weekday",
    "day_of_month",
    "send_time",
    "recipients",
    "language",
    "active",
)


class Frequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule fires: every day, on ``weekday`` (0 = Monday) or on ``day_of_month``
    (the month's last day when it has fewer), at ``hour:minute`` local time."""

    frequency: Frequency
    hour: int
    minute: int
    weekday: int | None = None
    day_of_month: int | None = None

    @classmethod
    def of(cls, row: m.ReportSchedule) -> Timing:
        hour, minute = (int(x) for x in row.send_time.split(":"))
        return cls(Frequency(row.frequency), hour, minute, row.weekday, row.day_of_month)

    def fires_on(self, day: date) -> bool:
        if self.frequency == Frequency.WEEKLY:
            return day.weekday() == self.weekday
        if self.frequency == Frequency.MONTHLY:
            last = calendar.monthrange(day.year, day.month)[1]
            return day.day == min(self.day_of_month or 1, last)
        return True


def next_slot(timing: Timing, tz: tzinfo, after: datetime) -> datetime:
    """The first firing strictly after ``after``, as aware UTC.

    Local wall time each day: across a DST change the UTC instant moves, the local hour does
    not. A local time the clocks skip (02:30 on a spring-forward night) fires at the instant
    that wall time would have been (03:30 summer time); a repeated one (autumn) fires once, at
    its first occurrence.
    """
    start = after.astimezone(tz).date()
    for offset in range(0, 63):  # a monthly slot is at most two months away
        day = start + timedelta(days=offset)
        if not timing.fires_on(day):
            continue
        at = datetime.combine(day, time(timing.hour, timing.minute), tzinfo=tz).astimezone(UTC)
        if at > after:
            return at
    raise AssertionError("no slot within two months")  # pragma: no cover - fires_on always matches


def latest_slot(timing: Timing, tz: tzinfo, slot: datetime, now: datetime) -> datetime:
    """``slot`` or, when later slots have come due too (the install was down), the latest of
    them: one mail after an outage, not one per missed day."""
    while (later := next_slot(timing, tz, slot)) <= now:
        slot = later
    return slot


# --- access -------------------------------------------------------------------------------


def check_manager(who: Principal) -> None:
    if who.role not in MANAGERS:
        raise PermissionDenied("report mailings are set up by supervisors and admins")


def check_schedule_reader(who: Principal) -> None:
    if who.role not in READERS:
        raise PermissionDenied("report mailings are for supervisors, admins and auditors")


async def access_schedule(
    session: AsyncSession, who: Principal, schedule_id: int, *, write: bool = False
) -> m.ReportSchedule:
    """The schedule if the caller may see it (and change it, with ``write``).

    Another supervisor's schedule is "not found", not "forbidden": ids don't leak.
    """
    if write:
        check_manager(who)
    else:
        check_schedule_reader(who)
    row = await session.get(m.ReportSchedule, schedule_id, with_for_update=write)
    mine = row is not None and row.owner_id == who.id
    everyone = who.role == m.Role.ADMIN or (who.role == m.Role.AUDITOR and not write)
    if row is None or not (mine or everyone):
        raise NotFound("no report schedule {id}", id=schedule_id)
    return row


async def list_schedules(
    session: AsyncSession, who: Principal, *, report_key: str | None = None, limit: int = 500
) -> list[m.ReportSchedule]:
    """Admins and auditors see every schedule, a supervisor their own."""
    check_schedule_reader(who)
    query = select(m.ReportSchedule).order_by(m.ReportSchedule.id).limit(max(1, min(limit, 1000)))
    if who.role == m.Role.SUPERVISOR:
        query = query.where(m.ReportSchedule.owner_id == who.id)
    if report_key:
        query = query.where(m.ReportSchedule.report_key == report_key)
    return list(await session.scalars(query))


# --- validation ---------------------------------------------------------------------------


def clean_recipients(value: Any) -> list[str]:
    """One or more addresses (a list, or text split on commas, semicolons and new lines),
    de-duplicated; the first bad one is named."""
    if isinstance(value, str):
        value = re.split(r"[,;\s]+", value)
    if not isinstance(value, list):
        raise InvalidInput("{field}: give a list of e-mail addresses", field="recipients")
    out: list[str] = []
    for raw in value:
        if not isinstance(raw, str):
            raise InvalidInput("{field}: give a list of e-mail addresses", field="recipients")
        address = raw.strip()
        if not address:
            continue
        if len(address) > EMAIL_MAX or not EMAIL.match(address):
            raise InvalidInput(
                "{field}: {address} is not an e-mail address", field="recipients", address=address
            )
        if address.lower() not in {a.lower() for a in out}:
            out.append(address)
    if not out:
        raise InvalidInput("{field}: give at least one e-mail address", field="recipients")
    if len(out) > MAX_RECIPIENTS:
        raise InvalidInput("{field}: at most {max} addresses", field="recipients", max=MAX_RECIPIENTS)
    return out


def _int_or_none(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("{field} must be between {min} and {max}", field=field, min=low, max=high)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            "{field} must be between {min} and {max}", field=field, min=low, max=high
        ) from None
    if not low <= number <= high:
        raise InvalidInput("{field} must be between {min} and {max}", field=field, min=low, max=high)
    return number


def clean(data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Every field checked (all problems at once, each naming its field); the cleaned values."""
    errors: list[DomainError] = []
    out: dict[str, Any] = {}

    def check(field: str, fn: Any) -> None:
        try:
            out[field] = fn(data.get(field))
        except DomainError as exc:
            errors.append(exc)

    def report_key(value: Any) -> str:
        if not isinstance(value, str) or value not in REPORTS:
            raise InvalidInput("{field}: no such report", field="report_key")
        return value

    def filters(value: Any) -> dict[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise InvalidInput("{field} is not valid: {problem}", field="filters", problem="filter")
        params = FilterParams.from_json(value)
        try:
            params.resolve(UTC, now)  # a reversed or overlong range is refused now, not at 08:00
        except InvalidInput as exc:
            raise InvalidInput(exc.template, field="filters", errors=(), **exc.params) from None
        return params.to_json()

    def fmt(value: Any) -> str:
        try:
            return Format(value or Format.XLSX).value
        except ValueError:
            raise InvalidInput("{field}: choose csv or xlsx", field="format") from None

    def frequency(value: Any) -> str:
        try:
            return Frequency(value or Frequency.DAILY).value
        except ValueError:
            raise InvalidInput("{field}: choose daily, weekly or monthly", field="frequency") from None

    def send_time(value: Any) -> str:
        if not isinstance(value, str) or not TIME.match(value.strip()):
            raise InvalidInput("{field}: give a time as HH:MM", field="send_time")
        return value.strip()

    def language(value: Any) -> str:
        if (value or "en") not in LANGUAGES:
            raise InvalidInput(
                "{field}: choose one of {choices}", field="language", choices=", ".join(LANGUAGES)
            )
        return str(value or "en")

    check("report_key", report_key)
    check("filters", filters)
    check("format", fmt)
    check("frequency", frequency)
    check("weekday", lambda v: _int_or_none(v, "weekday", 0, 6))
    check("day_of_month", lambda v: _int_or_none(v, "day_of_month", 1, 31))
    check("send_time", send_time)
    check("recipients", clean_recipients)
    check("language", language)
    out["active"] = bool(data.get("active", True))
    if out.get("frequency") == Frequency.WEEKLY and out.get("weekday") is None and "weekday" in out:
        errors.append(InvalidInput("{field}: choose the day of the week", field="weekday"))
    if (
        out.get("frequency") == Frequency.MONTHLY
        and out.get("day_of_month") is None
        and "day_of_month" in out
    ):
        errors.append(InvalidInput("{field}: choose the day of the month", field="day_of_month"))
    if out.get("frequency") != Frequency.WEEKLY:
        out["weekday"] = None
    if out.get("frequency") != Frequency.MONTHLY:
        out["day_of_month"] = None
    if errors:
        first = errors[0]
        raise InvalidInput(first.template, field=first.field, errors=errors, **first.params)
    return out


def _current(row: m.ReportSchedule) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}


async def _plan(session: AsyncSession, row: m.ReportSchedule, now: datetime) -> None:
    """A fresh slot after a change of timing (or re-activation): failures of the old one are
    forgotten, a claim in progress is left to finish."""
    config = await get_config(session)
    row.next_run_at = next_slot(Timing.of(row), config.tz, now) if row.active else None
    row.retry_at = None
    row.failures = 0


# --- actions --------------------------------------------------------------------------------


async def check_create_schedule(
    session: AsyncSession, who: Principal, data: dict[str, Any], now: datetime
) -> m.ReportSchedule:
    """A new schedule owned by the caller; its first slot is the next firing after ``now``."""
    check_manager(who)
    values = clean(data, now)
    count = len(await list_schedules(session, who, limit=1000)) if who.role == m.Role.SUPERVISOR else 0
    if count >= MAX_SCHEDULES_PER_OWNER:
        raise InvalidInput("at most {max} report mailings per person", max=MAX_SCHEDULES_PER_OWNER)
    row = m.ReportSchedule(owner_id=who.id, created_at=now, updated_at=now, failures=0, **values)
    session.add(row)
    await _plan(session, row, now)
    await session.flush()
    audit.record(
        session, who, "report_schedule.create", object_type="report_schedule", object_id=row.id, data=values
    )
    return row


async def check_update_schedule(
    session: AsyncSession, who: Principal, schedule_id: int, data: dict[str, Any], now: datetime
) -> m.ReportSchedule:
    """Change what was sent (PATCH semantics); a new time or re-activation plans a new slot."""
    row = await access_schedule(session, who, schedule_id, write=True)
    merged = {**_current(row), **{k: v for k, v in data.items() if k in FIELDS}}
    values = clean(merged, now)
    before = _current(row)
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = now
    timing = {"frequency", "weekday", "day_of_month", "send_time", "active"}
    if changed.keys() & timing:
        await _plan(session, row, now)
    await session.flush()
    audit.record(
        session, who, "report_schedule.update", object_type="report_schedule", object_id=row.id, data=changed
    )
    return row


async def check_delete_schedule(session: AsyncSession, who: Principal, schedule_id: int) -> None:
    row = await access_schedule(session, who, schedule_id, write=True)
    await session.delete(row)
    audit.record(
        session,
        who,
        "report_schedule.delete",
        object_type="report_schedule",
        object_id=schedule_id,
        data={"report_key": row.report_key, "owner_id": row.owner_id},
    )


def schedule_dict(row: m.ReportSchedule) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "owner_id": row.owner_id,
        "report_key": row.report_key,
        "filters": row.filters,
        "format": row.format,
        "frequency": row.frequency,
        "weekday": row.weekday,
        "day_of_month": row.day_of_month,
        "send_time": row.send_time,
        "recipients": list(row.recipients),
        "language": row.language,
        "active": row.active,
        "next_run_at": iso(row.retry_at or row.next_run_at) if row.active else None,
        "last_sent_at": iso(row.last_sent_at),
        "last_error": row.last_error,
        "failures": row.failures,
    }
