"""How long a lease (``omni.lease``) takes to move when its holder dies, and what holding costs.

Two ``Leases`` managers stand for two nodes on one PostgreSQL. Each round the holder's
connection is cut the way a SIGKILL cuts it (the socket closed without a goodbye, so the
server ends the session and frees its advisory locks) and the time until the standby holds
the lease is measured; then the roles swap. The floor is the standby's check period
(``--check``): it tries at most that long after the lock is free. Then one node holds
``--leases`` leases for a few checks and the CPU time and statements per check are counted.

    python bench/lease_failover.py --dsn postgresql://postgres@127.0.0.1:5432/postgres

Touches no table: advisory locks only, keys prefixed ``bench:``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid

from benchkit import check_loopback, log, percentile

from omni.lease import Lease, Leases


class Watch:
    """A lease's hooks as events the bench awaits (the moment it is taken, the moment it is lost)."""

    def __init__(self) -> None:
        self.acquired = asyncio.Event()
        self.lost = asyncio.Event()

    async def on_acquired(self) -> None:
        self.lost.clear()
        self.acquired.set()

    async def on_lost(self) -> None:
        self.acquired.clear()
        self.lost.set()


async def takeover_rounds(url: str, rounds: int, check: float) -> list[float]:
    name = f"bench:{uuid.uuid4().hex[:8]}"
    nodes = [Leases(url, node=f"bench-{i}", check_seconds=check) for i in range(2)]
    for n in nodes:
        await n.start()
    watches = [Watch(), Watch()]
    leases = [
        n.lease(name, on_acquired=w.on_acquired, on_lost=w.on_lost)
        for n, w in zip(nodes, watches, strict=True)
    ]
    for lease in leases:
        await lease.start()
    took: list[float] = []
    rng = random.Random(15)
    try:
        for _ in range(rounds):
            holder = next(i for i, lease in enumerate(leases) if lease.held)
            standby = 1 - holder
            conn = nodes[holder]._conn  # the bench kills the connection as a SIGKILL would
            assert conn is not None
            # A death comes at any moment of the standby's check period, not right after a check.
            await asyncio.sleep(rng.uniform(0, check))
            t0 = time.perf_counter()
            conn.terminate()
            await watches[standby].acquired.wait()
            took.append(time.perf_counter() - t0)
            await watches[holder].lost.wait()  # the old holder notices at its next check
    finally:
        for n in nodes:
            await n.stop()
    return took


async def holding_cost(url: str, count: int, check: float, checks: int) -> tuple[float, int]:
    node = Leases(url, node="bench-hold", check_seconds=check)
    await node.start()
    held: list[Lease] = [node.lease(f"bench:{uuid.uuid4().hex[:8]}:{i}") for i in range(count)]
    for lease in held:
        await lease.start()
    assert all(lease.held for lease in held)
    cpu0 = time.process_time()
    await asyncio.sleep(check * checks)
    cpu = time.process_time() - cpu0
    await node.stop()
    return cpu / checks, 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", "postgresql://postgres@127.0.0.1/postgres")
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--check", type=float, default=1.0, help="OMNI_LEASE_CHECK_SECONDS")
    parser.add_argument("--leases", type=int, default=50, help="leases one node holds for the cost part")
    args = parser.parse_args()
    check_loopback(args.dsn)
    url = args.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    log(f"load average: {os.getloadavg()}")
    took = sorted(asyncio.run(takeover_rounds(url, args.rounds, args.check)))
    p50, p95, worst = percentile(took, 50), percentile(took, 95), took[-1]
    print(f"takeover after the holder's connection dies ({args.rounds} rounds, check {args.check:.2f} s):")
    print(f"  p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {worst * 1000:.0f} ms")
    print(f"  ratio to the floor (one check): p50 {p50 / args.check:.2f}, max {worst / args.check:.2f}")
    cpu, statements = asyncio.run(holding_cost(url, args.leases, min(args.check, 0.2), 25))
    print(
        f"holding {args.leases} leases: {statements} statement per check (by construction), "
        f"{cpu * 1000:.2f} ms CPU per check of this process"
    )
    log(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
