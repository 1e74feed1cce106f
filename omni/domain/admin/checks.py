"""The checks every admin entity shares: field validators, row helpers, audit and scope.

Each validator (a :data:`Checker`) takes the field's name, for the message, and the value, and
returns the value clean or raises ``InvalidInput`` naming the field; ``_clean`` runs a spec of
them over a whole body so a form shows every problem at once.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import (
    Principal,
    check_role,
    hash_password,
    visible_queue_ids,
)
from omni.domain.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from omni.i18n import Label

log = logging.getLogger(__name__)

Row = TypeVar("Row", bound=m.Base)
Checker = Callable[[str, Any], Any]
"""Validates one field: takes the field's name (for the message) and value, returns it clean."""

ADMIN = m.Role.ADMIN
SUPERVISOR = m.Role.SUPERVISOR
OPERATOR = m.Role.OPERATOR
AUDITOR = m.Role.AUDITOR

OVERFLOW_ACTIONS = ("none", "queue", "voicemail", "offline_form", "bot", "callback")
LANGUAGES = ("ru", "en")
ADMIN_STATUS_KINDS = (m.StatusKind.AVAILABLE, m.StatusKind.PAUSE, m.StatusKind.DND)
SYSTEM_STATUS_EDITABLE = ("name", "name_ru", "colour", "max_duration_seconds")
"""What an admin may change on a built-in status: code and meaning are what the core relies on."""
DELIVERY_STATES = ("pending", "succeeded", "failed")
MIN_SKILL_LEVEL, MAX_SKILL_LEVEL = 1, 10
MAX_LIMIT = 1000
INT_MAX = 2**31 - 1
"""Integer columns are 32-bit on PostgreSQL; larger values would fail deep in the driver."""
MIN_WEBHOOK_SECRET = 16

_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_STATUS_CODE = re.compile(r"[a-z0-9_]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HHMM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")


def clamp_limit(limit: int) -> int:
    return min(max(limit, 1), MAX_LIMIT)


# --- field checkers -----------------------------------------------------------------------


