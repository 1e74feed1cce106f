"""Campaign scheduler benchmark on PostgreSQL: picking the next attempts from a big campaign.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/outbound_scheduler.py [--targets 1000000] [--operators 200]
        [--ticks 400] [--freed 5] [--out bench/results/outbound_scheduler.json]
        [--template NAME [--drop-template]]

What it does, on 127.0.0.1 only:

1. creates a fresh database with the Alembic migrations; seeds ``--operators`` operators, all
   ``available`` and members of the campaign's queue, one running progressive campaign
   (09:00–21:00 every day in the customer's zone, ``max_concurrency`` = operators), a pool of
   20 caller IDs in 5 regions, and global do-not-call numbers for 1 % of the targets (plus 20
   prefix ranges nobody dials);
2. loads ``--targets`` targets with binary ``COPY`` (``copy_records_to_table``): numbers in 5
   zones (Moscow 60 %, Kaliningrad, Yekaterinburg, Novosibirsk, Vladivostok 10 % each), due
   over the last 30 days; then ``ANALYZE``;
3. times the first ``tick`` (every operator free: it opens one attempt per operator);
4. steady state: ``--ticks`` times, ends ``--freed`` random open attempts as "no answer" (the
   lifecycle, not timed) and times one ``tick`` — the whole pass: running campaigns, who is
   free, the zones and their windows, the claim with ``FOR UPDATE SKIP LOCKED``, DNC, caller
   ID, ``do_open_attempt`` for each, the commit, and the hand-off to a no-op channel adapter;
5. times idle ticks (every operator busy: the pass finds nobody free);
6. prints p50/p90/p99 per tick, writes JSON to ``--out`` and drops the database.

With ``--template NAME`` steps 1–2 run once, into ``NAME``, which is kept; every run then times
a copy of it (``CREATE DATABASE … TEMPLATE``), so two versions of the code can be timed on the
same data, alternating. ``--drop-template`` drops it after the run.

The clock is pinned to 11:00 Moscow time on a Tuesday: every zone's window is open, so the
claim works across all five zones (the costliest case).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.routing import (
    check_loopback,
    clone,
    drop,
    log,
    machine_info,
    raw_dsn,
    sqlalchemy_url,
    summarize,
)
from omni import heap
from omni import seed as factory
from omni.channels import AdapterRegistry, AttemptOrder, DeliveryReceipt, OutboundMessage
from omni.db import Database, HeldConnection
from omni.db import models as m
from omni.db.migrate import upgrade_async
from omni.db.models.outbound import Outcome
from omni.domain import presence
from omni.domain.auth import hash_password
from omni.domain.outbound.lifecycle import do_close_attempt
from omni.domain.outbound.scheduler import TickStats, tick

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "outbound_scheduler.json"
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 11:00 Moscow, 10:00 Kaliningrad, 15:00 Vladivostok
ZONES: list[tuple[str, str, int]] = [
    # zone, number prefix, share of targets (percent)
    ("Europe/Moscow", "+7495", 60),
    ("Europe/Kaliningrad", "+74012", 10),
    ("Asia/Yekaterinburg", "+7343", 10),
    ("Asia/Novosibirsk", "+7383", 10),
    ("Asia/Vladivostok", "+7423", 10),
]
COPY_CHUNK = 50_000
TARGET_COLUMNS = [
    "campaign_id", "name", "phone", "phones", "phone_index", "timezone", "region", "fields",
    "tags", "state", "attempts", "next_due_at", "created_at", "updated_at",
]  # fmt: skip


@dataclass
class NullAdapter:
    """The channel boundary: accepts every order at once (the bench measures the engine)."""

    kind: ClassVar[str] = "voice"
    placed: int = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt("sent")

    async def place(self, order: AttemptOrder) -> None:
        self.placed += 1


@dataclass
class Result:
    targets: int
    operators: int
    copy_seconds: float
    copy_rows_per_second: float
    first_tick_ms: float
    first_tick_opened: int
    steady: dict[str, Any] = field(default_factory=dict)
    """The whole tick, commit and hand-off included."""
    steady_parts: dict[str, Any] = field(default_factory=dict)
    """pick (choosing the attempts), open (the lifecycle's rows and events), commit; and the
    CPU time this process spent per tick (Python, SQLAlchemy, asyncpg: what the machine's load
    does not inflate much, unlike the wall-clock waits for the database)."""
    idle: dict[str, Any] = field(default_factory=dict)
    opened_per_tick: float = 0.0
    explain: list[dict[str, Any]] = field(default_factory=list)
    """Server-side execution time of each read of one steady tick (EXPLAIN ANALYZE)."""
    statements_per_tick: float = 0.0
    """SQL statements a steady tick sends (round trips: these, BEGIN and COMMIT, and with
    ``--pooled`` the pool's ping: three more)."""
    floor: dict[str, Any] = field(default_factory=dict)
    """The same-run floor: a bare asyncpg transaction of as many ``SELECT 1`` round trips as a
    steady tick's statements (BEGIN and COMMIT included), on one kept connection."""


async def floor_samples(dsn: str, statements: int, n: int) -> list[float]:
    """What the round trips of a steady tick cost on this machine now, with no work in them."""
    conn = await asyncpg.connect(dsn)
    try:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            async with conn.transaction():
                for _ in range(statements):
                    await conn.fetchval("SELECT 1")
            out.append(time.perf_counter() - t0)
        return out
    finally:
        await conn.close()


def _phone(prefix: str, n: int) -> str:
    return prefix + str(n).zfill(12 - len(prefix))


SHARES = [(zone, prefix) for zone, prefix, pct in ZONES for _ in range(pct)]


def _prefix_of(i: int) -> str:
    return SHARES[i % 100][1]


def _target_rows(campaign_id: int, n_targets: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for i in range(n_targets):
        zone, prefix = SHARES[i % 100]
        phone = _phone(prefix, i)
        due = NOW - timedelta(seconds=rng.randrange(30 * 86400))
        yield (
            campaign_id,
            f"customer {i}",
            phone,
            json.dumps([phone]),
            0,
            zone,
            "RU",
            json.dumps({"debt": i % 10_000}),
            "[]",
            "pending",
            0,
            due,
            NOW,
            NOW,
        )


async def seed(
    db: Database, dsn: str, *, operators: int, targets: int, rng: random.Random
) -> tuple[int, float]:
    password_hash = hash_password("bench-password-never-used")
    async with db.transaction() as s:
        users = [await factory.user(s, f"op{i:04d}", password_hash=password_hash) for i in range(operators)]
        queue = await factory.queue(s, "Outbound", users)
        available = await presence.status_by_code(s, "available")
        for u in users:
            await presence.do_set_status(s, u.id, available)
        campaign = m.Campaign(
            name="Bench",
            queue_id=queue.id,
            state="running",
            dial_mode="progressive",
            schedule={str(d): [["09:00", "21:00"]] for d in range(1, 8)},
            retry_rules={"no_answer": [60, 240]},
            max_attempts=5,
            max_concurrency=operators,
        )
        s.add(campaign)
        await s.flush()
        campaign_id = campaign.id
        regions = ["RU", "RU-MOW", "RU-SPE", "RU-PRI", "RU-KGD"]
        for k in range(20):
            s.add(
                m.CampaignCallerId(campaign_id=campaign_id, number=f"+7495000{k:04d}", region=regions[k % 5])
            )
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        rows = _target_rows(campaign_id, targets, rng)
        while True:
            chunk = [r for _, r in zip(range(COPY_CHUNK), rows, strict=False)]
            if not chunk:
                break
            await conn.copy_records_to_table("campaign_targets", columns=TARGET_COLUMNS, records=chunk)
        copy_seconds = time.perf_counter() - t0
        # About 1 % of the targets on the global DNC list, plus prefix ranges nobody dials.
        dnc = sorted({rng.randrange(targets) for _ in range(max(1, targets // 100))})
        await conn.copy_records_to_table(
            "dnc_entries",
            columns=["campaign_id", "number", "prefix", "reason", "created_at"],
            records=[(None, _phone(_prefix_of(i), i), False, "bench", NOW) for i in dnc]
            + [(None, f"+7800{k:03d}", True, "bench", NOW) for k in range(20)],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return campaign_id, copy_seconds


async def free_some(db: Database, k: int, rng: random.Random) -> None:
    async with db.transaction() as s:
        open_ = list(await s.scalars(select(m.CampaignAttempt).where(m.CampaignAttempt.ended_at.is_(None))))
        for attempt in rng.sample(open_, min(k, len(open_))):
            await do_close_attempt(s, attempt, Outcome.NO_ANSWER, now=NOW)


async def explain_tick(
    db: Database,
    dsn: str,
    adapters: AdapterRegistry,
    rng: random.Random,
    freed: int,
    held: HeldConnection | None,
    clock: datetime,
) -> list[dict[str, Any]]:
    """One more steady tick with its statements captured, then each read (the picking) run
    again under ``EXPLAIN ANALYZE`` in a rolled-back transaction: what PostgreSQL itself spends,
    apart from the round trips and Python that a loaded machine inflates."""
    await free_some(db, freed, rng)
    captured: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", grab)
    try:
        await tick(db, clock + timedelta(seconds=2), adapters=adapters, held=held)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", grab)
    # Replayed on the state the tick left (its claims done, the next due targets in line): the
    # same shape of work as the tick's own reads.
    out: list[dict[str, Any]] = []
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for statement, params in captured:
                # The opening writes only while its targets are pending (the tick opened them):
                # put them back before each run, as the tick found them.
                opening = "INSERT INTO campaign_attempts" in statement
                # Twice: the first run on this fresh connection also loads its catalog caches.
                for _ in range(2):
                    if opening:
                        await conn.execute(
                            "UPDATE campaign_targets SET state = 'pending' WHERE id = ANY($1::bigint[])",
                            params[0],
                        )
                    plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *(params or ()))
                top = json.loads(plan)[0]
                out.append(
                    {
                        "statement": " ".join(statement.split())[:90],
                        "execution_ms": round(float(top["Execution Time"]), 3),
                        "planning_ms": round(float(top["Planning Time"]), 3),
                    }
                )
            raise _Rollback
    except _Rollback:
        pass
    finally:
        await conn.close()
    return out


class _Rollback(Exception):
    pass


async def _database_exists(dsn: str, name: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _seeded(args: argparse.Namespace, name: str, rng: random.Random) -> float:
    """Create, migrate and seed database ``name``; the COPY's seconds."""
    conn = await asyncpg.connect(args.dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    log(f"migrating {name}")
    await upgrade_async(sqlalchemy_url(args.dsn, name))
    log(f"seeding {args.operators} operators and COPYing {args.targets:,} targets")
    db = Database(sqlalchemy_url(args.dsn, name), pool_size=2)
    try:
        _, copy_seconds = await seed(
            db, raw_dsn(args.dsn, name), operators=args.operators, targets=args.targets, rng=rng
        )
    finally:
        await db.dispose()
    log(f"COPY: {copy_seconds:.1f} s ({args.targets / copy_seconds:,.0f} rows/s)")
    return copy_seconds


async def main(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.dsn)
    rng = random.Random(13)
    name = f"omni_bench_outbound_{uuid.uuid4().hex[:8]}"
    copy_seconds = 0.0
    if args.template:
        # Before/after pairs on the same data: every run starts from a copy of one seeded
        # database (seeded by the first run that names it, kept until --drop-template).
        if not await _database_exists(args.dsn, args.template):
            copy_seconds = await _seeded(args, args.template, rng)
        log(f"copying {args.template} to {name}")
        await clone(args.dsn, args.template, name)
    else:
        copy_seconds = await _seeded(args, name, rng)
    db = Database(sqlalchemy_url(args.dsn, name), pool_size=4)
    # As the node's loop runs it: one connection kept across the passes (``--pooled``: a pool
    # checkout, with its ping, per pass, as a Celery beat tick does).
    held = None if args.pooled else HeldConnection(db, generic_plans=True)
    try:
        adapters = AdapterRegistry()
        adapter = NullAdapter()
        adapters.register(adapter)
        # As a node's start-up does (``omni/heap.py``): what is alive now is kept out of later
        # full collections, which would otherwise walk it in the middle of a timed tick.
        heap.freeze_startup_heap()
        t0 = time.perf_counter()
        clock = args.clock or NOW
        first = await tick(db, clock, adapters=adapters, held=held)
        first_ms = (time.perf_counter() - t0) * 1000
        log(f"first tick: {first} attempts in {first_ms:.1f} ms")
        if not args.no_analyze:
            # The attempts table was empty when the seed was analysed: a running system's
            # autovacuum re-analyses it within a minute of the first attempts (the planner
            # otherwise takes it for one row and picks nested loops over every open attempt).
            conn = await asyncpg.connect(raw_dsn(args.dsn, name))
            try:
                await conn.execute("ANALYZE campaign_attempts")
            finally:
                await conn.close()
        samples: list[float] = []
        parts: dict[str, list[float]] = {"pick": [], "open": [], "commit": [], "python_cpu": []}
        opened = 0
        statements = 0
        counting = False

        def count(*_: Any) -> None:
            nonlocal statements
            statements += counting

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        # --profile: the timed ticks only, the process's CPU time as the clock (waits for
        # PostgreSQL don't count).
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        for i in range(args.ticks):
            await free_some(db, args.freed, rng)
            stats = TickStats()
            counting = True
            if profiler is not None:
                profiler.enable()
            t0, cpu0 = time.perf_counter(), time.process_time()
            opened += await tick(
                db, clock + timedelta(milliseconds=i), adapters=adapters, stats=stats, held=held
            )
            samples.append(time.perf_counter() - t0)
            if profiler is not None:
                profiler.disable()
            counting = False
            parts["python_cpu"].append(time.process_time() - cpu0)
            parts["pick"].append(stats.pick_seconds)
            parts["open"].append(stats.open_seconds)
            parts["commit"].append(stats.commit_seconds)
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        if profiler is not None:
            profiler.dump_stats(args.profile)
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
            log(f"profile of the timed ticks (CPU time) in {args.profile}:\n{text.getvalue()}")
        per_tick = statements / max(1, args.ticks)
        floor = await floor_samples(raw_dsn(args.dsn, name), round(per_tick), args.ticks)
        explained = await explain_tick(db, raw_dsn(args.dsn, name), adapters, rng, args.freed, held, clock)
        idle: list[float] = []
        for i in range(max(20, args.ticks // 4)):
            t0 = time.perf_counter()
            await tick(db, clock + timedelta(seconds=1, milliseconds=i), adapters=adapters, held=held)
            idle.append(time.perf_counter() - t0)
        result = Result(
            targets=args.targets,
            operators=args.operators,
            copy_seconds=round(copy_seconds, 2),
            copy_rows_per_second=round(args.targets / copy_seconds) if copy_seconds else 0,
            first_tick_ms=round(first_ms, 2),
            first_tick_opened=first,
            steady=_stats(samples),
            steady_parts={k: _stats(v) for k, v in parts.items()},
            idle=_stats(idle),
            opened_per_tick=round(opened / max(1, args.ticks), 2),
            explain=explained,
            statements_per_tick=round(per_tick, 2),
            floor=_stats(floor),
        )
    finally:
        heap.thaw_heap()
        if held is not None:
            await held.close()
        await db.dispose()
        await drop(args.dsn, name)
        if args.template and args.drop_template:
            await drop(args.dsn, args.template)
    out = {
        "result": result.__dict__,
        "machine": await machine_info(args.dsn),
        "loadavg_at_end": list(os.getloadavg()),
        "args": vars(args) | {"dsn": "…"},
    }
    s = result.steady
    log(
        f"steady ticks ({args.ticks}, {result.opened_per_tick} attempts each): "
        f"p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms"
    )
    f = result.floor
    log(
        f"floor ({result.statements_per_tick} bare round trips + BEGIN/COMMIT): p50 {f['p50_ms']} ms, "
        f"p99 {f['p99_ms']} ms; tick / floor: p50 {s['p50_ms'] / max(f['p50_ms'], 1e-9):.2f}, "
        f"p99 {s['p99_ms'] / max(f['p99_ms'], 1e-9):.2f}"
    )
    total = sum(e["execution_ms"] for e in result.explain)
    log(f"a steady tick's reads in PostgreSQL (EXPLAIN ANALYZE): {total:.2f} ms, {len(result.explain)} reads")
    for e in result.explain:
        log(f"  {e['execution_ms']:8.3f} ms  {e['statement']}")
    for part, st in result.steady_parts.items():
        log(f"  {part}: p50 {st['p50_ms']} ms, p90 {st['p90_ms']} ms, p99 {st['p99_ms']} ms")
    log(f"idle ticks: p50 {result.idle['p50_ms']} ms, p99 {result.idle['p99_ms']} ms")
    log(f"load average at the end: {out['loadavg_at_end']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    return out


def _stats(samples: Sequence[float]) -> dict[str, Any]:
    stats = summarize(samples)
    return {k: getattr(stats, k) for k in stats.__slots__}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--targets", type=int, default=1_000_000)
    p.add_argument("--operators", type=int, default=200)
    p.add_argument("--ticks", type=int, default=400)
    p.add_argument("--freed", type=int, default=5, help="attempts ended before each timed tick")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--template",
        default="",
        help="a seeded database kept between runs (seeded by the first run naming it); each run "
        "times a copy of it, so runs of two versions of the code start from the same data",
    )
    p.add_argument("--drop-template", action="store_true", help="drop --template after this run")
    p.add_argument(
        "--pooled",
        action="store_true",
        help="each tick takes a pooled connection (pinged) instead of the loop's held one",
    )
    p.add_argument(
        "--clock",
        type=datetime.fromisoformat,
        default=None,
        help="the ticks' clock (ISO, with zone); default 08:00 UTC on Tuesday 1 Dec 2026, when every "
        "zone's window is open; 2026-12-01T18:30:00+00:00 leaves only Kaliningrad's (one zone)",
    )
    p.add_argument(
        "--no-analyze",
        action="store_true",
        help="don't ANALYZE campaign_attempts after the first tick (as the runs before 30 Nov 2026)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="cProfile the timed ticks (process CPU time as the clock) into this file",
    )
    p.add_argument(
        "--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""), help="admin DSN ($OMNI_TEST_PG_DSN)"
    )
    args = p.parse_args(argv)
    if not args.dsn:
        p.error('no --dsn and OMNI_TEST_PG_DSN is not set (eval "$(scripts/services.sh start)")')
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
