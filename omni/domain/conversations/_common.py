"""What every part of the conversation lifecycle shares: statuses, limits, the event helpers
and the bot gateway (the scenario engine plugged in by the composition root)."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.unit_of_work import BotGateway, unit_of_work
from omni.domain.events import emit
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
    statement = _insert_once(session.get_bind().dialect.name == "postgresql")
    with session.no_autoflush:
        return (await session.scalars(statement, _values(message))).one_or_none()


async def insert_message(session: AsyncSession, message: m.Message) -> m.Message:
    """Store ``message`` (no idempotency key) with one Core ``INSERT … RETURNING id``, without
    flushing the session: what is pending (the customer's message event, the conversation's
    update, a bot's steps) goes out with the next flush, so an automated reply mid-step costs
    one statement and the step's events are inserted together at commit (bench/scenarios.py).

    Returns ``message`` with its id: a plain row, not in the session (no ORM loading of the
    row written, bench/README.md). Read it; change the stored row with a statement."""
    with session.no_autoflush:  # a Core statement autoflushes too
        message.id = (await session.execute(_INSERT_MESSAGE, _values(message))).scalar_one()
    return message


async def insert_row(session: AsyncSession, row: Row) -> Row:
    """Insert the transient ``row`` in one ``INSERT … RETURNING`` (built once per table)
    without flushing the session, and return the session's persistent copy (id and database
    defaults filled in). For a row whose id an event needs at once (a message, a callback):
    ``add`` + ``flush`` would also write every pending event and change, one insert more."""
    with session.no_autoflush:
        stored: Row = (await session.scalars(_insert(type(row)), _values(row))).one()
    return stored


_MESSAGES = cast(Table, m.Message.__table__)
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
