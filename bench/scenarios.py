"""Bot scenario benchmark: steps per second and step latency with many concurrent bot chats.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/scenarios.py [--conversations 1000] [--workers 32] [--processes 2] [--out F.json]

What it does, on 127.0.0.1 only:

1. builds a fresh PostgreSQL database with the Alembic migrations, one queue with no one
   available (so hand-offs take the ``on_no_agents`` path and every conversation stays in the
   scenario), an inbox that runs a published 6-node scenario first (menu → ask number →
   condition → set → survey → close) and installs the real runner;
2. opens ``--conversations`` bot conversations through ``do_ingest_inbound`` (each one a real
   transaction that starts the scenario and sends the menu);
3. the timed part: ``--workers`` tasks feed the customers' answers (button, a wrong number,
   the right number, a survey answer) through ``do_ingest_inbound`` — every step is the whole
   production path: store the message, lock the bot session, run the engine, persist state,
   store the bot's reply and its events, and commit. Each step is timed on its own.
   ``--processes N`` (N > 1) then runs the same again with ``--conversations`` more customers
   split over N processes on the same database, each with its own pool, event loop and
   runner (what ``omni serve --workers N`` runs), and reports that figure as well;
4. the floor: the pure engine (``bots.engine.advance``) on the same scenario and inputs, no
   database, to show what the database and messaging cost on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from routing import admin_execute, check_loopback, log, sqlalchemy_url, summarize  # noqa: E402
from sqlalchemy import event  # noqa: E402

from bots import engine as e  # noqa: E402
from bots import runner, service  # noqa: E402
from bots.scenario import load  # noqa: E402
from omni import seed as factory  # noqa: E402
from omni.db import Database, driver  # noqa: E402
from omni.db import models as m  # noqa: E402
from omni.db.migrate import upgrade_async  # noqa: E402
from omni.domain.auth import Principal, hash_password  # noqa: E402
from omni.domain.conversations import InboundMessage, do_ingest_inbound  # noqa: E402

DEFAULT_OUT = HERE / "results" / "scenarios.json"
SCENARIO: dict[str, Any] = {
    "name": "bench",
    "start": "menu",
    "variables": [{"name": "order", "type": "number"}, {"name": "kind"}, {"name": "csat"}],
    "nodes": [
        {"id": "menu", "type": "menu", "content": {"text": "Hi {{contact.name}}, billing or support?"},
         "options": [{"id": "billing", "label": "Billing"}, {"id": "support", "label": "Support"}],
         "ports": {"opt:billing": "order", "opt:support": "order", "on_max_retries": "bye"}},
        {"id": "order", "type": "ask", "input": "number", "content": {"text": "Order number?"},
         "variable": "order", "retries": 2, "ports": {"next": "big", "on_max_retries": "bye"}},
        {"id": "big", "type": "condition",
         "when": {"op": "gt", "left": {"var": "order"}, "right": {"value": 1000}},
         "ports": {"true": "mark", "false": "mark"}},
        {"id": "mark", "type": "set", "assign": [{"variable": "kind", "value": "{{last_input}}"}],
         "ports": {"next": "rate"}},
        {"id": "rate", "type": "survey", "question": {"text": "Rate us"}, "kind": "single",
         "options": [{"id": "5", "label": "Great"}, {"id": "1", "label": "Bad"}], "variable": "csat",
         "ports": {"next": "bye"}},
        {"id": "bye", "type": "close", "message": {"text": "Thanks, order {{order}}"}},
    ],
}  # fmt: skip
ANSWERS = [("Billing", "billing"), ("no idea", None), ("4242", None), ("Great", "5")]
"""The customer's inputs after the first message: a button, a wrong and a right number, a rating."""


async def seed(db: Database) -> tuple[int, Principal]:
    async with db.transaction() as s:
        admin = await factory.user(s, "bench-admin", m.Role.ADMIN, password_hash=hash_password("x" * 12),
                                display_name="Bench")  # fmt: skip
        queue = await factory.queue(s, "bench", queue_timeout_seconds=0)
        inbox = await factory.inbox(s, queue, "api", "bench", public_token=uuid.uuid4().hex,
                                 config={"scenario": "bench"})  # fmt: skip
        who = Principal.of(admin)
        row = await service.create(s, who, "bench", "Bench", SCENARIO)
        await service.publish(s, who, row.id)
        return inbox.id, who


async def step(db: Database, inbox_id: int, customer: int, body: str, button: str | None) -> float:
    attachments = [{"kind": "button_reply", "id": button}] if button else []
    started = time.perf_counter()
    async with db.transaction() as s:
        await do_ingest_inbound(
            s,
            InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value=f"c{customer}",
                           body=body, attachments=attachments, contact_name=f"Customer {customer}"),
        )  # fmt: skip
    return time.perf_counter() - started


