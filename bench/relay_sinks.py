"""Load-independent cost of the outbox relay per visitor message, with the sinks a node runs.

Below saturation every committed message wakes the relay at once, so a relay batch holds one
event: what the relay and its transactional sinks do per batch is paid per message. This seeds
a widget inbox and ``--visitors`` assigned conversations like ``bench/widget.py``, wires the
relay's sinks as ``omni serve`` does (SLA clocks, the webhook fan-out, automation rules; the
live socket sink does no database work and is left out), then ``--messages`` times: one visitor
message in its own transaction (not measured), then ``relay_once`` (measured: statements sent,
CPU time of this process, Python function calls under a CPU-time cProfile in a second pass).

    eval "$(scripts/services.sh start)"
    .venv/bin/python bench/relay_sinks.py [--visitors 50] [--messages 300]

For an A/B against another checkout run this file with ``PYTHONPATH=<that checkout>``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import time
import uuid
from typing import Any

from benchkit import admin_execute, check_loopback, log, sqlalchemy_url, widget_line
from sqlalchemy import event

from omni.db import Database, driver
from omni.db.migrate import upgrade_async
from omni.domain import conversations, sla, webhooks
from omni.domain.automation.rules import RuleRunner
from omni.domain.events import OutboxRelay
from omni.domain.routing import do_route_pending


async def main(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.dsn)
    dbname = f"omni_bench_relay_{uuid.uuid4().hex[:8]}"
    await admin_execute(args.dsn, f"CREATE DATABASE {dbname}")
    url = sqlalchemy_url(args.dsn, dbname)
    db = Database(url)
    report: dict[str, Any] = {"loadavg_at_start": list(os.getloadavg())}
    try:
        await upgrade_async(url)
        async with db.transaction() as s:
            _op, inbox_id = await widget_line(s, "relay")

        async def message(v: int, n: int) -> None:
            async with db.transaction() as s:
                await conversations.do_ingest_inbound(
                    s,
                    conversations.InboundMessage(
                        inbox_id=inbox_id,
                        identity_kind="widget",
                        identity_value=f"v:{v}",
                        body=f"bench message {n}",
                        client_id=f"b{n}",
                    ),
                )

        for v in range(args.visitors):
            await message(v, -v - 1)
        while await do_route_pending(db):
            pass
        relay = OutboxRelay(db)
        relay.tx_sinks.append(sla.sla_sink())  # as omni.services and omni.app wire them
        relay.tx_sinks.append(webhooks.fanout_sink(lambda _ids: None))
        relay.tx_sinks.append(RuleRunner(lambda _ids: None))
        while await relay.relay_once():
            pass
        statements = 0

        def count(*_args: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        driver.listen(db.engine, count)
        moved = 0
        cpu = 0.0
        for n in range(args.messages):
            await message(n % args.visitors, n)
            s0 = statements
            c0 = time.process_time()
            moved += await relay.relay_once()
            cpu += time.process_time() - c0
            report.setdefault("_statements", 0)
            report["_statements"] += statements - s0
        profiler = cProfile.Profile(time.process_time)
        for n in range(args.messages, 2 * args.messages):
            await message(n % args.visitors, n)
            profiler.enable()
            await relay.relay_once()
            profiler.disable()
        if os.environ.get("RELAY_PROF"):
            profiler.dump_stats(os.environ["RELAY_PROF"])
        calls = sum(c for (_cc, c, *_r) in pstats.Stats(profiler).stats.values())  # type: ignore[attr-defined]
        report["relay per message"] = {
            "messages": args.messages,
            "events_relayed": moved,
            "statements": round(report.pop("_statements") / args.messages, 2),
            "cpu_ms": round(cpu * 1000 / args.messages, 3),
            "function_calls": round(calls / args.messages, 1),
        }
        log(f"relay per message {report['relay per message']}")
    finally:
        await db.dispose()
        await admin_execute(args.dsn, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    report["loadavg_at_end"] = list(os.getloadavg())
    return report


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--visitors", type=int, default=50)
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    p.add_argument("--out", default="")
    result = asyncio.run(main(p.parse_args()))
    print(json.dumps(result, indent=2))
    if p.parse_args().out:
        with open(p.parse_args().out, "w") as fh:
            json.dump(result, fh, indent=2)
