"""Routing benchmark on PostgreSQL: Omni's per-conversation decisions against a bare floor.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/routing.py [--operators 200] [--conversations 10000]
                                      [--out bench/results/routing.json]

What it does, on 127.0.0.1 only:

1. builds the template ``omni_bench_template`` with the Alembic migrations, clones a fresh
   database from it, seeds operators, 4 queues (every operator in 2 of them), sets every
   operator ``available`` and ingests the conversations through ``do_ingest_inbound``;
2. clones the seeded database once more and times one real ``do_route_pending`` pass there
   (everything waiting, every operator free);
3. on the seeded database, runs routing passes until every conversation has been offered.
   Each ``do_assign`` transaction is timed on its own; between passes every new offer is
   accepted and the conversation closed (``do_accept_offer`` + ``do_close``, not timed) so
   capacity never limits the run;
4. runs the raw floor: a bare asyncpg loop doing the minimum a locking router must do per
   decision, on two plain tables in the same database;
5. prints a table, writes JSON to ``--out`` and drops every database it created.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from benchkit import (
    admin_execute,
    build_template,
    check_loopback,
    clone,
    drop,
    log,
    percentile,
    raw_dsn,
    sqlalchemy_url,
)
from sqlalchemy import event, select, text

from omni import seed as factory
from omni.db import Database, HeldConnection, driver
from omni.db import models as m
from omni.domain import conversations, presence, routing
from omni.domain.auth import hash_password

TEMPLATE = "omni_bench_template"
QUEUES = 4
QUEUES_PER_OPERATOR = 2
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "routing.json"


# --- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Per-decision latencies in milliseconds; ``per_second`` = count / sum of latencies."""

    count: int
    total_seconds: float
    per_second: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def summarize(samples: Sequence[float]) -> LatencyStats:
    """``samples`` in seconds."""
    ordered = sorted(samples)
    total = sum(ordered)
    n = len(ordered)
    return LatencyStats(
        count=n,
        total_seconds=round(total, 4),
        per_second=round(n / total, 1) if total > 0 else math.nan,
        mean_ms=round(total / n * 1000, 3) if n else math.nan,
        p50_ms=round(percentile(ordered, 50) * 1000, 3),
        p90_ms=round(percentile(ordered, 90) * 1000, 3),
        p99_ms=round(percentile(ordered, 99) * 1000, 3),
        max_ms=round(ordered[-1] * 1000, 3) if n else math.nan,
    )


# --- databases ----------------------------------------------------------------------------


async def machine_info(admin_dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        pg_settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in (
                "server_version",
                "fsync",
                "synchronous_commit",
                "full_page_writes",
                "shared_buffers",
                "max_connections",
            )
        }
        pg_full = await conn.fetchval("SELECT version()")
    finally:
        await conn.close()
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlalchemy": version("sqlalchemy"),
        "asyncpg": version("asyncpg"),
        "postgres_version": pg_settings.pop("server_version"),
        "postgres_full_version": pg_full,
        "postgres_settings": pg_settings,
    }


# --- setup --------------------------------------------------------------------------------


@dataclass(slots=True)
class Seeded:
    inbox_ids: list[int]
    result_code_id: int
    operators: int
    slots: int
    operators_seconds: float
    conversations: int
    conversations_seconds: float
    conversations_per_second: float
    batch_size: int


