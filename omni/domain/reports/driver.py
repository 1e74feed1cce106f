"""The rollup driver: keeps every registered rollup current from the event log.

Each pass reads the events after the cursor (``report_cursors``), turns them into ``Changes``
(conversations and operators), asks each rollup which intervals they touch and rebuilds those
intervals — all in one transaction with the cursor's advance, so a pass either happens whole
or not at all, and a crash half way is simply redone (rebuilding is idempotent).

Why a cursor rather than the relay's sinks: the cursor survives downtime. After a node (or
every node) was down, the next pass catches up everything committed since, in batches.

Out-of-order commits: event ids come from a sequence taken at insert time, so a transaction
that took id 41 may commit after 42 was read. Each hole below the cursor is remembered in the
cursor row (``gaps``) and looked for again on every pass until it turns up or is older than
``GAP_WATCH`` (then it was a rollback: ids of rolled-back transactions never appear).

Several nodes may run the driver: the cursor row is taken with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so one pass runs at a time and the others skip (return ``None``); on SQLite
(embedded, one process) the database's transaction lock serialises passes already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain.reports.period import INTERVAL, floor_interval
from omni.domain.reports.rollups import ROLLUPS, Changes, hold_rebuilds, rebuild_range

log = logging.getLogger(__name__)

CURSOR = "rollups"
GAP_WATCH = timedelta(minutes=10)
"""How long a hole in the id sequence is looked for (a transaction in flight that long is a
rollback, whose ids never appear)."""
MAX_GAPS = 10_000
"""Holes remembered at most (the newest win): a huge hole is a sequence jump, not commits."""
BATCH = 10_000
"""Events one pass reads at most. A pass rebuilds every interval its events touch, and the
cost of rebuilding an interval grows with what happened in it, not with how many of its events
were read: at 200 messages a second a node wrote about 3,500 events between two passes, and
batches of 1,000 rebuilt the current interval 3–4 times in a row, 0.3–0.4 s of this node's
event loop each time (bench/README.md, roll15). The events are read as four plain columns, so
even a catch-up after downtime holds little."""
POLL_SECONDS = 5.0
SHARE = 0.1
"""The part of an app node's time the loop may spend on rollups: after a catch-up that took
``t`` seconds the next waits at least ``t * (1 / SHARE - 1)``. A busy node's reports then trail
by more than ``POLL_SECONDS``; its customers' messages do not wait behind them."""


async def _cursor(session: AsyncSession, db: Database) -> m.ReportCursor | None:
    stmt = select(m.ReportCursor).where(m.ReportCursor.name == CURSOR)
    if not db.is_sqlite:
        stmt = stmt.with_for_update(skip_locked=True)
    row = await session.scalar(stmt)
    if row is not None:
        return row
    exists = await session.scalar(select(m.ReportCursor.name).where(m.ReportCursor.name == CURSOR))
    if exists is not None:
        return None  # another node holds it
    row = m.ReportCursor(name=CURSOR, last_event_id=0, gaps={}, updated_at=datetime.now(UTC))
    try:
        async with session.begin_nested():  # two nodes' very first passes: one creates it
            session.add(row)
    except IntegrityError:
        return None
    return row


def _runs(intervals: set[datetime]) -> list[tuple[datetime, datetime]]:
    """Touched interval starts merged into contiguous ``[start, end)`` runs."""
    runs: list[tuple[datetime, datetime]] = []
    for at in sorted(intervals):
        if runs and runs[-1][1] == at:
            runs[-1] = (runs[-1][0], at + INTERVAL)
        else:
            runs.append((at, at + INTERVAL))
    return runs


async def rebuild_touched(session: AsyncSession, changes: Changes) -> int:
    """Rebuild, in every rollup, the intervals ``changes`` touch; returns how many intervals."""
    await hold_rebuilds(session)
    count = 0
    for rollup in ROLLUPS.values():
        touched = await rollup.touched(session, changes)
        for start, end in _runs(touched):
            await rollup.rebuild(session, start, end)
        count += len(touched)
    return count


