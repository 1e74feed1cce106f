"""Where a list import's insert spends its time in PostgreSQL, and what 0025_import13 bought:
the importer's statements into ``campaign_targets`` with the table as it was before (0023: five
indexes, five foreign keys), as it is (0024: three indexes, the campaign's foreign key) and
without that last foreign key; each variant in a fresh database (a clone of one migrated
template), the same rows, with the 1,000 DNC prefix entries of ``bench/outbound.py`` (1 row in
80 listed; entered just before, so without statistics, as after a DNC upload).

Statements (5,000-row batches):

* ``unnest + DNC update`` — the importer before 0025_import13: ``INSERT … SELECT FROM
  unnest($arrays) ON CONFLICT (campaign_id, phone) DO NOTHING RETURNING id, phone``, then the
  DNC entries for the batch's numbers and one ``UPDATE`` of the listed targets;
* ``staged COPY + DNC join`` — the rows by binary ``COPY`` into a temporary table, then one
  insert from it with the state decided by a hash join of the numbers cut at the DNC entries'
  lengths with ``dnc_entries``;
* ``importer`` — what ``imports._store`` runs now: ``imports.STAGE``, ``imports.BATCH_SETTINGS``,
  the binary ``COPY``, then ``imports._pg_statement`` (the state by ``dnc.listed``);
* ``plain table`` — the ``unnest`` insert into an index-less, constraint-less copy of the table
  (the floor of the heap, ``unnest`` and ``json`` casts).

Run (services started with ``eval "$(scripts/services.sh start)"``; superuser DSN, loopback
only; creates and drops ``omni_bench_insert_<id>_*``)::

    .venv/bin/python bench/outbound_insert_parts.py [--rows 100000] [--rounds 2]
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

import asyncpg  # type: ignore[import-untyped]
from benchkit import build_template, check_loopback, clone, drop, log, raw_dsn, sqlalchemy_url

from omni.db import Database
from omni.db import models as m
from omni.domain.outbound import imports as im

BATCH = 5000
OLD_INSERT = """
    INSERT INTO campaign_targets (campaign_id, list_id, name, phone, phones, phone_index, timezone,
        region, fields, tags, state, attempts, next_due_at, created_at, updated_at)
    SELECT $1, $2, u.name, u.phone, CAST(u.phones AS json), 0, u.tz, u.region,
        CAST(u.fields AS json), CAST(u.tags AS json), 'pending', 0, $3, $3, $3
    FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
        AS u(name, phone, phones, tz, region, fields, tags)
    ON CONFLICT (campaign_id, phone) DO NOTHING
    RETURNING id, phone
"""
STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage (ord int, name text, phone text, phones text, tz text,"
    " region text, fields text, tags text) ON COMMIT DELETE ROWS"
)
JOINED = """
    INSERT INTO campaign_targets (campaign_id, list_id, name, phone, phones, phone_index, timezone,
        region, fields, tags, state, attempts, next_due_at, created_at, updated_at)
    SELECT $1, $2, u.name, u.phone, CAST(u.phones AS json), 0, u.tz, u.region,
        CAST(u.fields AS json), CAST(u.tags AS json),
        CASE WHEN d.ord IS NULL THEN 'pending' ELSE 'dnc' END, 0,
        CASE WHEN d.ord IS NULL THEN $3::timestamptz END, $3, $3
    FROM {source} AS u
    LEFT JOIN (
        SELECT DISTINCT w.ord FROM {source} AS w CROSS JOIN unnest($4::int[]) AS l(n)
        JOIN dnc_entries e ON e.number = substr(w.phone, 1, l.n) AND (e.prefix OR e.number = w.phone)
            AND (e.campaign_id IS NULL OR e.campaign_id = $1)
    ) AS d ON d.ord = u.ord
    ON CONFLICT (campaign_id, phone) DO NOTHING
    RETURNING id, phone
