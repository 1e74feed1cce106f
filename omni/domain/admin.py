"""Administration: people, queues, statuses, result codes, contacts, inboxes, webhooks.

Every function takes the caller and checks role and scope itself, so any transport (REST
today, a CLI or socket tomorrow) gets the same rules. Input is a plain dict holding only the
fields the caller gave, so one function serves both create and partial update. All of it is
validated, including references and uniqueness, before a row is touched, and every change
writes its audit record in the caller's transaction: a refused request stores nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from omni import crypto
from omni.db import models as m
from omni.domain import audit, contacts, webhooks
from omni.domain.auth import (
    Principal,
    access_contact,
    contact_scope_filter,
    hash_password,
    require_role,
    visible_queue_ids,
    visible_user_ids,
)
from omni.domain.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from omni.i18n import Label, _l

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
    unknown = set(value) - {"timezone", "days"}
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
    return {"timezone": tz, "days": dict(sorted(clean_days.items()))}


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


# --- users --------------------------------------------------------------------------------

_USER_FIELDS: dict[str, Checker] = {
    "username": _text(64, no_spaces=True),
    "password": _password,
    "role": _choice(m.Role),
    "display_name": _text(128, allow_empty=True),
    "email": _optional(_email),
    "language": _choice(LANGUAGES),
    "sip_extension": _optional(_text(32, no_spaces=True)),
    "handles_chat": _boolean,
    "handles_voice": _boolean,
    "capacity": _integer(1),
    "chat_weight": _integer(1),
    "voice_weight": _integer(1),
}
_USER_UPDATE_FIELDS = {**_USER_FIELDS, "is_active": _boolean}


def user_dict(u: m.User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "email": u.email,
        "role": u.role,
        "language": u.language,
        "is_active": u.is_active,
        "sip_extension": u.sip_extension,
        "handles_chat": u.handles_chat,
        "handles_voice": u.handles_voice,
        "capacity": u.capacity,
        "chat_weight": u.chat_weight,
        "voice_weight": u.voice_weight,
        "created_at": _iso(u.created_at),
    }


async def user_detail(session: AsyncSession, u: m.User) -> dict[str, Any]:
    """The user with skills, groups and (for supervisors) scope: what an edit form needs."""
    body = user_dict(u)
    skills = await session.scalars(
        select(m.UserSkill).where(m.UserSkill.user_id == u.id).order_by(m.UserSkill.skill_id)
    )
    body["skills"] = [{"skill_id": s.skill_id, "level": s.level} for s in skills]
    body["group_ids"] = sorted(
        await session.scalars(select(m.GroupMember.group_id).where(m.GroupMember.user_id == u.id))
    )
    if u.role == SUPERVISOR:
        scopes = (
            await session.scalars(select(m.SupervisorScope).where(m.SupervisorScope.supervisor_id == u.id))
        ).all()
        body["scope"] = {
            "group_ids": sorted(s.group_id for s in scopes if s.group_id is not None),
            "queue_ids": sorted(s.queue_id for s in scopes if s.queue_id is not None),
        }
    return body


async def _user_in_scope(session: AsyncSession, who: Principal, user_id: int) -> m.User:
    """Admins reach every user, supervisors the ones they supervise; others are refused."""
    require_role(who, ADMIN, SUPERVISOR)
    user = await session.get(m.User, user_id)
    visible = await visible_user_ids(session, who)
    if user is None or (visible is not None and user.id not in visible):
        raise NotFound("user {user_id} not found", user_id=user_id)
    return user


async def _check_user(
    session: AsyncSession, clean: Mapping[str, Any], row: Mapping[str, Any], own_id: int | None
) -> None:
    if "username" in clean:
        await _ensure_unique(
            session,
            m.User.username,
            m.User.id,
            clean["username"],
            own_id=own_id,
            field="username",
            message=_l("a user named '{value}' already exists"),
        )
    if clean.get("sip_extension"):
        ext = clean["sip_extension"]
        await _ensure_unique(
            session,
            m.User.sip_extension,
            m.User.id,
            ext,
            own_id=own_id,
            field="sip_extension",
            message=_l("SIP extension '{value}' belongs to another user"),
        )
    load_fields = {"capacity", "chat_weight", "voice_weight", "handles_chat", "handles_voice"}
    if not load_fields & set(clean):
        return  # an old row that breaks the rule still gets its unrelated fields edited
    merged = {**row, **clean}
    for medium, noun in (("chat", "chat"), ("voice", "call")):
        weight = merged[f"{medium}_weight"]
        if merged[f"handles_{medium}"] and weight > merged["capacity"]:
            raise InvalidInput(
                "{field} ({weight}) exceeds capacity ({capacity}): this user could never "
                "take a {noun}; lower the weight or turn handles_{medium} off",
                medium=medium,
                weight=weight,
                capacity=merged["capacity"],
                noun=noun,
                field=f"{medium}_weight",
            )


async def list_users(session: AsyncSession, who: Principal, *, limit: int) -> list[m.User]:
    require_role(who, ADMIN, SUPERVISOR)
    stmt = select(m.User).order_by(m.User.id).limit(clamp_limit(limit))
    visible = await visible_user_ids(session, who)
    if visible is not None:
        stmt = stmt.where(m.User.id.in_(visible))
    return list(await session.scalars(stmt))


async def get_user(session: AsyncSession, who: Principal, user_id: int) -> m.User:
    return await _user_in_scope(session, who, user_id)


async def create_user(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.User:
    require_role(who, ADMIN)
    clean = _clean(data, _USER_FIELDS, ("username", "password", "role"))
    user = _new(m.User)
    await _check_user(session, clean, _columns(user), None)
    clean["password_hash"] = clean.pop("password")
    _apply(user, clean)
    session.add(user)
    await _flush(session)
    _audit(session, who, "user.create", "user", user.id, data)
    return user


async def update_user(session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]) -> m.User:
    require_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    clean = _clean(data, _USER_UPDATE_FIELDS)
    if user.id == who.id:
        if clean.get("is_active") is False:
            raise InvalidInput("you cannot deactivate yourself", field="is_active")
        if "role" in clean and clean["role"] != user.role:
            raise InvalidInput("you cannot change your own role", field="role")
    await _check_user(session, clean, _columns(user), user.id)
    if "password" in clean:
        clean["password_hash"] = clean.pop("password")
        if user.id != who.id:
            # A reset password must lock out whoever knew the old one.
            await session.execute(delete(m.UserSession).where(m.UserSession.user_id == user.id))
    _apply(user, clean)
    await _flush(session)
    _audit(session, who, "user.update", "user", user.id, data)
    return user


async def deactivate_user(session: AsyncSession, who: Principal, user_id: int) -> m.User:
    """Users are never deleted: their name stays on conversations, history and the audit log."""
    require_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    if user.id == who.id:
        raise InvalidInput("you cannot deactivate yourself", field="user_id")
    user.is_active = False
    await session.execute(delete(m.UserSession).where(m.UserSession.user_id == user.id))
    await _flush(session)
    _audit(session, who, "user.deactivate", "user", user.id, {"username": user.username})
    return user


_USER_SKILL: dict[str, Checker] = {
    "skill_id": _ID,
    "level": _integer(MIN_SKILL_LEVEL, MAX_SKILL_LEVEL),
}


async def set_user_skills(
    session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]
) -> m.User:
    user = await _user_in_scope(session, who, user_id)
    clean = _clean(
        data, {"skills": lambda f, v: _items(f, v, _USER_SKILL, ("skill_id", "level"))}, ("skills",)
    )
    items: list[dict[str, Any]] = clean["skills"]
    _no_repeats("skills", items, "skill_id")
    for i, item in enumerate(items):
        await _referenced(session, m.Skill, item["skill_id"], f"skills[{i}].skill_id", "skill")
    await session.execute(delete(m.UserSkill).where(m.UserSkill.user_id == user.id))
    session.add_all(m.UserSkill(user_id=user.id, skill_id=i["skill_id"], level=i["level"]) for i in items)
    await _flush(session)
    _audit(session, who, "user.skills", "user", user.id, data)
    return user


async def set_supervisor_scope(
    session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]
) -> m.User:
    require_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    if user.role != SUPERVISOR:
        raise InvalidInput(
            "user '{username}' has the role {role}: only supervisors have a scope",
            username=user.username,
            role=user.role,
            field="user_id",
        )
    clean = _clean(data, {"group_ids": _id_list, "queue_ids": _id_list})
    group_ids: list[int] = clean.get("group_ids", [])
    queue_ids: list[int] = clean.get("queue_ids", [])
    for i, gid in enumerate(group_ids):
        await _referenced(session, m.Group, gid, f"group_ids[{i}]", "group")
    for i, qid in enumerate(queue_ids):
        await _referenced(session, m.Queue, qid, f"queue_ids[{i}]", "queue")
    await session.execute(delete(m.SupervisorScope).where(m.SupervisorScope.supervisor_id == user.id))
    session.add_all(m.SupervisorScope(supervisor_id=user.id, group_id=g) for g in group_ids)
    session.add_all(m.SupervisorScope(supervisor_id=user.id, queue_id=q) for q in queue_ids)
    await _flush(session)
    _audit(session, who, "user.scope", "user", user.id, data)
    return user


async def set_user_groups(
    session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]
) -> m.User:
    require_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    group_ids: list[int] = _clean(data, {"group_ids": _id_list}, ("group_ids",))["group_ids"]
    for i, gid in enumerate(group_ids):
        await _referenced(session, m.Group, gid, f"group_ids[{i}]", "group")
    await session.execute(delete(m.GroupMember).where(m.GroupMember.user_id == user.id))
    session.add_all(m.GroupMember(group_id=g, user_id=user.id) for g in group_ids)
    await _flush(session)
    _audit(session, who, "user.groups", "user", user.id, data)
    return user


# --- groups -------------------------------------------------------------------------------

_GROUP_FIELDS: dict[str, Checker] = {"name": _text(128)}


async def group_dicts(session: AsyncSession, groups: Sequence[m.Group]) -> list[dict[str, Any]]:
    members: dict[int, list[int]] = {g.id: [] for g in groups}
    if groups:
        rows = await session.execute(
            select(m.GroupMember.group_id, m.GroupMember.user_id)
            .where(m.GroupMember.group_id.in_(members))
            .order_by(m.GroupMember.user_id)
        )
        for gid, uid in rows.all():
            members[gid].append(uid)
    return [{"id": g.id, "name": g.name, "user_ids": members[g.id]} for g in groups]


async def list_groups(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Group]:
    require_role(who, ADMIN, SUPERVISOR)
    stmt = select(m.Group).order_by(m.Group.id).limit(clamp_limit(limit))
    if who.role == SUPERVISOR:
        stmt = stmt.where(
            m.Group.id.in_(
                select(m.SupervisorScope.group_id).where(
                    m.SupervisorScope.supervisor_id == who.id,
                    m.SupervisorScope.group_id.is_not(None),
                )
            )
        )
    return list(await session.scalars(stmt))


async def _check_group(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "name" in clean:
        await _ensure_unique(
            session,
            m.Group.name,
            m.Group.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a group named '{value}' already exists"),
        )


async def create_group(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Group:
    require_role(who, ADMIN)
    clean = _clean(data, _GROUP_FIELDS, ("name",))
    await _check_group(session, clean, None)
    group = m.Group(**clean)
    session.add(group)
    await _flush(session)
    _audit(session, who, "group.create", "group", group.id, data)
    return group


async def update_group(
    session: AsyncSession, who: Principal, group_id: int, data: Mapping[str, Any]
) -> m.Group:
    require_role(who, ADMIN)
    group = await _get(session, m.Group, group_id, "group")
    clean = _clean(data, _GROUP_FIELDS)
    await _check_group(session, clean, group.id)
    _apply(group, clean)
    await _flush(session)
    _audit(session, who, "group.update", "group", group.id, data)
    return group


async def delete_group(session: AsyncSession, who: Principal, group_id: int) -> None:
    """Members and scopes go with the group; its queues stay, without a group."""
    require_role(who, ADMIN)
    group = await _get(session, m.Group, group_id, "group")
    await session.delete(group)
    await _flush(session)
    _audit(session, who, "group.delete", "group", group_id, {"name": group.name})


# --- skills -------------------------------------------------------------------------------

_SKILL_FIELDS: dict[str, Checker] = {"name": _text(64)}


def skill_dict(s: m.Skill) -> dict[str, Any]:
    return {"id": s.id, "name": s.name}


async def list_skills(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Skill]:
    _deny_auditor(who)
    return list(await session.scalars(select(m.Skill).order_by(m.Skill.id).limit(clamp_limit(limit))))


async def _check_skill(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "name" in clean:
        await _ensure_unique(
            session,
            m.Skill.name,
            m.Skill.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a skill named '{value}' already exists"),
        )


async def create_skill(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Skill:
    require_role(who, ADMIN)
    clean = _clean(data, _SKILL_FIELDS, ("name",))
    await _check_skill(session, clean, None)
    skill = m.Skill(**clean)
    session.add(skill)
    await _flush(session)
    _audit(session, who, "skill.create", "skill", skill.id, data)
    return skill


async def update_skill(
    session: AsyncSession, who: Principal, skill_id: int, data: Mapping[str, Any]
) -> m.Skill:
    require_role(who, ADMIN)
    skill = await _get(session, m.Skill, skill_id, "skill")
    clean = _clean(data, _SKILL_FIELDS)
    await _check_skill(session, clean, skill.id)
    _apply(skill, clean)
    await _flush(session)
    _audit(session, who, "skill.update", "skill", skill.id, data)
    return skill


async def delete_skill(session: AsyncSession, who: Principal, skill_id: int) -> None:
    """Users' levels and queues' requirements of the skill go with it."""
    require_role(who, ADMIN)
    skill = await _get(session, m.Skill, skill_id, "skill")
    await session.delete(skill)
    await _flush(session)
    _audit(session, who, "skill.delete", "skill", skill_id, {"name": skill.name})


# --- queues -------------------------------------------------------------------------------

_QUEUE_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "group_id": _OPTIONAL_ID,
    "strategy": _choice(m.Strategy),
    "priority": _integer(),
    "business_hours": _business_hours,
    "queue_timeout_seconds": _integer(0),
    "operator_timeout_seconds": _integer(0),
    "auto_accept": _boolean,
    "overflow_action": _choice(OVERFLOW_ACTIONS),
    "overflow_queue_id": _OPTIONAL_ID,
    "overflow_scenario": _text(64, allow_empty=True),
    "sla_seconds": _integer(1),
    "wrap_up_seconds": _integer(0),
    "default_result_code_id": _OPTIONAL_ID,
    "chats_block_calls": _boolean,
    "manual_pick": _boolean,
    "escalation": _escalation,
    "script": _text(20000, allow_empty=True, strip=False),
}


async def queue_dicts(session: AsyncSession, queues: Sequence[m.Queue]) -> list[dict[str, Any]]:
    """Queues with members, skills and result codes, loaded in three queries for the lot."""
    ids = [q.id for q in queues]
    members: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    skills: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    codes: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for mm in await session.scalars(
            select(m.QueueMember)
            .where(m.QueueMember.queue_id.in_(ids))
            .order_by(m.QueueMember.position, m.QueueMember.user_id)
        ):
            members[mm.queue_id].append(
                {"user_id": mm.user_id, "position": mm.position, "penalty": mm.penalty}
            )
        for qs in await session.scalars(
            select(m.QueueSkill).where(m.QueueSkill.queue_id.in_(ids)).order_by(m.QueueSkill.skill_id)
        ):
            skills[qs.queue_id].append({"skill_id": qs.skill_id, "min_level": qs.min_level})
        for qid, cid in (
            await session.execute(
                select(m.QueueResultCode.queue_id, m.QueueResultCode.result_code_id)
                .where(m.QueueResultCode.queue_id.in_(ids))
                .order_by(m.QueueResultCode.result_code_id)
            )
        ).all():
            codes[qid].append(cid)
    out = []
    for q in queues:
        body = _columns(q)
        body["escalation"] = list(q.escalation or [])
        body["members"] = members[q.id]
        body["skills"] = skills[q.id]
        body["result_code_ids"] = codes[q.id]
        out.append(body)
    return out


async def queue_detail(session: AsyncSession, queue: m.Queue) -> dict[str, Any]:
    return (await queue_dicts(session, [queue]))[0]


async def _scoped_queue(session: AsyncSession, who: Principal, queue_id: int, *, manage: bool) -> m.Queue:
    """A queue the caller may see (``manage``: and edit); others' queues are 'not found'."""
    if manage:
        require_role(who, ADMIN, SUPERVISOR)
    else:
        _deny_auditor(who)
    queue = await session.get(m.Queue, queue_id)
    visible = await visible_queue_ids(session, who)
    if queue is None or (visible is not None and queue.id not in visible):
        raise NotFound("queue {queue_id} not found", queue_id=queue_id)
    return queue


