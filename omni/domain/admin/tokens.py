"""The audit log (read-only) and API tokens (list, revoke)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    ADMIN,
    AUDITOR,
    _audit,
    _flush,
    _iso,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
)
from omni.domain.errors import NotFound

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
    check_role(who, AUDITOR, ADMIN)
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


async def check_revoke_token(session: AsyncSession, who: Principal, token_id: int) -> m.ApiToken:
    token = await session.get(m.ApiToken, token_id)
    if token is None or (not who.is_admin and token.user_id != who.id):
        raise NotFound("API token {token_id} not found", token_id=token_id)
    token.revoked = True
    await _flush(session)
    _audit(session, who, "token.revoke", "api_token", token.id, {"name": token.name})
    _changed(session, "token", token.id, "updated")
    return token
