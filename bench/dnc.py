"""Do-not-call benchmark on PostgreSQL: lookups against 1,000,000 entries and the set-based mark.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/dnc.py [--entries 1000000] [--targets 100000] [--lookups 5000]
                                  [--out bench/results/dnc.json]

What it does, on 127.0.0.1 only:

1. creates ``omni_bench_dnc_<id>`` with the Alembic migrations, one queue and two campaigns;
   seeds ``--entries`` DNC rows server-side with ``generate_series``: 90 % exact numbers on the
   global list, 9 % exact numbers on campaign A's list, 1 % prefix ranges (``+7495NNNN*``) on
   the global list; ``ANALYZE``;
2. times ``dnc.find_dnc`` ``--lookups`` times, one transaction each (as the scheduler calls
   it), for campaign A with a mix of numbers: a third listed exactly, a third under a prefix, a
   third not listed; prints the query plan of one lookup;
3. inserts ``--targets`` pending targets into campaign A (a third listed exactly, a tenth under a
   prefix, the rest not listed) and times ``dnc.mark_dnc_targets`` (one UPDATE), with its plan;
4. uploads a ``--upload``-line CSV (``8 (909) …;name``, 2 % bad lines, 5 % repeated) to campaign
   B's list through ``check_upload_dnc`` and times it;
5. prints a table, writes JSON to ``--out`` and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text

from omni.db import Database
from omni.db import models as m
from omni.db.migrate import upgrade_async
from omni.domain.auth import Principal
from omni.domain.outbound import dnc

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dnc.json"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_loopback(dsn: str) -> None:
    host = urlsplit(dsn).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to run against '{host}': the benchmark runs on loopback only")


async def admin_execute(admin_dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def seed(db: Database, entries: int) -> tuple[int, int]:
    async with db.transaction() as s:
        queue = m.Queue(name="Outbound")
        s.add(queue)
        await s.flush()
        a = m.Campaign(name="A", queue_id=queue.id)
        b = m.Campaign(name="B", queue_id=queue.id)
        s.add_all([a, b])
        await s.flush()
        campaign_a, campaign_b = a.id, b.id
    n_global = entries * 90 // 100
    n_campaign = entries * 9 // 100
    n_prefix = entries - n_global - n_campaign
    started = time.perf_counter()
    async with db.transaction() as s:
        await s.execute(
            text(
                "INSERT INTO dnc_entries (campaign_id, number, prefix, reason, created_at) "
                "SELECT NULL, '+7916' || lpad(i::text, 7, '0'), false, 'bench', now() "
                "FROM generate_series(1, :n) i"
            ),
            {"n": n_global},
        )
        await s.execute(
            text(
                "INSERT INTO dnc_entries (campaign_id, number, prefix, reason, created_at) "
                "SELECT :c, '+7926' || lpad(i::text, 7, '0'), false, 'bench', now() "
                "FROM generate_series(1, :n) i"
            ),
            {"n": n_campaign, "c": campaign_a},
        )
        await s.execute(
            text(
                "INSERT INTO dnc_entries (campaign_id, number, prefix, reason, created_at) "
                "SELECT NULL, '+7495' || lpad(i::text, 4, '0'), true, 'bench', now() "
                "FROM generate_series(0, :n - 1) i"
            ),
            {"n": min(n_prefix, 10_000)},
        )
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("ANALYZE dnc_entries"))
    log(f"seeded {entries:,} DNC entries in {time.perf_counter() - started:.1f} s")
    return campaign_a, campaign_b


def sample_numbers(entries: int, count: int, rng: random.Random) -> list[str]:
    n_global = entries * 90 // 100
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            out.append(f"+7916{rng.randint(1, n_global):07d}")  # listed exactly (global)
        elif kind == 1:
            out.append(f"+7495{rng.randint(0, 9999):04d}{rng.randint(0, 999):03d}")  # under a prefix
        else:
            out.append(f"+7903{rng.randint(0, 9_999_999):07d}")  # not listed
    return out


async def time_lookups(db: Database, campaign: int, numbers: list[str]) -> dict[str, Any]:
    latencies = []
    hits = 0
    started = time.perf_counter()
    for number in numbers:
        t0 = time.perf_counter()
        async with db.transaction() as s:
            found = await dnc.find_dnc(s, campaign, number)
        latencies.append((time.perf_counter() - t0) * 1000)
        hits += found is not None
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "lookups": len(numbers),
        "listed": hits,
        "per_second": round(len(numbers) / wall, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
    }


async def time_lookups_one_session(db: Database, campaign: int, numbers: list[str]) -> dict[str, Any]:
    """The query alone: every lookup in one transaction (no BEGIN/COMMIT per lookup)."""
    latencies = []
    async with db.transaction() as s:
        started = time.perf_counter()
        for number in numbers:
            t0 = time.perf_counter()
            await dnc.find_dnc(s, campaign, number)
            latencies.append((time.perf_counter() - t0) * 1000)
        wall = time.perf_counter() - started
    latencies.sort()
    return {
        "lookups": len(numbers),
        "per_second": round(len(numbers) / wall, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
    }


async def explain(db: Database, sql: str, params: dict[str, Any]) -> str:
    async with db.transaction() as s:
        rows = await s.execute(text("EXPLAIN " + sql), params)
        return "\n".join(r[0] for r in rows)


async def time_mark(
    db: Database, campaign: int, targets: int, entries: int, rng: random.Random
) -> dict[str, Any]:
    n_campaign = entries * 9 // 100
    n_global = entries * 90 // 100
    phones: set[str] = set()
    while len(phones) < targets:
        roll = rng.random()
        if roll < 1 / 3:
            phones.add(f"+7916{rng.randint(1, n_global):07d}")
        elif roll < 0.4:
            phones.add(f"+7926{rng.randint(1, n_campaign):07d}")
        elif roll < 0.5:
            phones.add(f"+7495{rng.randint(0, 9999):04d}{rng.randint(0, 999):03d}")
        else:
            phones.add(f"+7903{rng.randint(0, 9_999_999):07d}")
    conn_rows = [{"c": campaign, "p": p} for p in phones]
    async with db.transaction() as s:
        for start in range(0, len(conn_rows), 5000):
            await s.execute(
                text(
                    "INSERT INTO campaign_targets (campaign_id, name, phone, phones, phone_index, timezone, "
                    "region, fields, tags, state, attempts, created_at, updated_at) "
                    "VALUES (:c, '', :p, '[]', 0, '', 'RU', '{}', '[]', 'pending', 0, now(), now())"
                ),
                conn_rows[start : start + 5000],
            )
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("ANALYZE campaign_targets"))
    statement = dnc.mark_statement(campaign, datetime.now(UTC))
    sql = str(statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    plan = await explain(db, sql, {})
    t0 = time.perf_counter()
    async with db.transaction() as s:
        marked = await dnc.mark_dnc_targets(s, campaign)
    seconds = time.perf_counter() - t0
    return {"targets": targets, "marked": marked, "seconds": round(seconds, 3), "plan": plan}


async def time_upload(db: Database, campaign: int, lines: int, rng: random.Random) -> dict[str, Any]:
    """An uploaded CSV of ``lines`` numbers in the usual mess (``8 (9xx) …``, a name column, 2 %
    bad, 5 % repeated) through ``check_upload_dnc`` as an admin, in one transaction."""
    rows = ["phone;name"]
    for i in range(lines):
        roll = rng.random()
        if roll < 0.02:
            rows.append(f"not a number {i};x")
        elif roll < 0.07 and i:
            rows.append(rows[rng.randint(1, len(rows) - 1)])
        else:
            n = rng.randint(0, 9_999_999)
            rows.append(f"8 (909) {n // 10000:03d}-{n // 100 % 100:02d}-{n % 100:02d};Client {i}")
    data = "\n".join(rows).encode()
    async with db.transaction() as s:
        admin = m.User(username=f"bench-{uuid.uuid4().hex[:6]}", role=m.Role.ADMIN, password_hash="x")
        s.add(admin)
        await s.flush()
        who = Principal.of(admin)
    t0 = time.perf_counter()
    async with db.transaction() as s:
        result = await dnc.check_upload_dnc(s, who, campaign, data, filename="bench.csv")
    seconds = time.perf_counter() - t0
    return {
        "lines": lines,
        "bytes": len(data),
        "added": result.added_count,
        "duplicates": result.duplicate_count,
        "invalid": result.invalid_count,
        "seconds": round(seconds, 2),
        "lines_per_second": round(lines / seconds),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--upload", type=int, default=100_000, help="lines of the uploaded file")
    parser.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not args.dsn:
        raise SystemExit("give --dsn or start the services (OMNI_TEST_PG_DSN)")
    check_loopback(args.dsn)
    name = f"omni_bench_dnc_{uuid.uuid4().hex[:8]}"
    await admin_execute(args.dsn, f'CREATE DATABASE "{name}"')
    dsn = f"{args.dsn.rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    db: Database | None = None
    try:
        await upgrade_async(dsn)
        db = Database(dsn, pool_size=4)
        rng = random.Random(13)
        campaign_a, campaign_b = await seed(db, args.entries)
        numbers = sample_numbers(args.entries, args.lookups, rng)
        plan = await explain(
            db,
            "SELECT * FROM dnc_entries WHERE (campaign_id IS NULL OR campaign_id = :c) "
            "AND number IN ('+74951234567', '+7495123456', '+749512345', '+74951234', '+7495123', "
            "'+749512', '+74951', '+7495', '+749', '+74', '+7') AND (prefix OR number = '+74951234567') "
            "ORDER BY prefix, id LIMIT 1",
            {"c": campaign_a},
        )
        await time_lookups(db, campaign_a, numbers[: min(200, len(numbers))])  # warm the pool and cache
        lookups = await time_lookups(db, campaign_a, numbers)
        log(f"lookups: {lookups}")
        query_only = await time_lookups_one_session(db, campaign_a, numbers)
        log(f"lookups in one session: {query_only}")
        mark = await time_mark(db, campaign_a, args.targets, args.entries, rng)
        log(f"mark: {mark}")
        upload = await time_upload(db, campaign_b, args.upload, rng)
        log(f"upload: {upload}")
        result = {
            "entries": args.entries,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "find_dnc": lookups,
            "find_dnc_one_session": query_only,
            "find_dnc_plan": plan,
            "mark_dnc_targets": mark,
            "upload": upload,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"DNC entries                      {args.entries:>12,}")
        print(f"find_dnc lookups/s (1 tx each)   {lookups['per_second']:>12,}")
        print(f"find_dnc p50 / p99 ms            {lookups['p50_ms']:>6} / {lookups['p99_ms']}")
        print(f"find_dnc lookups/s (one session) {query_only['per_second']:>12,}")
        print(f"  p50 / p99 ms                   {query_only['p50_ms']:>6} / {query_only['p99_ms']}")
        print(
            f"mark_dnc_targets {mark['targets']:,} targets {mark['seconds']:>9} s ({mark['marked']:,} marked)"
        )
        print(
            f"upload {upload['lines']:,} lines ({upload['bytes'] / 1e6:.1f} MB)  {upload['seconds']:>9} s"
            f" ({upload['lines_per_second']:,} lines/s; {upload['added']:,} added, "
            f"{upload['duplicates']:,} duplicates, {upload['invalid']:,} refused)"
        )
        print("plan of one lookup:\n" + plan)
        print("plan of the mark:\n" + mark["plan"])
    finally:
        if db is not None:
            await db.dispose()
        await admin_execute(args.dsn, f'DROP DATABASE IF EXISTS "{name}"')


if __name__ == "__main__":
    asyncio.run(main())
