"""The pool's cheap pre-ping (``omni.db._check_out``): dead connections are replaced, warm ones
cost no extra round trip."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text

import omni.db
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


async def _queries_of_one_transaction(db: Database) -> list[str]:
    seen: list[str] = []
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection

    def log(record: Any) -> None:
        seen.append(record.query.strip())

    driver.add_query_logger(log)
    try:
        await _pid(db)
    finally:
        driver.remove_query_logger(log)
    return seen


async def test_a_warm_pooled_connection_costs_no_ping_and_an_idle_one_is_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's ``pool_pre_ping`` on asyncpg was three round trips before every transaction
    (a quarter of a scheduler tick); a connection used moments ago needs none."""
    db = Database(pg_url, pool_size=1)
    try:
        await _pid(db)
        warm = await _queries_of_one_transaction(db)
        # The logger sees the simple-protocol commands and the ping's ``;`` (not the prepared
        # statements): a warm connection's transaction is BEGIN … COMMIT and nothing else.
        assert warm == ["BEGIN;", "COMMIT;"]
        monkeypatch.setattr(omni.db, "PING_IDLE_SECONDS", -1.0)  # every connection counts as idle
        idle = await _queries_of_one_transaction(db)
        assert ";" in idle and idle[-2:] == ["BEGIN;", "COMMIT;"]
    finally:
        await db.dispose()


async def test_a_driver_statement_inside_a_transaction_rolls_back_with_it(pg_url: str) -> None:
    """Regression: BEGIN went out with the session's first SQLAlchemy statement, so a statement
    run on asyncpg itself first (the list import's bulk INSERT) committed on its own: a node
    stopped mid-import kept rows its job never counted."""
    db = Database(pg_url, pool_size=1)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as s:
                raw = await (await s.connection()).get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.execute(
                    "INSERT INTO events (type, payload, created_at, dispatched)"
                    " VALUES ('x', '{}', now(), true)"
                )
                raise RuntimeError("rolled back")
        async with db.transaction() as s:
            assert await s.scalar(text("SELECT count(*) FROM events WHERE type = 'x'")) == 0
    finally:
        await db.dispose()
