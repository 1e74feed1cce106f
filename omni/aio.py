"""The asyncio helpers the background loops share."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def wait_set(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass (``None``: no limit); ``True`` when set.

    The loops of the outbox relay, the router, the leases, the live gap check, the wallboard,
    the scheduler and the Telegram sender sleep here between passes. They used
    ``asyncio.wait_for(event.wait(), …)``, which on Python 3.11 returns normally when the event
    is set in the same loop iteration as the task is cancelled (python/cpython#86296): the
    cancellation is lost, the loop runs on, and the ``stop()`` awaiting it hangs (seen as a test
    server that would not stop under load). ``asyncio.timeout`` keeps the cancellation.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


STOP_SECONDS = 5.0
"""How long a node's background task may take to end once cancelled at shutdown."""


async def stop_tasks(*tasks: asyncio.Task[Any] | None, seconds: float = STOP_SECONDS) -> bool:
    """Cancel the ``tasks`` (``None`` skipped) and wait at most ``seconds`` for them to end;
    ``True`` when all ended.

    A node's shutdown must end even when a loop swallows its cancellation or hangs in a
    cancelled call (a driver waiting for a server that is gone): awaiting a cancelled task waits
    for as long as it runs, and on Python 3.11 ``asyncio.wait_for(task, …)`` too (it cancels at
    the timeout, then waits, unbounded). A task still running at the bound is left behind and
    logged with where it waits, so a hung shutdown names its cause (an orphaned worker once hung
    45 minutes in its shutdown and left nothing in its log to say where).
    """
    running = {task for task in tasks if task is not None}
    for task in running:
        task.cancel()
    if not running:
        return True
    done, left = await asyncio.wait(running, timeout=seconds)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed while stopping", task.get_name(), exc_info=task.exception())
    for task in left:
        log.error(
            "%s did not stop within %.0f s of its cancellation; left running at %s",
            task.get_name(),
            seconds,
            " <- ".join(reversed(awaiting(task.get_coro()))) or "an unknown place",
        )
    return not left


def awaiting(coro: object) -> list[str]:
    """Where a suspended coroutine waits, outermost first (``file:line in function``, down
    the ``await`` chain to the innermost coroutine or the future it waits on)."""
    found: list[str] = []
    while coro is not None and len(found) < 20:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            if isinstance(coro, asyncio.Future):
                found.append(repr(coro)[:200])
            break
        found.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return found
