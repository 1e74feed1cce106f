"""Per-bot outbound sender: Telegram's rate limits, ``retry_after``, retries, delivery marks.

The outbox relay must never wait on Telegram, so ``TelegramChannel.send`` only queues a
``Job`` here and returns a ``pending`` receipt; this sender records ``sent`` / ``failed``
later through a callback (``do_mark_delivery``, which notifies the operator).

Pacing, per bot:
- one *lane* per chat, a FIFO: a chat's messages go out in order, the next one starts at
  least ``per_chat_interval`` after the previous call *finished* (so arrival gaps at
  Telegram are never shorter, whatever the network jitter);
- one ``Pacer`` for the bot: call starts are spaced ``1 / rate`` apart;
- one ``Window`` for the bot: a call holds one of ``rate`` slots from its start until one
  second after its response, so no second *at Telegram* sees more than ``rate`` calls however
  network jitter or a busy event loop bunches arrivals (spaced starts alone don't ensure it);
- a lane waiting for its interval never blocks other chats (a heap orders ready lanes);
- ``429 retry_after``: the whole bot pauses that long (Telegram does not say whether the
  limit hit was the chat's or the bot's), then the same call is repeated;
- network errors and 5xx: the same call is retried with doubling backoff, up to ``attempts``;
- anything else (blocked by the user, chat not found, bad token): failed at once, with
  Telegram's description as the operator-visible reason.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram.exceptions import (
    RestartingTelegram,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from omni.aio import stop_tasks, wait_set

log = logging.getLogger(__name__)

Call = Callable[[], Awaitable[Any]]
"""One Bot API call (``bot.send_message(...)`` bound to its arguments)."""
Report = Callable[[int, str, str], Awaitable[None]]
"""``(message_id, state, error)``: records the delivery mark."""
MAX_RETRY_AFTERS = 10
MAX_BACKOFF = 30.0


@dataclass
class Job:
    """One stored message: one or more calls (long text chunks, files), sent in order."""

    message_id: int
    chat_id: int
    calls: list[Call]
    done: int = 0
    failures: int = 0
    retry_afters: int = 0


@dataclass
class _Lane:
    chat_id: int
    jobs: deque[Job] = field(default_factory=deque)
    next_at: float = 0.0
    busy: bool = False
    scheduled: bool = False


class Pacer:
    """Spaces call starts ``1 / rate`` apart; ``pause_until`` holds everything (a 429)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def pause_until(self, when: float) -> None:
        self._next = max(self._next, when)


class Window:
    """At most ``limit`` calls in any ``span`` as the Bot API server sees them.

    A call reaches the server between its start and its response, so a call holds its slot
    from the start until ``span`` after the response: any ``span``-long stretch at the server
    then sees at most ``limit`` arrivals, whatever delays them on the way (the last call
    admitted into such a stretch counted every other one in it: they were in flight or had
    answered less than ``span`` before). Without it, 28 evenly spaced starts a second can
    still land 30+ in one second at Telegram after a jittery hop or a busy event loop: 429.
    """

    def __init__(self, limit: int, span: float = 1.0) -> None:
        self.limit = max(1, limit)
        self.span = span
        self._inflight = 0
        self._done: deque[float] = deque()
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._done and self._done[0] <= now - self.span:
                self._done.popleft()
            if self._inflight + len(self._done) < self.limit:
                self._inflight += 1
                return
            wait = self._done[0] + self.span - now if self._done else None
            self._changed.clear()
            await wait_set(self._changed, wait)

    def release(self) -> None:
        self._inflight = max(0, self._inflight - 1)
        self._done.append(asyncio.get_running_loop().time())
        self._changed.set()


@dataclass
class SenderStats:
    calls: int = 0
    retry_after: int = 0
    network_retries: int = 0
    sent: int = 0
    failed: int = 0


