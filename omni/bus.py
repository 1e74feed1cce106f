"""The one event bus for cross-node nudges ("outbox has events", "routing needed").

It carries hints only: every consumer re-reads the database, so a lost nudge costs
latency (the next poll picks the work up), never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]


class Bus(Protocol):
    def subscribe(self, topic: str, handler: Handler) -> None: ...
    def publish(self, topic: str, data: dict[str, Any]) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class LocalBus:
    """In-process bus for the embedded mode."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        for handler in self._handlers[topic]:
            handler(data)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisBus:
    """Redis pub/sub bus: a publish reaches every node, this one included.

    Coalesced: while a message is on its way to Redis, publishing the same one again only
    marks that it must go once more when the first is sent (a hint covers every commit before
    it; the consumers re-read the database). Under load every committing transaction nudged
    the relay with a publish of its own, each a Redis round trip on this node and a message
    every node decodes (bench/README.md, widget5). This node's own messages are recognised
    by their first bytes and not decoded."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.from_url(url)
        self._prefix = prefix
        self._origin = uuid.uuid4().hex
        """Unique per node (``id(self)`` was an address, which forked workers can share)."""
        self._own = json.dumps({"origin": self._origin}).encode()[:-1]
        """How this node's messages start (``{"origin": "<hex>"``)."""
        self._again: dict[tuple[str, str], bool] = {}
        """Messages on their way, and whether each must be sent once more after it."""
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._pubsub: Any = None
        self._stopping = False
        self._publish_failing = False

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        # Local handlers run at once; the Redis copy reaches the other nodes.
        for handler in self._handlers[topic]:
            handler(data)
        channel = f"{self._prefix}:bus:{topic}"
        key = (channel, json.dumps({"origin": self._origin, "data": data}))
        if key in self._again:
            self._again[key] = True  # sent once more when the one on its way is
            return
        self._again[key] = False
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(self._send(key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, key: tuple[str, str]) -> None:
        try:
            while True:
                await self._publish(*key)
                if not self._again.get(key):
                    return
                self._again[key] = False
        finally:
            self._again.pop(key, None)

    async def _publish(self, channel: str, body: str) -> None:
        # One line per outage, not a traceback per commit (a Redis restart would flood the log).
        try:
            await self._redis.publish(channel, body)
        except Exception as exc:
            if not self._publish_failing:
                log.warning("redis bus publish failed (%s); other nodes catch up on their next poll", exc)
            self._publish_failing = True
            return
        if self._publish_failing:
            log.info("redis bus publish works again")
            self._publish_failing = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="redis-bus")

    async def _listen(self) -> None:
        lost = False
        while not self.is_stopping():
            try:
                pubsub = self._pubsub = self._redis.pubsub()
                await pubsub.psubscribe(f"{self._prefix}:bus:*")
                if lost:
                    log.info("redis bus listener is back")
                    lost = False
                async for msg in pubsub.listen():
                    if msg.get("type") != "pmessage":
                        continue
                    if msg["data"].startswith(self._own):
                        continue  # this node's own: its handlers ran at the publish
                    topic = msg["channel"].decode().rsplit(":", 1)[-1]
                    body = json.loads(msg["data"])
                    for handler in self._handlers[topic]:
                        handler(body["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.is_stopping():
                    return
                if not lost:
                    log.warning("redis bus disconnected (%s); reconnecting every second", exc)
                lost = True
                await asyncio.sleep(1)

    def is_stopping(self) -> bool:
        """``stop()`` was called (the listener checks it after every failure, not only at a cancel)."""
        return self._stopping

    async def stop(self) -> None:
        """Stop listening. A cancel alone is not enough: redis-py can swallow a
        ``CancelledError`` that lands while ``psubscribe`` is still connecting (seen as a
        shutdown that never ended), so the listener also sees the flag and its connection
        closed, and the cancel is repeated until the task is done."""
        self._stopping = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
            await asyncio.wait({task}, timeout=1)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        await self._redis.aclose()