async def list_queues(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Queue]:
    _deny_auditor(who)
    stmt = select(m.Queue).order_by(m.Queue.id).limit(clamp_limit(limit))
    visible = await visible_queue_ids(session, who)
    if visible is not None:
        stmt = stmt.where(m.Queue.id.in_(visible))
    return list(await session.scalars(stmt))


async def get_queue(session: AsyncSession, who: Principal, queue_id: int) -> m.Queue:
    return await _scoped_queue(session, who, queue_id, manage=False)


async def _allowed_codes(session: AsyncSession, queue_id: int) -> set[int]:
    return set(
        await session.scalars(
            select(m.QueueResultCode.result_code_id).where(m.QueueResultCode.queue_id == queue_id)
        )
    )


async def _check_default_code(
    session: AsyncSession, code_id: int | None, allowed: set[int], field: str
) -> None:
    code = await _referenced(session, m.ResultCode, code_id, field, "result code")
    if code is None:
        return
    if not code.active:
        raise InvalidInput("result code '{code}' is inactive", code=code.code, field=field)
    if allowed and code.id not in allowed:
        raise InvalidInput(
            "result code '{code}' is not among the queue's result codes", code=code.code, field=field
        )


async def _check_queue(
    session: AsyncSession,
    who: Principal,
    clean: Mapping[str, Any],
    queue: m.Queue,
    own_id: int | None,
) -> None:
    """References, uniqueness and the whole-row rules, before anything is changed."""
    visible = await visible_queue_ids(session, who)

    async def target(qid: int | None, field: str) -> None:
        if qid is None:
            return
        if qid == own_id:
            raise InvalidInput("a queue can't send conversations to itself", field=field)
        if visible is not None and qid not in visible:
            raise InvalidInput("queue {qid} does not exist", qid=qid, field=field)
        await _referenced(session, m.Queue, qid, field, "queue")

    if "name" in clean:
        await _ensure_unique(
            session,
            m.Queue.name,
            m.Queue.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a queue named '{value}' already exists"),
        )
    if "group_id" in clean and clean["group_id"] != queue.group_id:
        if who.role != ADMIN:
            raise PermissionDenied(
                "only an admin moves a queue to another group (it changes who supervises it)",
                field="group_id",
            )
        await _referenced(session, m.Group, clean["group_id"], "group_id", "group")
    if "overflow_queue_id" in clean:
        await target(clean["overflow_queue_id"], "overflow_queue_id")
    for i, step in enumerate(clean.get("escalation", [])):
        await target(step.get("add_queue_id"), f"escalation[{i}].add_queue_id")
    if "default_result_code_id" in clean:
        allowed = await _allowed_codes(session, own_id) if own_id is not None else set()
        await _check_default_code(session, clean["default_result_code_id"], allowed, "default_result_code_id")
    action = clean.get("overflow_action", queue.overflow_action)
    overflow_to = clean.get("overflow_queue_id", queue.overflow_queue_id)
    if action == "queue" and overflow_to is None:
        raise InvalidInput("overflow_action 'queue' needs overflow_queue_id", field="overflow_queue_id")
    if action == "bot" and ("overflow_action" in clean or "overflow_scenario" in clean):
        await _check_overflow_scenario(session, clean.get("overflow_scenario", queue.overflow_scenario))


