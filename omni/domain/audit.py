"""Audit log of user actions: who, when, what, with which input, and the result."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import Principal

SECRET_FIELDS = {"password", "secret", "token", "bot_token"}


def record(
    session: AsyncSession,
    who: Principal | None,
    action: str,
    *,
    object_type: str = "",
    object_id: object = "",
    data: dict[str, Any] | None = None,
    result: str = "ok",
    ip: str = "",
) -> None:
    clean = {k: ("***" if k in SECRET_FIELDS else v) for k, v in (data or {}).items()}
    session.add(
        m.AuditLog(
            user_id=who.id if who else None,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            input=clean,
            result=result,
            ip=ip[:64],
        )
    )