class BotSender:
    """Runs one bot's outbound traffic; ``submit`` never blocks."""

    def __init__(
        self,
        report: Report,
        *,
        rate: float,
        per_chat_interval: float,
        attempts: int,
        backoff: float,
        name: str = "bot",
    ) -> None:
        self.report = report
        self.pacer = Pacer(rate)
        self.window = Window(int(rate)) if rate > 0 else None
        self.per_chat_interval = per_chat_interval
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.name = name
        self.stats = SenderStats()
        self._lanes: dict[int, _Lane] = {}
        self._ready: list[tuple[float, int, int]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"telegram-sender-{self.name}")

    async def stop(self) -> None:
        await stop_tasks(self._task, *self._inflight)
        self._task = None

    @property
    def backlog(self) -> int:
        return sum(len(lane.jobs) for lane in self._lanes.values())

    async def drain(self) -> None:
        """Wait until every submitted job has its outcome (benchmarks, shutdown)."""
        while self.backlog or self._inflight:
            self._idle.clear()
            await wait_set(self._idle, 0.05)

    # --- queueing -----------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        lane = self._lanes.get(job.chat_id)
        if lane is None:
            if len(self._lanes) > 5000:
                self._prune()
            lane = self._lanes[job.chat_id] = _Lane(job.chat_id)
        lane.jobs.append(job)
        self._schedule(lane)

    def _schedule(self, lane: _Lane) -> None:
        if lane.busy or lane.scheduled or not lane.jobs:
            return
        lane.scheduled = True
        heapq.heappush(self._ready, (lane.next_at, next(self._order), lane.chat_id))
        self._wake.set()

    def _prune(self) -> None:
        now = asyncio.get_running_loop().time()
        for chat_id, lane in list(self._lanes.items()):
            if not lane.jobs and not lane.busy and not lane.scheduled and lane.next_at < now:
                del self._lanes[chat_id]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._ready:
                self._wake.clear()
                await self._wake.wait()
                continue
            at, _, chat_id = self._ready[0]
            delay = at - loop.time()
            if delay > 0:
                self._wake.clear()
                await wait_set(self._wake, delay)
                continue
            heapq.heappop(self._ready)
            lane = self._lanes[chat_id]
            lane.scheduled = False
            # Claimed before waiting for the pacer and the window: a message submitted to this
            # chat meanwhile must not schedule the lane a second time (two calls at once).
            lane.busy = True
            await self.pacer.acquire()
            if self.window is not None:
                await self.window.acquire()
            task = asyncio.create_task(self._deliver(lane))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    # --- one call -----------------------------------------------------------------------

    async def _deliver(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        job = lane.jobs[0]
        wait = self.per_chat_interval
        outcome: tuple[str, str] | None = None
        try:
            self.stats.calls += 1
            await job.calls[job.done]()
            job.done += 1
            if job.done == len(job.calls):
                outcome = ("sent", "")
        except TelegramRetryAfter as exc:
            self.stats.retry_after += 1
            job.retry_afters += 1
            log.warning(
                "telegram %s: 429, retry after %ss (chat %s)", self.name, exc.retry_after, lane.chat_id
            )
            wait = max(wait, float(exc.retry_after))
            self.pacer.pause_until(loop.time() + exc.retry_after)
            if job.retry_afters > MAX_RETRY_AFTERS:
                outcome = ("failed", f"Telegram kept refusing: {exc.message}")
        except TelegramEntityTooLarge as exc:  # a network error subclass, but retrying won't help
            outcome = ("failed", exc.message)
        except (TelegramNetworkError, TelegramServerError, RestartingTelegram) as exc:
            job.failures += 1
            self.stats.network_retries += 1
            if job.failures >= self.attempts:
                outcome = ("failed", f"not delivered after {job.failures} attempts: {exc.message}")
            else:
                wait = max(wait, min(self.backoff * 2 ** (job.failures - 1), MAX_BACKOFF))
        except TelegramAPIError as exc:  # blocked by the user, chat not found, token revoked
            outcome = ("failed", exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a stored file gone missing, a bug: the operator must know
            log.exception("telegram %s: sending message %s failed", self.name, job.message_id)
            outcome = ("failed", f"could not send: {type(exc).__name__}")
        finally:
            if self.window is not None:
                self.window.release()
            lane.next_at = loop.time() + wait
            lane.busy = False
        if outcome is not None:
            lane.jobs.popleft()
            if outcome[0] == "sent":
                self.stats.sent += 1
            else:
                self.stats.failed += 1
        self._schedule(lane)
        if outcome is not None:
            try:
                await self.report(job.message_id, *outcome)
            except Exception:
                log.exception("recording the delivery of message %s failed", job.message_id)
        self._idle.set()
