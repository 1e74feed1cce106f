"""Building blocks for tests: users, queues, inboxes, statuses, straight through the DB.

The rows themselves come from ``omni.seed`` (shared with ``omni demo`` and bench/); this adds
what only tests want: one known password for every user, status changes, principals.
"""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import presence
from omni.domain.auth import Principal
from omni.seed import inbox, queue, result_code
from omni.seed import user as _user

__all__ = ["PASSWORD", "inbox", "password_hash", "queue", "result_code", "set_status", "user", "who"]

PASSWORD = "correct horse battery"
_HASH: str | None = None


_LIGHT_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
"""argon2 with the lowest cost: the product's hasher takes ~0.2 CPU-s per verification, and the
suite logs its users in at the start of most tests that run a server (5 logins in each of
test_rbac's tests: 1 of its 2 CPU-s of set-up). ``verify_password``
reads the cost from the hash itself, so a login checks this hash through the same code path;
hashes the product makes (sign-up, password change, reset) keep the product's cost."""


def password_hash() -> str:
    """The hash of ``PASSWORD``, computed once, at the lowest argon2 cost (``_LIGHT_HASHER``)."""
    global _HASH
    if _HASH is None:
        _HASH = _LIGHT_HASHER.hash(PASSWORD)
    return _HASH


async def user(session: AsyncSession, username: str, role: m.Role = m.Role.OPERATOR, **kw: Any) -> m.User:
    """A user who logs in with ``PASSWORD`` (unless ``password_hash`` is given)."""
    kw.setdefault("password_hash", password_hash())
    return await _user(session, username, role, **kw)


async def set_status(session: AsyncSession, u: m.User, code: str = "available") -> None:
    await presence.do_set_status(session, u.id, await presence.status_by_code(session, code))


def who(u: m.User) -> Principal:
    return Principal.of(u)
