"""A stand-in CRM for webhook tests: a real aiohttp server on loopback that records every request.

``respond`` decides the status code of each request (fail the first attempts, be down for a
while...); everything the server saw is kept, raw body and headers included, so tests can
check signatures and at-least-once delivery themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from omni.domain import webhooks
from tests.conftest import free_port


@dataclass
class Hit:
    """One request the receiver got, and the status it answered."""

    at: float
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = self.payload["event"]
        return event

    @property
    def delivery_id(self) -> int:
        return int(self.headers["X-Omni-Delivery"])

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


Policy = Callable[["Receiver", Hit], int]


def always(status: int = 200) -> Policy:
    return lambda _receiver, _hit: status


def fail_first_attempts(failures: int, status: int = 500) -> Policy:
    """Each delivery (by ``X-Omni-Delivery``) gets ``status`` for its first ``failures`` requests."""

    def policy(receiver: Receiver, hit: Hit) -> int:
        seen = sum(1 for h in receiver.hits if h.delivery_id == hit.delivery_id)  # includes this one
        return status if seen <= failures else 200

    return policy


@dataclass
class Receiver:
    respond: Policy = field(default_factory=always)
    hits: list[Hit] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    answer: asyncio.Event | None = None
    """When set, every request is recorded at once but answered only once this event is set:
    a test can look at the sender while the CRM has the request and has not answered yet."""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        # No await from here to the answer: a test flipping ``respond`` sees a consistent log.
        hit = Hit(at=time.monotonic(), headers=dict(request.headers), body=body)
        self.hits.append(hit)
        hit.status = self.respond(self, hit)
        if self.answer is not None:
            await self.answer.wait()
        return web.Response(status=hit.status, text="ok" if hit.ok else "crm unavailable")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def delivered(self, subscription_id: int | None = None) -> list[Hit]:
        """Requests answered 2xx (optionally for one subscription), in arrival order."""
        return [
            h
            for h in self.hits
            if h.ok and (subscription_id is None or h.payload["subscription_id"] == subscription_id)
        ]

    def delivered_event_ids(self, subscription_id: int | None = None) -> set[int]:
        return {h.event["seq"] for h in self.delivered(subscription_id)}


def check_signature(secret: str, headers: dict[str, str], body: bytes) -> None:
    """The scheme a CRM implements: HMAC-SHA256 over ``"{timestamp}.{raw body}"``, fresh timestamp."""
    timestamp = headers["X-Omni-Timestamp"]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    expected = "sha256=" + mac.hexdigest()
    assert headers["X-Omni-Signature"] == expected
    assert abs(time.time() - int(timestamp)) < 60
    assert webhooks.verify(secret, timestamp, body, headers["X-Omni-Signature"])
