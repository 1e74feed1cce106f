"""The background loops' wait (``omni.aio.wait_set``): a loop stopped at the moment its
event is set really stops — with ``asyncio.wait_for`` on Python 3.11 it ran on and the
server's shutdown hung waiting for it (a test server that would not stop under load).
Their stop (``omni.aio.stop_tasks``): bounded, and a task that would not stop is named with
where it waits."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from omni.aio import stop_tasks, wait_set


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


async def test_a_stop_ends_in_bounded_time_and_names_the_task_that_would_not_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    stopped = asyncio.Event()

    async def the_server_never_answers() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # a driver that swallows its cancellation

    async def obedient() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    stubborn = asyncio.create_task(the_server_never_answers(), name="stubborn-loop")
    good = asyncio.create_task(obedient(), name="good-loop")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="omni.aio"):
        assert await stop_tasks(stubborn, None, good, seconds=0.2) is False
    assert stopped.is_set() and good.cancelled()
    assert not stubborn.done()
    (record,) = [r for r in caplog.records if r.name == "omni.aio"]  # not another test's loop's
    assert "stubborn-loop did not stop" in record.getMessage()
    assert "in the_server_never_answers" in record.getMessage()
    release.set()
    await stubborn


async def test_a_stop_says_so_when_every_task_ended_and_logs_one_that_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails_on_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("the pool was already closed") from None

    task = asyncio.create_task(fails_on_stop(), name="flusher")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="omni.aio"):
        assert await stop_tasks(task, seconds=30) is True
    ours = [r.getMessage() for r in caplog.records if r.name == "omni.aio"]
    assert ours == ["flusher failed while stopping"]
    assert await stop_tasks() is True
