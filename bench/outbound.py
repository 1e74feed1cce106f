"""Outbound benchmark, import part: a 1,000,000-row call list through the real import job on
PostgreSQL, next to a bare ``COPY`` of the same file in the same run.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/outbound.py [--rows 1000000] [--out bench/results/outbound_import.json]

What it does, on 127.0.0.1 only:

1. writes a CSV of ``--rows`` rows (``phone,name,timezone,debt,tags``): numbers in the shapes
   lists come in (``+7 916 …``, ``8 (916) …``, ``7916…``), 1 % bad numbers, 1 % duplicates;
2. creates ``omni_bench_outbound_<id>`` with the Alembic migrations, a campaign and 1,000 DNC
   prefix entries (covering 1 row in 80);
3. bare ``COPY``: the file into a plain table of text columns (asyncpg ``copy_to_table``) —
   the floor of what getting these rows into PostgreSQL costs;
4. the import job exactly as the app runs it (``imports.save_upload_stream`` → ``check_create_import``
   → ``check_start_import`` → ``run_import``: rows read and normalised
   (``numbers.normalise_number``) in the reader process a batch at a time, a binary ``COPY``
   into a temporary stage and one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` per batch that
   decides each target's DNC state (``dnc.listed``: each number and its prefixes of the lengths
   the DNC prefix entries have), refused rows written to a CSV), with the app process's RSS before/peak
   (``VmHWM`` reset first), the reader process's peak RSS and the event loop's stalls (a 10 ms
   ticker running beside the job);
5. prints a table, writes JSON to ``--out`` and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from benchkit import admin_execute, check_loopback, log, peak_mb, raw_dsn, reset_peak, rss_mb, sqlalchemy_url
from sqlalchemy import func, select

from omni.db import Database
from omni.db import models as m
from omni.db.migrate import upgrade_async
from omni.domain.auth import Principal
from omni.domain.files import save_upload_stream
from omni.domain.outbound import imports as im

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "outbound_import.json"
MB = 1024 * 1024


def write_csv(path: Path, rows: int, seed: int = 13) -> int:
    """The list file; returns its size in bytes."""
    rnd = random.Random(seed)
    zones = ["", "", "", "Asia/Yekaterinburg", "Europe/Samara"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["phone", "name", "timezone", "debt", "tags"])
        for n in range(rows):
            roll = rnd.random()
            if roll < 0.01:
                phone = f"12-{n}"  # refused
            else:
                k = n - 1 if roll < 0.02 and n else n  # a duplicate of the previous row
                national = f"9{16 + k % 80:02d}{k % 10_000_000:07d}"
                shape = k % 3
                if shape == 0:
                    phone = f"+7 {national[:3]} {national[3:6]}-{national[6:8]}-{national[8:]}"
                elif shape == 1:
                    phone = f"8 ({national[:3]}) {national[3:6]}-{national[6:]}"
                else:
                    phone = f"7{national}"
            out.writerow([phone, f"Client {n}", zones[n % len(zones)], str(n % 100_000), "a,b"])
    return path.stat().st_size


async def bare_copy(dsn: str, path: Path) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE plain_list (phone text, name text, timezone text, debt text, tags text)"
        )
        started = time.perf_counter()
        status = await conn.copy_to_table("plain_list", source=str(path), format="csv", header=True)
        seconds = time.perf_counter() - started
        rows = int(status.split()[-1])
    finally:
        await conn.close()
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    def read(fh: Any) -> bytes:
        return bytes(fh.read(1024 * 1024))

    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(read, fh):
            yield chunk


async def run_job(db: Database, data_dir: Path, path: Path) -> dict[str, Any]:
    async with db.transaction() as s:
        admin = m.User(username="bench", password_hash="x", role=m.Role.ADMIN, display_name="Bench")
        queue = m.Queue(name="Outbound")
        s.add_all([admin, queue])
        await s.flush()
        campaign = m.Campaign(name="Bench", queue_id=queue.id)
        s.add(campaign)
        await s.flush()
        for n in range(1000):  # a DNC list to look every number up in
            # +7916 0000…0999 ranges: the file's +7916 numbers below 1,000,000 (1 in 80 rows)
            s.add(m.DncEntry(campaign_id=None, number=f"+7916{n:04d}", prefix=True))
        who = Principal(id=admin.id, username="bench", role=m.Role.ADMIN)
        campaign_id = campaign.id
    stored = await save_upload_stream(
        data_dir=data_dir,
        owner=f"user:{who.id}",
        name=path.name,
        content_type="text/csv",
        chunks=_file_chunks(path),
        max_bytes=im.MAX_BYTES,
    )
    async with db.transaction() as s:
        job = await im.check_create_import(s, who, campaign_id, stored)
        import_id = job.id
        mapping = dict(job.mapping)
    async with db.transaction() as s:
        await im.check_start_import(s, who, import_id, mapping)
    stalls: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            at = loop.time()
            await asyncio.sleep(0.01)
            stalls.append(loop.time() - at - 0.01)

    rss_before = rss_mb()
    peak_ok = reset_peak()
    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await im.run_import(db, import_id, data_dir, None)
    seconds = time.perf_counter() - started
    done.set()
    await tick
    async with db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
        stored_rows = await s.scalar(
            select(func.count())
            .select_from(m.CampaignTarget)
            .where(m.CampaignTarget.campaign_id == campaign_id)
        )
    stalls.sort()
    return {
        "state": job.state,
        "rows_read": job.rows_read,
        "rows_imported": job.rows_imported,
        "rows_invalid": job.rows_invalid,
        "rows_duplicate": job.rows_duplicate,
        "rows_dnc": job.rows_dnc,
        "targets_stored": stored_rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(job.rows_read / seconds),
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(peak_mb(), 1) if peak_ok else None,
        "rss_growth_mb": round(peak_mb() - rss_before, 1) if peak_ok else None,
        "loop_stall_p99_ms": round(1000 * stalls[int(len(stalls) * 0.99)], 1) if stalls else None,
        "loop_stall_max_ms": round(1000 * stalls[-1], 1) if stalls else None,
        "worker_peak_mb": await _worker_peak_mb(),
    }


async def _worker_peak_mb() -> float:
    """The reader process's peak RSS (the largest finished child's ``ru_maxrss``, in kB)."""
    for _ in range(100):
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if peak:
            return round(peak / 1024, 1)
        await asyncio.sleep(0.05)  # the pool's process is reaped just after the job ends
    return 0.0


async def main(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.dsn)
    name = f"omni_bench_outbound_{uuid.uuid4().hex[:8]}"
    dsn = raw_dsn(args.dsn, name)
    with tempfile.TemporaryDirectory(prefix="omni-bench-outbound-") as tmp:
        folder = Path(tmp)
        path = folder / "list.csv"
        log(f"writing {args.rows:,} rows ...")
        size = write_csv(path, args.rows)
        await admin_execute(args.dsn, f"CREATE DATABASE {name}")
        db: Database | None = None
        try:
            url = sqlalchemy_url(args.dsn, name)
            await upgrade_async(url)
            log("bare COPY ...")
            copy = await bare_copy(dsn, path)
            log(f"  {copy}")
            db = Database(url)
            log("import job ...")
            job = await run_job(db, folder / "data", path)
            log(f"  {job}")
        finally:
            if db is not None:
                await db.dispose()
            await admin_execute(args.dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    ratio = job["rows_per_s"] / copy["rows_per_s"]
    return {
        "rows": args.rows,
        "file_mb": round(size / MB, 1),
        "copy": copy,
        "import": job,
        "import_vs_copy": round(ratio, 3),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--part",
        choices=("all", "import", "scheduler"),
        default="all",
        help="the import (this file) and/or the scheduler (bench/outbound_scheduler.py, its defaults: "
        "1,000,000 targets, 200 operators)",
    )
    args = p.parse_args(argv)
    if not args.dsn:
        p.error('no --dsn and no OMNI_TEST_PG_DSN (run: eval "$(scripts/services.sh start)")')
    return args


def scheduler_part(dsn: str) -> None:
    """The issue's second figure, picking the next attempts, run by its own script."""
    import outbound_scheduler  # bench/ is on sys.path when this file runs as a script

    asyncio.run(outbound_scheduler.main(outbound_scheduler.parse_args(["--dsn", dsn])))


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.part == "scheduler":
        scheduler_part(arguments.dsn)
        sys.exit(0)
    result = asyncio.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=2) + "\n")
    imp, cp = result["import"], result["copy"]
    print(f"rows {result['rows']:,} ({result['file_mb']} MB)")
    print(f"bare COPY      {cp['rows_per_s']:>10,} rows/s  {cp['seconds']:>8} s")
    print(
        f"import job     {imp['rows_per_s']:>10,} rows/s  {imp['seconds']:>8} s  "
        f"({result['import_vs_copy']:.1%} of COPY)  app RSS +{imp['rss_growth_mb']} MB "
        f"(peak {imp['rss_peak_mb']} MB), reader process peak {imp['worker_peak_mb']} MB  "
        f"loop stall p99 {imp['loop_stall_p99_ms']} ms, max {imp['loop_stall_max_ms']} ms"
    )
    print(
        f"imported {imp['rows_imported']:,}, refused {imp['rows_invalid']:,}, "
        f"duplicates {imp['rows_duplicate']:,}, DNC {imp['rows_dnc']:,}"
    )
    if arguments.part == "all":
        scheduler_part(arguments.dsn)
