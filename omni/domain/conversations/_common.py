"""What every part of the conversation lifecycle shares: statuses, limits, the event helpers
and the bot gateway (the scenario engine plugged in by the composition root)."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from typing import cast as typing_cast

from sqlalchemy import JSON, String, Table, bindparam, cast, false, func, literal_column, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from omni.db import driver
from omni.db import models as m
from omni.db.outbox import OutboxRow, OutboxSession, message_pending
from omni.db.unit_of_work import BotGateway, unit_of_work
from omni.domain.events import checked_payload, emit
from omni.domain.serialize import conversation_dict, message_dict

S = m.ConversationStatus
MAX_BODY = 10_000
REOPEN_WINDOW = timedelta(hours=24)

Row = TypeVar("Row", bound=m.Base)


def _event(session: AsyncSession, type_: str, conv: m.Conversation, **extra: Any) -> None:
    payload = conversation_dict(conv)
    payload.update(extra)
    emit(
        session,
        type_,
        payload,
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


def _message_event(session: AsyncSession, conv: m.Conversation, message: m.Message) -> None:
    emit(
        session,
        "message.created",
        message_dict(message) | {"channel": conv.channel},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


def bot_gateway(session: AsyncSession) -> BotGateway | None:
    """The scenario runner plugged into this database (``Database.plugins``), if any."""
    return unit_of_work(session).bot_gateway


async def insert_message_once(session: AsyncSession, message: m.Message) -> m.Message | None:
    """Store ``message`` unless one with its idempotency key (``client_id`` per conversation,
    ``external_id`` per inbox) is already stored: then ``None``, and nothing is written.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL and SQLite alike): a
    savepoint around a plain insert, the insert and the savepoint's release were three round
    trips on every customer message, plus a select before them. The returned row is the
    session's persistent ``Message`` (database defaults and id filled in), what ``session.add``
    + ``flush`` gave before. ``message`` itself is a transient template and stays unattached.
    Nothing pending is flushed first (the conversation it belongs to is in the database
    already): the events before it and its own go out together at the next flush.
    """
    await _after_deferred(session)
    statement = _insert_once(session.get_bind().dialect.name == "postgresql")
    with session.no_autoflush:
        return (await session.scalars(statement, _values(message))).one_or_none()


async def insert_message_announced(
    session: AsyncSession, conv: m.Conversation, message: m.Message, *, touch: bool = True
) -> m.Message | None:
    """``insert_message_once``, then (when stored) the conversation's ``last_message_at`` set
    to the message's time (``touch``) and its ``message.created`` event: what a customer
    message and an operator reply do on every leg of a chat.

    On PostgreSQL, when the session holds no event of its own yet, all three are one
    statement (the insert, the update and the event insert as CTEs; the event's payload gets
    the message id the insert returns): before, the insert was one round trip and the
    commit's flush two more (``UPDATE conversations``, ``INSERT INTO events``), with the ORM's
    unit-of-work machinery around them (bench/widget_legs.py). The conversation object is
    told the new ``last_message_at`` as already stored. With events not written yet (a
    conversation created or reopened in the same transaction) the event must follow them in
    the outbox, and an ``events.recording`` must see it: then it is emitted as before."""
    uow = unit_of_work(session)
    fused = (
        session.get_bind().dialect.name == "postgresql"
        and not uow.outbox
        and not uow.recorders
        and not any(isinstance(row, m.Event) for row in session.new)
    )
    if not fused:
        inserted = await insert_message_once(session, message)
        if inserted is not None:
            if touch:
                conv.last_message_at = message.created_at
            _message_event(session, conv, inserted)
        return inserted
    payload = message_dict(message) | {"channel": conv.channel, "id": 0}  # the id comes from the insert
    # Prefixed: a parameter named like a column of ``conversations`` would join the UPDATE's SET.
    params = {f"msg_{key}": value for key, value in _values(message).items()} | {
        "event_payload": json.dumps(checked_payload("message.created", payload)),
        "event_conversation_id": conv.id,
        "event_queue_id": conv.queue_id,
        "event_user_id": conv.assigned_user_id,
        "event_created_at": datetime.now(UTC),
    }
    stored: m.Message | None = await driver.load_first(
        session, _MESSAGE, _insert_announced(touch), params, flush=False
    )
    if stored is None:
        return None
    unit_of_work(session).events_written = True
    if touch:
        set_committed_value(conv, "last_message_at", stored.created_at)
    return stored


_MESSAGE = driver.Entity.of(m.Message)


@functools.cache
def _insert_announced(touch: bool) -> Any:
    """``insert_message_announced``'s statement (PostgreSQL), built once per shape."""
    table = m.Message.__table__
    columns = [c for c in table.columns if not c.primary_key]
    stored = (
        pg_insert(m.Message)
        .values({c.key: bindparam(f"msg_{c.key}", type_=c.type) for c in columns})
        .on_conflict_do_nothing()
        .returning(*table.columns)
        .cte("stored")
    )
    payload = cast(
        cast(bindparam("event_payload", type_=String), JSONB).op("||")(
            func.jsonb_build_object(literal_column("'id'"), stored.c.id)
        ),
        JSON,
    )
    event = (
        sa_insert(m.Event)
        .from_select(
            ["type", "payload", "conversation_id", "queue_id", "user_id", "created_at", "dispatched"],
            select(
                literal_column("'message.created'"),
                payload,
                bindparam("event_conversation_id", type_=m.Event.__table__.c.conversation_id.type),
                bindparam("event_queue_id", type_=m.Event.__table__.c.queue_id.type),
                bindparam("event_user_id", type_=m.Event.__table__.c.user_id.type),
                bindparam("event_created_at", type_=m.Event.__table__.c.created_at.type),
                false(),
            ).select_from(stored),
        )
        .cte("announced")
    )
    ctes = [event]
    if touch:
        touched = (
            update(m.Conversation)
            .where(m.Conversation.id == stored.c.conversation_id)
            .values(last_message_at=stored.c.created_at)
            .cte("touched")
        )
        ctes.append(touched)
    return select(*_MESSAGE.columns(stored)).add_cte(*ctes)


