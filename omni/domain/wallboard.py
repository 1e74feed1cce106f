"""Wallboards: read-only links to big per-queue KPIs on a wall screen, with no operator login.

An admin creates a token (a name, the queues it shows or all, an optional expiry, the SL %
target its colours use); the secret is shown once and only its SHA-256 is stored, as for API
tokens. The page and its socket accept only a token that exists, is not revoked and has not
expired (``token_for``); a revoked or expired token stops working at once for new connections,
and the ``/wallboard`` namespace rechecks its live sockets every few seconds.

What a wallboard shows is built from ``monitoring.queue_stats`` (the live monitor's numbers and
definitions, in the install's time zone) and nothing else: queue names and counts, never a
conversation, a contact or an operator's name (``board``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, monitoring
from omni.domain.admin.changes import _changed
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.reports.config import get_config

TOKEN_PREFIX = "wb_"  # noqa: S105  # a marker that tells the secret apart, not a secret
MAX_NAME = 128
SL_AMBER_MARGIN = 10
"""SL % from ``target - SL_AMBER_MARGIN`` up to the target is amber, below it red."""
BUSY = (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP)
BOARD_ROLE_ID = 0
"""The id of the synthetic admin principal ``board`` reads ``queue_stats`` as (no such user)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def is_live(row: m.WallboardToken, now: datetime) -> bool:
    """Not revoked and not expired at ``now``."""
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def token_dict(row: m.WallboardToken, now: datetime | None = None) -> dict[str, Any]:
    """The admin's view of a token; the secret is never part of it (shown once at creation)."""
    now = now or datetime.now(UTC)
    return {
        "id": row.id,
        "name": row.name,
        "queue_ids": list(row.queue_ids) if row.queue_ids is not None else None,
        "sl_target_pct": row.sl_target_pct,
        "expires_at": _iso(row.expires_at),
        "created_at": _iso(row.created_at),
        "created_by": row.created_by,
        "last_used_at": _iso(row.last_used_at),
        "revoked_at": _iso(row.revoked_at),
        "active": is_live(row, now),
    }


def check_admin(who: Principal) -> None:
    if not who.is_admin:
        raise PermissionDenied("only an admin manages wallboards")


@dataclass(frozen=True, slots=True)
class NewToken:
    row: m.WallboardToken
    secret: str
    """Shown to the admin once; only its digest is stored."""


