"""Result codes: how an operator sums a conversation up when closing it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    ADMIN,
    Checker,
    _apply,
    _audit,
    _boolean,
    _clean,
    _colour,
    _ensure_unique,
    _flush,
    _get,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
)
from omni.i18n import _l

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


async def check_create_result_code(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.ResultCode:
    check_role(who, ADMIN)
    clean = _clean(data, _RESULT_CODE_FIELDS, ("code", "name"))
    await _check_result_code(session, clean, None)
    code = m.ResultCode(**clean)
    session.add(code)
    await _flush(session)
    _audit(session, who, "result_code.create", "result_code", code.id, data)
    _changed(session, "result_code", code.id, "created")
    return code


async def check_update_result_code(
    session: AsyncSession, who: Principal, code_id: int, data: Mapping[str, Any]
) -> m.ResultCode:
    check_role(who, ADMIN)
    code = await _get(session, m.ResultCode, code_id, "result code")
    clean = _clean(data, _RESULT_CODE_FIELDS)
    await _check_result_code(session, clean, code.id)
    _apply(code, clean)
    await _flush(session)
    _audit(session, who, "result_code.update", "result_code", code.id, data)
    _changed(session, "result_code", code.id, "updated")
    return code


async def check_deactivate_result_code(session: AsyncSession, who: Principal, code_id: int) -> m.ResultCode:
    """Closed conversations keep pointing at the code, so it is hidden, not deleted."""
    check_role(who, ADMIN)
    code = await _get(session, m.ResultCode, code_id, "result code")
    code.active = False
    await _flush(session)
    _audit(session, who, "result_code.deactivate", "result_code", code.id, {"code": code.code})
    _changed(session, "result_code", code.id, "updated")
    return code
