"""The outbox rows a transaction emits, written with one Core statement per flush.

``events.emit`` used to add an ``Event`` ORM object per event: the unit of work then built,
sorted and flushed the objects and fetched their ids back, more Python than the statement
itself (bench/scenarios.py: a bot step's two ``message.created`` events). Now ``emit`` appends
an :class:`OutboxRow` to the transaction's :class:`~omni.db.unit_of_work.UnitOfWork` and the
session (:class:`OutboxSession`, what ``Database`` opens) writes the pending rows after every
flush of its own changes — an autoflush, an explicit ``flush()``, the flush before a savepoint
and the one at commit, also when nothing else was pending — in one statement, in emit order:

- PostgreSQL: ``INSERT … SELECT … FROM unnest(…) WITH ORDINALITY … ORDER BY`` (the ids come
  from the sequence in that order) ``RETURNING id``; each row gets its id, lowest first;
- SQLite (embedded, one writer): one ``INSERT … RETURNING id`` per row, in order.

So the outbox order stays the emit order: a Core statement that writes events itself (the
router's decision, a campaign's openings) flushes first when :func:`unflushed` says so, as it
did when the ORM's objects were pending. A rollback (of the transaction or of a savepoint)
drops what is still pending; a savepoint's start flushes, so a savepoint never holds rows
emitted before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from omni.db import models as m
from omni.db.unit_of_work import attached

__all__ = ["OutboxRow", "OutboxSession", "unflushed"]

_EVENTS = cast(Table, m.Event.__table__)

_INSERT_PG = text(
    """
    INSERT INTO events (type, payload, conversation_id, queue_id, user_id, created_at, dispatched)
    SELECT e.type, CAST(e.payload AS JSON), e.conversation_id, e.queue_id, e.user_id, e.created_at, false
    FROM unnest(CAST(:types AS VARCHAR[]), CAST(:payloads AS TEXT[]), CAST(:conversations AS BIGINT[]),
                CAST(:queues AS INTEGER[]), CAST(:users AS INTEGER[]), CAST(:ats AS TIMESTAMPTZ[]))
         WITH ORDINALITY AS e (type, payload, conversation_id, queue_id, user_id, created_at, n)
    ORDER BY e.n
    RETURNING id
    """
)
"""Built once; asyncpg prepares it once per connection, whatever the number of rows."""
_INSERT_ONE = insert(_EVENTS).returning(_EVENTS.c.id)


@dataclass(slots=True, eq=False)
class OutboxRow:
    """One event of this transaction's outbox, as ``events.emit`` made it; ``id`` (its
    sequence number) is set once the row is written (the next flush, at the latest the
    commit), ``None`` before and for a row a rollback dropped."""

    type: str
    payload: dict[str, Any]
    """As stored: the emitter's payload round-tripped through JSON (``events.checked_payload``)."""
    payload_json: str
    """The same, as the JSON text written (serialised once, by the check)."""
    conversation_id: int | None
    queue_id: int | None
    user_id: int | None
    created_at: datetime
    id: int | None = None


class OutboxSession(Session):
    """The ``Session`` ``Database`` opens: after each flush of the unit of work's objects it
    writes the outbox rows emitted since the last one (see the module's doc)."""

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        super().flush(objects)
        if objects is None:
            _write_pending(self)


def unflushed(session: AsyncSession) -> bool:
    """Whether ``session`` holds changes not yet written: ORM objects, or outbox rows. A
    statement that runs on the session's connection (no autoflush) and writes events or reads
    what the transaction changed flushes first when this is true."""
    return bool(session.new or session.dirty or session.deleted or _pending(session.sync_session))


def _pending(session: Session) -> list[OutboxRow]:
    uow = attached(session)
    return uow.outbox if uow is not None else []


def _write_pending(session: Session) -> None:
    rows = _pending(session)
    if not rows:
        return
    batch = rows[:]
    rows.clear()
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = {
            "types": [r.type for r in batch],
            "payloads": [r.payload_json for r in batch],
            "conversations": [r.conversation_id for r in batch],
            "queues": [r.queue_id for r in batch],
            "users": [r.user_id for r in batch],
            "ats": [r.created_at for r in batch],
        }
        ids = sorted(conn.execute(_INSERT_PG, params).scalars())
        for row, id_ in zip(batch, ids, strict=True):
            row.id = id_
        return
    for row in batch:
        values = {
            "type": row.type,
            "payload": row.payload,
            "conversation_id": row.conversation_id,
            "queue_id": row.queue_id,
            "user_id": row.user_id,
            "created_at": row.created_at,
            "dispatched": False,
        }
        row.id = conn.execute(_INSERT_ONE, values).scalar_one()


@event.listens_for(OutboxSession, "before_commit")
def _before_commit(session: Session) -> None:
    # The commit flushes only a session with ORM changes: rows emitted with none go out here.
    if _pending(session):
        session.flush()


@event.listens_for(OutboxSession, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    # What is still pending was emitted inside what rolled back (a savepoint's start flushes).
    _pending(session).clear()
