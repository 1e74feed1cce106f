"""Two real server processes on one PostgreSQL + Redis never double-assign or overfill.

Both nodes run their routing loops against the same waiting line while this test keeps
freeing capacity; afterwards the offer history is replayed to check every moment.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from omni.db import Database
from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import presence
from omni.domain.conversations import InboundMessage
from tests import factories as f
from tests.conftest import REDIS_URL, free_port
from tests.helpers import HTTP_TIMEOUT, wait_ready

OPERATORS = 8
CAPACITY = 1
CONVERSATIONS = 300
STALL_SECONDS = 60


def _node_env(pg_url: str, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMNI_DATABASE_URL=pg_url,
        OMNI_REDIS_URL=REDIS_URL,
        OMNI_REDIS_PREFIX=prefix,
        OMNI_SECRET_KEY="race-secret-" + "y" * 32,
        OMNI_ROUTING_TICK_SECONDS="0.05",
        OMNI_LOG_LEVEL="WARNING",
    )
    return env


def _max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    points = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1])
    )
    best = cur = 0
    for _, delta in points:
        cur += delta
        best = max(best, cur)
    return best


@pytest.mark.timeout(900)  # two server processes on a shared 2-core machine; a stall fails it sooner
async def test_two_nodes_never_double_assign_or_exceed_capacity(pg_url: str, tmp_path: Path) -> None:
    db = Database(pg_url)
    async with db.transaction() as s:
        ops = [await f.user(s, f"op{i}", capacity=CAPACITY) for i in range(OPERATORS)]
        code = await f.result_code(s)
        q = await f.queue(
            s,
            "race",
            ops,
            strategy=m.Strategy.LEAST_LOADED,
            auto_accept=True,
            wrap_up_seconds=0,
            queue_timeout_seconds=0,
            default_result_code_id=code.id,
        )
        ib = await f.inbox(s, q)
        for u in ops:
            await presence.do_set_status(s, u.id, await presence.status_by_code(s, "available"))
    prefix = f"race-{random.randrange(1 << 30)}"
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - a server process for the test's lifetime
            [sys.executable, "-m", "omni.cli", "serve", "--host", "127.0.0.1", "--port", str(p)],
            env=_node_env(pg_url, prefix),
            stdout=(tmp_path / f"node{p}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for p in ports
    ]
    try:
        for p, proc in zip(ports, procs, strict=True):
            await wait_ready(f"http://127.0.0.1:{p}", proc)
        # Customers arrive in bursts while both nodes route.
        for start in range(0, CONVERSATIONS, 50):
            async with db.transaction() as s:
                for i in range(start, start + 50):
                    await c.do_ingest_inbound(
                        s,
                        InboundMessage(
                            inbox_id=ib.id, identity_kind="external", identity_value=f"cust{i}", body="hi"
                        ),
                    )
            await asyncio.sleep(0.02)
        rng = random.Random(7)
        # Routing must keep making progress: a stall (nobody served for STALL_SECONDS) ends the
        # wait; a starved machine only makes it longer.
        deadline = time.monotonic() + STALL_SECONDS
        served = -1
        while time.monotonic() < deadline:
            async with db.transaction() as s:
                active = list(
                    await s.scalars(
                        select(m.Conversation)
                        .where(m.Conversation.status == "active")
                        .with_for_update(skip_locked=True)
                    )
                )
                for conv in active:
                    if rng.random() < 0.9:
                        await c.do_close(s, conv, code.id, by="operator")
                left = len(
                    list(await s.scalars(select(m.Conversation.id).where(m.Conversation.status != "closed")))
                )
            if left == 0:
                break
            if CONVERSATIONS - left > served:
                served = CONVERSATIONS - left
                deadline = time.monotonic() + STALL_SECONDS
            await asyncio.sleep(0.03)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            offers_by_node = []
            for p in ports:
                text = (await client.get(f"http://127.0.0.1:{p}/metrics")).text
                line = next(x for x in text.splitlines() if x.startswith("omni_routing_offers_total "))
                offers_by_node.append(float(line.split()[1]))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    async with db.transaction() as s:
        convs = list(await s.scalars(select(m.Conversation)))
        offers = list(await s.scalars(select(m.Offer)))
    await db.dispose()
    assert len(convs) == CONVERSATIONS
    assert all(x.status == "closed" for x in convs), "every customer was served"
    accepted = defaultdict(list)
    for o in offers:
        if o.state == "accepted":
            accepted[o.conversation_id].append(o.user_id)
    assert all(len(v) == 1 for v in accepted.values()), "a conversation was assigned twice"
    assert len(accepted) == CONVERSATIONS
    per_op: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for x in convs:
        assert x.offered_at is not None and x.closed_at is not None and x.assigned_user_id is not None
        per_op[x.assigned_user_id].append((x.offered_at, x.closed_at))
    worst = max(_max_overlap(v) for v in per_op.values())
    assert worst <= CAPACITY, f"an operator held {worst} chats at once (capacity {CAPACITY})"
    assert all(n > 0 for n in offers_by_node), f"both nodes must have routed: {offers_by_node}"
