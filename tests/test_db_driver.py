"""``omni.db.driver``: statements sent straight on asyncpg belong to the session's transaction,
read and write values as SQLAlchemy does, fail as SQLAlchemy's errors, and are counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from omni.db import Database, driver
from omni.db import models as m
from tests import factories as f


async def test_direct_statements_commit_and_roll_back_with_the_session(pg_url: str) -> None:
    db = Database(pg_url)
    sent: list[str] = []
    driver.listen(db.engine, sent.append)
    q = m.Queue.__table__
    rename = update(q).where(q.c.id == bindparam("qid")).values(name=bindparam("name"))
    try:
        async with db.transaction() as s:
            queue_id = (await f.queue(s, "sales", [])).id
        # The first statement of the transaction, sent directly: BEGIN comes with it, and the
        # session's rollback undoes it.
        with pytest.raises(RuntimeError):
            async with db.transaction() as s:
                run = await driver.statements(await s.connection())
                assert isinstance(run, driver.Direct)
                await run.execute(rename, {"qid": queue_id, "name": "gone"})
                assert await s.scalar(select(m.Queue.name).where(m.Queue.id == queue_id)) == "gone"
                raise RuntimeError("roll back")
        async with db.transaction() as s:
            assert await s.scalar(select(m.Queue.name).where(m.Queue.id == queue_id)) == "sales"
            run = await driver.statements(await s.connection())
            await run.execute(rename, {"qid": queue_id, "name": "kept"})
        async with db.transaction() as s:
            assert await s.scalar(select(m.Queue.name).where(m.Queue.id == queue_id)) == "kept"
        assert len(sent) == 2 and all(x.startswith("UPDATE queues") for x in sent), sent
    finally:
        await db.dispose()


async def test_direct_values_and_errors_are_sqlalchemys(pg_url: str) -> None:
    """Aware UTC datetimes and JSON go in and come out as through SQLAlchemy; a constraint
    violation is SQLAlchemy's ``IntegrityError`` and leaves the session to roll back."""
    db = Database(pg_url)
    e = m.Event.__table__
    at = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    add = insert(e).values(
        id=bindparam("id"),
        type=bindparam("type"),
        payload=bindparam("payload", type_=e.c.payload.type),
        created_at=bindparam("at", type_=e.c.created_at.type),
        dispatched=False,
    )
    read = select(e.c.payload, e.c.created_at).where(e.c.type == bindparam("type"))
    try:
        async with db.transaction() as s:
            run = await driver.statements(await s.connection())
            await run.execute(add, {"id": 7, "type": "t.one", "payload": {"a": [1, "é"]}, "at": at})
            row = await run.named(read, {"type": "t.one"})
            assert row is not None and row.payload == {"a": [1, "é"]} and row.created_at == at
            core = driver.Core(await s.connection())
            assert await core.rows(read, {"type": "t.one"}) == await run.rows(read, {"type": "t.one"})
        with pytest.raises(IntegrityError):
            async with db.transaction() as s:
                run = await driver.statements(await s.connection())
                await run.execute(add, {"id": 7, "type": "t.two", "payload": {}, "at": at})
        async with db.transaction() as s:  # the pool's connection is fine afterwards
            assert await s.scalar(select(e.c.type).where(e.c.type == "t.two")) is None
    finally:
        await db.dispose()
