"""Domain events through a transactional outbox.

Actions call ``emit()`` with the session they mutate through, so the event row commits or
rolls back with the change. The ``OutboxRelay`` later hands committed events, in id order,
to the sinks (Socket.IO rooms, webhook fan-out) and marks them dispatched. The event id is
the sequence number clients use to resume after a disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.aio import stop_tasks, wait_set
from omni.db import Database
from omni.db import models as m
from omni.db.outbox import OutboxRow, OutboxSession
from omni.db.unit_of_work import UnitOfWork, unit_of_work
from omni.domain.event_types import check_encoded, check_payload

log = logging.getLogger(__name__)

RELAY_LOCK_KEY = 0x0_4F4D4E49  # "OMNI": one relay batch at a time across all nodes
GAP_GRACE = timedelta(seconds=1.5)
"""A hole in the id sequence may be a transaction still in flight; wait this long for it."""


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """What sinks receive: a committed, JSON-ready event."""

    id: int
    type: str
    payload: dict[str, Any]
    created_at: datetime
    conversation_id: int | None = None
    queue_id: int | None = None
    user_id: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "seq": self.id,
            "type": self.type,
            "at": self.created_at.isoformat(),
            "conversation_id": self.conversation_id,
            "queue_id": self.queue_id,
            "user_id": self.user_id,
            "data": self.payload,
        }

    @classmethod
    def from_row(cls, row: m.Event | Any) -> DomainEvent:
        """From an ``Event`` object or a plain row of the ``events`` columns (``EVENT_COLUMNS``)."""
        return cls(
            id=row.id,
            type=row.type,
            payload=row.payload,
            created_at=row.created_at,
            conversation_id=row.conversation_id,
            queue_id=row.queue_id,
            user_id=row.user_id,
        )


def emit(
    session: AsyncSession,
    type_: str,
    payload: dict[str, Any],
    *,
    conversation_id: int | None = None,
    queue_id: int | None = None,
    user_id: int | None = None,
) -> OutboxRow | m.Event:
    """Append an event to the outbox inside the caller's transaction.

    The payload is round-tripped through JSON here so an unserialisable value fails in the
    action that produced it, not later in the relay, and checked against its definition in
    ``omni.domain.event_types`` (an unknown type or a payload of the wrong shape raises
    ``EventContractError``: a bug in the action, never bad input).

    The row is written with the session's next flush, at the latest at commit, together with
    the other events emitted since the last one and in emit order (``omni.db.outbox``); its
    ``id`` is set then. A session not opened by ``Database`` gets an ``Event`` object added.
    """
    text = json.dumps(payload, default=_json_default)
    clean: dict[str, Any] = json.loads(text)
    check_payload(type_, clean)
    uow = unit_of_work(session)
    uow.events_written = True
    now = datetime.now(UTC)
    if not isinstance(session.sync_session, OutboxSession):
        event = m.Event(
            type=type_, payload=clean, conversation_id=conversation_id, queue_id=queue_id,
            user_id=user_id, created_at=now,
        )  # fmt: skip
        session.add(event)
        _record(uow, event)
        return event
    row = OutboxRow(type_, clean, text, conversation_id, queue_id, user_id, now)
    uow.outbox.append(row)
    _record(uow, row)
    return row


def _record(uow: UnitOfWork, row: OutboxRow | m.Event) -> None:
    for into in uow.recorders:
        into.append(row)


@contextlib.contextmanager
def recording(session: AsyncSession) -> Iterator[list[OutboxRow | m.Event]]:
    """The events emitted in ``session`` while the block runs, in emit order (each one's
    ``id`` is set once it is written: after a flush)."""
    uow = unit_of_work(session)
    emitted: list[OutboxRow | m.Event] = []
    uow.recorders.append(emitted)
    try:
        yield emitted
    finally:
        uow.recorders.remove(emitted)


def checked_payload(type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as the outbox stores it (round-tripped through JSON) and checked against
    the type's definition: what ``emit`` does before it writes, for an action that writes its
    event rows itself (``lifecycle.do_open_attempts`` on PostgreSQL, in one statement)."""
    clean: dict[str, Any] = json.loads(json.dumps(payload, default=_json_default))
    check_payload(type_, clean)
    return clean