async def _check_overflow_scenario(session: AsyncSession, key: str) -> None:
    """Overflow to a bot needs a scenario that can start now: one with a published revision
    (the runner refuses any other, and the customer would be left with nobody)."""
    if not key:
        raise InvalidInput(
            "overflow_action 'bot' needs overflow_scenario: the key of a published scenario",
            field="overflow_scenario",
        )
    published = await session.scalar(
        select(m.Scenario.id).where(m.Scenario.key == key, m.Scenario.active_revision_id.is_not(None))
    )
    if published is None:
        raise InvalidInput(
            "overflow_scenario '{key}' is not a published scenario; publish it or choose another",
            key=key,
            field="overflow_scenario",
        )


async def create_queue(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Queue:
    require_role(who, ADMIN)
    clean = _clean(data, _QUEUE_FIELDS, ("name",))
    queue = _new(m.Queue)
    await _check_queue(session, who, clean, queue, None)
    _apply(queue, clean)
    session.add(queue)
    await _flush(session)
    _audit(session, who, "queue.create", "queue", queue.id, data)
    return queue


async def update_queue(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(data, _QUEUE_FIELDS)
    await _check_queue(session, who, clean, queue, queue.id)
    _apply(queue, clean)
    await _flush(session)
    _audit(session, who, "queue.update", "queue", queue.id, data)
    return queue


async def delete_queue(session: AsyncSession, who: Principal, queue_id: int) -> None:
    """Refused while anything still sends conversations here, so none are stranded."""
    require_role(who, ADMIN)
    queue = await _get(session, m.Queue, queue_id, "queue")
    waiting = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.queue_id == queue.id, m.Conversation.status.in_(m.OPEN_STATUSES))
    )
    if waiting:
        raise Conflict(
            "queue '{name}' has {waiting} open conversations; close them first",
            name=queue.name,
            waiting=waiting,
        )
    inboxes = list(await session.scalars(select(m.Inbox.name).where(m.Inbox.queue_id == queue.id)))
    if inboxes:
        raise Conflict(
            "inboxes route to queue '{name}': {inboxes}; point them elsewhere",
            name=queue.name,
            inboxes=", ".join(inboxes),
        )
    referrers = [
        q.name
        for q in await session.scalars(select(m.Queue).where(m.Queue.id != queue.id))
        if q.overflow_queue_id == queue.id
        or any(step.get("add_queue_id") == queue.id for step in q.escalation or [])
    ]
    if referrers:
        raise Conflict(
            "queues overflow or escalate to '{name}': {referrers}; change them first",
            name=queue.name,
            referrers=", ".join(referrers),
        )
    await session.delete(queue)
    await _flush(session)
    _audit(session, who, "queue.delete", "queue", queue_id, {"name": queue.name})


