"""Export benchmark on PostgreSQL: contact history of 100,000 contacts to XLSX (and CSV).

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/export.py [--rows 100000] [--formats xlsx,csv]
                                     [--out bench/results/export.json]

What it does, on 127.0.0.1 only:

1. creates ``omni_bench_export_<id>`` with the Alembic migrations; seeds 3 queues, 30 operators,
   4 inboxes, 3 result codes through ``omni.seed``, then ``--rows`` conversations over one
   month (Moscow time) with 20,000 contacts and a call row (with a recording path) for every
   voice conversation, server-side with ``generate_series`` (so the benchmark process holds none
   of it); ``ANALYZE``;
2. times the contact history page the reports page asks for (first page of the month, 50 rows,
   with its count) and a phone search, 20 times each, as an admin;
3. per format, runs the export job exactly as the app does (``exports.check_start_export`` +
   ``exports.run_export``: server-side cursor, batches written in a worker thread, progress
   rows) over the whole month, and measures rows/s and the process's memory: RSS before, RSS
   after and the peak (``VmHWM``, reset before each export through ``/proc/self/clear_refs``);
4. prints a table, writes JSON to ``--out`` and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from benchkit import (
    build_template,
    check_loopback,
    drop,
    log,
    peak_mb,
    raw_dsn,
    reset_peak,
    rss_mb,
    sqlalchemy_url,
)
from sqlalchemy import text

from omni import seed as factory
from omni.db import Database
from omni.db import models as m
from omni.domain import reports
from omni.domain.auth import Principal
from omni.domain.reports import FilterParams
from omni.domain.reports import exports as ex
from omni.domain.reports.config import check_update_config
from omni.domain.reports.writers import Format

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "export.json"
MONTH = (date(2026, 3, 1), date(2026, 3, 31))
MB = 1024 * 1024


SEED_SQL = """
INSERT INTO contacts (name, phone, custom_fields, tags, blacklisted, created_at)
SELECT 'Contact ' || g, '+7916' || lpad(g::text, 7, '0'), '{{}}', '[]', false, now()
FROM generate_series(1, {contacts}) g;

INSERT INTO conversations (
    contact_id, inbox_id, channel, medium, status, queue_id, extra_queue_ids, priority,
    skill_relax, escalation_step, assigned_user_id, subject, variables, created_at,
    first_enqueued_at, accepted_at, wrap_up_at, closed_at, hold_seconds, result_code_id, closed_by
)
SELECT
    (SELECT min(id) FROM contacts) + (g % {contacts}),
    ib.id, ib.channel, CASE WHEN ib.channel = 'voice' THEN 'voice' ELSE 'chat' END,
    CASE WHEN g % 10 = 0 THEN 'abandoned' ELSE 'closed' END,
    ib.queue_id, '[]', 0, 0, 0,
    CASE WHEN g % 10 = 0 THEN NULL
         ELSE (SELECT min(id) FROM users WHERE role = 'operator') + (g % {operators}) END,
    '', '{{}}',
    t.start, t.start,
    CASE WHEN g % 10 = 0 THEN NULL ELSE t.start + make_interval(secs => g % 40) END,
    CASE WHEN g % 10 = 0 THEN NULL ELSE t.start + make_interval(secs => 40 + g % 600) END,
    t.start + make_interval(secs => 60 + g % 700),
    g % 5,
    CASE WHEN g % 10 = 0 THEN NULL ELSE (SELECT min(id) FROM result_codes) + (g % 3) END,
    CASE WHEN g % 10 = 0 THEN 'customer' ELSE 'operator' END
FROM generate_series(1, {rows}) g
CROSS JOIN LATERAL (
    SELECT timestamptz '{start}' + (g::double precision / {rows}) * interval '{days} days' AS start
) t
JOIN LATERAL (
    SELECT id, channel, queue_id FROM inboxes ORDER BY id OFFSET (g % 4) LIMIT 1
) ib ON true;

INSERT INTO calls (
    conversation_id, inbox_id, direction, linkedid, caller_uniqueid, caller_channel, caller_number,
    agent_uniqueid, agent_channel, agent_user_id, ring_seconds, talk_seconds, answered_at, ended_at,
    hangup_cause, recording_path, created_at
)
SELECT c.id, c.inbox_id, 'in', 'bench-' || c.id, '', '', '+7495' || lpad((c.id % 9999999)::text, 7, '0'),
       '', '', c.assigned_user_id, 3, CASE WHEN c.accepted_at IS NULL THEN 0 ELSE 30 + c.id % 500 END,
       c.accepted_at, c.closed_at, '', CASE WHEN c.accepted_at IS NULL THEN '' ELSE c.id || '.wav' END,
       c.created_at
FROM conversations c WHERE c.channel = 'voice';

