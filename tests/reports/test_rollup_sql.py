"""The set-based rollup rebuilds (``rollup_sql``, PostgreSQL) against the Python ones.

A backfill rebuilds a whole range with one statement per table; the driver rebuilds a few
touched intervals at a time, and SQLite runs the Python loops. All of them must leave the same
rows, or a report would change with how its rollups happened to be built. Each test rebuilds
the hand-built fixtures of ``test_queue_reports`` / ``test_operators`` both ways.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from omni.db import Database
from omni.db import models as m
from omni.domain.reports import rollup_sql
from omni.domain.reports.chats import ChatRollup, chat_times
from omni.domain.reports.period import INTERVAL
from omni.domain.reports.rollups import rebuild_range
from omni.services import Services
from tests import factories as f
from tests.helpers import lock_waits, until
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


async def test_two_rebuilds_of_the_same_intervals_at_once_both_commit(services: Services) -> None:
    """A node's rollup pass and ``omni reports backfill`` may rebuild the same intervals at once.
    The second waits for the first, then deletes what it committed and writes the same rows;
    before, it failed on a duplicate key (its DELETE could not see the first's uncommitted
    rows) and its whole rebuild was lost."""
    await queues.build(services)
    start, end = queues.local(0, 0, day=9), queues.local(0, 0, day=11)
    async with services.db.transaction() as s:
        await rebuild_range(s, start, end)
    once = await snapshot(services.db)

    async def backfill() -> None:
        async with services.db.transaction() as s:
            await rebuild_range(s, start, end)

    async with services.db.transaction() as s:
        await rebuild_range(s, start, end)  # rebuilt, not committed yet
        second = asyncio.create_task(backfill())
        await until(lambda: lock_waits(services.db), what="the second rebuild waiting for a lock")
    await second
    assert await snapshot(services.db) == once


async def _chat_rows(db: Database) -> list[tuple[Any, ...]]:
    t = m.ReportChatInterval
    keys = [c.key for c in t.__table__.columns if c.key != "id"]
    async with db.transaction() as s:
        rows = await s.scalars(select(t).order_by(t.bucket, t.queue_id, t.inbox_id, t.user_id))
        return [tuple(_value(getattr(r, k)) for k in keys) for r in rows]


async def test_reply_times_in_sql_equal_the_python_walk_message_by_message(services: Services) -> None:
    """``rollup_sql.chat_times`` against ``chats.chat_times`` on 80 chats of random messages:
    written before the wait, by the customer, by an operator, by the bot (no author), some at
    the same instant, some chats never accepted — and the chat rollup's rows built both ways."""
    rnd = random.Random(15)
    start = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    walked: dict[int, tuple[Any, ...]] = {}
    async with services.db.transaction() as s:
        olga = await f.user(s, "olga")
        q = await f.queue(s, "chats", [olga])
        ib = await f.inbox(s, q, channel="widget")
        contact = m.Contact(name="Ivan", custom_fields={}, tags=[])
        s.add(contact)
        await s.flush()
        for i in range(80):
            waits = start + timedelta(seconds=rnd.randrange(0, 1800))  # two intervals
            accepted = waits + timedelta(seconds=rnd.randrange(0, 120)) if rnd.random() < 0.8 else None
            conv = m.Conversation(
                contact_id=contact.id, inbox_id=ib.id, channel="widget", medium="chat",
                status="closed" if accepted else "abandoned", queue_id=q.id, created_at=waits,
                enqueued_at=waits, first_enqueued_at=waits, accepted_at=accepted,
                assigned_user_id=olga.id if accepted else None, extra_queue_ids=[], variables={},
            )  # fmt: skip
            s.add(conv)
            await s.flush()
            messages = []
            for j in range(rnd.randrange(0, 12)):
                at = waits + timedelta(seconds=rnd.choice((-30, -1, 0, 0, 5, 17, 60, 61, 200, 400)) + j)
                direction = rnd.choice(("in", "in", "out", "out", "note"))
                author = olga.id if direction != "in" and rnd.random() < 0.8 else None
                msg = m.Message(
                    conversation_id=conv.id, direction=direction, author_user_id=author,
                    body=f"m{i}.{j}", created_at=at,
                )  # fmt: skip
                s.add(msg)
                await s.flush()
                messages.append((at, msg.id, direction, author))
            ordered = [(d, a, at) for at, _, d, a in sorted(messages) if d in ("in", "out")]
            times = chat_times(waits, ordered, accepted)
            if times.frt is not None or times.replies:
                walked[conv.id] = (
                    times.frt,
                    times.frt_accept,
                    len(times.replies),
                    round(sum(times.replies), 6),
                )
    async with services.db.transaction() as s:
        found = await rollup_sql.chat_times(s, start, start + 2 * INTERVAL)
    in_sql = {k: (*v[:3], round(v[3], 6)) for k, v in found.items()}
    assert len(walked) > 40
    assert in_sql == walked
    rollup = ChatRollup()
    async with services.db.transaction() as s:
        await rollup.rebuild(s, start, start + 2 * INTERVAL, in_database=True)
    built_in_sql = await _chat_rows(services.db)
    assert built_in_sql
    async with services.db.transaction() as s:
        await rollup.rebuild(s, start, start + 2 * INTERVAL, in_database=False)
    assert await _chat_rows(services.db) == built_in_sql