async def pass_once(db: Database, *, batch: int = BATCH, now: datetime | None = None) -> int | None:
    """One batch: how many events it read, or ``None`` when another node holds the cursor."""
    now = now or datetime.now(UTC)
    async with db.transaction() as session:
        cursor = await _cursor(session, db)
        if cursor is None:
            return None
        gaps = {int(k): datetime.fromisoformat(v) for k, v in (cursor.gaps or {}).items()}
        after = cursor.last_event_id
        cond = m.Event.id > after
        if gaps:
            cond = or_(cond, m.Event.id.in_(sorted(gaps)))
        rows = (
            await session.execute(
                select(m.Event.id, m.Event.conversation_id, m.Event.user_id, m.Event.created_at)
                .where(cond)
                .order_by(m.Event.id)
                .limit(batch)
            )
        ).all()
        changes = Changes()
        last = after
        for event_id, conversation_id, user_id, created_at in rows:
            if event_id in gaps:
                del gaps[event_id]
            elif event_id > last:
                if last:  # a fresh cursor's first event: what lies below it is history, not in flight
                    for hole in range(max(last + 1, event_id - MAX_GAPS), event_id):
                        gaps[hole] = now
                last = event_id
            if conversation_id is not None:
                changes.conversation_ids.add(conversation_id)
            if user_id is not None:
                changes.user_ids.add(user_id)
            if changes.earliest is None or created_at < changes.earliest:
                changes.earliest = created_at
        kept = sorted((k for k, seen in gaps.items() if now - seen < GAP_WATCH), reverse=True)[:MAX_GAPS]
        if rows:
            await rebuild_touched(session, changes)
        new_gaps = {str(k): gaps[k].isoformat() for k in sorted(kept)}
        if rows or new_gaps != (cursor.gaps or {}):  # an idle pass writes nothing (SQLite: no lock)
            cursor.last_event_id = last
            cursor.gaps = new_gaps
            cursor.updated_at = now
        return len(rows)


async def catch_up(db: Database, *, batch: int = BATCH, now: datetime | None = None) -> int | None:
    """Passes until the log is read; how many events, ``None`` if another node is at it.

    The Celery beat task ``omni.reports.catch_up`` and each app node's loop call this.
    """
    total = 0
    while True:
        read = await pass_once(db, batch=batch, now=now)
        if read is None:
            return None if total == 0 else total
        total += read
        if read < batch:
            return total


async def backfill(db: Database, start: datetime, end: datetime, *, now: datetime | None = None) -> int:
    """Rebuild every rollup over ``[start, end)`` a day at a time (an install upgrading with
    history, a bench), then move the cursor past what the rebuild already covers.

    The cursor moves only to the last event older than ``GAP_WATCH`` at the start: later ones
    are read again by the next pass (rebuilding twice is harmless), so a transaction still in
    flight while the backfill ran is not skipped. Returns how many days were rebuilt.
    """
    now = now or datetime.now(UTC)
    async with db.transaction() as session:
        settled = select(func.max(m.Event.id)).where(m.Event.created_at < now - GAP_WATCH)
        top = int(await session.scalar(settled) or 0)
    days = 0
    at = floor_interval(start)
    while at < end:
        upto = min(end, at + timedelta(days=1))
        async with db.transaction() as session:
            await rebuild_range(session, at, upto)
        at = upto
        days += 1
    async with db.transaction() as session:
        cursor = await _cursor(session, db)
        if cursor is not None and cursor.last_event_id < top:
            cursor.last_event_id = top
            cursor.gaps = {}
            cursor.updated_at = now
    return days


def pause_after(took: float, poll_seconds: float = POLL_SECONDS, share: float = SHARE) -> float:
    """Seconds to wait after a catch-up that took ``took`` seconds: ``poll_seconds``, or longer
    when the catch-up was long, so that the rollups keep to ``share`` of the node's time."""
    return max(poll_seconds, took * (1 / share - 1))


async def run_loop(db: Database, *, poll_seconds: float = POLL_SECONDS) -> None:
    """The in-process driver of an app node: a catch-up every ``poll_seconds`` (or less often,
    ``pause_after``) until cancelled."""
    while True:
        started = time.monotonic()
        try:
            read = await catch_up(db)
            if read:
                log.debug("report rollups: %d events applied", read)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("report rollup pass failed; retrying")
        await asyncio.sleep(pause_after(time.monotonic() - started, poll_seconds))
