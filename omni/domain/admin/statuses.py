"""Operator statuses: the built-in ones (partly editable) and the admin's own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    ADMIN,
    ADMIN_STATUS_KINDS,
    SYSTEM_STATUS_EDITABLE,
    Checker,
    _apply,
    _audit,
    _boolean,
    _choice,
    _clean,
    _colour,
    _columns,
    _ensure_unique,
    _flush,
    _get,
    _integer,
    _optional,
    _status_code,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
)
from omni.domain.errors import Conflict, InvalidInput
from omni.i18n import _l

# --- operator statuses --------------------------------------------------------------------

_STATUS_FIELDS: dict[str, Checker] = {
    "code": _status_code,
    "name": _text(64),
    "name_ru": _text(64, allow_empty=True),
    "colour": _colour,
    "kind": _choice(ADMIN_STATUS_KINDS),
    "receives_voice": _boolean,
    "receives_chats": _boolean,
    "takes_outbound": _boolean,
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


async def check_create_status(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.OperatorStatus:
    check_role(who, ADMIN)
    clean = _clean(data, _STATUS_FIELDS, ("code", "name"))
    # Blending: a new "available" status gives operators campaign attempts unless said otherwise.
    clean.setdefault("takes_outbound", clean.get("kind", m.StatusKind.PAUSE) == m.StatusKind.AVAILABLE)
    await _check_status(session, clean, None)
    status = m.OperatorStatus(**clean, is_system=False)
    session.add(status)
    await _flush(session)
    _audit(session, who, "status.create", "operator_status", status.id, data)
    _changed(session, "status", status.id, "created")
    return status


async def check_update_status(
    session: AsyncSession, who: Principal, status_id: int, data: Mapping[str, Any]
) -> m.OperatorStatus:
    check_role(who, ADMIN)
    status = await _get(session, m.OperatorStatus, status_id, "status")
    clean = _clean(data, _STATUS_FIELDS)
    if "code" in clean and clean["code"] != status.code:
        # Presence and history keep the code as text; renaming would orphan them.
        raise InvalidInput(
            "a status code can't change once created; create a new status instead", field="code"
        )
    if status.is_system:
        for name in clean:
            # Who takes outbound is the install's blending policy, not a meaning the core relies on.
            if name not in (*SYSTEM_STATUS_EDITABLE, "code", "takes_outbound"):
                raise InvalidInput(
                    "{field} of the built-in status '{code}' can't be changed", code=status.code, field=name
                )
    await _check_status(session, clean, status.id)
    _apply(status, clean)
    await _flush(session)
    _audit(session, who, "status.update", "operator_status", status.id, data)
    _changed(session, "status", status.id, "updated")
    return status


async def check_delete_status(session: AsyncSession, who: Principal, status_id: int) -> None:
    check_role(who, ADMIN)
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
    _changed(session, "status", status_id, "deleted")