def _parse_expiry(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidInput(
                "{field}: not a date and time (YYYY-MM-DDTHH:MM)", field="expires_at"
            ) from None
    if parsed.tzinfo is None:
        raise InvalidInput("{field}: give a time zone (e.g. +03:00 or Z)", field="expires_at")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("{field}: not a date and time (YYYY-MM-DDTHH:MM)", field="expires_at") from None


async def check_create_token(session: AsyncSession, who: Principal, data: dict[str, Any]) -> NewToken:
    """Create a wallboard token from ``{name, queue_ids (None = all), expires_at, sl_target_pct}``.

    Every problem is reported at once (``errors``), each with its field, and nothing is stored."""
    check_admin(who)
    errors: list[InvalidInput] = []
    name = str(data.get("name") or "").strip()
    if not name:
        errors.append(InvalidInput("{field} is required", field="name"))
    elif len(name) > MAX_NAME:
        errors.append(InvalidInput("{field} is longer than {max} characters", field="name", max=MAX_NAME))
    queue_ids = data.get("queue_ids")
    if queue_ids is not None:
        wanted = sorted({int(q) for q in queue_ids})
        found = (
            set(await session.scalars(select(m.Queue.id).where(m.Queue.id.in_(wanted)))) if wanted else set()
        )
        missing = [q for q in wanted if q not in found]
        if not wanted:
            errors.append(InvalidInput("{field}: pick one or more queues, or all queues", field="queue_ids"))
        elif missing:
            errors.append(
                InvalidInput("{field}: no queue {ids}", field="queue_ids", ids=", ".join(map(str, missing)))
            )
        queue_ids = wanted
    target = data.get("sl_target_pct", 80)
    if target is None:
        target = 80
    if not isinstance(target, int) or isinstance(target, bool) or not 1 <= target <= 100:
        errors.append(
            InvalidInput("{field} must be between {min} and {max}", field="sl_target_pct", min=1, max=100)
        )
    expires_at: datetime | None = None
    try:
        expires_at = _parse_expiry(data.get("expires_at"))
    except InvalidInput as exc:
        errors.append(exc)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        errors.append(InvalidInput("{field} must be in the future", field="expires_at"))
    if errors:
        first = errors[0]
        raise InvalidInput(first.template, field=first.field, errors=errors, **first.params)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = m.WallboardToken(
        name=name,
        token_hash=_digest(secret),
        queue_ids=queue_ids,
        sl_target_pct=int(target),
        expires_at=expires_at,
        created_by=who.id,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        who,
        "wallboard.create",
        object_type="wallboard",
        object_id=row.id,
        data={"name": name, "queue_ids": queue_ids, "expires_at": _iso(expires_at)},
    )
    _changed(session, "wallboard", row.id, "created")
    return NewToken(row, secret)


async def list_tokens(session: AsyncSession, who: Principal) -> list[m.WallboardToken]:
    check_admin(who)
    return list(await session.scalars(select(m.WallboardToken).order_by(m.WallboardToken.id)))


async def access_token(session: AsyncSession, who: Principal, token_id: int) -> m.WallboardToken:
    check_admin(who)
    row = await session.get(m.WallboardToken, token_id)
    if row is None:
        raise NotFound("wallboard {token_id} not found", token_id=token_id)
    return row


async def check_revoke_token(session: AsyncSession, who: Principal, token_id: int) -> m.WallboardToken:
    """Revoke: new page loads and sockets are refused at once; live ones are dropped by the
    ``/wallboard`` namespace's next check (``WallboardNamespace.CHECK_SECONDS``)."""
    row = await access_token(session, who, token_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await session.flush()
        audit.record(
            session,
            who,
            "wallboard.revoke",
            object_type="wallboard",
            object_id=row.id,
            data={"name": row.name},
        )
        _changed(session, "wallboard", row.id, "updated")
    return row


async def token_for(
    session: AsyncSession, secret: str, now: datetime | None = None
) -> m.WallboardToken | None:
    """The live token with this secret (not revoked, not expired), its use recorded; else ``None``."""
    now = now or datetime.now(UTC)
    if not secret or len(secret) > 256:
        return None
    row = await session.scalar(select(m.WallboardToken).where(m.WallboardToken.token_hash == _digest(secret)))
    if row is None or not is_live(row, now):
        return None
    row.last_used_at = now
    return row


async def live_ids(session: AsyncSession, token_ids: set[int], now: datetime | None = None) -> set[int]:
    """Which of these tokens still work (the namespace's periodic check of its sockets)."""
    if not token_ids:
        return set()
    now = now or datetime.now(UTC)
    rows = await session.scalars(select(m.WallboardToken).where(m.WallboardToken.id.in_(token_ids)))
    return {r.id for r in rows if is_live(r, now)}


def sl_level(pct: float | None, target: int) -> str:
    """``green`` at or above the target, ``amber`` within ``SL_AMBER_MARGIN`` below, else ``red``;
    ``none`` before the day's first offered contact."""
    if pct is None:
        return "none"
    if pct >= target:
        return "green"
    if pct >= target - SL_AMBER_MARGIN:
        return "amber"
    return "red"


async def _available(session: AsyncSession, queue_ids: list[int]) -> dict[int, int]:
    """Per queue: member operators whose chosen status is an *available* one and who are not
    ringing, talking or wrapping up right now (free to take the next contact)."""
    counts = dict.fromkeys(queue_ids, 0)
    if not queue_ids:
        return counts
    rows = await session.execute(
        select(m.QueueMember.queue_id, m.OperatorPresence.effective_code)
        .join(m.User, m.User.id == m.QueueMember.user_id)
        .join(m.OperatorPresence, m.OperatorPresence.user_id == m.QueueMember.user_id)
        .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
        .where(
            m.QueueMember.queue_id.in_(queue_ids),
            m.User.is_active.is_(True),
            m.User.role == m.Role.OPERATOR,
            m.OperatorStatus.kind == m.StatusKind.AVAILABLE,
        )
    )
    for queue_id, activity in rows:
        if activity not in BUSY:
            counts[queue_id] += 1
    return counts


BOARD_FIELDS = (
    "id",
    "name",
    "sla_seconds",
    "waiting",
    "longest_wait_seconds",
    "longest_wait_since",
    "longest_wait_level",
    "thresholds",
    "in_service",
    "answered_today",
    "abandoned_today",
    "service_level_pct",
    "asa_seconds",
)
"""What a wallboard takes from a ``queue_stats`` row: names and numbers only."""


async def board(session: AsyncSession, row: m.WallboardToken, now: datetime | None = None) -> dict[str, Any]:
    """The wall screen's numbers for this token's queues, "today" in the install's zone.

    ``queue_stats`` is read as a synthetic admin (every queue) and then narrowed to the token's
    queues: a wallboard has no user, its scope is the token's."""
    now = now or datetime.now(UTC)
    config = await get_config(session)
    reader = Principal(id=BOARD_ROLE_ID, username="wallboard", role=m.Role.ADMIN)
    stats = await monitoring.queue_stats(session, reader, now, tz=config.tz)
    if row.queue_ids is not None:
        allowed = {int(q) for q in row.queue_ids}
        stats = [q for q in stats if q["id"] in allowed]
    available = await _available(session, [q["id"] for q in stats])
    queues = []
    for q in stats:
        item = {k: q[k] for k in BOARD_FIELDS}
        item["available"] = available.get(q["id"], 0)
        item["service_level_level"] = sl_level(q["service_level_pct"], row.sl_target_pct)
        queues.append(item)
    return {
        "name": row.name,
        "now": now.isoformat(),
        "day_start": monitoring.day_start(now, config.tz).isoformat(),
        "timezone": config.timezone,
        "sl_target_pct": row.sl_target_pct,
        "queues": queues,
    }
