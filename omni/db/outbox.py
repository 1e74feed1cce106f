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

A ``message.created`` row may carry its message (:attr:`OutboxRow.message`, a transient
``Message`` not inserted yet: a bot's step, ``conversations.defer_message``): the message is
then inserted with the events, in the same statement on PostgreSQL (the messages first, in
emit order, their ids spliced into their events' payloads), so a bot step's customer message,
its reply and their events are one statement, not three. The message gets its id when the row
is written, like the event; nothing reads messages without a flush first (an autoflush, or
:func:`unflushed` before a statement that skips it), so none is missed. A bot step writes the
pending rows inside its own statement (:func:`take` and :data:`OUTBOX_CTES`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from omni.db import models as m
from omni.db.unit_of_work import attached

__all__ = [
    "OUTBOX_CTES",
    "OUTBOX_IDS",
    "OutboxRow",
    "OutboxSession",
    "assign_ids",
    "message_pending",
    "outbox_params",
    "take",
    "unflushed",
]

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
_MESSAGES = cast(Table, m.Message.__table__)
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)

OUTBOX_CTES = """
    msgs AS (
        INSERT INTO messages (conversation_id, inbox_id, direction, author_user_id, body, attachments,
                              client_id, external_id, delivery, created_at)
        SELECT x.conversation_id, x.inbox_id, x.direction, x.author_user_id, x.body,
               CAST(x.attachments AS JSON), x.client_id, x.external_id, x.delivery, x.created_at
        FROM unnest(CAST(:m_conversations AS BIGINT[]), CAST(:m_inboxes AS INTEGER[]),
                    CAST(:m_directions AS VARCHAR[]), CAST(:m_authors AS INTEGER[]),
                    CAST(:m_bodies AS TEXT[]), CAST(:m_attachments AS TEXT[]), CAST(:m_clients AS VARCHAR[]),
                    CAST(:m_externals AS VARCHAR[]), CAST(:m_deliveries AS VARCHAR[]),
                    CAST(:m_ats AS TIMESTAMPTZ[]))
             WITH ORDINALITY AS x (conversation_id, inbox_id, direction, author_user_id, body, attachments,
                                   client_id, external_id, delivery, created_at, n)
        ORDER BY x.n
        RETURNING id
    ),
    msg_ids AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM msgs),
    evs AS (
        INSERT INTO events (type, payload, conversation_id, queue_id, user_id, created_at, dispatched)
        SELECT e.type,
               CASE WHEN msg_ids.id IS NULL THEN CAST(e.payload AS JSON)
                    ELSE CAST(CAST(e.payload AS JSONB) || jsonb_build_object('id', msg_ids.id) AS JSON) END,
               e.conversation_id, e.queue_id, e.user_id, e.created_at, false
        FROM unnest(CAST(:types AS VARCHAR[]), CAST(:payloads AS TEXT[]), CAST(:conversations AS BIGINT[]),
                    CAST(:queues AS INTEGER[]), CAST(:users AS INTEGER[]), CAST(:ats AS TIMESTAMPTZ[]),
                    CAST(:msgs AS BIGINT[]))
             WITH ORDINALITY AS e (type, payload, conversation_id, queue_id, user_id, created_at, msg, n)
        LEFT JOIN msg_ids ON msg_ids.n = e.msg
        ORDER BY e.n
        RETURNING id
    )"""
"""PostgreSQL, as CTEs: the pending rows' messages, then the rows, each in emit order (the ids
come from the sequences in that order, as with ``_INSERT_PG``); a row with a message gets the
message's id in its payload. A statement that ends with :data:`OUTBOX_IDS` returns the ids."""
OUTBOX_IDS = "SELECT 0 AS kind, id FROM msg_ids UNION ALL SELECT 1, id FROM evs"
_INSERT_WITH_MESSAGES = text("WITH" + OUTBOX_CTES + "\n    " + OUTBOX_IDS)


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
    message: Any = None
    """A transient ``Message`` inserted when this row is (its ``message.created``; the payload's
    ``id`` is the message's, set then), or ``None``."""


class OutboxSession(Session):
    """The ``Session`` ``Database`` opens: after each flush of the unit of work's objects it
    writes the outbox rows emitted since the last one (see the module's doc)."""

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        if objects is None and _message_pending(self) and any(isinstance(o, m.Message) for o in self.new):
            # A deferred message was made before the ``Message`` objects now pending (a note
            # added after a bot's reply): it is written first, so message ids keep the order
            # the messages were made in (histories are read in id order). Events never refer
            # to a row not flushed yet (their ids come from a flush), so they may go first.
            _write_pending(self)
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


def message_pending(session: AsyncSession) -> bool:
    """Whether a deferred message waits in ``session``'s outbox: a message inserted now would
    take an id before it, so the inserter flushes first (``conversations.insert_message``)."""
    return _message_pending(session.sync_session)


def _message_pending(session: Session) -> bool:
    return any(r.message is not None for r in _pending(session))


def take(session: AsyncSession) -> list[OutboxRow]:
    """The pending rows, now the caller's to write (a bot step's statement, with
    :func:`outbox_params` and :func:`assign_ids`): they are no longer pending."""
    rows = _pending(session.sync_session)
    batch = rows[:]
    rows.clear()
    return batch


def outbox_params(batch: list[OutboxRow]) -> dict[str, Any]:
    """The bound values of :data:`OUTBOX_CTES` for ``batch`` (empty: the CTEs write nothing)."""
    messages = [r.message for r in batch if r.message is not None]
    msgs: list[int | None] = []
    k = 0
    for r in batch:
        if r.message is None:
            msgs.append(None)
        else:
            k += 1
            msgs.append(k)
    return _event_params(batch) | {
        "msgs": msgs,
        "m_conversations": [x.conversation_id for x in messages],
        "m_inboxes": [x.inbox_id for x in messages],
        "m_directions": [x.direction for x in messages],
        "m_authors": [x.author_user_id for x in messages],
        "m_bodies": [x.body or "" for x in messages],
        "m_attachments": [json.dumps(x.attachments or []) for x in messages],
        "m_clients": [x.client_id for x in messages],
        "m_externals": [x.external_id for x in messages],
        "m_deliveries": [x.delivery or "stored" for x in messages],
        "m_ats": [x.created_at for x in messages],
    }


def _event_params(batch: list[OutboxRow]) -> dict[str, list[Any]]:
    """The events' columns as arrays, one element per row in emit order (``unnest``)."""
    return {
        "types": [r.type for r in batch],
        "payloads": [r.payload_json for r in batch],
        "conversations": [r.conversation_id for r in batch],
        "queues": [r.queue_id for r in batch],
        "users": [r.user_id for r in batch],
        "ats": [r.created_at for r in batch],
    }


def assign_ids(batch: list[OutboxRow], returned: Iterable[Sequence[Any]]) -> None:
    """Give ``batch``'s rows and their messages the ids :data:`OUTBOX_IDS` returned (``(0,
    id)`` a message's, ``(1, id)`` an event's; each kind lowest first = emit order)."""
    message_ids: list[int] = []
    event_ids: list[int] = []
    for kind, id_ in returned:
        (message_ids if kind == 0 else event_ids).append(id_)
    message_ids.sort()
    event_ids.sort()
    messages = iter(message_ids)
    for row, id_ in zip(batch, event_ids, strict=True):
        row.id = id_
        if row.message is not None:
            row.message.id = row.payload["id"] = next(messages)


def _write_pending(session: Session) -> None:
    rows = _pending(session)
    if not rows:
        return
    batch = rows[:]
    rows.clear()
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        if any(r.message is not None for r in batch):
            assign_ids(batch, conn.execute(_INSERT_WITH_MESSAGES, outbox_params(batch)).all())
            return
        ids = sorted(conn.execute(_INSERT_PG, _event_params(batch)).scalars())
        for row, id_ in zip(batch, ids, strict=True):
            row.id = id_
        return
    for row in batch:
        if row.message is not None:
            msg = row.message
            msg.id = row.payload["id"] = conn.execute(_INSERT_MESSAGE, _message_values(msg)).scalar_one()
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


def _message_values(msg: Any) -> dict[str, Any]:
    return {
        "conversation_id": msg.conversation_id,
        "inbox_id": msg.inbox_id,
        "direction": msg.direction,
        "author_user_id": msg.author_user_id,
        "body": msg.body or "",
        "attachments": msg.attachments or [],
        "client_id": msg.client_id,
        "external_id": msg.external_id,
        "delivery": msg.delivery or "stored",
        "created_at": msg.created_at,
    }


@event.listens_for(OutboxSession, "before_commit")
def _before_commit(session: Session) -> None:
    # The commit flushes only a session with ORM changes: rows emitted with none go out here.
    if _pending(session):
        session.flush()


@event.listens_for(OutboxSession, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    # What is still pending was emitted inside what rolled back (a savepoint's start flushes).
    _pending(session).clear()
