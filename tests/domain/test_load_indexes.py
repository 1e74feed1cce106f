"""An operator's load is read by the partial indexes of migration 0045_route6, whatever their
history and whatever the statistics say: the router's statements are prepared, so PostgreSQL
runs them with a generic plan, which sees neither the operator nor the values bound.

Before, the load's offers branch read every offer the operator was ever made
(``ix_offers_user_id``, then dropped all but the pending ones: 56 ms of a 57 ms decision with
2,000 past offers per operator), and its conversations branch walked everyone's offered
conversations per candidate; bench/README.md, "Issue 15 … route6"."""

from __future__ import annotations

import json
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from omni.db import Database
from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.conversations import InboundMessage
from omni.domain.routing_pg_sql import fresh_statement
from tests import factories as f
from tests.conftest import _raw_dsn

HISTORY = 3000
"""Closed conversations of the operator, each with one offer that ended."""


async def _seed(db: Database) -> int:
    async with db.transaction() as s:
        op = await f.user(s, "olga")
        q = await f.queue(s, "main", [op])
        await f.inbox(s, q)
        await f.set_status(s, op)
        ib = await s.scalar(select(m.Inbox).where(m.Inbox.name == "api-main"))
        assert ib is not None
        await c.do_ingest_inbound(
            s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value="c1", body="hi")
        )
        return op.id


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", ()):
        found += _nodes(child)
    return found


async def test_the_load_reads_only_pending_offers_and_open_conversations(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        uid = await _seed(db)
    finally:
        await db.dispose()
    conn = await asyncpg.connect(_raw_dsn(pg_url.rsplit("/", 1)[1]))
    try:
        # A history: the operator's closed conversations and ended offers, one still pending.
        cols = [
            r[0]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'conversations' "
                "AND column_name NOT IN ('id', 'external_id') ORDER BY ordinal_position"
            )
        ]
        values = {"status": "'closed'", "assigned_user_id": str(uid)}
        await conn.execute(
            f"INSERT INTO conversations ({', '.join(cols)}) "
            f"SELECT {', '.join(values.get(col, 'c.' + col) for col in cols)} "
            f"FROM conversations c, generate_series(1, {HISTORY}) "
            "WHERE c.id = (SELECT min(id) FROM conversations)"
        )
        await conn.execute(
            "INSERT INTO offers (conversation_id, user_id, queue_id, state, created_at, expires_at) "
            "SELECT id, assigned_user_id, queue_id, "
            "CASE WHEN id = (SELECT max(id) FROM conversations) THEN 'pending' ELSE 'timeout' END, "
            "created_at, created_at FROM conversations WHERE status = 'closed'"
        )
        await conn.execute(
            "UPDATE conversations SET status = 'active' WHERE id = (SELECT max(id) FROM conversations)"
        )
        await conn.execute("ANALYZE")

        stmt = fresh_statement()  # the load re-read under the lock; the decision's per candidate
        compiled = stmt.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[no-untyped-call]
        args = [uid if name == "uid" else compiled.binds[name].value for name in compiled.positiontup or ()]
        prepared = await conn.prepare(compiled.string)
        types = [f"{t.schema}.{t.name}" for t in prepared.get_parameters()]
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE load ({', '.join(types)}) AS {compiled.string}")
        literals = ", ".join(_literal(a) for a in args)
        explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE load ({literals})")
        row = await conn.fetchrow(compiled.string, *args)
    finally:
        await conn.close()
    assert row is not None
    assert tuple(row[:4]) == (1, 0, 1, 0)  # one active chat, one pending chat offer
    nodes = _nodes(json.loads(explained)[0]["Plan"])
    scans = [n for n in nodes if n.get("Relation Name") in ("offers", "conversations")]
    offers = [n for n in nodes if n.get("Relation Name") == "offers"]
    held = [
        n for n in nodes if n.get("Relation Name") == "conversations" and "holding" in n.get("Index Name", "")
    ]
    assert [n.get("Index Name") for n in offers] == ["ix_offers_pending_user"], scans
    assert len(held) == 1, scans
    # Nothing of the history was read and dropped.
    assert all(n.get("Rows Removed by Filter", 0) == 0 for n in offers + held)
    assert all(n["Actual Rows"] <= 1 for n in offers + held)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def test_the_routers_tables_are_vacuumed_after_a_few_hundred_dead_rows(pg_url: str) -> None:
    """Migration 0046_vacuum15: every contact leaves dead row versions of its conversation and
    offer in these partial indexes; the router's decisions slowed as they piled up (p50 2.3 →
    4.7 ms over five routing passes, flat with a vacuum after each), and PostgreSQL's default
    (a fifth of the table dead) would never vacuum a year of conversations during a working day."""
    conn = await asyncpg.connect(_raw_dsn(pg_url.rsplit("/", 1)[1]))
    try:
        rows = await conn.fetch(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[]) AND relkind = 'r'",
            ["conversations", "offers"],
        )
    finally:
        await conn.close()
    options = {r["relname"]: sorted(r["reloptions"] or ()) for r in rows}
    expected = ["autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=500"]
    assert options == {"conversations": expected, "offers": expected}
