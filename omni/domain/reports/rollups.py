"""Interval rollups: 15-minute rows per queue × channel and per operator, rebuilt per interval.

Why "rebuild an interval" rather than "add to a counter": rebuilding the rows of one interval
from the raw rows of that interval is idempotent (running it twice, or after a crash half way,
gives the same rows) and handles late events for free — a wrap-up closing after midnight marks
the interval its contact belongs to, and that interval is rebuilt. The raw rows of one interval
are few and indexed by time, so a rebuild is cheap; a month's report then reads ~3,000 interval
rows per queue instead of every conversation.

Each rollup registers itself here. The driver (``omni.domain.reports.driver``) follows the event
log and asks each rollup which intervals the changed conversations and operators touch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain.reports.period import INTERVAL, floor_interval


@dataclass(slots=True)
class Changes:
    """What changed since the driver last looked: from the event log (``events`` rows)."""

    conversation_ids: set[int] = field(default_factory=set)
    user_ids: set[int] = field(default_factory=set)
    earliest: datetime | None = None
    """The oldest event time among the changes (open status spans reach back to it)."""


class Rollup(Protocol):
    name: str

    async def touched(self, session: AsyncSession, changes: Changes) -> set[datetime]:
        """UTC interval starts whose rows these changes may alter."""
        ...

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """Replace this rollup's rows for every interval in ``[start, end)`` from the raw rows.

        ``in_database``: set-based SQL (``rollup_sql``; PostgreSQL's default) or the Python path
        (SQLite's); both give the same rows.
        """
        ...


ROLLUPS: dict[str, Rollup] = {}

REBUILD_LOCK_KEY = 0x0_4F4D4E52  # "OMNR": one transaction rebuilding rollups at a time
"""A rebuild deletes an interval's rows and inserts them again. Two transactions rebuilding the
same interval at once (a node's pass and ``omni reports backfill``, or two backfills) would both
delete only what is committed, and the later insert of the same key would fail with a unique
violation, losing that transaction's whole rebuild. Held from the first rebuild to the commit."""


async def hold_rebuilds(session: AsyncSession) -> None:
    """Wait until no other transaction is rebuilding rollups, and keep them out until this one
    commits or rolls back (PostgreSQL; SQLite runs one writer at a time anyway). Call it before
    the first ``rebuild`` of a transaction; ``rebuild_range`` and the driver do."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(REBUILD_LOCK_KEY)))


def register(rollup: Rollup) -> Rollup:
    if rollup.name in ROLLUPS:
        raise ValueError(f"rollup {rollup.name!r} registered twice")
    ROLLUPS[rollup.name] = rollup
    return rollup


async def rebuild_range(
    session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
) -> None:
    """Rebuild every rollup over ``[start, end)`` (widened to whole intervals): backfill and tests."""
    await hold_rebuilds(session)
    lo = floor_interval(start)
    hi = floor_interval(end)
    if hi < end:
        hi += INTERVAL
    for rollup in ROLLUPS.values():
        await rollup.rebuild(session, lo, hi, in_database=in_database)
