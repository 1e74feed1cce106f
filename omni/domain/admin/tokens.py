"""The audit log (read-only) and API tokens (create for a user, list, revoke)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    _ID,
    ADMIN,
    AUDITOR,
    _audit,
    _clean,
    _flush,
    _iso,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
    do_create_api_token,
)
from omni.domain.errors import InvalidInput, NotFound

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
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
) -> list[m.AuditLog]:
    """Newest first; ``before_id`` pages back. ``action`` may end in ``.*`` for a prefix.

    ``object_type``/``object_id`` pick the entity (a webhook, user 7); ``since`` (inclusive)
    and ``until`` (exclusive) bound the time; a range that ends before it starts is refused on
    ``until`` rather than answered with an empty page that looks like "nothing happened".
    """
    check_role(who, AUDITOR, ADMIN)
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("{field} needs a time zone (e.g. Z or +03:00)", field=name)
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the end of the range must be after its start", field="until")
    stmt = select(m.AuditLog).order_by(m.AuditLog.id.desc()).limit(clamp_limit(limit))
    if user_id is not None:
        stmt = stmt.where(m.AuditLog.user_id == user_id)
    if object_type:
        stmt = stmt.where(m.AuditLog.object_type == object_type)
    if object_id:
        stmt = stmt.where(m.AuditLog.object_id == object_id)
    if since is not None:
        stmt = stmt.where(m.AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(m.AuditLog.created_at < until)
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


async def check_revoke_token(session: AsyncSession, who: Principal, token_id: int) -> m.ApiToken:
    token = await session.get(m.ApiToken, token_id)
    if token is None or (not who.is_admin and token.user_id != who.id):
        raise NotFound("API token {token_id} not found", token_id=token_id)
    token.revoked = True
    await _flush(session)
    _audit(session, who, "token.revoke", "api_token", token.id, {"name": token.name})
    _changed(session, "token", token.id, "updated")
    return token


def parse_instant(field: str, text: str | None) -> datetime | None:
    """An ISO 8601 instant with its offset (``2026-11-30T09:00:00+03:00``, ``...Z``) as UTC."""
    if text is None or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
        if when.tzinfo is None:
            raise InvalidInput("{field} needs a time zone (e.g. Z or +03:00)", field=field)
        return when.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            "{field} must be a date and time like 2026-11-30T09:00:00+03:00", field=field
        ) from exc


async def audit_object_types(session: AsyncSession, who: Principal) -> list[str]:
    """The kinds of entity the log mentions: the choices of the viewer's entity filter."""
    check_role(who, AUDITOR, ADMIN)
    stmt = select(m.AuditLog.object_type).where(m.AuditLog.object_type != "").distinct()
    return sorted(await session.scalars(stmt))


_TOKEN_FIELDS = {"name": _text(128), "user_id": _ID}


async def check_create_token(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> tuple[m.ApiToken, str]:
    """An admin issues a token for an (integration) user; the secret is returned this once.

    ``POST /api/v1/me/tokens`` stays the way anyone makes their own; this one lets an admin
    equip a service account without signing in as it. The token acts with that user's role.
    """
    check_role(who, ADMIN)
    clean = _clean(data, _TOKEN_FIELDS, ("name", "user_id"))
    user = await session.get(m.User, clean["user_id"])
    if user is None or not user.is_active:
        raise InvalidInput("choose an active user", field="user_id")
    row, secret = await do_create_api_token(session, user, clean["name"])
    await _flush(session)
    _audit(session, who, "token.create", "api_token", row.id, {"name": row.name, "user_id": user.id})
    _changed(session, "token", row.id, "created")
    return row, secret