async def insert_message(session: AsyncSession, message: m.Message) -> m.Message:
    """Store ``message`` (no idempotency key) with one Core ``INSERT … RETURNING id``, without
    flushing the session: what is pending (the customer's message event, the conversation's
    update, a bot's steps) goes out with the next flush, so an automated reply mid-step costs
    one statement and the step's events are inserted together at commit (bench/scenarios.py).

    Returns ``message`` with its id: a plain row, not in the session (no ORM loading of the
    row written, bench/README.md). Read it; change the stored row with a statement."""
    await _after_deferred(session)
    with session.no_autoflush:  # a Core statement autoflushes too
        message.id = (await session.execute(_INSERT_MESSAGE, _values(message))).scalar_one()
    return message


async def _after_deferred(session: AsyncSession) -> None:
    """A message inserted now comes after the ones deferred before it (``defer_message``):
    message ids are a conversation's order (histories, transcripts), so those go out first."""
    if message_pending(session):
        await session.flush()


async def defer_message(
    session: AsyncSession,
    conv: m.Conversation,
    message: m.Message,
    *,
    announced: list[dict[str, Any]] | None = None,
) -> m.Message:
    """Store ``message`` (no idempotency key) and announce it (``message.created``), the insert
    deferred to the session's next flush, where it goes out with the events: in one statement
    with them on PostgreSQL, or with a bot step's own writes (``bots.step_writes``). A bot step
    stored its customer's message, its reply and their events with three statements; now
    none of its own (bench/README.md, scenarios.py).

    ``message.id`` is set when the row is written (the next flush, at the latest the commit):
    read it after a flush; change nothing of the message before. Nothing in the transaction
    misses it: a query autoflushes, and a statement that skips the autoflush flushes first
    when ``outbox.unflushed``. ``announced``: the attachments the event names, when they are
    not all the stored ones (a bot prompt's file on a call). Where the event must be seen at
    once (an ``events.recording`` is open) or the session writes no outbox rows, the message
    is inserted now, as :func:`insert_message` does, and announced as before."""
    uow = unit_of_work(session)
    if uow.recorders or not isinstance(session.sync_session, OutboxSession):
        inserted = await insert_message(session, message)
        _announce(session, conv, inserted, announced)
        return inserted
    row = _announce(session, conv, message, announced, placeholder=True)
    assert isinstance(row, OutboxRow)
    row.message = message
    return message


def _announce(
    session: AsyncSession,
    conv: m.Conversation,
    message: m.Message,
    announced: list[dict[str, Any]] | None,
    *,
    placeholder: bool = False,
) -> OutboxRow | m.Event:
    payload = message_dict(message) | {"channel": conv.channel}
    if announced is not None:
        payload["attachments"] = list(announced)
    if placeholder:
        payload["id"] = 0  # the insert's id replaces it when the row is written
    return emit(
        session,
        "message.created",
        payload,
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


async def insert_row(session: AsyncSession, row: Row) -> Row:
    """Insert the transient ``row`` in one ``INSERT … RETURNING`` (built once per table)
    without flushing the session, and return the session's persistent copy (id and database
    defaults filled in). For a row whose id an event needs at once (a message, a callback):
    ``add`` + ``flush`` would also write every pending event and change, one insert more."""
    if isinstance(row, m.Message):
        await _after_deferred(session)
    with session.no_autoflush:
        stored: Row = (await session.scalars(_insert(type(row)), _values(row))).one()
    return stored


_MESSAGES = typing_cast(Table, m.Message.__table__)
_INSERT_MESSAGE = sa_insert(_MESSAGES).returning(_MESSAGES.c.id)


@functools.cache
def _insert(model: type[m.Base]) -> Any:
    """Built once, run with the row's values as parameters (building a statement per message
    cost more Python than running it)."""
    return sa_insert(model).returning(model)


@functools.cache
def _insert_once(postgresql: bool) -> Any:
    insert_ = pg_insert if postgresql else sqlite_insert
    return insert_(m.Message).on_conflict_do_nothing().returning(m.Message)


def _values(row: m.Base) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in type(row).__table__.columns:
        value = getattr(row, column.key)
        if column.primary_key or (value is None and column.default is not None):
            continue  # the id from its sequence, an unset value from the column's default
        values[column.key] = value
    return values