async def seed(
    db: Database, *, operators: int, capacity: int, n_conversations: int, batch: int, strategy: str
) -> Seeded:
    t0 = time.perf_counter()
    password_hash = hash_password("bench-password-never-used")  # one hash for everyone: argon2 is slow
    async with db.transaction() as s:
        users = [
            await factory.user(
                s,
                f"bench-op-{i:05d}",
                password_hash=password_hash,
                display_name=f"Bench operator {i}",
                capacity=capacity,
                voice_weight=capacity,
            )
            for i in range(operators)
        ]
        queues = [
            await factory.queue(
                s,
                f"bench-queue-{q}",
                strategy=strategy,
                queue_timeout_seconds=3600,
                operator_timeout_seconds=600,
            )
            for q in range(QUEUES)
        ]
        for i, user in enumerate(users):
            for k in range(QUEUES_PER_OPERATOR):
                s.add(
                    m.QueueMember(
                        queue_id=queues[(i + k) % QUEUES].id, user_id=user.id, position=i, penalty=0
                    )
                )
        inboxes = [
            await factory.inbox(
                s, q, "api", f"bench-inbox-{q.name}", public_token=f"bench-{uuid.uuid4().hex}"
            )
            for q in queues
        ]
        code = await factory.result_code(s, "bench-done", name="Bench done")
        inbox_ids = [i.id for i in inboxes]
        result_code_id = code.id
        user_ids = [u.id for u in users]
    async with db.transaction() as s:
        available = await presence.status_by_code(s, "available")
        for uid in user_ids:
            await presence.do_set_status(s, uid, available)
    operators_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    for start in range(0, n_conversations, batch):
        async with db.transaction() as s:
            for i in range(start, min(n_conversations, start + batch)):
                await conversations.do_ingest_inbound(
                    s,
                    conversations.InboundMessage(
                        inbox_id=inbox_ids[i % QUEUES],
                        identity_kind="external",
                        identity_value=f"bench-customer-{i}",
                        body=f"Hello, this is customer {i}",
                        external_id=f"bench-msg-{i}",
                        contact_name=f"Customer {i}",
                    ),
                )
        done = min(n_conversations, start + batch)
        if done % (batch * 4) == 0 or done == n_conversations:
            log(f"  ingested {done}/{n_conversations}")
    conv_seconds = time.perf_counter() - t1
    return Seeded(
        inbox_ids=inbox_ids,
        result_code_id=result_code_id,
        operators=operators,
        slots=operators * capacity,
        operators_seconds=round(operators_seconds, 3),
        conversations=n_conversations,
        conversations_seconds=round(conv_seconds, 3),
        conversations_per_second=round(n_conversations / conv_seconds, 1),
        batch_size=batch,
    )


HISTORY_SQL = """
WITH ops AS (
    SELECT array_agg(DISTINCT user_id ORDER BY user_id) AS ids FROM queue_members
), waiting AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM conversations
), made AS (
    INSERT INTO conversations (
        contact_id, inbox_id, channel, medium, status, queue_id, extra_queue_ids, priority,
        skill_relax, escalation_step, subject, variables, created_at, first_enqueued_at,
        enqueued_at, offered_at, accepted_at, wrap_up_at, closed_at, closed_by, hold_seconds,
        assigned_user_id, result_code_id, label_ids
    )
    SELECT c.contact_id, c.inbox_id, c.channel, c.medium, 'closed', c.queue_id, '[]', 0, 0, 0,
           c.subject, '{}', t, t, t, t + interval '5 seconds', t + interval '10 seconds',
           t + interval '4 minutes', t + interval '5 minutes', 'operator', 0,
           ops.ids[1 + g % cardinality(ops.ids)], :code, '[]'
    FROM generate_series(1, :n) AS g
    CROSS JOIN ops
    CROSS JOIN waiting
    JOIN conversations AS c ON c.id = waiting.ids[1 + g % cardinality(waiting.ids)]
    CROSS JOIN LATERAL (SELECT now() - interval '3 days' + g * interval '5 seconds' AS t) AS at
    RETURNING id, queue_id, assigned_user_id, offered_at
)
INSERT INTO offers (conversation_id, user_id, queue_id, state, created_at, expires_at)
SELECT id, assigned_user_id, queue_id, 'accepted', offered_at, offered_at + interval '30 seconds'
FROM made
"""
"""Closed contacts of earlier days, each with its accepted offer, written in one statement:
what the tables of a contact centre in operation hold. Without them the statistics say
``offers`` is empty, the router's prepared statements keep the plans made for a table of a
few pages (a sequential scan of every offer, per candidate), and the run slows pass by pass
until an autovacuum or autoanalyze happens to replan them (bench/README.md, "stats15")."""


