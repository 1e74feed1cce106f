"""The pool after a PostgreSQL backend dies: the caller never sees the dead connection."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text

from omni.db import Database
from tests.conftest import PG_DSN


async def _pid(db: Database) -> int:
    async with db.transaction() as s:
        return int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)


async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        pid = await _pid(db)
        admin = await asyncpg.connect(PG_DSN)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                pass  # until the backend is gone (its socket closed)
        finally:
            await admin.close()
        assert await _pid(db) not in (0, pid)  # a fresh connection, and no error for the caller
    finally:
        await db.dispose()
