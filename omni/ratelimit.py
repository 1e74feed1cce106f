"""Flood guards: failed logins, widget messages and new widget conversations.

``RateLimiter`` counts in one node's memory (cheap; per visitor socket that is enough).
``SharedLimiter`` counts across every node through Redis when it is configured, so an
attacker can't multiply a limit by the number of nodes; in embedded mode, or while Redis is
unreachable, it counts in memory. Neither is billing-grade.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def address_key(address: str) -> str:
    """What a per-address limit counts: the IPv4 address, or the IPv6 /64 (one subscriber
    usually holds a whole /64, so counting single IPv6 addresses would let them rotate)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


class RateLimiter:
    """Sliding one-minute window per key.

    ``clock`` is where "now" comes from: a test holds the window still with it, so what it
    proves does not depend on how fast a loaded machine gets from one step to the next."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def _count(self, key: str, now: float) -> int:
        hits = self._hits.get(key)
        if hits is None:
            return 0
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if not hits:
            del self._hits[key]  # idle keys must not pile up
        return len(hits)

    def allow(self, key: str, now: float | None = None) -> bool:
        """Counts the hit when it is allowed."""
        now = self.clock() if now is None else now
        if self._count(key, now) >= self.per_minute:
            return False
        self._hits.setdefault(key, deque()).append(now)
        return True

    def blocked(self, key: str, now: float | None = None) -> bool:
        """Would the next hit be refused? (Does not count one.)"""
        now = self.clock() if now is None else now
        return self._count(key, now) >= self.per_minute

    def hit(self, key: str, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self._count(key, now)
        self._hits.setdefault(key, deque()).append(now)

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds until the next hit would be allowed (0 when it is now), so a refused
        sender can try again exactly when the window reopens."""
        now = self.clock() if now is None else now
        if self._count(key, now) < self.per_minute:
            return 0.0
        hits = self._hits[key]
        return max(0.0, hits[len(hits) - self.per_minute] + 60 - now)


class SharedLimiter:
    """Hits per key in a one-minute window, counted across the cluster when Redis is configured.

    Redis holds one counter per key (``INCR`` + expiry, so the window starts with the first
    hit); every hit is also counted in this node's :class:`RateLimiter`. When Redis can't be
    reached the local count decides (a warning is logged once per outage and Redis is tried
    again a few seconds later): limits then hold per node, never fail open silently and never
    lock everybody out.
    """

    def __init__(self, limits: Limits, name: str, per_minute: int) -> None:
        self.limits = limits
        self.name = name
        self.per_minute = per_minute
        self.local = RateLimiter(per_minute)

    def _key(self, key: str) -> str:
        return f"{self.limits.prefix}:ratelimit:{self.name}:{key}"

    async def count(self, key: str) -> int:
        """Hits in the current window (does not count one)."""
        local = self.local._count(key, self.local.clock())
        redis = self.limits.redis_now()
        if redis is None:
            return local
        try:
            value = await redis.get(self._key(key))
        except (RedisError, OSError) as exc:
            self.limits.failed(exc)
            return local
        self.limits.recovered()
        # Redis may have lost its keys (a restart): this node's own count is a floor.
        return max(local, int(value or 0))

    async def hit(self, key: str) -> int:
        """Count a hit; the number of hits in the window, this one included."""
        self.local.hit(key)
        local = self.local._count(key, self.local.clock())
        redis = self.limits.redis_now()
        if redis is None:
            return local
        try:
            async with redis.pipeline(transaction=True) as pipe:
                # Queued, not awaited: the pipeline runs both in one MULTI on execute().
                _ = pipe.set(self._key(key), 0, ex=WINDOW_SECONDS, nx=True)
                _ = pipe.incr(self._key(key))
                _, value = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.limits.failed(exc)
            return local
        self.limits.recovered()
        return max(local, int(value))

    async def blocked(self, key: str) -> bool:
        """Would the next hit be over the limit?"""
        return await self.count(key) >= self.per_minute

    async def allow(self, key: str) -> bool:
        """Count a hit; whether it is within the limit."""
        return await self.hit(key) <= self.per_minute


class Limits:
    """The Redis connection limiters share (``None`` in embedded mode: in-process counts).

    Short socket timeouts: a login must not hang on an unreachable Redis, it falls back to
    this node's counts instead.
    """

    RETRY_SECONDS = 5.0

    def __init__(self, redis_url: str = "", prefix: str = "omni") -> None:
        self.prefix = prefix
        self.redis: aioredis.Redis | None = (
            aioredis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
            if redis_url
            else None
        )
        self._down_until = 0.0
        self._down = False
        self._limiters: dict[tuple[str, int], SharedLimiter] = {}

    def limiter(self, name: str, per_minute: int) -> SharedLimiter:
        """One limiter per name and limit: two callers that ask for the same one (a socket
        event and an HTTP route of the same feature) share its in-memory count."""
        key = (name, per_minute)
        if key not in self._limiters:
            self._limiters[key] = SharedLimiter(self, name, per_minute)
        return self._limiters[key]

    def redis_now(self) -> aioredis.Redis | None:
        """The client, unless Redis failed a moment ago (then skip it until the retry time)."""
        if self.redis is None or time.monotonic() < self._down_until:
            return None
        return self.redis

    def failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.RETRY_SECONDS
        if not self._down:
            self._down = True
            log.warning(
                "rate limits: Redis unreachable (%s); counting on this node only until it is back", exc
            )

    def recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("rate limits: Redis is back; limits are cluster-wide again")

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


class LoginGuard:
    """Failed logins per username and per client address, cluster-wide with Redis; a blocked
    pair is refused even with the right password until the window passes, so guessing can't
    continue on this node or any other."""

    def __init__(self, limits: Limits | None = None, per_user: int = 10, per_ip: int = 50) -> None:
        self.limits = limits or Limits()
        self.users = self.limits.limiter("login-user", per_user)
        self.ips = self.limits.limiter("login-ip", per_ip)

    async def blocked(self, username: str, ip: str) -> bool:
        return await self.users.blocked(username.lower()) or await self.ips.blocked(address_key(ip))

    async def failed(self, username: str, ip: str) -> None:
        await self.users.hit(username.lower())
        await self.ips.hit(address_key(ip))
