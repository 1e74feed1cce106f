"""Where a list import's insert spends its time in PostgreSQL: the importer's statement
(``imports._PG_INSERT``, 5,000-row ``unnest`` batches) into ``campaign_targets`` as it is,
without ``RETURNING``, with the table's triggers (the foreign-key checks) disabled, into an
index-less copy of the table, and as a ``COPY`` into a temporary staging table plus one
``INSERT … SELECT … ON CONFLICT DO NOTHING``.

Run (services started with ``eval "$(scripts/services.sh start)"``; superuser DSN, loopback
only; creates and drops ``omni_bench_insert_<id>``)::

    .venv/bin/python bench/outbound_insert_parts.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from omni.db import Database
from omni.db import models as m
from omni.db.migrate import upgrade_async
from omni.domain.outbound import imports as im

BATCH = 5000
STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage (name text, phone text, phones text, tz text, region text,"
    " fields text, tags text) ON COMMIT DELETE ROWS"
)
FROM_STAGE = """
    INSERT INTO campaign_targets (campaign_id, list_id, name, phone, phones, phone_index, timezone,
        region, fields, tags, state, attempts, next_due_at, created_at, updated_at)
    SELECT $1, $2, u.name, u.phone, CAST(u.phones AS json), 0, u.tz, u.region,
        CAST(u.fields AS json), CAST(u.tags AS json), 'pending', 0, $3, $3, $3 FROM stage u
    ON CONFLICT (campaign_id, phone) DO NOTHING RETURNING id, phone
"""


def columns(offset: int) -> list[list[str]]:
    """A batch's arrays as the reader builds them."""
    rows = range(offset, offset + BATCH)
    phones = [f"+79{16 + k % 80:02d}{k % 10_000_000:07d}" for k in rows]
    return [
        [f"Client {k}" for k in rows],
        phones,
        [json.dumps([p]) for p in phones],
        [""] * BATCH,
        ["RU"] * BATCH,
        [json.dumps({"debt": str(k)}) for k in rows],
        ['["a", "b"]'] * BATCH,
    ]


async def run(conn: Any, mode: str, campaign_id: int, list_id: int, rows: int) -> float:
    """Microseconds a row."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    for offset in range(0, rows, BATCH):
        arrays = columns(offset)
        async with conn.transaction():
            if mode == "copy":
                await conn.execute(STAGE)
                await conn.copy_records_to_table("stage", records=list(zip(*arrays, strict=True)))
                await conn.fetch(FROM_STAGE, campaign_id, list_id, now)
            elif mode == "no returning":
                await conn.execute(
                    im._PG_INSERT.replace("RETURNING id, phone", ""), campaign_id, list_id, now, *arrays
                )
            elif mode == "plain table":
                sql = im._PG_INSERT.replace("INSERT INTO campaign_targets", "INSERT INTO plain_targets")
                sql = sql.replace("ON CONFLICT (campaign_id, phone) DO NOTHING", "")
                await conn.fetch(sql, campaign_id, list_id, now, *arrays)
            else:
                await conn.fetch(im._PG_INSERT, campaign_id, list_id, now, *arrays)
    return (time.perf_counter() - started) * 1e6 / rows


async def main(args: argparse.Namespace) -> None:
    if (urlsplit(args.dsn).hostname or "") not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("the benchmark runs on loopback only")
    name = f"omni_bench_insert_{uuid.uuid4().hex[:8]}"
    dsn = f"{args.dsn.rsplit('/', 1)[0]}/{name}"
    admin = await asyncpg.connect(args.dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        await upgrade_async(url)
        db = Database(url)
        modes = ["as is", "no returning", "no FK triggers", "plain table", "copy"]
        ids: list[tuple[int, int]] = []
        async with db.transaction() as s:
            queue = m.Queue(name="Bench")
            s.add(queue)
            await s.flush()
            for mode in modes:
                campaign = m.Campaign(name=mode, queue_id=queue.id)
                s.add(campaign)
                await s.flush()
                call_list = m.CallList(campaign_id=campaign.id, name=mode)
                s.add(call_list)
                await s.flush()
                ids.append((campaign.id, call_list.id))
        await db.dispose()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE plain_targets (LIKE campaign_targets INCLUDING DEFAULTS)")
            for mode, (campaign_id, list_id) in zip(modes, ids, strict=True):
                if mode == "no FK triggers":
                    await conn.execute("ALTER TABLE campaign_targets DISABLE TRIGGER ALL")
                us = await run(conn, mode, campaign_id, list_id, args.rows)
                if mode == "no FK triggers":
                    await conn.execute("ALTER TABLE campaign_targets ENABLE TRIGGER ALL")
                print(f"{mode:<16} {us:6.1f} µs a row  {1e6 / us:>9,.0f} rows/s", flush=True)
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    arguments = p.parse_args()
    if not arguments.dsn:
        sys.exit('no --dsn and no OMNI_TEST_PG_DSN (run: eval "$(scripts/services.sh start)")')
    asyncio.run(main(arguments))