"""
STAGED_JOINED = JOINED.replace("{source}", "stage")
OLD_SCHEMA = (  # what 0025_import13 dropped
    "CREATE INDEX ix_campaign_targets_due ON campaign_targets (campaign_id, state, next_due_at)",
    "CREATE INDEX ix_campaign_targets_list_id ON campaign_targets (list_id)",
    *(
        f"ALTER TABLE campaign_targets ADD CONSTRAINT fk_campaign_targets_{column}_{table}"
        f" FOREIGN KEY ({column}) REFERENCES {table} (id) ON DELETE SET NULL"
        for column, table in (
            ("list_id", "call_lists"),
            ("callback_user_id", "users"),
            ("result_code_id", "result_codes"),
            ("contact_id", "contacts"),
        )
    ),
)
SCHEMAS: dict[str, tuple[str, ...]] = {
    "0023 (before)": OLD_SCHEMA,
    "0024": (),
    "0024 without the campaign FK": (
        "ALTER TABLE campaign_targets DROP CONSTRAINT fk_campaign_targets_campaign_id_campaigns",
    ),
}
VARIANTS = [
    ("0023 (before)", "unnest + DNC update"),
    ("0023 (before)", "staged COPY + DNC join"),
    ("0023 (before)", "importer"),
    ("0024", "unnest + DNC update"),
    ("0024", "importer"),
    ("0024 without the campaign FK", "importer"),
    ("0024", "plain table"),
]


def columns(offset: int) -> list[list[Any]]:
    """A batch's arrays as the reader builds them (the row's ordinal first)."""
    rows = range(offset, offset + BATCH)
    phones = [f"+79{16 + k % 80:02d}{k % 10_000_000:07d}" for k in rows]
    return [
        list(rows),
        [f"Client {k}" for k in rows],
        phones,
        [json.dumps([p]) for p in phones],
        [""] * BATCH,
        ["RU"] * BATCH,
        [json.dumps({"debt": str(k)}) for k in rows],
        ['["a", "b"]'] * BATCH,
    ]


async def run(conn: Any, statement: str, campaign_id: int, list_id: int, rows: int) -> float:
    """Microseconds a row."""
    now = datetime.now(UTC)
    lengths = [int(r[0]) for r in await conn.fetch("SELECT DISTINCT length(number) FROM dnc_entries")]
    # (all entries are prefixes here: the same lengths dnc.prefix_lengths gives the importer)
    importer = im._pg_statement(campaign_id, list_id, lengths)
    started = time.perf_counter()
    for offset in range(0, rows, BATCH):
        arrays = columns(offset)
        async with conn.transaction():
            if statement == "unnest + DNC update":
                made = await conn.fetch(OLD_INSERT, campaign_id, list_id, now, *arrays[1:])
                phones = [str(r[1]) for r in made]
                wanted = list(set(phones) | {p[:n] for p in phones for n in lengths})
                found = await conn.fetch(
                    "SELECT number, prefix FROM dnc_entries WHERE number = ANY($1::text[])", wanted
                )
                listed = {str(r[0]) for r in found}
                ids = [int(r[0]) for r in made if any(str(r[1])[:n] in listed for n in lengths)]
                await conn.execute(
                    "UPDATE campaign_targets SET state = 'dnc', next_due_at = NULL WHERE id = ANY($1::int[])",
                    ids,
                )
            elif statement == "importer":
                await conn.execute(im.STAGE)
                await conn.execute(im.BATCH_SETTINGS)
                await conn.copy_records_to_table("import_stage", records=list(zip(*arrays, strict=True)))
                await conn.fetch(importer)
            elif statement == "staged COPY + DNC join":
                await conn.execute(STAGE)
                await conn.copy_records_to_table("stage", records=list(zip(*arrays, strict=True)))
                await conn.fetch(STAGED_JOINED, campaign_id, list_id, now, lengths)
            else:  # plain table
                sql = OLD_INSERT.replace("INSERT INTO campaign_targets", "INSERT INTO plain_targets")
                sql = sql.replace("ON CONFLICT (campaign_id, phone) DO NOTHING", "")
                await conn.fetch(sql, campaign_id, list_id, now, *arrays[1:])
    return (time.perf_counter() - started) * 1e6 / rows


async def variant(admin_dsn: str, template: str, schema: str, statement: str, rows: int) -> float:
    name = f"{template}_{uuid.uuid4().hex[:6]}"
    await clone(admin_dsn, template, name)
    try:
        db = Database(sqlalchemy_url(admin_dsn, name))
        async with db.transaction() as s:
            queue = m.Queue(name="Bench")
            s.add(queue)
            await s.flush()
            campaign = m.Campaign(name="Bench", queue_id=queue.id)
            s.add(campaign)
            await s.flush()
            call_list = m.CallList(campaign_id=campaign.id, name="bench")
            s.add(call_list)
            await s.flush()
            for n in range(1000):  # bench/outbound.py's DNC prefixes: 1 row in 80
                s.add(m.DncEntry(campaign_id=None, number=f"+7916{n:04d}", prefix=True))
            ids = campaign.id, call_list.id
        await db.dispose()
        conn = await asyncpg.connect(raw_dsn(admin_dsn, name))
        try:
            await conn.execute("CREATE TABLE plain_targets (LIKE campaign_targets INCLUDING DEFAULTS)")
            for sql in SCHEMAS[schema]:
                await conn.execute(sql)
            return await run(conn, statement, *ids, rows)
        finally:
            await conn.close()
    finally:
        await drop(admin_dsn, name)


async def main(args: argparse.Namespace) -> None:
    check_loopback(args.dsn)
    template = f"omni_bench_insert_{uuid.uuid4().hex[:8]}"
    await build_template(args.dsn, template)
    assert im.BATCH == BATCH
    try:
        results: dict[str, list[float]] = {}
        for _round in range(args.rounds):  # rounds interleave the variants: load drifts
            for schema, statement in VARIANTS:
                key = f"{schema:<29} {statement:<23}"
                us = await variant(args.dsn, template, schema, statement, args.rows)
                results.setdefault(key, []).append(us)
                log(f"{key} {us:6.1f} µs a row")
        print(f"rows {args.rows:,}, load {os.getloadavg()[0]:.1f}")
        for key, values in results.items():
            text = " / ".join(f"{v:5.1f}" for v in values)
            print(f"{key} {text} µs a row  ({1e6 / min(values):>8,.0f} rows/s at best)")
    finally:
        await drop(args.dsn, template)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    arguments = p.parse_args()
    if not arguments.dsn:
        sys.exit('no --dsn and no OMNI_TEST_PG_DSN (run: eval "$(scripts/services.sh start)")')
    asyncio.run(main(arguments))
