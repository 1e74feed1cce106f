"""Building blocks of seeded data: one definition of a usable user, queue, inbox and result code.

``omni demo``, the bench scripts and the tests (``tests/factories.py`` re-exports these) all
seed through here, so a new required column or a changed default is filled in one place and
a seeded row is always one the application itself would accept.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m

__all__ = ["inbox", "queue", "result_code", "user"]


async def user(
    session: AsyncSession,
    username: str,
    role: m.Role = m.Role.OPERATOR,
    *,
    password_hash: str,
    **kw: Any,
) -> m.User:
    """An active user who handles chats and calls (3 chats or 1 call); ``kw`` overrides columns."""
    values: dict[str, Any] = {
        "display_name": username,
        "language": "en",
        "is_active": True,
        "handles_chat": True,
        "handles_voice": True,
        "capacity": 3,
        "chat_weight": 1,
        "voice_weight": 3,
    }
    values.update(kw)
    row = m.User(username=username, role=role, password_hash=password_hash, **values)
    session.add(row)
    await session.flush()
    return row


async def queue(session: AsyncSession, name: str, members: list[m.User] | None = None, **kw: Any) -> m.Queue:
    """A queue with the admin form's defaults; ``members`` join it in order (position = index)."""
    defaults: dict[str, Any] = dict(
        strategy=m.Strategy.LONGEST_IDLE,
        priority=0,
        queue_timeout_seconds=300,
        operator_timeout_seconds=20,
        auto_accept=False,
        overflow_action="callback",
        sla_seconds=20,
        wrap_up_seconds=30,
        chats_block_calls=True,
        manual_pick=True,
        escalation=[],
        script="",
    )
    defaults.update(kw)
    row = m.Queue(name=name, **defaults)
    session.add(row)
    await session.flush()
    for pos, u in enumerate(members or []):
        session.add(m.QueueMember(queue_id=row.id, user_id=u.id, position=pos, penalty=0))
    await session.flush()
    return row


async def inbox(
    session: AsyncSession, q: m.Queue, channel: str = "api", name: str | None = None, **kw: Any
) -> m.Inbox:
    """An active inbox of ``channel`` feeding ``q``, with a fresh public token."""
    values: dict[str, Any] = {
        "public_token": secrets.token_urlsafe(12),
        "config": {},
        "active": True,
        "secret_encrypted": "",
    }
    values.update(kw)
    row = m.Inbox(name=name or f"{channel}-{q.name}", channel=channel, queue_id=q.id, **values)
    session.add(row)
    await session.flush()
    return row


async def result_code(session: AsyncSession, code: str = "done", **kw: Any) -> m.ResultCode:
    """The result code ``code``, created (active, green, named after the code) if missing."""
    row = await session.scalar(select(m.ResultCode).where(m.ResultCode.code == code))
    if row is None:
        values: dict[str, Any] = {"name": code.title(), "colour": "#00aa00", "active": True}
        values.update(kw)
        row = m.ResultCode(code=code, **values)
        session.add(row)
        await session.flush()
    return row
