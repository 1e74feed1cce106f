"""Password reset by an admin-issued one-time link.

A user who forgot their password asks an admin, who issues a link (``/reset/<token>``) and
hands it over by a channel they trust; the user chooses a new password there. The link works
once, for 24 hours, and issuing a new one voids the previous; only the token's digest is
stored. Setting the password ends every session of the user (whoever knew the old one is out)
clears their failed sign-ins, and is audited. Two-factor sign-in is untouched: a link is not a
way around the second factor.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal, hash_password
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied

RESET_HOURS = 24
MIN_LENGTH = 8
MAX_LENGTH = 256


@dataclass(frozen=True, slots=True)
class IssuedReset:
    row: m.PasswordReset
    token: str
    """Shown once, in the link; only its digest is stored."""

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/reset/{self.token}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def check_issue_reset(
    session: AsyncSession, who: Principal, user_id: int, *, ip: str = "", now: datetime | None = None
) -> IssuedReset:
    """An admin issues a one-time link for the user; earlier unused links stop working."""
    if not who.is_admin:
        raise PermissionDenied("only an admin issues password reset links")
    user = await session.get(m.User, user_id)
    if user is None:
        raise NotFound("user {user_id} not found", user_id=user_id)
    if not user.is_active:
        raise InvalidInput("the user is deactivated; activate them first")
    if user.auth_source == "ldap":
        # A password set here would never be asked for: the directory checks this account.
        raise InvalidInput("the user signs in with the directory (LDAP): their password is changed there")
    now = now or datetime.now(UTC)
    await session.execute(
        update(m.PasswordReset)
        .where(m.PasswordReset.user_id == user.id, m.PasswordReset.used_at.is_(None))
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    row = m.PasswordReset(
        user_id=user.id,
        token_digest=_digest(token),
        created_by=who.id,
        created_at=now,
        expires_at=now + timedelta(hours=RESET_HOURS),
    )
    session.add(row)
    await session.flush()
    audit.record(session, who, "user.password_reset_issued", object_type="user", object_id=user.id, ip=ip)
    return IssuedReset(row, token)


async def reset_for(session: AsyncSession, token: str, now: datetime | None = None) -> m.PasswordReset | None:
    """The link's reset while it is valid (unused, not expired, the user active); else ``None``."""
    if not token or len(token) > 128:
        return None
    row = await session.scalar(
        select(m.PasswordReset).where(m.PasswordReset.token_digest == _digest(token)).with_for_update()
    )
    if row is None or row.used_at is not None or row.expires_at <= (now or datetime.now(UTC)):
        return None
    user = await session.get(m.User, row.user_id)
    return row if user is not None and user.is_active else None


async def do_reset_password(
    session: AsyncSession,
    token: str,
    password: str,
    repeat: str,
    *,
    ip: str = "",
    now: datetime | None = None,
) -> m.User:
    """Set the new password through a valid link; the link is used up and sessions ended."""
    now = now or datetime.now(UTC)
    row = await reset_for(session, token, now)
    if row is None:
        raise NotFound("this link is not valid any more: ask an admin for a new one")
    if len(password) < MIN_LENGTH or len(password) > MAX_LENGTH:
        raise InvalidInput(
            "the password must be {min} to {max} characters long",
            field="password",
            min=MIN_LENGTH,
            max=MAX_LENGTH,
        )
    if password != repeat:
        raise InvalidInput("the two passwords differ", field="repeat")
    user = await session.get_one(m.User, row.user_id, with_for_update=True)
    user.password_hash = hash_password(password)
    row.used_at = now
    await session.execute(delete(m.UserSession).where(m.UserSession.user_id == user.id))
    audit.record(
        session, Principal.of(user), "user.password_reset", object_type="user", object_id=user.id, ip=ip
    )
    return user
