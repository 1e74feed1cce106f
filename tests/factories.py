"""Building blocks for tests: users, queues, inboxes, statuses, straight through the DB."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import presence
from omni.domain.auth import Principal, hash_password

PASSWORD = "correct horse battery"
_HASH: str | None = None


def _hash() -> str:
    global _HASH
    if _HASH is None:
        _HASH = hash_password(PASSWORD)
    return _HASH


async def user(session: AsyncSession, username: str, role: m.Role = m.Role.OPERATOR, **kw: Any) -> m.User:
    row = m.User(
        username=username,
        display_name=username,
        role=role,
        password_hash=_hash(),
        language="en",
        is_active=True,
        handles_chat=kw.pop("handles_chat", True),
        handles_voice=kw.pop("handles_voice", True),
        capacity=kw.pop("capacity", 3),
        chat_weight=kw.pop("chat_weight", 1),
        voice_weight=kw.pop("voice_weight", 3),
        **kw,
    )
    session.add(row)
    await session.flush()
    return row


async def queue(session: AsyncSession, name: str, members: list[m.User] | None = None, **kw: Any) -> m.Queue:
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


async def inbox(session: AsyncSession, q: m.Queue, channel: str = "api", name: str | None = None) -> m.Inbox:
    row = m.Inbox(
        name=name or f"{channel}-{q.name}",
        channel=channel,
        queue_id=q.id,
        public_token=secrets.token_urlsafe(12),
        config={},
        active=True,
        secret_encrypted="",
    )
    session.add(row)
    await session.flush()
    return row


async def result_code(session: AsyncSession, code: str = "done") -> m.ResultCode:
    row = await session.scalar(select(m.ResultCode).where(m.ResultCode.code == code))
    if row is None:
        row = m.ResultCode(code=code, name=code.title(), colour="#00aa00", active=True)
        session.add(row)
        await session.flush()
    return row


async def set_status(session: AsyncSession, u: m.User, code: str = "available") -> None:
    await presence.do_set_status(session, u.id, await presence.status_by_code(session, code))


def who(u: m.User) -> Principal:
    return Principal.of(u)
