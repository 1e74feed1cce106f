"""Abuse: a flood of new widget chats from one address or into one inbox, forged
``X-Forwarded-For``, and the login throttle across nodes sharing Redis (issue 10, item 14)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.ratelimit import Limits, LoginGuard, address_key
from omni.settings import Settings
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import REDIS_URL, LiveServer, free_port, make_settings
from tests.helpers import HTTP_TIMEOUT


async def failed_logins(server: LiveServer, n: int, *, username: str | None = None, **headers: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as client:
        for i in range(n):
            resp = await client.post(
                "/api/v1/auth/login",
                json={"username": username or f"nobody{i}", "password": "wrong guess"},
                headers={"X-Forwarded-For": f"198.51.100.{i % 250}", **headers},
            )
            assert resp.status_code == 401, resp.text


async def login_status(server: LiveServer, username: str, **headers: str) -> int:
    async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post(
            "/api/v1/auth/login", json={"username": username, "password": f.PASSWORD}, headers=headers
        )
        return resp.status_code


async def test_rotating_x_forwarded_for_does_not_dodge_the_login_throttle(live_server: LiveServer) -> None:
    """Without configured proxies the address is the socket peer, whatever the header says."""
    async with live_server.services.db.transaction() as s:
        await f.user(s, "olga")
    await failed_logins(live_server, 50)  # 50 names, 50 forged addresses, one real client
    assert await login_status(live_server, "olga", **{"X-Forwarded-For": "203.0.113.9"}) == 429


async def test_a_configured_proxy_forwards_the_client_address(pg_url: str, tmp_path: Any) -> None:
    server = LiveServer(make_settings(pg_url, data_dir=tmp_path, trusted_proxies="127.0.0.1, 10.0.0.0/8"))
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "olga")
        await failed_logins(server, 50, **{"X-Forwarded-For": "203.0.113.7"})
        assert await login_status(server, "olga", **{"X-Forwarded-For": "203.0.113.7"}) == 429
        # Another customer behind the same proxy is a different address.
        assert await login_status(server, "olga", **{"X-Forwarded-For": "203.0.113.8"}) == 200
    finally:
        await server.stop()


@pytest.fixture
async def two_nodes(pg_url: str, tmp_path: Any) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two app instances on one database and one Redis (one key prefix), as in production."""
    shared = make_settings(pg_url, data_dir=tmp_path)
    a, b = LiveServer(shared), LiveServer(shared.model_copy(deep=True))
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await b.stop()
        await a.stop()


async def test_login_throttle_counts_failures_on_every_node(two_nodes: tuple[LiveServer, LiveServer]) -> None:
    """The field report: after 10 failures on node A, node B allowed 10 more at once."""
    a, b = two_nodes
    async with a.services.db.transaction() as s:
        await f.user(s, "olga")
    await failed_logins(a, 5, username="olga")
    await failed_logins(b, 5, username="olga")
    assert await login_status(b, "olga") == 429
    assert await login_status(a, "olga") == 429


async def test_login_throttle_falls_back_to_this_node_when_redis_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = Limits(f"redis://127.0.0.1:{free_port()}/0", prefix=f"t-{uuid.uuid4().hex[:6]}")
    guard = LoginGuard(limits, per_user=3, per_ip=100)
    try:
        with caplog.at_level(logging.WARNING, logger="omni.ratelimit"):
            assert not await guard.blocked("olga", "192.0.2.1")  # nobody is locked out
            for _ in range(3):
                await guard.failed("olga", "192.0.2.1")
            assert await guard.blocked("olga", "192.0.2.1")  # nor does it fail open
            assert not await guard.blocked("sam", "192.0.2.1")
        warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(warnings) == 1, "the outage is logged once, not per request"
    finally:
        await limits.close()