async def open_conversations(db: Database, inbox_id: int, customers: range, workers: int) -> list[float]:
    """Each customer's first message: a real transaction that starts the scenario."""
    gate = asyncio.Semaphore(workers)

    async def opener(i: int) -> float:
        async with gate:
            return await step(db, inbox_id, i, "hello", None)

    return list(await asyncio.gather(*(opener(i) for i in customers)))


async def answer_all(db: Database, inbox_id: int, customers: range, workers: int) -> dict[str, Any]:
    """The timed part: every customer answers in turn, all customers concurrently (bounded).
    Returns the step latencies, wall and CPU seconds, statements, and the wall clock's start
    and end (``time.time()``, to merge several processes)."""
    gate = asyncio.Semaphore(workers)
    latencies: list[float] = []

    async def customer(i: int) -> None:
        for body, button in ANSWERS:
            async with gate:
                latencies.append(await step(db, inbox_id, i, body, button))

    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    driver.listen(db.engine, count)  # the statements sent straight on asyncpg (the step's write)
    began, t, cpu = time.time(), time.perf_counter(), time.process_time()
    await asyncio.gather(*(customer(i) for i in customers))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    driver.remove(db.engine, count)
    return {"latencies": latencies, "wall": wall, "cpu": cpu, "statements": statements,
            "began": began, "ended": began + wall}  # fmt: skip


async def outcome(db: Database) -> tuple[dict[str, int], int]:
    """Bot sessions by status and the engine steps recorded."""
    from sqlalchemy import func, select

    async with db.transaction() as s:
        statuses = dict(
            (await s.execute(select(m.BotSession.status, func.count()).group_by(m.BotSession.status))).all()
        )
        steps = await s.scalar(select(func.count()).select_from(m.BotStep))
    return statuses, int(steps or 0)


def step_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One or several processes' timed parts as one figure: steps/s over the span from the
    first start to the last end, CPU and statements per step summed over the processes."""
    latencies = [x for run in runs for x in run["latencies"]]
    n = max(1, len(latencies))
    wall = max(run["ended"] for run in runs) - min(run["began"] for run in runs)
    return {
        **asdict(summarize(latencies)),
        "wall_seconds": round(wall, 2),
        "steps_per_second_wall": round(len(latencies) / wall, 1),
        "cpu_ms_per_step": round(sum(run["cpu"] for run in runs) * 1000 / n, 3),
        "sql_statements_per_step": round(sum(run["statements"] for run in runs) / n, 2),
    }


async def run_omni(db: Database, inbox_id: int, conversations: int, workers: int) -> dict[str, Any]:
    t = time.perf_counter()
    opened = await open_conversations(db, inbox_id, range(conversations), workers)
    open_seconds = time.perf_counter() - t
    log(f"  {conversations} bot conversations opened in {open_seconds:.1f}s")
    run = await answer_all(db, inbox_id, range(conversations), workers)
    statuses, steps = await outcome(db)
    return {
        "open": {**asdict(summarize(opened)), "wall_seconds": round(open_seconds, 2)},
        "steps": step_figures([run]),
        "bot_sessions_by_status": statuses,
        "engine_steps_recorded": steps,
    }


def _process(url: str, inbox_id: int, customers: range, workers: int, ready: Any, results: Any) -> None:
    """One of ``--processes``: its own event loop, pool and bot runner on the shared database
    (like a worker of ``omni serve --workers N``); opens its customers' conversations, waits
    for the others, then runs the timed part."""

    async def run() -> dict[str, Any]:
        db = Database(url, pool_size=workers)
        runner.install(db)
        try:
            await open_conversations(db, inbox_id, customers, workers)
            await asyncio.get_running_loop().run_in_executor(None, ready.wait)
            return await answer_all(db, inbox_id, customers, workers)
        finally:
            await db.dispose()

    results.put(asyncio.run(run()))


def run_processes(
    url: str, inbox_id: int, first: int, conversations: int, workers: int, n: int
) -> dict[str, Any]:
    """``conversations`` more customers split over ``n`` processes, ``workers`` steps in flight
    in each, all on the same database; one figure for them all (see :func:`step_figures`)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Barrier(n), ctx.Queue()
    share = conversations // n
    children = [
        ctx.Process(target=_process, args=(url, inbox_id, range(first + k * share, first + (k + 1) * share),
                                           workers, ready, results))
        for k in range(n)
    ]  # fmt: skip
    for child in children:
        child.start()
    runs = [results.get(timeout=3600) for _ in children]
    for child in children:
        child.join()
    return {"processes": n, "conversations": share * n, "workers_per_process": workers,
            "steps": step_figures(runs)}  # fmt: skip


