"""Redis restart benchmark: what live clients on the other node miss, and how late they catch up.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/redis_restart.py [--outages 8,20] [--before 5] [--after 15]
                                            [--server-tree DIR] [--out bench/results/redis_restart.json]

On 127.0.0.1 only, per outage length: a database cloned from a migrated template, a
redis-server of its own on a free port, two ``omni serve`` nodes (A and B). An operator page
and a widget visitor sit on node B and never reconnect (they answer ``sync`` like the real
pages); the same operator replies through node A (~10/s) and the visitor writes through node
B (~5/s). After ``--before`` seconds Redis is stopped for the outage, started again, traffic
runs ``--after`` seconds more, then the script waits up to 30 s for stragglers.

Reported per phase (before / during / after the outage): messages acked, messages the
operator on B never got, replies the visitor on B never got; and delays: for messages acked
during the outage, receipt minus ack (how late they arrive; with Redis down they can only come
from the outbox); the time from Redis being back to the last outage message reaching B; and
for messages acked after the restart, the worst receipt minus ack.

``--server-tree DIR`` runs the nodes from another checkout (e.g. ``git archive`` of the commit
before the fix) to measure the old behaviour with the same clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.routing import build_template, clone, drop, sqlalchemy_url
from omni.db import Database
from tests import factories as f
from tests.conftest import free_port
from tests.test_race import _node_env
from tests.test_realtime import OperatorClient
from tests.test_redis_restart import LiveOperator, LiveVisitor, RedisProcess, _token

TEMPLATE = "omni_bench_template"


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Like the tests' wait, with more patience: benches run on loaded machines."""
    async with httpx.AsyncClient() as client:
        for _ in range(900):
            if proc.poll() is not None:
                raise RuntimeError(f"node exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} never became ready")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class TimedOperator(LiveOperator):
    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token)
        self.got: dict[int, float] = {}

    async def _on_event(self, data: dict[str, Any]) -> None:
        if data["type"] == "message.created":
            self.got.setdefault(int(data["data"]["id"]), time.monotonic())
        await super()._on_event(data)


class TimedVisitor(LiveVisitor):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.got: dict[int, float] = {}

    async def _on_message(self, data: dict[str, Any]) -> None:
        if data["direction"] == "out":
            self.got.setdefault(int(data["id"]), time.monotonic())
        await super()._on_message(data)