def _text(max_len: int, *, allow_empty: bool = False, no_spaces: bool = False, strip: bool = True) -> Checker:
    def check(field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidInput("{field} must be a string", field=field)
        text = value.strip() if strip else value
        if not text and not allow_empty:
            raise InvalidInput("{field} must not be empty", field=field)
        if len(text) > max_len:
            raise InvalidInput("{field} must be at most {max_len} characters", max_len=max_len, field=field)
        if no_spaces and any(ch.isspace() for ch in text):
            raise InvalidInput("{field} must not contain spaces", field=field)
        return text

    return check


def _optional(check: Checker) -> Checker:
    """``null`` (or an empty string) clears the field."""

    def wrapped(field: str, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return check(field, value)

    return wrapped


def _integer(low: int = -INT_MAX, high: int = INT_MAX) -> Checker:
    def check(field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput("{field} must be a whole number", field=field)
        if value < low:
            raise InvalidInput("{field} must be at least {low}", low=low, field=field)
        if value > high:
            raise InvalidInput("{field} must be at most {high}", high=high, field=field)
        return value

    return check


def _decimal(low: float, high: float) -> Checker:
    """A number with a fraction (percentages, ratios); whole numbers are accepted too."""

    def check(field: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise InvalidInput("{field} must be a number", field=field)
        if value < low:
            raise InvalidInput("{field} must be at least {low}", low=low, field=field)
        if value > high:
            raise InvalidInput("{field} must be at most {high}", high=high, field=field)
        return float(value)

    return check


_ID = _integer(1)
_OPTIONAL_ID = _optional(_ID)


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("{field} must be true or false", field=field)
    return value


def _choice(options: Iterable[str]) -> Checker:
    allowed = [str(o) for o in options]

    def check(field: str, value: Any) -> str:
        if value not in allowed:
            raise InvalidInput(
                "{field} must be one of: {allowed} (got {value!r})",
                allowed=", ".join(allowed),
                value=value,
                field=field,
            )
        return str(value)

    return check


def _colour(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _COLOUR.fullmatch(value):
        raise InvalidInput("{field} must be a colour like #1E88E5", field=field)
    return value.lower()


def _email(field: str, value: Any) -> str:
    text: str = _text(254, no_spaces=True)(field, value)
    local, _, domain = text.rpartition("@")
    if not local or "." not in domain:
        raise InvalidInput("'{text}' is not an email address", text=text, field=field)
    return text


def _mapping(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidInput("{field} must be an object", field=field)
    return dict(value)


def _strings(max_len: int) -> Checker:
    """A list of non-empty strings; repeats are dropped, order kept."""

    def check(field: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise InvalidInput("{field} must be a list of strings", field=field)
        item = _text(max_len)
        out: list[str] = []
        for i, v in enumerate(value):
            text = item(f"{field}[{i}]", v)
            if text not in out:
                out.append(text)
        return out

    return check


def _id_list(field: str, value: Any) -> list[int]:
    if not isinstance(value, list):
        raise InvalidInput("{field} must be a list of ids", field=field)
    out: list[int] = []
    for i, v in enumerate(value):
        ident = _ID(f"{field}[{i}]", v)
        if ident in out:
            raise InvalidInput("{field} lists {ident} twice", ident=ident, field=field)
        out.append(ident)
    return out


def _password(field: str, value: Any) -> str:
    """Returns the hash: the clear password never leaves this function."""
    if not isinstance(value, str):
        raise InvalidInput("{field} must be a string", field=field)
    return hash_password(value)


def _status_code(field: str, value: Any) -> str:
    text: str = _text(32)(field, value)
    if not _STATUS_CODE.fullmatch(text):
        raise InvalidInput(
            "{field} may hold lowercase latin letters, digits and '_' only (got '{text}')",
            text=text,
            field=field,
        )
    return text


def _clean(
    data: object,
    spec: Mapping[str, Checker],
    required: Sequence[str] = (),
    *,
    prefix: str = "",
) -> dict[str, Any]:
    """Check every given field against ``spec``; unknown and missing fields are refused."""
    if not isinstance(data, Mapping):
        where = prefix.rstrip(".") or "the body"
        raise InvalidInput("{where} must be an object", where=where, field=prefix.rstrip(".") or None)
    for name in data:
        if name not in spec:
            raise InvalidInput("unknown field '{field}'", field=f"{prefix}{name}")
    problems: list[DomainError] = [
        InvalidInput("{field} is required", field=f"{prefix}{name}") for name in required if name not in data
    ]
    clean: dict[str, Any] = {}
    for name, value in data.items():
        # Every field is checked, so a form can show all its problems at once.
        try:
            clean[name] = spec[name](f"{prefix}{name}", value)
        except InvalidInput as exc:
            problems.extend(exc.errors or [exc])
    if problems:
        first = problems[0]
        raise InvalidInput(
            first.template, field=first.field, errors=problems if len(problems) > 1 else (), **first.params
        )
    return clean


def _items(
    field: str, value: Any, spec: Mapping[str, Checker], required: Sequence[str]
) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidInput("{field} must be a list", field=field)
    return [_clean(item, spec, required, prefix=f"{field}[{i}].") for i, item in enumerate(value)]


def _no_repeats(field: str, items: list[dict[str, Any]], key: str) -> None:
    seen: set[Any] = set()
    for i, item in enumerate(items):
        if item[key] in seen:
            raise InvalidInput(
                "{key} {item} is listed twice", key=key, item=item[key], field=f"{field}[{i}].{key}"
            )
        seen.add(item[key])


# --- business hours and escalation --------------------------------------------------------


def _business_hours(field: str, value: Any) -> dict[str, Any] | None:
    """``null`` (open 24/7) or ``{"timezone": ..., "days": {"0": [["09:00","18:00"]], ...}}``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("{field} must be null or an object", field=field)
    unknown = set(value) - {"timezone", "days", "holidays", "calendars"}
    if unknown:
        raise InvalidInput("unknown {field} keys: {keys}", keys=", ".join(sorted(unknown)), field=field)
    tz = value.get("timezone")
    if not isinstance(tz, str) or not tz:
        raise InvalidInput("{field}.timezone is required, e.g. Europe/Moscow", field=field)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput("unknown time zone '{tz}'", tz=tz, field=field) from exc
    days = value.get("days")
    if not isinstance(days, dict):
        raise InvalidInput(
            '{field}.days is required: {{"0": [["09:00", "18:00"]], ...}}, 0 = Monday',
            field=field,
        )
    clean_days: dict[str, list[list[str]]] = {}
    for day, spans in days.items():
        if day not in {str(d) for d in range(7)}:
            raise InvalidInput("{field}.days keys are '0' (Monday) to '6' (Sunday)", field=field)
        if not isinstance(spans, list):
            raise InvalidInput("{field}.days.{day} must be a list of [start, end]", day=day, field=field)
        clean_spans: list[list[str]] = []
        for span in spans:
            if (
                not isinstance(span, list | tuple)
                or len(span) != 2
                or not all(isinstance(t, str) and _HHMM.fullmatch(t) for t in span)
            ):
                raise InvalidInput(
                    '{field}.days.{day}: each span is ["HH:MM", "HH:MM"] (got {span!r})',
                    day=day,
                    span=span,
                    field=field,
                )
            start, end = span
            if start >= end or start == "24:00":
                raise InvalidInput(
                    "{field}.days.{day}: {start}-{end} must start before it ends",
                    day=day,
                    start=start,
                    end=end,
                    field=field,
                )
            clean_spans.append([start, end])
        clean_spans.sort()
        for before, after in itertools.pairwise(clean_spans):
            if after[0] < before[1]:
                raise InvalidInput(
                    "{field}.days.{day}: {before}-{before2} overlaps {after}-{after2}",
                    day=day,
                    before=before[0],
                    before2=before[1],
                    after=after[0],
                    after2=after[1],
                    field=field,
                )
        clean_days[day] = clean_spans
    out: dict[str, Any] = {"timezone": tz, "days": dict(sorted(clean_days.items()))}
    if value.get("holidays"):
        out["holidays"] = _holidays(f"{field}.holidays", value["holidays"])
    if value.get("calendars"):
        out["calendars"] = _id_list(f"{field}.calendars", value["calendars"])
        # that they exist is checked with the session (``omni.domain.calendars``)
    return out


_HOLIDAY: dict[str, Checker] = {"date": _text(10), "name": _text(128, allow_empty=True)}


def _holidays(field: str, value: Any) -> list[dict[str, str]]:
    """Whole local days the queue is closed whatever its weekly hours say, sorted by date."""
    items = _items(field, value, _HOLIDAY, ("date",))
    for i, item in enumerate(items):
        try:
            if not _DATE.fullmatch(item["date"]):
                raise ValueError(item["date"])
            date.fromisoformat(item["date"])
        except ValueError as exc:
            raise InvalidInput("{field} must be a date like 2026-12-31", field=f"{field}[{i}].date") from exc
        item.setdefault("name", "")
    _no_repeats(field, items, "date")
    return sorted(items, key=lambda h: h["date"])


_ESCALATION_STEP: dict[str, Checker] = {
    "after_seconds": _integer(1),
    "relax_levels": _integer(0, MAX_SKILL_LEVEL),
    "add_queue_id": _OPTIONAL_ID,
}


def _escalation(field: str, value: Any) -> list[dict[str, Any]]:
    """Steps run in order, each timed from the first enqueue, so times must not go back."""
    steps = _items(field, value, _ESCALATION_STEP, ("after_seconds",))
    for i, step in enumerate(steps):
        if step.get("add_queue_id", 0) is None:
            del step["add_queue_id"]
        if i and step["after_seconds"] < steps[i - 1]["after_seconds"]:
            raise InvalidInput(
                "{field} must not be less than the step before",
                field=f"{field}[{i}].after_seconds",
            )
    return steps


# --- rows and references ------------------------------------------------------------------


def _new(model: type[Row]) -> Row:
    """A transient row with its column defaults set now, so whole-row checks see them."""
    row = model()
    for key, col in sa_inspect(model).columns.items():
        default = col.default
        if isinstance(default, ScalarElementColumnDefault):
            setattr(row, key, default.arg)
        elif isinstance(default, CallableColumnDefault):
            setattr(row, key, cast(Any, default.arg)(None))
    return row


def _columns(row: m.Base) -> dict[str, Any]:
    """Every column of the row by attribute name: the plain shape of config rows."""
    return {key: getattr(row, key) for key in sa_inspect(type(row)).columns.keys()}  # noqa: SIM118


def _apply(row: m.Base, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        setattr(row, name, value)


async def _flush(session: AsyncSession) -> None:
    """Checks run first; this only catches a concurrent writer who got in between."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("the change clashes with a concurrent one; reload and try again") from exc


async def _get(session: AsyncSession, model: type[Row], row_id: int, what: str) -> Row:
    row = await session.get(model, row_id)
    if row is None:
        raise NotFound("{what} {row_id} not found", what=Label("entity", what), row_id=row_id)
    return row


async def _referenced(
    session: AsyncSession, model: type[Row], row_id: int | None, field: str, what: str
) -> Row | None:
    """The row an input field points to; a dangling id is the caller's mistake (422)."""
    if row_id is None:
        return None
    row = await session.get(model, row_id)
    if row is None:
        raise InvalidInput(
            "{what} {row_id} does not exist", what=Label("entity", what), row_id=row_id, field=field
        )
    return row


async def _ensure_unique(
    session: AsyncSession,
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    id_column: InstrumentedAttribute[int],
    value: str,
    *,
    own_id: int | None,
    field: str,
    message: str,
) -> None:
    """Case-insensitive, so 'Sales' and 'sales' can't both exist and confuse people."""
    stmt = select(id_column).where(func.lower(column) == value.lower())
    if own_id is not None:
        stmt = stmt.where(id_column != own_id)
    if await session.scalar(stmt.limit(1)) is not None:
        raise InvalidInput(message, field=field, value=value)


def _masked(value: Any) -> Any:
    """Secrets nested in documents (an inbox's bot token) are hidden like top-level ones."""
    if isinstance(value, dict):
        return {k: ("***" if k in audit.SECRET_FIELDS else _masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _audit(
    session: AsyncSession,
    who: Principal,
    action: str,
    object_type: str,
    object_id: object,
    data: Mapping[str, Any],
) -> None:
    audit.record(
        session,
        who,
        action,
        object_type=object_type,
        object_id=object_id,
        data=_masked(dict(data)),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _deny_auditor(who: Principal) -> None:
    if who.role == AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")


# --- queues shared replies and card fields belong to ----------------------------------------


async def _managed_queue(session: AsyncSession, who: Principal, queue_id: int | None, field: str) -> None:
    """The queue a shared reply or card field belongs to: admins any (or none, i.e. global),
    supervisors one of their queues; a queue outside the scope reads as missing."""
    check_role(who, ADMIN, SUPERVISOR)
    if queue_id is None:
        if who.role != ADMIN:
            raise PermissionDenied("only an admin manages what every queue shares; pick a queue", field=field)
        return
    visible = await visible_queue_ids(session, who)
    if visible is not None and queue_id not in visible:
        raise InvalidInput("queue {queue_id} does not exist", queue_id=queue_id, field=field)
    await _referenced(session, m.Queue, queue_id, field, "queue")


async def _readable_scope(session: AsyncSession, who: Principal) -> set[int] | None:
    """Queues whose shared replies and card fields the caller reads; ``None``: all of them."""
    check_role(who, ADMIN, SUPERVISOR, AUDITOR)
    if who.role in (ADMIN, AUDITOR):
        return None
    return await visible_queue_ids(session, who) or set()