def run_floor(conversations: int) -> dict[str, Any]:
    scenario = load(SCENARIO)
    facts = e.Facts(channel="api", builtins={"contact.name": "x"})
    latencies: list[float] = []
    cpu = time.process_time()
    for _ in range(conversations):
        state = e.advance(scenario, None, e.Start(), facts).state
        for body, button in ANSWERS:
            t = time.perf_counter()
            state = e.advance(scenario, state, e.Text(body, button=button), facts).state
            latencies.append(time.perf_counter() - t)
        assert state.status == "closed", state
    cpu = time.process_time() - cpu
    return asdict(summarize(latencies)) | {"cpu_ms_per_step": round(cpu * 1000 / max(1, len(latencies)), 4)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    admin_dsn = args.dsn or os.environ.get("OMNI_TEST_PG_DSN", "")
    if not admin_dsn:
        raise SystemExit('OMNI_TEST_PG_DSN is not set: run eval "$(scripts/services.sh start)" first')
    check_loopback(admin_dsn)
    load_at_start = os.getloadavg()
    name = f"omni_bench_bots_{uuid.uuid4().hex[:8]}"
    await admin_execute(admin_dsn, f"CREATE DATABASE {name}")
    try:
        url = sqlalchemy_url(admin_dsn, name)
        await upgrade_async(url)
        db = Database(url, pool_size=args.workers)
        runner.install(db)
        try:
            inbox_id, _ = await seed(db)
            log(f"Omni: {args.conversations} conversations, {args.workers} workers")
            omni = await run_omni(db, inbox_id, args.conversations, args.workers)
        finally:
            await db.dispose()
        if args.processes > 1:
            log(f"Omni, {args.processes} processes: {args.conversations} more conversations, "
                f"{args.workers} workers each")  # fmt: skip
            omni["processes"] = await asyncio.to_thread(
                run_processes, url, inbox_id, args.conversations, args.conversations, args.workers,
                args.processes,
            )  # fmt: skip
            db = Database(url, pool_size=1)
            try:  # both parts: every conversation closed, none lost or stepped twice
                statuses, steps = await outcome(db)
                omni["processes"] |= {"bot_sessions_by_status": statuses, "engine_steps_recorded": steps}
            finally:
                await db.dispose()
    finally:
        await admin_execute(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    log("floor: the pure engine")
    floor = run_floor(args.conversations)
    engine_rate = floor["per_second"]
    ratio = round(omni["steps"]["steps_per_second_wall"] / engine_rate, 5) if engine_rate else None
    return {
        "ratio_to_engine": ratio,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
            "load_average_at_start": load_at_start,
        },
        "conversations": args.conversations,
        "workers": args.workers,
        "omni": omni,
        "engine_floor": floor,
    }


def print_table(report: dict[str, Any]) -> None:
    o, f = report["omni"]["steps"], report["engine_floor"]
    print(f"{'':34}{'omni (full step)':>20}{'engine only':>16}")
    print(f"{'steps':34}{o['count']:>20}{f['count']:>16}")
    print(f"{'steps/s (wall, all workers)':34}{o['steps_per_second_wall']:>20}{'':>16}")
    print(f"{'steps/s (one at a time)':34}{o['per_second']:>20}{f['per_second']:>16}")
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        print(f"{'step ' + key:34}{o[key]:>20}{f[key]:>16}")
    print(f"{'CPU ms per step (this process)':34}{o['cpu_ms_per_step']:>20}{f['cpu_ms_per_step']:>16}")
    print(f"{'SQL statements per step':34}{o['sql_statements_per_step']:>20}{0:>16}")
    print(f"{'ratio to the engine (wall)':34}{report['ratio_to_engine']:>20}")
    if "processes" in report["omni"]:
        p = report["omni"]["processes"]
        print(f"{p['processes']} processes, same database ({p['conversations']} more conversations):")
        print(f"{'  steps/s (wall, all processes)':34}{p['steps']['steps_per_second_wall']:>20}")
        for key in ("p50_ms", "p99_ms"):
            print(f"{'  step ' + key:34}{p['steps'][key]:>20}")
        print(f"{'  CPU ms per step (all processes)':34}{p['steps']['cpu_ms_per_step']:>20}")
        print(f"{'  SQL statements per step':34}{p['steps']['sql_statements_per_step']:>20}")
        print(f"{'  bot sessions by status (both)':34}{json.dumps(p['bot_sessions_by_status']):>20}")
    m_ = report["machine"]
    print(f"{'load average start / end':34}{m_['load_average_at_start']!s:>20} / {m_['load_average']}")
    print(f"{'bot sessions by status':34}{json.dumps(report['omni']['bot_sessions_by_status']):>20}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=32, help="steps in flight at once (per process)")
    parser.add_argument("--processes", type=int, default=1,
                        help="also run N processes on one database, --conversations/N more customers "
                             "each (like omni serve --workers N); the one-process figure stays")  # fmt: skip
    parser.add_argument("--dsn", default="")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    report = asyncio.run(main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print_table(report)
    print(f"\nJSON written to {args.out}")


if __name__ == "__main__":
    cli()