_MEMBER: dict[str, Checker] = {
    "user_id": _ID,
    "position": _integer(0),
    "penalty": _integer(0),
}


async def set_queue_members(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    """Supervisors staff their queues from operators they already supervise."""
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(data, {"members": lambda f, v: _items(f, v, _MEMBER, ("user_id",))}, ("members",))
    items: list[dict[str, Any]] = clean["members"]
    _no_repeats("members", items, "user_id")
    visible = await visible_user_ids(session, who)
    for i, item in enumerate(items):
        field = f"members[{i}].user_id"
        if visible is not None and item["user_id"] not in visible:
            raise InvalidInput("user {user_id} does not exist", user_id=item["user_id"], field=field)
        user = await _referenced(session, m.User, item["user_id"], field, "user")
        assert user is not None
        if user.role != OPERATOR:
            raise InvalidInput(
                "user '{username}' has the role {role}; queues take operators only",
                username=user.username,
                role=user.role,
                field=field,
            )
    await session.execute(delete(m.QueueMember).where(m.QueueMember.queue_id == queue.id))
    session.add_all(
        m.QueueMember(
            queue_id=queue.id,
            user_id=i["user_id"],
            position=i.get("position", 0),
            penalty=i.get("penalty", 0),
        )
        for i in items
    )
    await _flush(session)
    _audit(session, who, "queue.members", "queue", queue.id, data)
    return queue


_QUEUE_SKILL: dict[str, Checker] = {
    "skill_id": _ID,
    "min_level": _integer(MIN_SKILL_LEVEL, MAX_SKILL_LEVEL),
}


async def set_queue_skills(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(data, {"skills": lambda f, v: _items(f, v, _QUEUE_SKILL, ("skill_id",))}, ("skills",))
    items: list[dict[str, Any]] = clean["skills"]
    _no_repeats("skills", items, "skill_id")
    for i, item in enumerate(items):
        await _referenced(session, m.Skill, item["skill_id"], f"skills[{i}].skill_id", "skill")
    await session.execute(delete(m.QueueSkill).where(m.QueueSkill.queue_id == queue.id))
    session.add_all(
        m.QueueSkill(queue_id=queue.id, skill_id=i["skill_id"], min_level=i.get("min_level", 1))
        for i in items
    )
    await _flush(session)
    _audit(session, who, "queue.skills", "queue", queue.id, data)
    return queue


async def set_queue_result_codes(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    """An empty list allows every active code; the default must be one the queue allows."""
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(
        data,
        {"result_code_ids": _id_list, "default_result_code_id": _OPTIONAL_ID},
        ("result_code_ids",),
    )
    code_ids: list[int] = clean["result_code_ids"]
    for i, cid in enumerate(code_ids):
        code = await _referenced(session, m.ResultCode, cid, f"result_code_ids[{i}]", "result code")
        assert code is not None
        if not code.active:
            raise InvalidInput(
                "result code '{code}' is inactive", code=code.code, field=f"result_code_ids[{i}]"
            )
    if "default_result_code_id" in clean:
        default = clean["default_result_code_id"]
        await _check_default_code(session, default, set(code_ids), "default_result_code_id")
    else:
        default = queue.default_result_code_id
        if default is not None and code_ids and default not in code_ids:
            raise InvalidInput(
                "the queue's default result code {default} is not in the list: include "
                "it or give a new default_result_code_id",
                default=default,
                field="default_result_code_id",
            )
    await session.execute(delete(m.QueueResultCode).where(m.QueueResultCode.queue_id == queue.id))
    session.add_all(m.QueueResultCode(queue_id=queue.id, result_code_id=c) for c in code_ids)
    queue.default_result_code_id = default
    await _flush(session)
    _audit(session, who, "queue.result_codes", "queue", queue.id, data)
    return queue


# --- operator statuses --------------------------------------------------------------------

_STATUS_FIELDS: dict[str, Checker] = {
    "code": _status_code,
    "name": _text(64),
    "name_ru": _text(64, allow_empty=True),
    "colour": _colour,
    "kind": _choice(ADMIN_STATUS_KINDS),
    "receives_voice": _boolean,
    "receives_chats": _boolean,
    "productive": _boolean,
    "selectable": _boolean,
    "max_duration_seconds": _optional(_integer(1)),
}


def status_dict(s: m.OperatorStatus) -> dict[str, Any]:
    return _columns(s)


async def list_statuses(session: AsyncSession, who: Principal, *, limit: int) -> list[m.OperatorStatus]:
    """Any signed-in user: operators pick from these, auditors read them in history."""
    return list(
        await session.scalars(
            select(m.OperatorStatus).order_by(m.OperatorStatus.id).limit(clamp_limit(limit))
        )
    )


async def _check_status(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "code" in clean:
        await _ensure_unique(
            session,
            m.OperatorStatus.code,
            m.OperatorStatus.id,
            clean["code"],
            own_id=own_id,
            field="code",
            message=_l("a status with code '{value}' already exists"),
        )
    if "name" in clean:
        await _ensure_unique(
            session,
            m.OperatorStatus.name,
            m.OperatorStatus.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a status named '{value}' already exists"),
        )


async def create_status(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.OperatorStatus:
    require_role(who, ADMIN)
    clean = _clean(data, _STATUS_FIELDS, ("code", "name"))
    await _check_status(session, clean, None)
    status = m.OperatorStatus(**clean, is_system=False)
    session.add(status)
    await _flush(session)
    _audit(session, who, "status.create", "operator_status", status.id, data)
    return status


async def update_status(
    session: AsyncSession, who: Principal, status_id: int, data: Mapping[str, Any]
) -> m.OperatorStatus:
    require_role(who, ADMIN)
    status = await _get(session, m.OperatorStatus, status_id, "status")
    clean = _clean(data, _STATUS_FIELDS)
    if "code" in clean and clean["code"] != status.code:
        # Presence and history keep the code as text; renaming would orphan them.
        raise InvalidInput(
            "a status code can't change once created; create a new status instead", field="code"
        )
    if status.is_system:
        for name in clean:
            if name not in (*SYSTEM_STATUS_EDITABLE, "code"):
                raise InvalidInput(
                    "{field} of the built-in status '{code}' can't be changed", code=status.code, field=name
                )
    await _check_status(session, clean, status.id)
    _apply(status, clean)
    await _flush(session)
    _audit(session, who, "status.update", "operator_status", status.id, data)
    return status


async def delete_status(session: AsyncSession, who: Principal, status_id: int) -> None:
    require_role(who, ADMIN)
    status = await _get(session, m.OperatorStatus, status_id, "status")
    if status.is_system:
        raise InvalidInput("the built-in status '{code}' can't be deleted", code=status.code, field="id")
    in_use = await session.scalar(
        select(func.count()).select_from(m.OperatorPresence).where(m.OperatorPresence.status_id == status.id)
    )
    if in_use:
        raise Conflict(
            "status '{code}' is in use right now (operators: {in_use})", code=status.code, in_use=in_use
        )
    used = await session.scalar(
        select(m.StatusHistory.id).where(m.StatusHistory.status_id == status.id).limit(1)
    )
    if used is not None:
        raise Conflict(
            "status '{code}' appears in status history (reports need it); make it non-selectable instead",
            code=status.code,
        )
    await session.delete(status)
    await _flush(session)
    _audit(session, who, "status.delete", "operator_status", status_id, {"code": status.code})


# --- result codes -------------------------------------------------------------------------

_RESULT_CODE_FIELDS: dict[str, Checker] = {
    "code": _text(32, no_spaces=True),
    "name": _text(128),
    "name_ru": _text(128, allow_empty=True),
    "colour": _colour,
    "active": _boolean,
}


def result_code_dict(c: m.ResultCode) -> dict[str, Any]:
    return {
        "id": c.id,
        "code": c.code,
        "name": c.name,
        "name_ru": c.name_ru,
        "colour": c.colour,
        "active": c.active,
    }


async def list_result_codes(session: AsyncSession, who: Principal, *, limit: int) -> list[m.ResultCode]:
    return list(
        await session.scalars(select(m.ResultCode).order_by(m.ResultCode.id).limit(clamp_limit(limit)))
    )


async def _check_result_code(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "code" in clean:
        await _ensure_unique(
            session,
            m.ResultCode.code,
            m.ResultCode.id,
            clean["code"],
            own_id=own_id,
            field="code",
            message=_l("a result code '{value}' already exists"),
        )
    if "name" in clean:
        await _ensure_unique(
            session,
            m.ResultCode.name,
            m.ResultCode.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a result code named '{value}' already exists"),
        )


async def create_result_code(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.ResultCode:
    require_role(who, ADMIN)
    clean = _clean(data, _RESULT_CODE_FIELDS, ("code", "name"))
    await _check_result_code(session, clean, None)
    code = m.ResultCode(**clean)
    session.add(code)
    await _flush(session)
    _audit(session, who, "result_code.create", "result_code", code.id, data)
    return code


async def update_result_code(
    session: AsyncSession, who: Principal, code_id: int, data: Mapping[str, Any]
) -> m.ResultCode:
    require_role(who, ADMIN)
    code = await _get(session, m.ResultCode, code_id, "result code")
    clean = _clean(data, _RESULT_CODE_FIELDS)
    await _check_result_code(session, clean, code.id)
    _apply(code, clean)
    await _flush(session)
    _audit(session, who, "result_code.update", "result_code", code.id, data)
    return code


async def deactivate_result_code(session: AsyncSession, who: Principal, code_id: int) -> m.ResultCode:
    """Closed conversations keep pointing at the code, so it is hidden, not deleted."""
    require_role(who, ADMIN)
    code = await _get(session, m.ResultCode, code_id, "result code")
    code.active = False
    await _flush(session)
    _audit(session, who, "result_code.deactivate", "result_code", code.id, {"code": code.code})
    return code


# --- contacts -----------------------------------------------------------------------------

_CONTACT_FIELDS: dict[str, Checker] = {
    "name": _text(256, allow_empty=True),
    "phone": _optional(_text(64)),
    "email": _optional(_email),
    "custom_fields": _mapping,
    "tags": _strings(64),
}
_CONTACT_UPDATE_FIELDS = {**_CONTACT_FIELDS, "blacklisted": _boolean}


def contact_dict(c: m.Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "region": c.region,
        "timezone": c.timezone,
        "custom_fields": dict(c.custom_fields or {}),
        "tags": list(c.tags or []),
        "blacklisted": c.blacklisted,
        "created_at": _iso(c.created_at),
    }


async def contact_detail(session: AsyncSession, c: m.Contact) -> dict[str, Any]:
    body = contact_dict(c)
    identities = await session.scalars(
        select(m.ContactIdentity).where(m.ContactIdentity.contact_id == c.id).order_by(m.ContactIdentity.id)
    )
    body["identities"] = [{"id": i.id, "kind": i.kind, "value": i.value} for i in identities]
    return body


async def search_contacts(
    session: AsyncSession, who: Principal, q: str = "", *, limit: int
) -> list[m.Contact]:
    _deny_auditor(who)
    stmt = (
        select(m.Contact)
        .where(*await contact_scope_filter(session, who))
        .order_by(m.Contact.id.desc())
        .limit(clamp_limit(limit))
    )
    q = q.strip()
    if q:
        conds = [
            m.Contact.name.icontains(q, autoescape=True),
            m.Contact.phone.icontains(q, autoescape=True),
            m.Contact.email.icontains(q, autoescape=True),
        ]
        with contextlib.suppress(InvalidInput):  # not a phone number: text match only
            conds.append(m.Contact.phone == contacts.normalise_phone(q))
        stmt = stmt.where(or_(*conds))
    return list(await session.scalars(stmt))


async def get_contact(session: AsyncSession, who: Principal, contact_id: int) -> m.Contact:
    _deny_auditor(who)
    return await access_contact(session, who, contact_id)


async def _claim_identity(
    session: AsyncSession, contact: m.Contact, kind: str, old: str | None, new: str | None
) -> None:
    """Keep the contact findable by its phone/email when a customer writes or calls in."""
    if old == new:
        return
    if old is not None:
        await session.execute(
            delete(m.ContactIdentity).where(
                m.ContactIdentity.contact_id == contact.id,
                m.ContactIdentity.kind == kind,
                m.ContactIdentity.value == old,
            )
        )
    if new is None:
        return
    owner = await session.scalar(
        select(m.ContactIdentity.contact_id).where(
            m.ContactIdentity.kind == kind, m.ContactIdentity.value == new
        )
    )
    if owner is None:
        session.add(m.ContactIdentity(contact_id=contact.id, kind=kind, value=new))
    elif owner != contact.id:
        raise Conflict("{field} {new} already belongs to contact {owner}", new=new, owner=owner, field=kind)


async def _apply_contact(session: AsyncSession, contact: m.Contact, clean: dict[str, Any]) -> None:
    old_phone, old_email = contact.phone, contact.email
    if "phone" in clean:
        phone = clean.pop("phone")
        if phone is None:
            contact.phone = contact.region = contact.timezone = None
        else:
            contacts.apply_phone(contact, phone)
    _apply(contact, clean)
    await _flush(session)
    await _claim_identity(session, contact, "phone", old_phone, contact.phone)
    await _claim_identity(session, contact, "email", old_email, contact.email)


async def create_contact(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Contact:
    require_role(who, ADMIN, SUPERVISOR, OPERATOR)
    clean = _clean(data, _CONTACT_FIELDS)
    if not (clean.get("name") or clean.get("phone") or clean.get("email")):
        raise InvalidInput("give the contact a name, phone or email", field="name")
    contact = _new(m.Contact)
    session.add(contact)
    await _apply_contact(session, contact, clean)
    await _flush(session)
    _audit(session, who, "contact.create", "contact", contact.id, data)
    return contact


async def update_contact(
    session: AsyncSession, who: Principal, contact_id: int, data: Mapping[str, Any]
) -> m.Contact:
    require_role(who, ADMIN, SUPERVISOR, OPERATOR)
    contact = await access_contact(session, who, contact_id, for_update=True)
    clean = _clean(data, _CONTACT_UPDATE_FIELDS)
    if clean.get("blacklisted") is False and contact.blacklisted and who.role == OPERATOR:
        # The same rule as the operator window's blacklist action.
        raise PermissionDenied("only supervisors take a contact off the blacklist")
    await _apply_contact(session, contact, clean)
    await _flush(session)
    _audit(session, who, "contact.update", "contact", contact.id, data)
    return contact


# --- inboxes ------------------------------------------------------------------------------

_INBOX_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "channel": _text(32, no_spaces=True),
    "queue_id": _OPTIONAL_ID,
    "config": _mapping,
    "active": _boolean,
}


def inbox_dict(i: m.Inbox, *, show_secrets: bool) -> dict[str, Any]:
    """Never the encrypted secret; tokens inside ``config`` only for admins."""
    config = dict(i.config or {})
    return {
        "id": i.id,
        "name": i.name,
        "channel": i.channel,
        "queue_id": i.queue_id,
        "public_token": i.public_token,
        "config": config if show_secrets else _masked(config),
        "active": i.active,
    }


async def rotate_inbox_secret(session: AsyncSession, who: Principal, inbox_id: int, secret_key: str) -> str:
    """A new widget identity secret (the HMAC key sites sign user ids with), stored encrypted
    and returned once; the previous one stops working at once.

    Other channels keep their own credentials in the same column (a Telegram bot token), which a
    rotation would destroy, so they are refused."""
    require_role(who, ADMIN)
    inbox = await _get(session, m.Inbox, inbox_id, "inbox")
    if inbox.channel != "widget":
        raise InvalidInput(
            "only web chat inboxes have an identity secret; '{name}' is a {channel} "
            "inbox whose stored credentials a rotation would destroy",
            name=inbox.name,
            channel=inbox.channel,
            field="channel",
        )
    secret = secrets.token_urlsafe(32)
    inbox.secret_encrypted = crypto.encrypt(secret_key, secret)
    _audit(session, who, "inbox.rotate_secret", "inbox", inbox.id, {})
    return secret


async def list_inboxes(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Inbox]:
    require_role(who, ADMIN, SUPERVISOR)
    return list(await session.scalars(select(m.Inbox).order_by(m.Inbox.id).limit(clamp_limit(limit))))


async def get_inbox(session: AsyncSession, who: Principal, inbox_id: int) -> m.Inbox:
    require_role(who, ADMIN, SUPERVISOR)
    return await _get(session, m.Inbox, inbox_id, "inbox")


async def _check_inbox(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "name" in clean:
        await _ensure_unique(
            session,
            m.Inbox.name,
            m.Inbox.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("an inbox named '{value}' already exists"),
        )
    if "queue_id" in clean:
        await _referenced(session, m.Queue, clean["queue_id"], "queue_id", "queue")


async def create_inbox(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Inbox:
    require_role(who, ADMIN)
    clean = _clean(data, _INBOX_FIELDS, ("name", "channel"))
    await _check_inbox(session, clean, None)
    inbox = _new(m.Inbox)
    _apply(inbox, clean)
    inbox.public_token = secrets.token_urlsafe(24)
    session.add(inbox)
    await _flush(session)
    _audit(session, who, "inbox.create", "inbox", inbox.id, data)
    return inbox


async def update_inbox(
    session: AsyncSession, who: Principal, inbox_id: int, data: Mapping[str, Any]
) -> m.Inbox:
    require_role(who, ADMIN)
    inbox = await _get(session, m.Inbox, inbox_id, "inbox")
    clean = _clean(data, _INBOX_FIELDS)
    await _check_inbox(session, clean, inbox.id)
    _apply(inbox, clean)
    await _flush(session)
    _audit(session, who, "inbox.update", "inbox", inbox.id, data)
    return inbox


async def delete_inbox(session: AsyncSession, who: Principal, inbox_id: int) -> None:
    """Its conversations stay, detached from the deleted channel instance."""
    require_role(who, ADMIN)
    inbox = await _get(session, m.Inbox, inbox_id, "inbox")
    await session.delete(inbox)
    await _flush(session)
    _audit(session, who, "inbox.delete", "inbox", inbox_id, {"name": inbox.name})


# --- webhooks -----------------------------------------------------------------------------


def _filter(field: str, value: Any) -> dict[str, Any]:
    flt = _mapping(field, value)
    out: dict[str, Any] = {}
    for key, item in flt.items():
        if key == "queue_ids":
            out[key] = _id_list(f"{field}.queue_ids", item)
        elif key == "channels":
            out[key] = _strings(32)(f"{field}.channels", item)
        else:
            out[key] = item  # validate_subscription names unknown keys
    return out


_WEBHOOK_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "url": _text(2048),
    "secret": _text(128, strip=False),
    "event_types": _strings(64),
    "filter": _filter,
    "active": _boolean,
}


def webhook_dict(w: m.WebhookSubscription) -> dict[str, Any]:
    """Without the secret: it is shown once, when the subscription is created."""
    return {
        "id": w.id,
        "name": w.name,
        "url": w.url,
        "event_types": list(w.event_types or []),
        "filter": dict(w.filter or {}),
        "active": w.active,
        "created_at": _iso(w.created_at),
    }


async def _check_webhook(
    session: AsyncSession,
    clean: Mapping[str, Any],
    hook: m.WebhookSubscription,
    own_id: int | None,
) -> None:
    if "secret" in clean and len(clean["secret"]) < MIN_WEBHOOK_SECRET:
        raise InvalidInput(
            "secret must be at least {min_webhook_secret} characters (or leave it out and one is generated)",
            min_webhook_secret=MIN_WEBHOOK_SECRET,
            field="secret",
        )
    webhooks.validate_subscription(
        clean.get("url", hook.url),
        clean.get("event_types", hook.event_types or []),
        clean.get("filter", hook.filter or {}),
    )
    for i, qid in enumerate(clean.get("filter", {}).get("queue_ids", [])):
        await _referenced(session, m.Queue, qid, f"filter.queue_ids[{i}]", "queue")
    if "name" in clean:
        await _ensure_unique(
            session,
            m.WebhookSubscription.name,
            m.WebhookSubscription.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a webhook named '{value}' already exists"),
        )


async def list_webhooks(session: AsyncSession, who: Principal, *, limit: int) -> list[m.WebhookSubscription]:
    require_role(who, ADMIN)
    return list(
        await session.scalars(
            select(m.WebhookSubscription).order_by(m.WebhookSubscription.id).limit(clamp_limit(limit))
        )
    )


async def create_webhook(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> tuple[m.WebhookSubscription, str]:
    """Returns the subscription and its secret, which the caller shows this once."""
    require_role(who, ADMIN)
    clean = _clean(data, _WEBHOOK_FIELDS, ("name", "url"))
    hook = _new(m.WebhookSubscription)
    await _check_webhook(session, clean, hook, None)
    clean.setdefault("secret", secrets.token_urlsafe(32))
    _apply(hook, clean)
    session.add(hook)
    await _flush(session)
    _audit(session, who, "webhook.create", "webhook", hook.id, data)
    return hook, hook.secret


async def update_webhook(
    session: AsyncSession, who: Principal, webhook_id: int, data: Mapping[str, Any]
) -> m.WebhookSubscription:
    require_role(who, ADMIN)
    hook = await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    clean = _clean(data, _WEBHOOK_FIELDS)
    await _check_webhook(session, clean, hook, hook.id)
    _apply(hook, clean)
    await _flush(session)
    _audit(session, who, "webhook.update", "webhook", hook.id, data)
    return hook


async def delete_webhook(session: AsyncSession, who: Principal, webhook_id: int) -> None:
    """Its deliveries go with it; pending ones are simply not sent."""
    require_role(who, ADMIN)
    hook = await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    await session.delete(hook)
    await _flush(session)
    _audit(session, who, "webhook.delete", "webhook", webhook_id, {"name": hook.name})


async def list_deliveries(
    session: AsyncSession, who: Principal, webhook_id: int, *, state: str | None, limit: int
) -> list[m.WebhookDelivery]:
    require_role(who, ADMIN)
    await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    stmt = (
        select(m.WebhookDelivery)
        .where(m.WebhookDelivery.subscription_id == webhook_id)
        .order_by(m.WebhookDelivery.id.desc())
        .limit(clamp_limit(limit))
    )
    if state is not None:
        stmt = stmt.where(m.WebhookDelivery.state == _choice(DELIVERY_STATES)("state", state))
    return list(await session.scalars(stmt))


async def replay_delivery(session: AsyncSession, who: Principal, delivery_id: int) -> m.WebhookDelivery:
    """Marks the delivery pending again; the caller enqueues it once this commits."""
    require_role(who, ADMIN)
    row = await webhooks.replay(session, delivery_id)
    _audit(session, who, "webhook_delivery.replay", "webhook_delivery", row.id, {})
    return row


# --- audit log and API tokens -------------------------------------------------------------


def audit_dict(a: m.AuditLog) -> dict[str, Any]:
    return {
        "id": a.id,
        "user_id": a.user_id,
        "action": a.action,
        "object_type": a.object_type,
        "object_id": a.object_id,
        "input": a.input,
        "result": a.result,
        "ip": a.ip,
        "created_at": _iso(a.created_at),
    }


async def list_audit(
    session: AsyncSession,
    who: Principal,
    *,
    user_id: int | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[m.AuditLog]:
    """Newest first; ``before_id`` pages back. ``action`` may end in ``.*`` for a prefix."""
    require_role(who, AUDITOR, ADMIN)
    stmt = select(m.AuditLog).order_by(m.AuditLog.id.desc()).limit(clamp_limit(limit))
    if user_id is not None:
        stmt = stmt.where(m.AuditLog.user_id == user_id)
    if action:
        if action.endswith(".*"):
            stmt = stmt.where(m.AuditLog.action.startswith(action[:-1], autoescape=True))
        else:
            stmt = stmt.where(m.AuditLog.action == action)
    if before_id is not None:
        stmt = stmt.where(m.AuditLog.id < before_id)
    return list(await session.scalars(stmt))


def token_dict(t: m.ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "user_id": t.user_id,
        "name": t.name,
        "created_at": _iso(t.created_at),
        "last_used_at": _iso(t.last_used_at),
        "revoked": t.revoked,
    }


async def list_tokens(session: AsyncSession, who: Principal, *, limit: int) -> list[m.ApiToken]:
    """Own tokens; admins see everyone's, to find and revoke a leaked one."""
    stmt = select(m.ApiToken).order_by(m.ApiToken.id).limit(clamp_limit(limit))
    if not who.is_admin:
        stmt = stmt.where(m.ApiToken.user_id == who.id)
    return list(await session.scalars(stmt))


async def revoke_token(session: AsyncSession, who: Principal, token_id: int) -> m.ApiToken:
    token = await session.get(m.ApiToken, token_id)
    if token is None or (not who.is_admin and token.user_id != who.id):
        raise NotFound("API token {token_id} not found", token_id=token_id)
    token.revoked = True
    await _flush(session)
    _audit(session, who, "token.revoke", "api_token", token.id, {"name": token.name})
    return token


# --- canned replies -----------------------------------------------------------------------
# Global (no queue) and per-queue replies; personal ones (``owner_user_id``) are the
# operators' own and are managed elsewhere, so these functions never touch them.

PLACEHOLDERS = ("contact.name", "contact.email", "contact.phone", "operator.name", "queue.name")
"""What a canned reply may say in ``{{...}}``; the composer fills these in."""
MAX_CANNED_BODY = 4000
_SHORTCUT = re.compile(r"[a-z0-9_-]{1,32}")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _shortcut(field: str, value: Any) -> str:
    text: str = _text(32)(field, value)
    if not _SHORTCUT.fullmatch(text):
        raise InvalidInput(
            "{field} may hold lowercase latin letters, digits, '_' and '-' only (got '{text}')",
            text=text,
            field=field,
        )
    return text


def _canned_body(field: str, value: Any) -> str:
    text: str = _text(MAX_CANNED_BODY, strip=False)(field, value)
    if not text.strip():
        raise InvalidInput("{field} must not be empty", field=field)
    for found in _PLACEHOLDER.finditer(text):
        name = found.group(1).strip()
        if name not in PLACEHOLDERS:
            raise InvalidInput(
                "unknown placeholder {{{{{name}}}}}; use one of: {names}",
                name=name,
                names=", ".join(f"{{{{{p}}}}}" for p in PLACEHOLDERS),
                field=field,
            )
    return text


_CANNED_FIELDS: dict[str, Checker] = {
    "queue_id": _OPTIONAL_ID,
    "shortcut": _shortcut,
    "title": _text(128),
    "body": _canned_body,
}


def canned_reply_dict(c: m.CannedReply) -> dict[str, Any]:
    return {
        "id": c.id,
        "queue_id": c.queue_id,
        "shortcut": c.shortcut,
        "title": c.title,
        "body": c.body,
        "created_at": _iso(c.created_at),
    }


async def _managed_queue(session: AsyncSession, who: Principal, queue_id: int | None, field: str) -> None:
    """The queue a shared reply or card field belongs to: admins any (or none, i.e. global),
    supervisors one of their queues; a queue outside the scope reads as missing."""
    require_role(who, ADMIN, SUPERVISOR)
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
    require_role(who, ADMIN, SUPERVISOR, AUDITOR)
    if who.role in (ADMIN, AUDITOR):
        return None
    return await visible_queue_ids(session, who) or set()


async def list_canned_replies(
    session: AsyncSession, who: Principal, *, queue_id: int | None = None, limit: int
) -> list[m.CannedReply]:
    """Shared replies (global and per queue); supervisors see the global ones and their queues'."""
    visible = await _readable_scope(session, who)
    stmt = (
        select(m.CannedReply)
        .where(m.CannedReply.owner_user_id.is_(None))
        .order_by(m.CannedReply.queue_id.nulls_first(), m.CannedReply.shortcut)
        .limit(clamp_limit(limit))
    )
    if visible is not None:
        stmt = stmt.where(or_(m.CannedReply.queue_id.is_(None), m.CannedReply.queue_id.in_(visible)))
    if queue_id is not None:
        stmt = stmt.where(m.CannedReply.queue_id == queue_id)
    return list(await session.scalars(stmt))


async def get_canned_reply(session: AsyncSession, who: Principal, reply_id: int) -> m.CannedReply:
    visible = await _readable_scope(session, who)
    reply = await session.get(m.CannedReply, reply_id)
    if (
        reply is None
        or reply.owner_user_id is not None
        or (visible is not None and reply.queue_id is not None and reply.queue_id not in visible)
    ):
        raise NotFound("canned reply {reply_id} not found", reply_id=reply_id)
    return reply


async def _check_canned(
    session: AsyncSession, who: Principal, clean: Mapping[str, Any], reply: m.CannedReply, own_id: int | None
) -> None:
    queue_id = clean.get("queue_id", reply.queue_id)
    if "queue_id" in clean:
        await _managed_queue(session, who, queue_id, "queue_id")
    shortcut = clean.get("shortcut", reply.shortcut)
    if "shortcut" in clean or "queue_id" in clean:
        stmt = select(m.CannedReply.id).where(
            m.CannedReply.owner_user_id.is_(None),
            m.CannedReply.shortcut == shortcut,
            m.CannedReply.queue_id.is_(None) if queue_id is None else m.CannedReply.queue_id == queue_id,
        )
        if own_id is not None:
            stmt = stmt.where(m.CannedReply.id != own_id)
        if await session.scalar(stmt.limit(1)) is not None:
            where = "global replies" if queue_id is None else f"queue {queue_id}"
            raise Conflict(
                "the shortcut '{shortcut}' is already used in {where}",
                shortcut=shortcut,
                where=where,
                field="shortcut",
            )


async def _managed_reply(session: AsyncSession, who: Principal, reply_id: int) -> m.CannedReply:
    require_role(who, ADMIN, SUPERVISOR)
    reply = await get_canned_reply(session, who, reply_id)
    await _managed_queue(session, who, reply.queue_id, "queue_id")
    return reply


async def create_canned_reply(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.CannedReply:
    require_role(who, ADMIN, SUPERVISOR)
    clean = _clean(data, _CANNED_FIELDS, ("shortcut", "title", "body"))
    clean.setdefault("queue_id", None)
    reply = _new(m.CannedReply)
    await _check_canned(session, who, clean, reply, None)
    _apply(reply, clean)
    session.add(reply)
    await _flush(session)
    _audit(session, who, "canned_reply.create", "canned_reply", reply.id, data)
    return reply


async def update_canned_reply(
    session: AsyncSession, who: Principal, reply_id: int, data: Mapping[str, Any]
) -> m.CannedReply:
    reply = await _managed_reply(session, who, reply_id)
    clean = _clean(data, _CANNED_FIELDS)
    await _check_canned(session, who, clean, reply, reply.id)
    _apply(reply, clean)
    await _flush(session)
    _audit(session, who, "canned_reply.update", "canned_reply", reply.id, data)
    return reply


async def delete_canned_reply(session: AsyncSession, who: Principal, reply_id: int) -> None:
    reply = await _managed_reply(session, who, reply_id)
    await session.delete(reply)
    await _flush(session)
    _audit(session, who, "canned_reply.delete", "canned_reply", reply_id, {"shortcut": reply.shortcut})


# --- customer card fields -----------------------------------------------------------------

CARD_FIELD_KINDS = ("text", "number", "email", "phone", "date", "select", "checkbox")
_CARD_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _card_key(field: str, value: Any) -> str:
    text: str = _text(64)(field, value)
    if not _CARD_KEY.fullmatch(text):
        raise InvalidInput(
            "{field} starts with a lowercase latin letter, then letters, digits or '_' (got '{text}')",
            text=text,
            field=field,
        )
    return text


_CARD_FIELDS: dict[str, Checker] = {
    "queue_id": _OPTIONAL_ID,
    "key": _card_key,
    "label": _text(128),
    "label_ru": _text(128, allow_empty=True),
    "kind": _choice(CARD_FIELD_KINDS),
    "options": _strings(128),
    "required": _boolean,
    "editable": _boolean,
    "position": _integer(0),
}


def card_field_dict(f: m.CardField) -> dict[str, Any]:
    body = _columns(f)
    body["options"] = list(f.options or [])
    return body


async def list_card_fields(
    session: AsyncSession, who: Principal, *, queue_id: int | None = None, limit: int
) -> list[m.CardField]:
    """Fields for every queue and per queue; supervisors see the shared ones and their queues'."""
    visible = await _readable_scope(session, who)
    stmt = (
        select(m.CardField)
        .order_by(m.CardField.queue_id.nulls_first(), m.CardField.position, m.CardField.id)
        .limit(clamp_limit(limit))
    )
    if visible is not None:
        stmt = stmt.where(or_(m.CardField.queue_id.is_(None), m.CardField.queue_id.in_(visible)))
    if queue_id is not None:
        stmt = stmt.where(m.CardField.queue_id == queue_id)
    return list(await session.scalars(stmt))


async def get_card_field(session: AsyncSession, who: Principal, field_id: int) -> m.CardField:
    visible = await _readable_scope(session, who)
    row = await session.get(m.CardField, field_id)
    if row is None or (visible is not None and row.queue_id is not None and row.queue_id not in visible):
        raise NotFound("card field {field_id} not found", field_id=field_id)
    return row


async def _check_card_field(
    session: AsyncSession, who: Principal, clean: Mapping[str, Any], row: m.CardField, own_id: int | None
) -> None:
    """Values live in ``Contact.custom_fields[key]``, so a key names one field per queue: a
    queue's field may not reuse a global key (nor a global one any queue's key)."""
    if own_id is not None and "key" in clean and clean["key"] != row.key:
        raise InvalidInput(
            "a card field key can't change once created (contacts keep values under it); "
            "create a new field instead",
            field="key",
        )
    queue_id = clean.get("queue_id", row.queue_id)
    if "queue_id" in clean:
        await _managed_queue(session, who, queue_id, "queue_id")
    if "key" in clean or "queue_id" in clean:
        key = clean.get("key", row.key)
        stmt = select(m.CardField.queue_id).where(m.CardField.key == key)
        if queue_id is not None:
            stmt = stmt.where(or_(m.CardField.queue_id.is_(None), m.CardField.queue_id == queue_id))
        if own_id is not None:
            stmt = stmt.where(m.CardField.id != own_id)
        clash = (await session.execute(stmt.limit(1))).first()
        if clash is not None:
            where = "every queue" if clash[0] is None else f"queue {clash[0]}"
            raise Conflict(
                "a card field with key '{key}' already exists for {where}", key=key, where=where, field="key"
            )
    kind = clean.get("kind", row.kind)
    options = clean.get("options", row.options or [])
    if kind == "select" and not options:
        raise InvalidInput("a select field needs at least one option", field="options")
    if kind != "select" and options and "options" in clean:
        raise InvalidInput("only select fields have options (this one is {kind})", kind=kind, field="options")


async def _managed_card_field(session: AsyncSession, who: Principal, field_id: int) -> m.CardField:
    require_role(who, ADMIN, SUPERVISOR)
    row = await get_card_field(session, who, field_id)
    await _managed_queue(session, who, row.queue_id, "queue_id")
    return row


async def create_card_field(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.CardField:
    require_role(who, ADMIN, SUPERVISOR)
    clean = _clean(data, _CARD_FIELDS, ("key", "label"))
    clean.setdefault("queue_id", None)
    row = _new(m.CardField)
    await _check_card_field(session, who, clean, row, None)
    _apply(row, clean)
    if row.kind != "select":
        row.options = []
    session.add(row)
    await _flush(session)
    _audit(session, who, "card_field.create", "card_field", row.id, data)
    return row


async def update_card_field(
    session: AsyncSession, who: Principal, field_id: int, data: Mapping[str, Any]
) -> m.CardField:
    row = await _managed_card_field(session, who, field_id)
    clean = _clean(data, _CARD_FIELDS)
    await _check_card_field(session, who, clean, row, row.id)
    _apply(row, clean)
    if row.kind != "select":
        row.options = []
    await _flush(session)
    _audit(session, who, "card_field.update", "card_field", row.id, data)
    return row


async def delete_card_field(session: AsyncSession, who: Principal, field_id: int) -> None:
    """Contacts keep their stored values; only the field's definition goes."""
    row = await _managed_card_field(session, who, field_id)
    await session.delete(row)
    await _flush(session)
    _audit(session, who, "card_field.delete", "card_field", field_id, {"key": row.key})