async def test_shared_limiter_counts_across_nodes_in_real_redis() -> None:
    prefix = f"t-{uuid.uuid4().hex[:6]}"
    node_a, node_b = Limits(REDIS_URL, prefix), Limits(REDIS_URL, prefix)
    try:
        a, b = node_a.limiter("x", 3), node_b.limiter("x", 3)
        assert [await a.allow("k"), await b.allow("k"), await a.allow("k")] == [True, True, True]
        assert not await b.allow("k")
        assert await a.allow("other")
    finally:
        await node_a.close()
        await node_b.close()


async def test_rotating_ipv6_addresses_within_one_64_share_the_login_limit() -> None:
    guard = LoginGuard(per_user=100, per_ip=3)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"):
        await guard.failed(f"user-{host}", host)
    assert await guard.blocked("someone", "2001:db8:1:2::77")
    assert not await guard.blocked("someone", "2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.5") == address_key("192.0.2.5") == "192.0.2.5"


async def test_a_redis_restart_that_loses_the_counters_does_not_reopen_the_window() -> None:
    limits = Limits(REDIS_URL, f"t-{uuid.uuid4().hex[:6]}")
    try:
        limiter = limits.limiter("x", 3)
        for _ in range(3):
            await limiter.hit("k")
        assert limits.redis is not None
        await limits.redis.delete(limiter._key("k"))  # what a Redis restart without persistence does
        assert await limiter.blocked("k")
    finally:
        await limits.close()


# --- new widget conversations ----------------------------------------------------------------


async def widget_inbox(server: LiveServer) -> str:
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        ib = await f.inbox(s, q, channel="widget")
        return ib.public_token


async def conversations(server: LiveServer) -> int:
    async with server.services.db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(m.Conversation)) or 0)


class RussianVisitor(Visitor):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.headers = {"Accept-Language": "ru-RU,ru;q=0.9"}

    async def connect(self, **auth: Any) -> dict[str, Any]:
        await self.sio.connect(
            self.url,
            wait_timeout=10,
            namespaces=["/widget"],
            auth=auth,
            transports=["websocket"],
            headers=self.headers,
        )
        return await asyncio.wait_for(self.welcome, 10)


async def test_fresh_visitors_from_one_address_cannot_flood_the_queue(live_server: LiveServer) -> None:
    """The field report: 60 fresh visitors from one address opened 60 queued chats."""
    token = await widget_inbox(live_server)
    limit = live_server.settings.widget.new_conversations_per_address
    acks = []
    visitors: list[Visitor] = []
    for i in range(limit + 3):
        v = RussianVisitor(live_server.url) if i == limit + 2 else Visitor(live_server.url)
        visitors.append(v)
        await v.connect(inbox=token)
        acks.append(await v.send("hello", f"c-{i}"))
    try:
        assert all(a["ok"] for a in acks[:limit])
        refused = acks[limit:]
        assert all(not a["ok"] and a["error"] == "rate_limited" for a in refused), refused
        assert "wait a minute" in refused[0]["detail"]
        assert "Подождите минуту" in refused[-1]["detail"]
        assert await conversations(live_server) == limit
        # A visitor who already has a conversation keeps talking.
        assert (await visitors[0].send("still there?", "c-more"))["ok"]
    finally:
        for v in visitors:
            await v.sio.disconnect()


@pytest.fixture
def inbox_limited_settings(pg_url: str, tmp_path: Any) -> Settings:
    s = make_settings(pg_url, data_dir=tmp_path)
    s.widget.new_conversations_per_address = 1000
    s.widget.new_conversations_per_inbox = 3
    return s


async def test_an_inbox_takes_a_limited_number_of_new_chats_a_minute(
    inbox_limited_settings: Settings,
) -> None:
    server = LiveServer(inbox_limited_settings)
    await server.start()
    try:
        token = await widget_inbox(server)
        acks = []
        for i in range(5):
            v = Visitor(server.url)
            await v.connect(inbox=token)
            acks.append(await v.send("hello", f"c-{i}"))
            await v.sio.disconnect()
        assert [a["ok"] for a in acks] == [True, True, True, False, False]
        assert await conversations(server) == 3
    finally:
        await server.stop()
