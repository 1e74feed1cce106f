"""One Alembic history for SQLite and PostgreSQL, matching the models exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from omni.db import models as m
from omni.db.migrate import upgrade_async
from omni.domain.search import FTS_TABLE, UNMAPPED_COLUMNS, UNMAPPED_INDEXES


def _mapped_name(name: str | None, type_: str, _parent: Any) -> bool:
    """Search's indexes live outside the models on purpose (migrations 0037_search18 and
    0042_searchperf18): SQLite's FTS5 table with its shadow tables, kept by triggers, and
    PostgreSQL's generated tsvector column with its GIN and trigram indexes, the
    trigger-kept ``search_queue_id`` with its scope and date indexes; ``omni.domain.search``
    reads them."""
    if type_ == "index":
        return name not in UNMAPPED_INDEXES
    if type_ == "column":
        return name not in UNMAPPED_COLUMNS
    return not (type_ == "table" and name is not None and name.startswith(FTS_TABLE))


async def _drift(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn: Any) -> list[Any]:
                ctx = MigrationContext.configure(
                    sync_conn, opts={"compare_type": True, "include_name": _mapped_name}
                )
                return list(compare_metadata(ctx, m.Base.metadata))

            result: list[Any] = await conn.run_sync(diff)
            statuses = set(await conn.scalars(select(m.OperatorStatus.code)))
        assert {"offline", "available", "ringing", "talking", "wrap_up", "pause", "dnd"} <= statuses
        return result
    finally:
        await engine.dispose()


async def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}"
    await upgrade_async(url)
    await upgrade_async(url)  # idempotent: a second start changes nothing
    assert await _drift(url) == []


async def test_postgres_migrations_match_models(pg_url: str) -> None:
    assert await _drift(pg_url) == []


async def test_result_code_names_in_two_languages_are_split(tmp_path: Path) -> None:
    """Issue 10 item 19: "Resolved / Решено" was shown as is in both languages."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'codes.sqlite3'}"
    await upgrade_async(url, "0006")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO result_codes (code, name, colour, active) VALUES "
                    "('resolved', 'Resolved / Решено', '#2e7d32', 1), ('sale', 'Sale', '#2e7d32', 1)"
                )
            )
        await upgrade_async(url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT code, name, name_ru FROM result_codes ORDER BY code"))
            ).all()
        assert [tuple(r) for r in rows] == [("resolved", "Resolved", "Решено"), ("sale", "Sale", "")]
    finally:
        await engine.dispose()


async def test_an_upgrade_with_status_history_fills_the_daily_tier_in_the_install_zone(
    tmp_path: Path,
) -> None:
    """0017_daily sums existing 15-minute status rows per LOCAL day: a Moscow install's day starts
    at 21:00 UTC, so 20:45 and 21:00 UTC land on different days."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'daily.sqlite3'}"
    await upgrade_async(url, "0010_perf")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO install_settings"
                    " (id, timezone, short_abandon_seconds, business_days, updated_at) VALUES"
                    " (1, 'Europe/Moscow', 5, '[0,1,2,3,4]', '2026-03-01 00:00:00.000000')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO report_status_intervals (bucket, user_id, status_code, seconds) VALUES "
                    "('2026-03-09 20:45:00.000000', 7, 'available', 600),"
                    "('2026-03-09 21:00:00.000000', 7, 'available', 300),"
                    "('2026-03-09 21:15:00.000000', 7, 'available', 200),"
                    "('2026-03-09 21:15:00.000000', 7, 'offline', 900)"
                )
            )
        await upgrade_async(url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT day, status_code, seconds FROM report_status_days ORDER BY day")
                )
            ).all()
        assert [(str(r[0])[:16], r[1], r[2]) for r in rows] == [
            ("2026-03-08 21:00", "available", 600.0),
            ("2026-03-09 21:00", "available", 500.0),
        ]
    finally:
        await engine.dispose()


async def test_postgres_upgrade_fills_the_search_queue_of_existing_messages(pg_url: str) -> None:
    """0042_searchperf18 on a database with messages: each gets its conversation's queue (in
    batches), and a transfer afterwards moves it along (the triggers)."""
    import asyncio

    from alembic import command
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from omni.db.migrate import alembic_config
    from tests import factories as f

    await asyncio.to_thread(command.downgrade, alembic_config(pg_url), "0039_rest16")
    engine = create_async_engine(pg_url)
    try:
        async with async_sessionmaker(engine)() as db, db.begin():
            qa, qb = await f.queue(db, "A", []), await f.queue(db, "B", [])
            contact = m.Contact(name="x")
            db.add(contact)
            await db.flush()
            convs = [m.Conversation(contact_id=contact.id, channel="widget", queue_id=q.id) for q in (qa, qb)]
            db.add_all(convs)
            await db.flush()
            c1, c2, q1, q2 = convs[0].id, convs[1].id, qa.id, qb.id
            db.add_all(
                [m.Message(conversation_id=c, direction="in", body="hi") for c in (c1, c2) for _ in "abc"]
            )
        await upgrade_async(pg_url)

        async def queues() -> list[tuple[int, int | None]]:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT conversation_id, search_queue_id FROM messages ORDER BY id")
                )
                return [tuple(r) for r in rows.all()]  # type: ignore[misc]

        assert await queues() == [(c1, q1)] * 3 + [(c2, q2)] * 3
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE conversations SET queue_id = :q WHERE id = :c"), {"q": q1, "c": c2}
            )
            await conn.execute(
                text(
                    "INSERT INTO messages (conversation_id, direction, body, attachments, delivery, "
                    "created_at) VALUES (:c, 'in', 'later', '[]', 'sent', now())"
                ),
                {"c": c2},
            )
        assert [q for _c, q in await queues()] == [q1] * 7
    finally:
        await engine.dispose()
