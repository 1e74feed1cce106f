"""Macros: a named, ordered list of actions an operator runs with one click on the open
conversation, global (admins) or per queue (admins and the queue's supervisors).

A run goes action by action through the domain services as the operator (each in a savepoint):
it stops at the first refusal, keeps what was done before it and answers with a translated
message naming what was done and what was not. Every run is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    _OPTIONAL_ID,
    ADMIN,
    SUPERVISOR,
    Checker,
    _audit,
    _boolean,
    _clean,
    _flush,
    _iso,
    _managed_queue,
    _readable_scope,
    _text,
    clamp_limit,
)
from omni.domain.auth import Principal, access_conversation, check_role
from omni.domain.automation.actions import ACTIONS, MACRO, ActionContext, action_summary, check_actions
from omni.domain.errors import Conflict, DomainError, NotFound

_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "queue_id": _OPTIONAL_ID,
    "actions": lambda f, v: v,  # checked with the session below (``check_actions``)
    "active": _boolean,
}


def macro_dict(row: m.Macro) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "queue_id": row.queue_id,
        "actions": row.actions,
        "active": row.active,
        "created_at": _iso(row.created_at),
    }


async def list_macros(
    session: AsyncSession, who: Principal, *, queue_id: int | None = None, limit: int = 1000
) -> list[m.Macro]:
    """What an admin or supervisor manages: global macros and those of the visible queues."""
    visible = await _readable_scope(session, who)
    stmt = select(m.Macro).order_by(m.Macro.queue_id.nulls_first(), m.Macro.name).limit(clamp_limit(limit))
    if visible is not None:
        stmt = stmt.where(or_(m.Macro.queue_id.is_(None), m.Macro.queue_id.in_(visible)))
    if queue_id is not None:
        stmt = stmt.where(m.Macro.queue_id == queue_id)
    return list(await session.scalars(stmt))


async def access_macro(session: AsyncSession, who: Principal, macro_id: int) -> m.Macro:
    visible = await _readable_scope(session, who)
    row = await session.get(m.Macro, macro_id)
    if row is None or (visible is not None and row.queue_id is not None and row.queue_id not in visible):
        raise NotFound("macro {macro_id} not found", macro_id=macro_id)
    return row


async def _managed(session: AsyncSession, who: Principal, macro_id: int) -> m.Macro:
    check_role(who, ADMIN, SUPERVISOR)
    row = await access_macro(session, who, macro_id)
    await _managed_queue(session, who, row.queue_id, "queue_id")
    return row


async def _save(
    session: AsyncSession, who: Principal, row: m.Macro, data: Mapping[str, Any], required: tuple[str, ...]
) -> None:
    clean = _clean(data, _FIELDS, required)
    if "queue_id" in clean or row.id is None:
        await _managed_queue(session, who, clean.get("queue_id", row.queue_id), "queue_id")
    if "actions" in clean:
        clean["actions"] = await check_actions(session, clean["actions"], where=MACRO)
    name = clean.get("name", row.name)
    queue_id = clean.get("queue_id", row.queue_id)
    same = select(m.Macro.id).where(
        m.Macro.name == name, m.Macro.queue_id.is_(None) if queue_id is None else m.Macro.queue_id == queue_id
    )
    if row.id is not None:
        same = same.where(m.Macro.id != row.id)
    if await session.scalar(same.limit(1)) is not None:
        raise Conflict("a macro named '{name}' already exists there", name=name, field="name")
    for key, value in clean.items():
        setattr(row, key, value)


async def check_create_macro(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Macro:
    check_role(who, ADMIN, SUPERVISOR)
    row = m.Macro(name="", queue_id=None, actions=[], active=True)
    await _save(session, who, row, data, ("name", "actions"))
    session.add(row)
    await _flush(session)
    _audit(session, who, "macro.create", "macro", row.id, data)
    _changed(session, "macro", row.id, "created")
    return row


async def check_update_macro(
    session: AsyncSession, who: Principal, macro_id: int, data: Mapping[str, Any]
) -> m.Macro:
    row = await _managed(session, who, macro_id)
    await _save(session, who, row, data, ())
    await _flush(session)
    _audit(session, who, "macro.update", "macro", row.id, data)
    _changed(session, "macro", row.id, "updated")
    return row


async def check_delete_macro(session: AsyncSession, who: Principal, macro_id: int) -> None:
    row = await _managed(session, who, macro_id)
    await session.delete(row)
    await _flush(session)
    _audit(session, who, "macro.delete", "macro", macro_id, {"name": row.name})
    _changed(session, "macro", macro_id, "deleted")


async def macros_for_conversation(session: AsyncSession, who: Principal, conv_id: int) -> list[m.Macro]:
    """The active macros an operator may run here: the global ones and the conversation's queue's."""
    conv = await access_conversation(session, who, conv_id)
    stmt = (
        select(m.Macro)
        .where(m.Macro.active.is_(True))
        .where(or_(m.Macro.queue_id.is_(None), m.Macro.queue_id == conv.queue_id))
        .order_by(m.Macro.queue_id.nulls_first(), m.Macro.name)
    )
    return list(await session.scalars(stmt))


async def check_run_macro(
    session: AsyncSession, who: Principal, conv_id: int, macro_id: int
) -> dict[str, Any]:
    """Run a macro on a conversation the operator handles; see the module docstring.

    Returns ``{"ok", "done", "failed", "not_done", "message"}``: ``message`` (in the caller's
    language) is empty when every action ran."""
    macro = next((x for x in await macros_for_conversation(session, who, conv_id) if x.id == macro_id), None)
    if macro is None:
        raise NotFound("macro {macro_id} not found", macro_id=macro_id)
    actions = list(macro.actions or [])
    done: list[str] = []
    failed: str | None = None
    reason: DomainError | None = None
    for action in actions:
        spec = ACTIONS.get(str(action.get("kind")))
        try:
            if spec is None:  # a kind whose feature is gone since the macro was saved
                raise Conflict("this kind of action is not available any more", field="actions")
            async with session.begin_nested():
                conv = await access_conversation(session, who, conv_id, for_update=True)
                await spec.run(ActionContext(session, conv, who), action)
        except DomainError as exc:
            failed, reason = action_summary(action), exc
            break
        done.append(action_summary(action))
    not_done = [action_summary(a) for a in actions[len(done) + (1 if failed else 0) :]]
    message = ""
    if reason is not None:
        message = Conflict(
            "macro '{name}' stopped at {failed}: {reason} Done: {done}. Not done: {not_done}.",
            name=macro.name,
            failed=failed,
            reason=reason.localized(who.language),
            done=", ".join(done) or "-",
            not_done=", ".join(not_done) or "-",
        ).localized(who.language)
    audit.record(
        session,
        who,
        "macro.run",
        object_type="macro",
        object_id=macro.id,
        data={"conversation_id": conv_id, "done": done, "failed": failed, "not_done": not_done},
        result="ok" if reason is None else "failed",
    )
    return {"ok": reason is None, "done": done, "failed": failed, "not_done": not_done, "message": message}