async def one_run(dsn: str, outage: float, before: float, after: float, tree: str | None) -> dict[str, Any]:
    name = f"omni_bench_restart_{uuid.uuid4().hex[:8]}"
    await clone(dsn, TEMPLATE, name)
    url = sqlalchemy_url(dsn, name)
    tmp = Path(f"/tmp/{name}")
    tmp.mkdir()  # noqa: ASYNC240 - once, before anything runs
    redis = RedisProcess(tmp / "redis.log")
    await redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = Database(url)
        async with db.transaction() as s:
            op = await f.user(s, "op", capacity=5)
            q = await f.queue(s, "web", [op], operator_timeout_seconds=120)
            inbox = (await f.inbox(s, q, channel="widget")).public_token
        await db.dispose()
        env = _node_env(url, f"bench-{random.randrange(1 << 30)}")
        env.update(OMNI_REDIS_URL=redis.url, OMNI_WIDGET_MESSAGES_PER_MINUTE="100000", OMNI_LOG_LEVEL="INFO")
        if tree:
            env["PYTHONPATH"] = tree
        ports = [free_port(), free_port()]
        for i, p in enumerate(ports):
            procs.append(
                subprocess.Popen(  # noqa: ASYNC220 - a server process for the run
                    [sys.executable, "-m", "omni.cli", "serve", "--host", "127.0.0.1", "--port", str(p)],
                    env=env,
                    cwd=tree or None,
                    stdout=(tmp / f"node{i}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        node_a, node_b = (f"http://127.0.0.1:{p}" for p in ports)
        for u, proc in zip((node_a, node_b), procs, strict=True):
            await wait_ready(u, proc)
        token = await _token(node_a, "op")
        watcher, visitor = TimedOperator(node_b, token), TimedVisitor(node_b)
        sender = OperatorClient(node_a, token)
        await watcher.connect()
        await sender.connect()
        assert (await watcher.call("set_status", {"status": "available"}))["ok"]
        await visitor.connect(inbox)
        first = await visitor.send("hello")
        conv_id = int(first["conversation_id"])
        offer = await watcher.wait_for("conversation.offered", timeout=30, id=conv_id)
        assert (await watcher.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]

        acked: list[tuple[int, str, str, float]] = []  # id, direction, phase, ack time
        phase = "before"
        stop = asyncio.Event()

        async def replies() -> None:
            n = 0
            while not stop.is_set():
                ph = phase
                ack = await sender.call("send", {"conversation_id": conv_id, "body": f"reply {n}"})
                if ack.get("ok"):
                    acked.append((int(ack["message"]["id"]), "out", ph, time.monotonic()))
                n += 1
                await asyncio.sleep(0.1)

        async def customer() -> None:
            n = 0
            while not stop.is_set():
                ph = phase
                try:
                    ack = await visitor.send(f"customer {n}")
                except Exception:  # no ack in time: not acked, not counted
                    continue
                if ack.get("ok"):
                    acked.append((int(ack["message"]["id"]), "in", ph, time.monotonic()))
                n += 1
                await asyncio.sleep(0.2)

        tasks = [asyncio.create_task(replies()), asyncio.create_task(customer())]
        await asyncio.sleep(before)
        phase = "during"
        redis.stop()
        log(f"redis stopped for {outage} s")
        await asyncio.sleep(outage)
        phase = "after"
        await redis.start()
        back = time.monotonic()
        log("redis back")
        await asyncio.sleep(after)
        stop.set()
        await asyncio.gather(*tasks)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replies = [i for i, d, *_ in acked if d == "out"]
            if all(i in watcher.got for i, *_ in acked) and all(i in visitor.got for i in replies):
                break
            await asyncio.sleep(0.1)
        report: dict[str, Any] = {"outage_seconds": outage, "syncs": watcher.syncs}
        for ph in ("before", "during", "after"):
            rows = [x for x in acked if x[2] == ph]
            outs = [x for x in rows if x[1] == "out"]
            report[ph] = {
                "acked": len(rows),
                "operator_missed": sum(1 for x in rows if x[0] not in watcher.got),
                "replies": len(outs),
                "visitor_missed": sum(1 for x in outs if x[0] not in visitor.got),
            }
        during = [x for x in acked if x[2] == "during"]
        later = [x for x in acked if x[2] == "after"]

        def lag(rows: Sequence[tuple[int, str, str, float]], got: dict[int, float]) -> float | None:
            values = [got[i] - t for i, _, _, t in rows if i in got]
            return round(max(values), 2) if values else None

        report["during_worst_receipt_minus_ack_s"] = {"operator": lag(during, watcher.got)}
        report["during_worst_receipt_minus_ack_s"]["visitor"] = lag(
            [x for x in during if x[1] == "out"], visitor.got
        )
        outage_received = [watcher.got[i] for i, *_ in during if i in watcher.got]
        report["catch_up_after_redis_back_s"] = (
            round(max(0.0, max(outage_received) - back), 2) if outage_received else None
        )
        report["after_worst_receipt_minus_ack_s"] = {
            "operator": lag(later, watcher.got),
            "visitor": lag([x for x in later if x[1] == "out"], visitor.got),
        }
        for client in (watcher.sio, sender.sio, visitor.sio):
            await client.disconnect()
        return report
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        redis.stop()
        await drop(dsn, name)


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    dsn = args.dsn
    if "127.0.0.1" not in dsn and "localhost" not in dsn:
        raise SystemExit("loopback PostgreSQL only")
    await build_template(dsn)
    results = []
    try:
        for outage in (float(x) for x in args.outages.split(",")):
            result = await one_run(dsn, outage, args.before, args.after, args.server_tree)
            log(json.dumps(result))
            results.append(result)
    finally:
        await drop(dsn, TEMPLATE)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--outages", default="8,20", help="outage lengths in seconds, comma-separated")
    p.add_argument("--before", type=float, default=5)
    p.add_argument("--after", type=float, default=15)
    p.add_argument("--server-tree", default=None, help="run the nodes from this checkout")
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    p.add_argument("--out", default="bench/results/redis_restart.json")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    out = asyncio.run(main(arguments))
    Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
    Path(arguments.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
