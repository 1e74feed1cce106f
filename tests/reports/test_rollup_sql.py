"""The set-based rollup rebuilds (``rollup_sql``, PostgreSQL) against the Python ones.

A backfill rebuilds a whole range with one statement per table; the driver rebuilds a few
touched intervals at a time, and SQLite runs the Python loops. All of them must leave the same
rows, or a report would change with how its rollups happened to be built. Each test rebuilds
the hand-built fixtures of ``test_queue_reports`` / ``test_operators`` both ways.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from omni.db import Database
from omni.db import models as m
from omni.domain.reports.period import INTERVAL
from omni.domain.reports.rollups import rebuild_range
from omni.services import Services
from tests.reports import test_operators as ops
from tests.reports import test_queue_reports as queues

TABLES = (
    m.ReportQueueInterval,
    m.ReportOperatorInterval,
    m.ReportOperatorHour,
    m.ReportStatusInterval,
    m.ReportStatusHour,
)


def _value(v: Any) -> Any:
    # PostgreSQL sums exact interval seconds, Python adds floats: equal to the microsecond.
    return round(v, 6) if isinstance(v, float) else v


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.transaction() as s:
        for table in TABLES:
            keys = [c.key for c in table.__table__.columns]
            rows = await s.scalars(select(table).order_by(*table.__table__.primary_key))
            out[table.__tablename__] = [tuple(_value(getattr(r, k)) for k in keys) for r in rows]
    return out


async def both_ways(db: Database, start: datetime, end: datetime) -> None:
    async with db.transaction() as s:
        await rebuild_range(s, start, end, in_database=True)
    whole = await snapshot(db)
    assert whole[m.ReportQueueInterval.__tablename__] or whole[m.ReportStatusInterval.__tablename__]
    at = start
    while at < end:
        async with db.transaction() as s:
            await rebuild_range(s, at, at + INTERVAL, in_database=False)
        at += INTERVAL
    assert await snapshot(db) == whole
    async with db.transaction() as s:  # and once more set-based over the range: idempotent
        await rebuild_range(s, start, end)
    assert await snapshot(db) == whole


async def test_a_range_rebuilt_in_sql_equals_the_queue_intervals_rebuilt_one_by_one_in_python(
    services: Services,
) -> None:
    await queues.build(services)
    await both_ways(services.db, queues.local(0, 0, day=9), queues.local(0, 0, day=11))


async def test_a_range_rebuilt_in_sql_equals_the_operator_intervals_rebuilt_one_by_one_in_python(
    services: Services,
) -> None:
    await ops.build_world(services)
    await both_ways(services.db, ops.at("18:00", ops.DAY10 - timedelta(days=1)), ops.at("23:00"))
