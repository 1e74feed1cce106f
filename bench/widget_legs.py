"""Load-independent figures for the widget message path: SQL statements and CPU per leg.

``bench/widget.py`` measures the whole path over sockets, where the machine's load inflates
every wall-clock number. This runs each leg's database work in one process, as the handlers
run it, and counts what does not depend on load: statements sent through SQLAlchemy per leg
(each transaction adds BEGIN and COMMIT on PostgreSQL; until 2026-11-30 also the pool's
pre-ping BEGIN / ``;`` / ROLLBACK, now only for a connection idle over 5 s: ``omni/db``) and
CPU time of this process per leg.

Legs (``--messages`` of each, over ``--visitors`` active conversations):

- ``visitor message``: ``/widget`` ``message`` — ``do_ingest_inbound`` with a client id and
  the pre-chat check on what its look-up read (before 1 Dec 2026: the inbox held, its
  pre-chat config read, then the ingest), one transaction;
- ``operator reply``: ``/operator`` ``send`` — ``check_send_message`` with a client id;
- ``relay``: ``OutboxRelay.relay_once`` over what the two legs wrote (per event);
- ``delivery receipts``: the outbound dispatcher's receipts for the replies, one transaction
  per relay batch of ``--batch`` (``do_mark_deliveries``).

    eval "$(scripts/services.sh start)"
    .venv/bin/python bench/widget_legs.py [--visitors 200] [--messages 1000] [--cprofile]

``--cprofile`` runs the two message legs a second time under cProfile (CPU-time clock) and
adds the Python function calls per leg, by package: a load-independent count. For an A/B
against another checkout, run this file with ``PYTHONPATH=<that checkout>`` (it takes either
code's API).
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
from collections.abc import Awaitable, Callable
from typing import Any

from benchkit import admin_execute, check_loopback, log, sqlalchemy_url, widget_line
from sqlalchemy import event, select

from omni.db import Database, driver
from omni.db import models as m
from omni.db.migrate import upgrade_async
from omni.domain import conversations, inboxes
from omni.domain.auth import Principal
from omni.domain.events import OutboxRelay
from omni.domain.routing import do_route_pending


class Counter:
    def __init__(self, db: Database) -> None:
        self.statements = 0
        self.shown = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._count_orm)
        driver.listen(db.engine, self._count)  # sent straight on asyncpg (routing, steps, look-up)

    def _count_orm(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self._count(statement)

    def _count(self, statement: str) -> None:
        self.statements += 1
        if SHOW_STATEMENTS and self.shown < SHOW_STATEMENTS:
            self.shown += 1
            log(f"  SQL: {' '.join(statement.split())[:300]}")


def calls_by_package(profiler: cProfile.Profile, n: int) -> dict[str, float]:
    """Python function calls per unit, by where the function lives (``sqlalchemy``,
    ``asyncpg``, ``omni``, the standard library, built-ins)."""
    out: dict[str, float] = {}
    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]  # pstats' table
    for (file, _line, _func), (_cc, calls, *_rest) in raw.items():
        if "site-packages/" in file:
            key = file.split("site-packages/")[1].split("/")[0]
        elif "/omni/" in file or "/channels/" in file:
            key = "omni"
        elif file == "~":
            key = "built-in"
        else:
            key = "stdlib"
        out[key] = out.get(key, 0) + calls / n
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


async def leg(
    name: str, n: int, counter: Counter, run: Callable[[int], Awaitable[int]], report: dict[str, Any]
) -> None:
    """``run(i)`` does the i-th unit and returns how many transactions it opened. CPU first
    without a profiler, then (``--cprofile``) the same number of units again under cProfile
    for the function calls per unit (the profiler's own cost would inflate the CPU figure)."""
    s0, c0, w0, tx = counter.statements, time.process_time(), time.perf_counter(), 0
    for i in range(n):
        tx += await run(i)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    row = {
        "units": n,
        "statements_per_unit": round((counter.statements - s0) / n, 2),
        "transactions_per_unit": round(tx / n, 3),
        "cpu_ms_per_unit": round(cpu * 1000 / n, 3),
        "wall_ms_per_unit": round(wall * 1000 / n, 3),
    }
    if PROFILE_LEGS and name in REPEATABLE:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for i in range(n, 2 * n):
            await run(i)
        profiler.disable()
        if DUMP_DIR:
            profiler.dump_stats(os.path.join(DUMP_DIR, name.replace(" ", "_") + ".prof"))
        by_package = calls_by_package(profiler, n)
        row["function_calls_per_unit"] = round(sum(by_package.values()), 1)
        row["function_calls_by_package"] = by_package
    report[name] = row
    log(f"{name:18s} {row}")


SHOW_STATEMENTS = 0
"""``--show-statements N``: log the first N statements the legs send (what one leg runs)."""
DUMP_DIR = os.environ.get("WIDGET_LEGS_DUMP", "")
PROFILE_LEGS = False
"""``--cprofile``: count function calls per unit (legs in ``REPEATABLE``, run a second time)."""
REPEATABLE = frozenset({"visitor message", "operator reply"})


async def main(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.dsn)
    dbname = f"omni_bench_legs_{uuid.uuid4().hex[:8]}"
    await admin_execute(args.dsn, f"CREATE DATABASE {dbname}")
    url = sqlalchemy_url(args.dsn, dbname)
    db = Database(url)
    report: dict[str, Any] = {"loadavg_at_start": list(os.getloadavg())}
    try:
        await upgrade_async(url)
        async with db.transaction() as s:
            op, inbox_id = await widget_line(s, "legs")
            who = Principal.of(op)
        conv_ids: list[int] = []
        for v in range(args.visitors):
            async with db.transaction() as s:
                res = await conversations.do_ingest_inbound(
                    s,
                    conversations.InboundMessage(
                        inbox_id=inbox_id,
                        identity_kind="widget",
                        identity_value=f"v:{v}",
                        body="hello",
                        client_id=f"w{v}",
                    ),
                )
                conv_ids.append(res.conversation.id)
        while await do_route_pending(db):
            pass
        relay = OutboxRelay(db, batch_size=args.batch)
        while await relay.relay_once():
            pass
        counter = Counter(db)
        reply_ids: list[int] = []

        async def prechat(_s: Any, found: Any) -> None:
            """The widget's pre-chat check on what the look-up read (``InboundMessage.admit``)."""
            assert not (found.inbox.config or {}).get("prechat")

        async def visitor_message(i: int) -> int:
            message = conversations.InboundMessage(
                inbox_id=inbox_id,
                identity_kind="widget",
                identity_value=f"v:{i % args.visitors}",
                body=f"bench message {i}",
                client_id=f"b{i}",
            )
            async with db.transaction() as s:
                if hasattr(conversations, "Admission"):  # since 1 Dec 2026: checked in the ingest
                    message.admit = prechat
                    await conversations.do_ingest_inbound(s, message)
                else:  # before: the handler held the inbox and read its pre-chat config first
                    held = await s.get(m.Inbox, inbox_id)
                    await inboxes.inbox_config(s, inbox_id)
                    await conversations.do_ingest_inbound(s, message)
                    assert held is not None
            return 1

        async def operator_reply(i: int) -> int:
            async with db.transaction() as s:
                msg = await conversations.check_send_message(
                    s, who, conv_ids[i % args.visitors], f"reply {i}", client_id=f"r{i}"
                )
                reply_ids.append(msg.id)
            return 1

        await leg("visitor message", args.messages, counter, visitor_message, report)
        await leg("operator reply", args.messages, counter, operator_reply, report)
        async with db.transaction() as s:
            pending = len(list(await s.scalars(select(m.Event.id).where(m.Event.dispatched.is_(False)))))
        batches = max(1, -(-pending // args.batch))

        async def relay_batch(_i: int) -> int:
            await relay.relay_once()
            return 1

        await leg("relay (per batch)", batches, counter, relay_batch, report)
        report["relay (per batch)"]["events_per_batch"] = round(pending / batches, 1)

        async def receipts(i: int) -> int:
            chunk = reply_ids[i * args.batch : (i + 1) * args.batch]
            async with db.transaction() as s:
                if hasattr(conversations, "do_mark_deliveries"):
                    await conversations.do_mark_deliveries(s, [(x, "sent", "") for x in chunk])
                else:  # the code before issue 15: one receipt at a time
                    for x in chunk:
                        await conversations.do_mark_delivery(s, x, "sent", "")
            return 1

        n_batches = -(-len(reply_ids) // args.batch)
        await leg("receipts (per batch)", n_batches, counter, receipts, report)
        report["receipts (per batch)"]["receipts_per_batch"] = args.batch
    finally:
        await db.dispose()
        await admin_execute(args.dsn, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    report["loadavg_at_end"] = list(os.getloadavg())
    return report


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--visitors", type=int, default=200)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--batch", type=int, default=20, help="replies per receipt transaction / relay batch")
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    p.add_argument("--out", default="")
    p.add_argument("--cprofile", action="store_true", help="also function calls per leg (cProfile)")
    p.add_argument("--show-statements", type=int, default=0, help="log the first N statements of the legs")
    PROFILE_LEGS = p.parse_args().cprofile
    SHOW_STATEMENTS = p.parse_args().show_statements
    result = asyncio.run(main(p.parse_args()))
    print(json.dumps(result, indent=2))
    if result and p.parse_args().out:
        with open(p.parse_args().out, "w") as fh:
            json.dump(result, fh, indent=2)