def encoded_payload(type_: str, payload: dict[str, Any]) -> str:
    """``payload`` as the JSON document the outbox stores, checked against the type's
    definition: :func:`checked_payload` without the round trip back to Python objects, for a
    writer that binds the document itself (``routing_pg``'s offer, cast to the column's JSON
    type in SQL). The check reads the encoded document, so a value that came from outside (a
    conversation's variables) is checked as strictly as by ``emit``; the row holds the same
    JSON as ``emit`` writes."""
    document = json.dumps(payload, default=_json_default)
    check_encoded(type_, document)
    return document


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"event payload value of type {type(value).__name__} is not JSON")


EVENT_COLUMNS = tuple(m.Event.__table__.columns)
"""What ``DomainEvent.from_row`` reads, selected as plain rows."""

Sink = Callable[[Sequence[DomainEvent]], Awaitable[None]]
TxSink = Callable[[AsyncSession, Sequence[DomainEvent]], Awaitable[Callable[[], None] | None]]

_EVENTS: Table = m.Event.__table__  # type: ignore[assignment]


def probed(sink: TxSink, probe: ColumnElement[bool]) -> TxSink:
    """``sink`` with a *probe*: a boolean SQL expression (an ``EXISTS`` over the sink's
    configuration: any active webhook subscription, automation rule, service level) that is
    false when the sink has nothing to do whatever the events. The relay reads every sink's
    probe in the statement that reads the batch, so a batch a sink cannot act on costs that
    sink no statement at all (below saturation a batch is one message: the sinks' own checks
    were half the relay's statements, bench/relay_sinks.py). Nothing is cached: the probe sees
    the same snapshot as the events, so configuration committed before an event is always
    seen with it, on every node."""
    sink.probe = probe  # type: ignore[attr-defined]
    return sink


def sink_probe(sink: TxSink) -> ColumnElement[bool] | None:
    """The probe :func:`probed` gave ``sink`` (or its class declares), ``None``: always run."""
    return getattr(sink, "probe", None)