async def seed_history(db: Database, n: int, result_code_id: int) -> float:
    """``n`` closed contacts of earlier days (``HISTORY_SQL``); seconds taken."""
    t0 = time.perf_counter()
    if n > 0:
        async with db.transaction() as s:
            await s.execute(text(HISTORY_SQL), {"n": n, "code": result_code_id})
    return time.perf_counter() - t0


# --- routing, Omni ------------------------------------------------------------------------


class StatementCounter:
    """Counts SQL statements sent through an engine (BEGIN/COMMIT are not statements here)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._on_execute)
        driver.listen(db.engine, self._on_execute)  # those sent straight on asyncpg

    def _on_execute(self, *_args: object) -> None:
        self.count += 1


@dataclass(slots=True)
class PassResult:
    """One instrumented routing pass."""

    waiting: int
    scan_seconds: float
    wall_seconds: float
    offered: list[float] = field(default_factory=list)
    """Latency of each ``do_assign`` transaction that made an offer."""
    no_match: list[float] = field(default_factory=list)
    """Latency of each ``do_assign`` transaction that found nobody (capacity full)."""
    assignments: list[routing.Assignment] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    """SQL statements issued by each offering decision."""
    cpu: list[float] = field(default_factory=list)
    """CPU seconds this process spent in each offering decision (``time.process_time``)."""


async def timed_route_pass(
    db: Database, counter: StatementCounter, *, max_assignments: int = 10_000, orm_only: bool = False
) -> PassResult:
    """``routing.do_route_pending`` with a stopwatch around each decision's transaction.

    Same waiting line (``routing.waiting_line``) and dead-key skipping as the real pass; the
    only addition is the timing. Keep the loop in step with ``routing.do_route_pending``.
    """
    t_pass = time.perf_counter()
    rp = routing.RoutePass(orm_only=orm_only)
    result = PassResult(waiting=0, scan_seconds=0.0, wall_seconds=0.0)
    async with db.transaction() as session:
        rows = await routing.waiting_line(session, limit=max_assignments)
    if not rows:
        result.wall_seconds = time.perf_counter() - t_pass
        return result
    result.waiting = len(rows)
    result.scan_seconds = time.perf_counter() - t_pass
    # As do_route_pending: one connection for the pass's decisions, a bare transaction each.
    held = HeldConnection(db)
    try:
        for conv_id, qid, medium, relax, step, preferred in rows:
            key = (qid, medium, relax, step, preferred)
            if key in rp.dead_keys:
                continue
            before = counter.count
            c0 = time.process_time()
            t0 = time.perf_counter()
            async with routing.decision_transaction(held) as tx:
                assignment = await routing.do_assign(tx, conv_id, rp)
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - c0
            if assignment is None:
                result.no_match.append(elapsed)
                if step == 0 and preferred is None:
                    rp.dead_keys.add(key)
                continue
            result.offered.append(elapsed)
            result.statements.append(counter.count - before)
            result.cpu.append(cpu)
            result.assignments.append(assignment)
            if len(result.assignments) >= max_assignments:
                break
    finally:
        await held.close()
    result.wall_seconds = time.perf_counter() - t_pass
    return result


async def accept_and_close(
    db: Database,
    assignments: Sequence[routing.Assignment],
    result_code_id: int,
    *,
    batch: int = 200,
) -> None:
    """Free the capacity again: the offered operator accepts, then closes with a result code."""
    for start in range(0, len(assignments), batch):
        async with db.transaction() as s:
            for a in assignments[start : start + batch]:
                conv = await s.scalar(
                    select(m.Conversation).where(m.Conversation.id == a.conversation_id).with_for_update()
                )
                assert conv is not None
                if conv.status == m.ConversationStatus.OFFERED:
                    offer = await s.scalar(
                        select(m.Offer)
                        .where(m.Offer.conversation_id == conv.id, m.Offer.state == "pending")
                        .order_by(m.Offer.id)
                        .limit(1)
                        .with_for_update()
                    )
                    assert offer is not None, f"conversation {conv.id} offered without a pending offer"
                    await conversations.do_accept_offer(s, conv, offer)
                await conversations.do_close(s, conv, result_code_id, by="operator")


@dataclass(slots=True)
class OmniRun:
    passes: list[dict[str, Any]]
    offered: LatencyStats
    no_match: LatencyStats
    statements_per_offer_mean: float
    statements_per_offer_max: int
    cpu_ms_per_offer_mean: float
    """CPU time of the benchmark process per offering decision (Python, drivers, SQLAlchemy)."""
    path: str
    routing_wall_seconds: float
    routing_wall_decisions_per_second: float
    accept_close_seconds: float
    total_seconds: float


async def run_omni(
    db: Database, n_conversations: int, slots: int, result_code_id: int, *, orm_only: bool = False
) -> OmniRun:
    cpu: list[float] = []
    offered: list[float] = []
    no_match: list[float] = []
    statements: list[int] = []
    counter = StatementCounter(db)
    passes: list[dict[str, Any]] = []
    routing_wall = 0.0
    drain_wall = 0.0
    total = 0
    max_passes = 3 * math.ceil(n_conversations / max(1, slots)) + 10
    t_run = time.perf_counter()
    for n in range(1, max_passes + 1):
        p = await timed_route_pass(db, counter, orm_only=orm_only)
        routing_wall += p.wall_seconds
        offered += p.offered
        no_match += p.no_match
        statements += p.statements
        cpu += p.cpu
        total += len(p.assignments)
        tables = await table_stats(db)
        t0 = time.perf_counter()
        await accept_and_close(db, p.assignments, result_code_id)
        drain = time.perf_counter() - t0
        drain_wall += drain
        stats = summarize(p.offered)
        passes.append(
            {
                "pass": n,
                "waiting": p.waiting,
                "offered": len(p.offered),
                "no_match": len(p.no_match),
                "scan_ms": round(p.scan_seconds * 1000, 2),
                "wall_seconds": round(p.wall_seconds, 3),
                "p50_ms": stats.p50_ms,
                "p99_ms": stats.p99_ms,
                "max_ms": stats.max_ms,
                "accept_close_seconds": round(drain, 3),
                "tables": tables,
            }
        )
        log(
            f"  pass {n:3d}: waiting {p.waiting:6d}, offered {len(p.offered):5d} in "
            f"{p.wall_seconds:6.2f}s (p50 {stats.p50_ms:.2f} ms, p99 {stats.p99_ms:.2f} ms), "
            f"accept+close {drain:5.2f}s, total offered {total}/{n_conversations}; {tables}"
        )
        if total >= n_conversations or p.waiting == 0:
            break
        if not p.assignments:
            raise RuntimeError(f"routing pass {n} offered nothing while {p.waiting} were waiting")
    else:
        raise RuntimeError(f"gave up after {max_passes} passes with {total} offered")
    return OmniRun(
        passes=passes,
        offered=summarize(offered),
        no_match=summarize(no_match),
        statements_per_offer_mean=round(sum(statements) / max(1, len(statements)), 1),
        statements_per_offer_max=max(statements, default=0),
        cpu_ms_per_offer_mean=round(sum(cpu) / max(1, len(cpu)) * 1000, 3),
        path="orm" if orm_only else "auto (PostgreSQL: routing_pg)",
        routing_wall_seconds=round(routing_wall, 3),
        routing_wall_decisions_per_second=round(len(offered) / routing_wall, 1),
        accept_close_seconds=round(drain_wall, 3),
        total_seconds=round(time.perf_counter() - t_run, 3),
    )


async def table_stats(db: Database) -> str:
    """Dead rows, autovacuums and autoanalyzes so far of the router's two busiest tables: a
    pass after an autovacuum or autoanalyze of them runs on freshly planned statements."""
    async with db.transaction() as s:
        rows = await s.execute(
            text(
                "SELECT relname, n_dead_tup, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables"
                " WHERE relname IN ('conversations', 'offers') ORDER BY relname"
            )
        )
        return ", ".join(f"{name} dead {dead} vac {vac} an {an}" for name, dead, vac, an in rows)


async def full_pass(url: str, waiting: int) -> dict[str, Any]:
    """One untouched ``do_route_pending`` pass with everything waiting and every operator free."""
    db = Database(url)
    try:
        async with db.transaction() as s:  # open the pool's first connection outside the clock
            await s.execute(select(1))
        t0 = time.perf_counter()
        assignments = await routing.do_route_pending(db)
        seconds = time.perf_counter() - t0
    finally:
        await db.dispose()
    return {
        "waiting": waiting,
        "offered": len(assignments),
        "seconds": round(seconds, 3),
        "offers_per_second": round(len(assignments) / seconds, 1) if seconds else math.nan,
    }


# --- routing, raw floor -------------------------------------------------------------------

RAW_SCHEMA = (
    "DROP TABLE IF EXISTS bench_items",
    "DROP TABLE IF EXISTS bench_agents",
    "CREATE TABLE bench_items (id bigserial PRIMARY KEY, state text, assigned int)",
    "CREATE TABLE bench_agents (id int PRIMARY KEY, load int)",
)
RAW_ITEM = "SELECT id FROM bench_items WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
RAW_AGENT = "SELECT id FROM bench_agents WHERE load < $1 ORDER BY load, id LIMIT 1 FOR UPDATE SKIP LOCKED"
RAW_ASSIGN = "UPDATE bench_items SET state = 'offered', assigned = $1 WHERE id = $2"
RAW_LOAD = "UPDATE bench_agents SET load = load + 1 WHERE id = $1"
RAW_RESET = "UPDATE bench_agents SET load = 0"


@dataclass(slots=True)
class RawRun:
    decisions: LatencyStats
    first_tenth_p50_ms: float
    last_tenth_p50_ms: float
    """The item scan walks past offered rows, so the floor slows down as the run goes on."""
    wall_seconds: float
    wall_decisions_per_second: float
    load_resets: int


async def run_raw_floor(dsn: str, *, items: int, agents: int, capacity: int) -> RawRun:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in RAW_SCHEMA:
            await conn.execute(sql)
        await conn.execute(
            "INSERT INTO bench_items (state) SELECT 'queued' FROM generate_series(1, $1)", items
        )
        await conn.execute(
            "INSERT INTO bench_agents (id, load) SELECT g, 0 FROM generate_series(1, $1) g", agents
        )
        await conn.execute("ANALYZE bench_items")
        await conn.execute("ANALYZE bench_agents")
        samples: list[float] = []
        resets = 0
        budget = items + items // max(1, agents * capacity) + 10  # bounded: one retry per reset
        since_reset = 0
        t_run = time.perf_counter()
        for _ in range(budget):
            if since_reset >= agents * capacity:  # every agent is full: "close" everything
                await conn.execute(RAW_RESET)
                resets += 1
                since_reset = 0
            t0 = time.perf_counter()
            tx = conn.transaction()
            await tx.start()
            item = await conn.fetchval(RAW_ITEM)
            if item is None:
                await tx.rollback()
                break
            agent = await conn.fetchval(RAW_AGENT, capacity)
            if agent is None:  # should not happen with the counter above; reset and retry
                await tx.rollback()
                since_reset = agents * capacity
                continue
            await conn.execute(RAW_ASSIGN, agent, item)
            await conn.execute(RAW_LOAD, agent)
            await tx.commit()
            samples.append(time.perf_counter() - t0)
            since_reset += 1
        wall = time.perf_counter() - t_run
        left = await conn.fetchval("SELECT count(*) FROM bench_items WHERE state = 'queued'")
        if left:
            raise RuntimeError(f"raw floor stopped with {left} items still queued")
        for sql in RAW_SCHEMA[:2]:
            await conn.execute(sql)
    finally:
        await conn.close()
    tenth = max(1, len(samples) // 10)
    return RawRun(
        decisions=summarize(samples),
        first_tenth_p50_ms=summarize(samples[:tenth]).p50_ms,
        last_tenth_p50_ms=summarize(samples[-tenth:]).p50_ms,
        wall_seconds=round(wall, 3),
        wall_decisions_per_second=round(len(samples) / wall, 1),
        load_resets=resets,
    )


# --- report -------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    seed_info = report["setup"]
    omni = report["omni"]["offered"]
    raw = report["raw_floor"]["decisions"]
    fp = report["route_pending_full_pass"]
    rows = [
        ("decisions", f"{omni['count']}", f"{raw['count']}"),
        (
            "decisions/s (sum of decision times)",
            f"{omni['per_second']:.0f}",
            f"{raw['per_second']:.0f}",
        ),
        (
            "decisions/s (wall, excl. accept/close)",
            f"{report['omni']['routing_wall_decisions_per_second']:.0f}",
            f"{report['raw_floor']['wall_decisions_per_second']:.0f}",
        ),
        ("mean ms", f"{omni['mean_ms']:.3f}", f"{raw['mean_ms']:.3f}"),
        ("p50 ms", f"{omni['p50_ms']:.3f}", f"{raw['p50_ms']:.3f}"),
        ("p90 ms", f"{omni['p90_ms']:.3f}", f"{raw['p90_ms']:.3f}"),
        ("p99 ms", f"{omni['p99_ms']:.3f}", f"{raw['p99_ms']:.3f}"),
        ("max ms", f"{omni['max_ms']:.3f}", f"{raw['max_ms']:.3f}"),
    ]
    mach = report["machine"]
    pg = mach["postgres_settings"]
    o = report["omni"]
    nm = o["no_match"]
    print()
    print(
        f"machine: {mach['nproc']} CPUs, Python {mach['python']}, "
        f"PostgreSQL {mach['postgres_version']} (fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}), "
        f"loadavg {mach['loadavg_at_start'][0]:.2f} -> {mach['loadavg_at_end'][0]:.2f}"
    )
    print(
        f"setup:   {seed_info['operators']} operators ({seed_info['slots']} chat slots), "
        f"{QUEUES} queues, ready in {seed_info['operators_seconds']:.2f}s; "
        f"{seed_info['conversations']} conversations ingested in "
        f"{seed_info['conversations_seconds']:.2f}s "
        f"= {seed_info['conversations_per_second']:.0f}/s (batches of {seed_info['batch_size']}); "
        f"history: {seed_info['history']} closed contacts in {seed_info['history_seconds']:.2f}s"
    )
    print(
        f"route_pending, one full pass: {fp['waiting']} waiting, {fp['offered']} offered "
        f"in {fp['seconds']:.3f}s ({fp['offers_per_second']:.0f} offers/s)"
    )
    print(
        f"omni:    {len(o['passes'])} passes, routing wall {o['routing_wall_seconds']:.2f}s, "
        f"accept+close (not timed) {o['accept_close_seconds']:.2f}s, "
        f"{nm['count']} no-match decisions (p50 {nm['p50_ms']:.2f} ms); "
        f"SQL statements per offer: mean {o['statements_per_offer_mean']}, "
        f"max {o['statements_per_offer_max']} (floor: 4); CPU of this process per offer "
        f"{o['cpu_ms_per_offer_mean']:.2f} ms; path: {o['path']}"
    )
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'omni try_assign':>16}  {'raw asyncpg floor':>18}")
    for name, a, b in rows:
        print(f"{name:{width}}  {a:>16}  {b:>18}")
    ratio = omni["p50_ms"] / raw["p50_ms"] if raw["p50_ms"] else math.nan
    print(f"\nomni p50 / floor p50 = {ratio:.1f}x")
    share = omni["per_second"] / raw["per_second"] if raw["per_second"] else math.nan
    print(f"omni decisions/s / floor decisions/s = {share:.1%} (goal: >= 25 %)")
    rf = report["raw_floor"]
    print(
        f"floor p50, first / last tenth of its run: {rf['first_tenth_p50_ms']:.3f} / "
        f"{rf['last_tenth_p50_ms']:.3f} ms (its item scan walks past offered rows)"
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    admin_dsn: str = args.dsn
    check_loopback(admin_dsn)
    run_id = uuid.uuid4().hex[:8]
    bench_db = f"omni_bench_{run_id}"
    pass_db = f"omni_bench_{run_id}_pass"
    started = datetime.now(UTC)
    machine = await machine_info(admin_dsn)
    log(f"building template {TEMPLATE} (migrations)")
    await build_template(admin_dsn, TEMPLATE)
    try:
        await clone(admin_dsn, TEMPLATE, bench_db)
        db = Database(sqlalchemy_url(admin_dsn, bench_db))
        try:
            log(f"seeding {bench_db}: {args.operators} operators, {args.conversations} chats")
            seeded = await seed(
                db,
                operators=args.operators,
                capacity=args.capacity,
                n_conversations=args.conversations,
                batch=args.batch,
                strategy=args.strategy,
            )
            log(f"history: {args.history} closed contacts of earlier days")
            history_seconds = await seed_history(db, args.history, seeded.result_code_id)
        finally:
            await db.dispose()
        # What autovacuum would soon do after a bulk load; keeps plans stable between runs.
        await admin_execute(raw_dsn(admin_dsn, bench_db), "ANALYZE")

        log("one untouched route_pending pass on a clone")
        await clone(admin_dsn, bench_db, pass_db)
        try:
            fp = await full_pass(sqlalchemy_url(admin_dsn, pass_db), args.conversations)
        finally:
            await drop(admin_dsn, pass_db)

        log("routing until every conversation has been offered")
        db = Database(sqlalchemy_url(admin_dsn, bench_db))
        try:
            omni = await run_omni(
                db, args.conversations, seeded.slots, seeded.result_code_id, orm_only=args.orm
            )
        finally:
            await db.dispose()

        log(f"raw floor: {args.conversations} items, {args.operators} agents")
        raw = await run_raw_floor(
            raw_dsn(admin_dsn, bench_db),
            items=args.conversations,
            agents=args.operators,
            capacity=args.capacity,
        )
    finally:
        await drop(admin_dsn, bench_db, pass_db)
        if not args.keep_template:
            await drop(admin_dsn, TEMPLATE)
    machine["loadavg_at_end"] = list(os.getloadavg())
    return {
        "benchmark": "routing",
        "started_at": started.isoformat(),
        "params": {
            "operators": args.operators,
            "capacity": args.capacity,
            "chat_weight": 1,
            "queues": QUEUES,
            "queues_per_operator": QUEUES_PER_OPERATOR,
            "strategy": args.strategy,
            "conversations": args.conversations,
            "history": args.history,
            "ingest_batch": args.batch,
            "orm": args.orm,
        },
        "machine": machine,
        "setup": {k: v for k, v in asdict(seeded).items() if k not in ("inbox_ids", "result_code_id")}
        | {"history": args.history, "history_seconds": round(history_seconds, 3)},
        "route_pending_full_pass": fp,
        "omni": asdict(omni),
        "raw_floor": asdict(raw),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--operators", type=int, default=200)
    p.add_argument("--conversations", type=int, default=10_000)
    p.add_argument("--capacity", type=int, default=3, help="load units per operator (chat weight is 1)")
    p.add_argument("--batch", type=int, default=500, help="conversations ingested per transaction")
    p.add_argument(
        "--history",
        type=int,
        default=20_000,
        help="closed contacts of earlier days, each with its accepted offer (0: empty tables)",
    )
    p.add_argument("--strategy", default=m.Strategy.LONGEST_IDLE, choices=[s.value for s in m.Strategy])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--orm", action="store_true", help="decide through the ORM path (as SQLite does): the before figure"
    )
    p.add_argument(
        "--dsn",
        default=os.environ.get("OMNI_TEST_PG_DSN", ""),
        help="admin DSN (default: $OMNI_TEST_PG_DSN)",
    )
    p.add_argument("--keep-template", action="store_true", help=f"leave {TEMPLATE} for the next run")
    args = p.parse_args(argv)
    if not args.dsn:
        p.error('no DSN: run `eval "$(scripts/services.sh start)"` first, or pass --dsn')
    if args.operators < 1 or args.conversations < 1 or args.capacity < 1 or args.batch < 1:
        p.error("sizes must be positive")
    return args


def cli() -> None:
    args = parse_args()
    report = asyncio.run(main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nJSON written to {args.out}")


if __name__ == "__main__":
    cli()
