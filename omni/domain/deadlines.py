"""Persisted timers: offer timeout, queue timeout, escalation, wrap-up expiry, offline grace.

Rows live in the database, so any node picks an expired one up, also after a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m

OFFER_TIMEOUT = "offer_timeout"
QUEUE_TIMEOUT = "queue_timeout"
ESCALATION = "escalation"
WRAP_UP = "wrap_up"
PRESENCE_OFFLINE = "presence_offline"


def schedule(
    session: AsyncSession, kind: str, ref_id: int, due_at: datetime, payload: dict[str, object] | None = None
) -> m.Deadline:
    row = m.Deadline(kind=kind, ref_id=ref_id, due_at=due_at, done=False, payload=payload or {})
    session.add(row)
    return row


async def cancel(session: AsyncSession, kind: str, ref_id: int, *more_kinds: str) -> None:
    """Mark pending timers of ``kind`` (and ``more_kinds``) for ``ref_id`` done, in one
    statement. A row locked right now is being fired by the engine: it is skipped, not waited
    for — waiting would deadlock (the engine locks the deadline, then the offer/conversation
    we hold) — and every handler re-checks state under its own lock."""
    kinds = (kind, *more_kinds)
    locked_free = (
        select(m.Deadline.id)
        .where(m.Deadline.kind.in_(kinds), m.Deadline.ref_id == ref_id, m.Deadline.done.is_(False))
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        update(m.Deadline)
        .where(m.Deadline.id.in_(locked_free.scalar_subquery()))
        .values(done=True)
        .execution_options(synchronize_session="fetch")
    )
