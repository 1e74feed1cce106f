"""The pool after a PostgreSQL backend dies: the caller never sees the dead connection."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text

from omni.db import Database
from tests.conftest import PG_DSN
from tests.helpers import until


async def _pid(db: Database) -> int:
    async with db.transaction() as s:
        return int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)


async def _pid_and_driver(db: Database) -> tuple[int, Any]:
    """The backend's pid and the asyncpg connection the pool will hand out next."""
    async with db.transaction() as s:
        raw = await (await s.connection()).get_raw_connection()
        return int(await s.scalar(text("SELECT pg_backend_pid()")) or 0), raw.driver_connection


async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        pid, driver = await _pid_and_driver(db)
        admin = await asyncpg.connect(PG_DSN)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        # The backend leaving pg_stat_activity is not the client reading the EOF: that happens on
        # a later turn of the event loop (on a loaded CI machine, after the next checkout had
        # already sent BEGIN on the dead socket). The pool replaces what asyncpg knows is closed;
        # a drop it has not seen yet is what the ping after IDLE_PING_SECONDS idle is for.
        await until(driver.is_closed, what="asyncpg seeing the server close the connection")
        assert await _pid(db) not in (0, pid)  # a fresh connection, and no error for the caller
    finally:
        await db.dispose()


async def test_a_burst_larger_than_the_pool_waits_for_its_connections_and_opens_no_more(pg_url: str) -> None:
    """A node at its peak must not open and close connections: each new one is a new backend
    with every statement prepared again, which made a saturated node slower still."""
    db = Database(pg_url, pool_size=3)
    try:

        async def held_pid() -> int:
            async with db.transaction() as s:
                # Held a moment, so that the burst's transactions overlap.
                return int(await s.scalar(text("SELECT pg_backend_pid() FROM pg_sleep(0.02)")) or 0)

        first = set(await asyncio.gather(*(held_pid() for _ in range(8))))
        second = set(await asyncio.gather(*(held_pid() for _ in range(8))))
        assert len(first | second) <= 3, (first, second)
        assert 0 not in first | second
    finally:
        await db.dispose()
