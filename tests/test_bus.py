"""The Redis bus against a real Redis: a node that stops must stop."""

from __future__ import annotations

import asyncio
import uuid

from omni.bus import RedisBus
from tests.conftest import REDIS_URL


async def test_stop_right_after_start_ends_instead_of_hanging_in_psubscribe() -> None:
    """A shutdown that lands while the listener is still subscribing used to hang for good
    (redis-py swallowed the cancel inside ``psubscribe``; 2 of 40 cycles hung): a node that
    never stops keeps its Redis connections and blocks a rolling restart."""
    for i in range(60):
        bus = RedisBus(REDIS_URL, f"omni-test-bus-{uuid.uuid4().hex[:8]}")
        await bus.start()
        for _ in range(i % 3):  # stop at different points of the listener's start-up
            await asyncio.sleep(0)
        await bus.stop()


async def test_a_stopped_bus_delivered_while_running() -> None:
    """Sentinel for the test above: the bus under test does carry messages between nodes."""
    prefix = f"omni-test-bus-{uuid.uuid4().hex[:8]}"
    a, b = RedisBus(REDIS_URL, prefix), RedisBus(REDIS_URL, prefix)
    got: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    b.subscribe("ping", got.put_nowait)
    await a.start()
    await b.start()
    try:
        while got.empty():  # b's subscription may not be live yet: publish until it arrives
            a.publish("ping", {"n": 1})
            try:
                await asyncio.wait_for(got.get(), 0.5)
                break
            except TimeoutError:
                continue
    finally:
        await a.stop()
        await b.stop()


async def test_a_burst_of_the_same_nudge_is_one_or_two_redis_messages_and_the_last_arrives() -> None:
    """Every committing transaction nudges the relay: published one by one that was a Redis
    round trip per commit. Now a nudge published while the same one is on its way goes once
    more after it (so one is always sent after the last commit), local handlers still run for
    each, and a different message is never folded into another."""
    prefix = f"omni-test-bus-{uuid.uuid4().hex[:8]}"
    a, b = RedisBus(REDIS_URL, prefix), RedisBus(REDIS_URL, prefix)
    got: list[dict[str, object]] = []
    local: list[dict[str, object]] = []
    b.subscribe("outbox", got.append)
    a.subscribe("outbox", local.append)
    await a.start()
    await b.start()
    try:
        while not got:  # b's subscription may not be live yet
            a.publish("outbox", {})
            await asyncio.sleep(0.2)
        await until_quiet(a)
        got.clear()
        local.clear()
        for _ in range(50):
            a.publish("outbox", {})
        a.publish("outbox", {"other": 1})
        assert len(local) == 51, "local handlers run for every publish"
        await until_quiet(a)
        for _ in range(50):
            if {"other": 1} in got and {} in got:
                break
            await asyncio.sleep(0.05)
        assert got.count({}) in (1, 2), got
        assert got.count({"other": 1}) == 1
    finally:
        await a.stop()
        await b.stop()


async def until_quiet(bus: RedisBus) -> None:
    """Until every message the bus has on its way was sent."""
    for _ in range(100):
        if not bus._pending:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("bus messages still on their way")
