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
