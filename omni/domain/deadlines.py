"""Persisted timers: offer timeout, queue timeout, escalation, wrap-up expiry, offline grace.

Rows live in the database, so any node picks an expired one up, also after a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
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


async def cancel(session: AsyncSession, kind: str, ref_id: int) -> None:
    await session.execute(
        update(m.Deadline)
        .where(m.Deadline.kind == kind, m.Deadline.ref_id == ref_id, m.Deadline.done.is_(False))
        .values(done=True)
    )
