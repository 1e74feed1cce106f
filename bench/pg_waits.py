"""What a benchmark's database connections wait on, sampled from ``pg_stat_activity``.

A node that falls behind with CPU to spare may be waiting on PostgreSQL (row locks, a
transaction that holds them) or PostgreSQL on it (``idle in transaction``: the client has not
sent the next statement). Sampling the states every 50 ms through a benchmark's timed phase
tells the two apart (bench/README.md, "wait15")::

    .venv/bin/python bench/widget.py ... 2> /tmp/w.log &
    .venv/bin/python bench/pg_waits.py --log /tmp/w.log --after "delivery through Omni" \\
        --start "server quiet after" --seconds 30

It waits until the log has ``--after`` and then ``--start`` after it (widget.py's timed phase
starts there), samples the databases named like ``--databases`` and prints the average number
of connections per (state, wait) and per (state, wait, statement), with the transactions' ages.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from benchkit import log, percentile

SAMPLE = """
SELECT state, wait_event_type, wait_event, left(query, 90) AS query,
       extract(epoch FROM now() - xact_start) AS age
FROM pg_stat_activity WHERE datname LIKE $1 AND pid <> pg_backend_pid()
"""
COUNTS = "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname LIKE $1"


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def wait_for_phase(path: Path, after: str, start: str) -> None:
    while True:
        text = await asyncio.to_thread(_read, path)
        at = text.find(after) if after else 0
        if at >= 0 and start in text[at:]:
            return
        await asyncio.sleep(0.1)


async def totals(conn: asyncpg.Connection, like: str) -> tuple[int, int]:
    rows = await conn.fetch(COUNTS, like)
    return sum(r["xact_commit"] for r in rows), sum(r["xact_rollback"] for r in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""), help="admin DSN ($OMNI_TEST_PG_DSN)"
    )
    parser.add_argument("--databases", default="omni_bench_widget%", help="a LIKE pattern")
    parser.add_argument("--log", type=Path, help="a benchmark's stderr; without it sampling starts at once")
    parser.add_argument("--after", default="delivery through Omni")
    parser.add_argument("--start", default="server quiet after")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=0.05)
    a = parser.parse_args()
    conn = await asyncpg.connect(a.dsn)
    try:
        if a.log is not None:
            await wait_for_phase(a.log, a.after, a.start)
        log(f"sampling {a.databases} for {a.seconds:.0f}s")
        commits0, rollbacks0 = await totals(conn, a.databases)
        states: collections.Counter[tuple[str, str, str]] = collections.Counter()
        statements: collections.Counter[tuple[str, str, str]] = collections.Counter()
        ages: list[float] = []
        samples = 0
        end = time.monotonic() + a.seconds
        while time.monotonic() < end:
            for row in await conn.fetch(SAMPLE, a.databases):
                state, kind, event = (
                    row["state"] or "",
                    row["wait_event_type"] or "-",
                    row["wait_event"] or "-",
                )
                states[(state, kind, event)] += 1
                if state != "idle":
                    statements[(state, event, " ".join((row["query"] or "").split()))] += 1
                    if row["age"] is not None:
                        ages.append(float(row["age"]) * 1000)
            samples += 1
            await asyncio.sleep(a.every)
        commits1, rollbacks1 = await totals(conn, a.databases)
    finally:
        await conn.close()
    print(f"{samples} samples; {commits1 - commits0} commits, {rollbacks1 - rollbacks0} rollbacks")
    print("\nconnections on average, by state and wait:")
    for (state, kind, event), n in states.most_common(15):
        print(f"  {n / samples:7.2f}  {state} / {kind} / {event}")
    print("\nnot idle, by statement:")
    for (state, event, query), n in statements.most_common(20):
        print(f"  {n / samples:7.2f}  {state} / {event}: {query}")
    if ages:
        ages.sort()
        print(
            "\nopen transactions' age: "
            + ", ".join(f"p{p} {percentile(ages, p):.0f} ms" for p in (50, 90, 99))
            + f", max {ages[-1]:.0f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
