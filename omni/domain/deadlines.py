"""Persisted timers: offer timeout, queue timeout, escalation, wrap-up expiry, offline grace.

Rows live in the database, so any node picks an expired one up, also after a restart.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

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
    we hold) — and every handler re-checks state under its own lock.

    A Core statement: nothing else the session holds is flushed for it (a closing bot step's
    conversation update and events go out once, at commit; bench/scenarios.py). A timer of
    these kinds scheduled in this transaction and not written yet is written done; one loaded
    in the session gets ``done`` as the statement wrote it."""
    kinds = (kind, *more_kinds)
    for row in session.new:
        if isinstance(row, m.Deadline) and row.kind in kinds and row.ref_id == ref_id:
            row.done = True
    params: dict[str, object] = {f"kind_{i}": k for i, k in enumerate(kinds)}
    params["b_ref_id"] = ref_id
    with session.no_autoflush:  # a Core statement autoflushes too
        done = (await session.execute(_cancel_statement(len(kinds)), params)).scalars().all()
    if not done or not session.identity_map:
        return
    for id_ in done:
        loaded = session.identity_map.get(identity_key(m.Deadline, id_))
        if loaded is not None:
            set_committed_value(loaded, "done", True)


@functools.cache
def _cancel_statement(kinds: int) -> Any:
    """Built once per number of kinds, on the table (an ORM-enabled statement would fetch the
    rows to synchronise the session)."""
    t = cast(Table, m.Deadline.__table__)
    free = (
        select(t.c.id)
        .where(
            t.c.kind.in_([bindparam(f"kind_{i}") for i in range(kinds)]),
            t.c.ref_id == bindparam("b_ref_id"),
            t.c.done.is_(False),
        )
        .with_for_update(skip_locked=True)
    )
    return update(t).where(t.c.id.in_(free.scalar_subquery())).values(done=True).returning(t.c.id)
