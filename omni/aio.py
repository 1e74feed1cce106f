"""One asyncio helper the background loops share."""

from __future__ import annotations

import asyncio


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
