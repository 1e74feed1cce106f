"""Callbacks: the missed / abandoned list and the callbacks operators promise."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import Principal, access_conversation, visible_queue_ids
from omni.domain.conversations._common import MAX_BODY, insert_row
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.events import emit
from omni.domain.serialize import callback_dict


async def _add_callback(session: AsyncSession, conv: m.Conversation, *, reason: str) -> m.Callback:
    # Inserted alone (``insert_row``): the event before it (``conversation.abandoned``) and
    # its own go out together at the next flush.
    cb = await insert_row(
        session,
        m.Callback(
            conversation_id=conv.id,
            contact_id=conv.contact_id,
            queue_id=conv.queue_id,
            kind="standard",
            reason=reason,
            state="open",
            note="",
            created_at=datetime.now(UTC),
        ),
    )
    emit(session, "callback.created", callback_dict(cb), conversation_id=conv.id, queue_id=conv.queue_id)
    return cb


async def list_callbacks(session: AsyncSession, who: Principal, *, state: str = "open") -> list[m.Callback]:
    queues = await visible_queue_ids(session, who)
    stmt = select(m.Callback).where(m.Callback.state == state).order_by(m.Callback.created_at)
    if queues is not None:
        stmt = stmt.where(m.Callback.queue_id.in_(queues))
    if who.role == m.Role.OPERATOR:
        stmt = stmt.where((m.Callback.target_user_id.is_(None)) | (m.Callback.target_user_id == who.id))
    return list((await session.scalars(stmt)).all())


async def _load_callback(session: AsyncSession, who: Principal, cb_id: int) -> m.Callback:
    cb = await session.scalar(select(m.Callback).where(m.Callback.id == cb_id).with_for_update())
    queues = await visible_queue_ids(session, who)
    if cb is None or (queues is not None and cb.queue_id not in queues):
        raise NotFound("callback {cb_id} not found", cb_id=cb_id)
    return cb


async def check_claim_callback(session: AsyncSession, who: Principal, cb_id: int) -> m.Callback:
    """Take a callback; it disappears from everyone else's list at once."""
    if who.role not in (m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN):
        raise PermissionDenied("only operators take callbacks")
    cb = await _load_callback(session, who, cb_id)
    if cb.state != "open":
        raise Conflict("this callback has already been taken by another operator")
    if cb.target_user_id is not None and cb.target_user_id != who.id:
        raise PermissionDenied("this callback is assigned to another operator")
    cb.state = "claimed"
    cb.claimed_by_id = who.id
    cb.claimed_at = datetime.now(UTC)
    emit(
        session,
        "callback.claimed",
        callback_dict(cb),
        conversation_id=cb.conversation_id,
        queue_id=cb.queue_id,
    )
    return cb


async def check_finish_callback(
    session: AsyncSession, who: Principal, cb_id: int, *, done: bool, note: str = ""
) -> m.Callback:
    """Mark a claimed callback done, or release it back to the shared list."""
    cb = await _load_callback(session, who, cb_id)
    if cb.state != "claimed" or (cb.claimed_by_id != who.id and who.role == m.Role.OPERATOR):
        raise Conflict("you have not taken this callback")
    if note:
        cb.note = note[:MAX_BODY]
    if done:
        cb.state = "done"
    else:
        cb.state = "open"
        cb.claimed_by_id = None
        cb.claimed_at = None
    emit(
        session,
        "callback.done" if done else "callback.released",
        callback_dict(cb),
        conversation_id=cb.conversation_id,
        queue_id=cb.queue_id,
    )
    return cb


async def check_schedule_callback(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    *,
    due_at: datetime | None,
    kind: str = "standard",
    target_user_id: int | None = None,
    note: str = "",
) -> m.Callback:
    """An operator promises to call/write back: standard, to a queue, or to one operator."""
    if kind not in ("standard", "queue", "operator"):
        raise InvalidInput("callback kind must be standard, queue or operator", field="kind")
    if kind == "operator" and target_user_id is None:
        target_user_id = who.id
    conv = await access_conversation(session, who, conv_id)
    cb = m.Callback(
        conversation_id=conv.id,
        contact_id=conv.contact_id,
        queue_id=conv.queue_id,
        kind=kind,
        reason="scheduled",
        target_user_id=target_user_id if kind == "operator" else None,
        state="open",
        due_at=due_at,
        note=note[:MAX_BODY],
        created_at=datetime.now(UTC),
    )
    session.add(cb)
    await session.flush()
    emit(session, "callback.created", callback_dict(cb), conversation_id=conv.id, queue_id=conv.queue_id)
    return cb
