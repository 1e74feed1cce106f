"""Flood guards kept in one node's memory: cheap, and enough to stop a script hammering a form.

They are not billing-grade and reset on restart; with several nodes each node counts its own
share, which still bounds an attacker to nodes × limit.
"""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    """Sliding one-minute window per key."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
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
        now = time.monotonic() if now is None else now
        if self._count(key, now) >= self.per_minute:
            return False
        self._hits.setdefault(key, deque()).append(now)
        return True

    def blocked(self, key: str, now: float | None = None) -> bool:
        """Would the next hit be refused? (Does not count one.)"""
        now = time.monotonic() if now is None else now
        return self._count(key, now) >= self.per_minute

    def hit(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._count(key, now)
        self._hits.setdefault(key, deque()).append(now)

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds until the next hit would be allowed (0 when it is now), so a refused
        sender can try again exactly when the window reopens."""
        now = time.monotonic() if now is None else now
        if self._count(key, now) < self.per_minute:
            return 0.0
        hits = self._hits[key]
        return max(0.0, hits[len(hits) - self.per_minute] + 60 - now)


class LoginGuard:
    """Failed logins per username and per client address; a blocked pair is refused even
    with the right password until the window passes, so guessing can't continue."""

    def __init__(self, per_user: int = 10, per_ip: int = 50) -> None:
        self.users = RateLimiter(per_user)
        self.ips = RateLimiter(per_ip)

    def blocked(self, username: str, ip: str) -> bool:
        return self.users.blocked(username.lower()) or self.ips.blocked(ip)

    def failed(self, username: str, ip: str) -> None:
        self.users.hit(username.lower())
        self.ips.hit(ip)
