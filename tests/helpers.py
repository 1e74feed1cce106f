"""The one copy of the test suite's waiting and event-capturing helpers.

Tests wait for a condition or a sentinel event, never for time to pass (``until``), and assert
the events a domain action committed through the outbox (``capture_events``, after Zulip's
``capture_send_event_calls``).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import func, select, text

from omni.db import Database
from omni.db import models as m
from omni.domain.events import DomainEvent

__all__ = ["HTTP_TIMEOUT", "capture_events", "until", "wait_ready"]

HTTP_TIMEOUT = httpx.Timeout(60)
"""For test clients of a live server: only bounds a failure. httpx's 5 s default fails a login
(argon2) on a busy 2-core machine although nothing is wrong."""


async def until(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    timeout: float = 10,
    *,
    what: str = "the condition",
    every: float = 0.02,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, and return that.

    ``timeout`` only bounds a failure (a slow machine passes, just later); fails naming ``what``
    and the last value seen.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(every)


async def lock_waits(db: Database) -> int:
    """How many of this database's connections wait for a lock (row or advisory) right now: a
    test's condition that a concurrent transaction has reached the point where it must wait."""
    async with db.transaction() as s:
        found = await s.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found or 0)


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    """Until a server process answers ``/readyz`` with 200; fails at once if it exited.

    Patient: two nodes starting on a loaded 2-core machine can take more than a minute.
    """
    async with httpx.AsyncClient() as client:

        async def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"node exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                return (await client.get(f"{url}/readyz")).status_code == 200
            return False

        await until(ready, timeout, what=f"{url} to be ready", every=0.2)


@asynccontextmanager
async def capture_events(
    db: Database,
    expected: int | Sequence[str] | None = None,
    *,
    conversation_id: int | None = None,
) -> AsyncIterator[list[DomainEvent]]:
    """Collect the events committed to the outbox inside the block, and check them on exit.

    ``expected`` is the number of events, or their types in commit order; ``None`` only
    collects. ``conversation_id`` narrows the capture to one conversation's events. The list
    yielded is filled when the block exits (the events exist only once committed), so assert
    on it after the ``async with``. A block that raises is not checked: the error wins.
    """
    async with db.transaction() as s:
        before = await s.scalar(select(func.coalesce(func.max(m.Event.id), 0)))
    captured: list[DomainEvent] = []
    yield captured
    query = select(m.Event).where(m.Event.id > before).order_by(m.Event.id)
    if conversation_id is not None:
        query = query.where(m.Event.conversation_id == conversation_id)
    async with db.transaction() as s:
        captured.extend(DomainEvent.from_row(row) for row in await s.scalars(query))
    types = [e.type for e in captured]
    if isinstance(expected, int):
        assert len(captured) == expected, f"expected {expected} events, got {len(captured)}: {types}"
    elif expected is not None:
        assert types == list(expected), f"expected events {list(expected)}, got {types}"
