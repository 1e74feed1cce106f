"""The background loops' wait (``omni.aio.wait_set``): a loop stopped at the moment its
event is set really stops — with ``asyncio.wait_for`` on Python 3.11 it ran on and the
server's shutdown hung waiting for it (a test server that would not stop under load)."""

from __future__ import annotations

import asyncio
import contextlib

from omni.aio import wait_set


async def _stops_when_cancelled_as_woken() -> bool:
    event = asyncio.Event()
    passes = 0

    async def loop() -> None:
        nonlocal passes
        while True:
            await wait_set(event, 30)
            event.clear()
            passes += 1

    task = asyncio.create_task(loop())
    for _ in range(3):
        await asyncio.sleep(0)  # the loop is waiting on the event
    event.set()
    task.cancel()  # stop() in the same loop iteration as a wake-up
    for _ in range(20):
        await asyncio.sleep(0)
    stopped = task.done() and task.cancelled()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return stopped and passes == 0


async def test_a_loop_cancelled_as_its_event_is_set_stops() -> None:
    assert await _stops_when_cancelled_as_woken()


async def test_the_wait_says_whether_the_event_came_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0) is False
    event.set()
    assert await wait_set(event, 30) is True