@dataclass
class OutboxRelay:
    """Moves committed events from the outbox to the sinks, in id order, at least once.

    ``sinks`` run before the rows are marked dispatched: if this node dies in between, the
    events are delivered again and consumers drop what they have seen (by ``seq``).
    ``tx_sinks`` write inside the relay's transaction (webhook deliveries) and may return a
    callable to run after commit (enqueue the deliveries).
    """

    db: Database
    sinks: list[Sink] = field(default_factory=list)
    tx_sinks: list[TxSink] = field(default_factory=list)
    post_commit_sinks: list[Sink] = field(default_factory=list)
    """Run after the batch committed: consumers that open their own transactions (a channel
    send recording its delivery mark), which must not nest inside the relay's (SQLite)."""
    poll_seconds: float = 0.5
    batch_size: int = 500
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _after: asyncio.Queue[Sequence[DomainEvent]] | None = None
    _after_task: asyncio.Task[None] | None = None
    _read: tuple[tuple[int, ...], Select[Any]] | None = None

    def nudge(self) -> None:
        """Called after any commit that wrote events (locally or, via the bus, elsewhere)."""
        self._wake.set()

    async def start(self) -> None:
        self._after = asyncio.Queue()
        self._after_task = asyncio.create_task(self._run_after(), name="outbox-post-commit")
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        await stop_tasks(self._task, self._after_task)
        self._task = self._after_task = self._after = None

    async def _run_after(self) -> None:
        """Post-commit sinks (channel sends, position pushes) run here, batch after batch in
        order, so their database work and network calls never hold up the next relay pass."""
        assert self._after is not None
        while True:
            batch = await self._after.get()
            if not self._after.empty():
                # Behind: the batches waiting go as one, in order. A pass costs a transaction
                # (the delivery marks) and a publish of its own whatever its size, so small
                # batches passed one by one fell seconds behind a relay that kept up.
                joined = list(batch)
                while not self._after.empty():
                    joined.extend(self._after.get_nowait())
                batch = joined
            await self._post_commit(batch)

    async def _post_commit(self, ready: Sequence[DomainEvent]) -> None:
        for post in self.post_commit_sinks:
            try:
                await post(ready)
            except Exception:
                log.exception("post-commit event sink failed")

    async def _run(self) -> None:
        while True:
            try:
                moved = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay batch failed; retrying")
                moved = 0
            if moved >= self.batch_size:
                continue
            await wait_set(self._wake, self.poll_seconds)
            self._wake.clear()

    def _read_statement(self) -> Select[Any]:
        """The batch's one read: the undispatched rows in id order, each with the last
        dispatched id and the tx-sinks' probes (uncorrelated scalar subqueries, evaluated once
        per statement). Built again only when the sinks' probes change."""
        probes = [sink_probe(s) for s in self.tx_sinks]
        key = tuple(id(p) for p in probes)
        if self._read is None or self._read[0] != key:
            last = select(func.max(_EVENTS.c.id)).where(_EVENTS.c.dispatched.is_(True)).scalar_subquery()
            extra = [
                select(p).scalar_subquery().label(f"probe_{i}") for i, p in enumerate(probes) if p is not None
            ]
            statement: Select[Any] = (
                select(*EVENT_COLUMNS, last.label("last_dispatched"), *extra)
                .where(_EVENTS.c.dispatched.is_(False))
                .order_by(_EVENTS.c.id)
                .limit(self.batch_size)
            )
            self._read = (key, statement)
        return self._read[1]

    async def relay_once(self) -> int:
        """Dispatch one batch; returns how many events were dispatched.

        Statements on the transaction's connection (Core, no ORM unit of work): the lock, one
        read (the rows, the last dispatched id and the sinks' probes in one snapshot), what the
        sinks whose probe holds do, and the dispatched mark."""
        after_commit: list[Callable[[], None]] = []
        statement = self._read_statement()
        async with self.db.transaction() as session:
            conn = await session.connection()
            if not self.db.is_sqlite:
                locked = (await conn.execute(select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY)))).scalar()
                if not locked:
                    return 0
            # Plain rows, not ``Event`` objects: the relay only reads them (the ORM's loading and
            # identity map were most of a batch's Python; bench/widget_legs.py).
            rows = (await conn.execute(statement)).all()
            if not rows:
                return 0
            first = rows[0]._mapping
            last_id = int(first["last_dispatched"] or 0)
            cutoff = datetime.now(UTC) - GAP_GRACE
            ready: list[DomainEvent] = []
            for row in rows:
                if row.id != last_id + 1 and row.created_at > cutoff and last_id:
                    break
                ready.append(DomainEvent.from_row(row))
                last_id = row.id
            if not ready:
                return 0
            for i, tx_sink in enumerate(self.tx_sinks):
                if sink_probe(tx_sink) is not None and not first[f"probe_{i}"]:
                    continue  # nothing configured that this sink could act on (see ``probed``)
                hook = await tx_sink(session, ready)
                if hook is not None:
                    after_commit.append(hook)
            for sink in self.sinks:
                try:
                    await sink(ready)
                except Exception:
                    log.exception("event sink failed; events stay replayable by seq")
            await conn.execute(
                update(_EVENTS).where(_EVENTS.c.id.in_([e.id for e in ready])).values(dispatched=True)
            )
        for hook in after_commit:
            hook()
        if self.post_commit_sinks:
            if self._after is not None:
                self._after.put_nowait(ready)
            else:  # driven by hand (tests, tools): run them inline
                await self._post_commit(ready)
        return len(ready)


async def events_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[DomainEvent]:
    """Committed events by id, in id order (one node handing a batch to another by ids)."""
    rows = (
        await session.scalars(select(m.Event).where(m.Event.id.in_(list(ids))).order_by(m.Event.id))
    ).all()
    return [DomainEvent.from_row(r) for r in rows]


async def events_after(session: AsyncSession, after: int, *, limit: int = 1000) -> list[DomainEvent]:
    """Committed events with ``id > after`` (replay for a reconnecting client)."""
    rows = (
        await session.scalars(select(m.Event).where(m.Event.id > after).order_by(m.Event.id).limit(limit))
    ).all()
    return [DomainEvent.from_row(r) for r in rows]