ANALYZE;
"""


async def seed(db: Database, dsn: str, rows: int) -> Principal:
    async with db.transaction() as s:
        admin = await factory.user(s, "bench-admin", m.Role.ADMIN, password_hash="x")
        operators = [await factory.user(s, f"op{i}", password_hash="x") for i in range(30)]
        queues = [await factory.queue(s, f"Q{i}", operators[i * 10 : (i + 1) * 10]) for i in range(3)]
        for q, channel in zip([*queues, queues[0]], ("voice", "telegram", "widget", "voice"), strict=True):
            await factory.inbox(s, q, channel)
        for code in ("sale", "support", "callback"):
            await factory.result_code(s, code)
        await check_update_config(s, Principal.of(admin), timezone="Europe/Moscow")
        who = Principal.of(admin)
    start = datetime(2026, 2, 28, 21, 0, tzinfo=UTC).isoformat()  # 1 March, 00:00 in Moscow
    days = (MONTH[1] - MONTH[0]).days + 1
    sql = SEED_SQL.format(contacts=min(20_000, rows), operators=30, rows=rows, start=start, days=days)
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        await conn.execute(sql)
        log(f"seeded {rows} conversations in {time.perf_counter() - t0:.1f} s")
    finally:
        await conn.close()
    return who


async def time_pages(db: Database, who: Principal, reps: int = 20) -> dict[str, Any]:
    out: dict[str, Any] = {}
    now = datetime(2026, 4, 2, 9, tzinfo=UTC)
    for name, params in (
        ("first_page", FilterParams(since=MONTH[0], until=MONTH[1])),
        ("page_500", FilterParams(since=MONTH[0], until=MONTH[1], offset=25_000, limit=50)),
        ("phone_search", FilterParams(since=MONTH[0], until=MONTH[1], q="+7 916 000 12")),
        ("talk_over_5_min", FilterParams(since=MONTH[0], until=MONTH[1], min_duration=300)),
    ):
        samples = []
        total = None
        for _ in range(reps):
            t0 = time.perf_counter()
            async with db.transaction() as s:
                table = await reports.run_params(s, who, "contact_history", params, now)
            samples.append((time.perf_counter() - t0) * 1000)
            total = table.total_rows
        samples.sort()
        out[name] = {
            "matches": total,
            "p50_ms": round(statistics.median(samples), 1),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
        }
        log(f"{name}: {out[name]}")
    return out


async def time_export(db: Database, who: Principal, fmt: Format, directory: Path) -> dict[str, Any]:
    params = FilterParams(since=MONTH[0], until=MONTH[1])
    now = datetime(2026, 4, 2, 9, tzinfo=UTC)
    async with db.transaction() as s:
        job = await ex.check_start_export(s, who, "contact_history", params, fmt, now)
        export_id = job.id
    pushes = 0

    async def notify(_user: int, _data: dict[str, Any]) -> None:
        nonlocal pushes
        pushes += 1

    gc.collect()
    before = rss_mb()
    peak_reset = reset_peak()
    t0 = time.perf_counter()
    await ex.run_export(db, export_id, who, directory, notify)
    seconds = time.perf_counter() - t0
    after = rss_mb()
    peak = peak_mb()
    async with db.transaction() as s:
        done = await s.get(m.ReportExport, export_id)
        assert done is not None and done.state == "done", done and done.error
        rows, size, path = done.rows_done, done.size, done.path
    os.unlink(path)  # a bench, outside the timing
    result = {
        "format": fmt.value,
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds),
        "file_mb": round(size / MB, 1),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "rss_growth_mb": round(after - before, 1),
        "peak_mb": round(peak, 1) if peak_reset else None,
        "peak_growth_mb": round(peak - before, 1) if peak_reset else None,
        "progress_pushes": pushes,
    }
    log(f"export {fmt.value}: {result}")
    return result


def print_table(report: dict[str, Any]) -> None:
    print(f"\ncontact history, {report['rows']} conversations in one month, PostgreSQL")
    print(f"{'query':<18}{'matches':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in report["pages"].items():
        print(f"{name:<18}{r['matches']:>10}{r['p50_ms']:>10}{r['p99_ms']:>10}")
    print(f"\n{'export':<8}{'rows':>9}{'s':>8}{'rows/s':>9}{'MB':>7}{'RSS+':>8}{'peak+':>8}")
    for e in report["exports"]:
        print(
            f"{e['format']:<8}{e['rows']:>9}{e['seconds']:>8}{e['rows_per_second']:>9}{e['file_mb']:>7}"
            f"{e['rss_growth_mb']:>8}{e['peak_growth_mb'] if e['peak_growth_mb'] is not None else '-':>8}"
        )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.dsn)
    name = f"omni_bench_export_{uuid.uuid4().hex[:8]}"
    dsn = raw_dsn(args.dsn, name)
    directory = Path(args.dir or f"/tmp/{name}")
    db: Database | None = None
    try:
        await build_template(args.dsn, name)  # a fresh database at the head migration
        db = Database(sqlalchemy_url(args.dsn, name), pool_size=4)
        who = await seed(db, dsn, args.rows)
        async with db.transaction() as s:
            await s.execute(text("SELECT 1"))
        pages = await time_pages(db, who)
        exports = [await time_export(db, who, Format(fmt), directory) for fmt in args.formats.split(",")]
        report = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "rows": args.rows,
            "pages": pages,
            "exports": exports,
        }
        print_table(report)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        return report
    finally:
        if db is not None:
            await db.dispose()
        await drop(args.dsn, name)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--formats", default="xlsx,csv")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--dir", default="", help="where the export files go (deleted after each run)")
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    args = p.parse_args(argv)
    if not args.dsn:
        p.error('no --dsn and no OMNI_TEST_PG_DSN (run: eval "$(scripts/services.sh start)")')
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
