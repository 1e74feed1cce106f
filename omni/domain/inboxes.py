"""Inbox look-ups a channel adapter needs, and the one write it makes (a bot's token).

An inbox is where a channel's traffic arrives (a widget on a site, a Telegram bot, a phone
line). Adapters find theirs by the public token the outside world presents, read its
``config`` for customer-facing texts, and ask whether its line can take a chat now; they
never query the table themselves, so the rules (active only, right channel) live here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni import crypto
from omni.db import models as m
from omni.domain.hours import queue_open
from omni.domain.routing import queue_capacity


async def public_inbox(session: AsyncSession, public_token: str, channel: str) -> m.Inbox | None:
    """The active inbox of ``channel`` whose public token this is, or None (unknown, disabled
    or another channel's: the caller refuses all three alike, revealing nothing)."""
    inbox = await session.scalar(select(m.Inbox).where(m.Inbox.public_token == public_token))
    if inbox is None or not inbox.active or inbox.channel != channel:
        return None
    return inbox


async def active_inbox(session: AsyncSession, inbox_id: int, channel: str) -> m.Inbox | None:
    """The inbox if it is active and of ``channel`` (disabled or removed elsewhere: None)."""
    inbox = await session.get(m.Inbox, inbox_id)
    if inbox is None or not inbox.active or inbox.channel != channel:
        return None
    return inbox


async def channel_inboxes(session: AsyncSession, channel: str, *, active_only: bool) -> list[m.Inbox]:
    """Every inbox of a channel in id order (an adapter reconciling its bots, an admin list)."""
    query = select(m.Inbox).where(m.Inbox.channel == channel)
    if active_only:
        query = query.where(m.Inbox.active.is_(True))
    return list((await session.scalars(query.order_by(m.Inbox.id))).all())


async def inbox_config(session: AsyncSession, inbox_id: int | None) -> dict[str, Any]:
    """A copy of the inbox's ``config`` (``{}`` for no inbox): texts, CSAT, pre-chat form."""
    inbox = await session.get(m.Inbox, inbox_id) if inbox_id is not None else None
    return dict(inbox.config or {}) if inbox is not None else {}


async def chat_online(session: AsyncSession, inbox: m.Inbox, now: datetime | None = None) -> bool:
    """Whether a chat started now would reach someone: the inbox's queue is within business
    hours and someone in it is in a status that receives chats."""
    queue = await session.get(m.Queue, inbox.queue_id) if inbox.queue_id else None
    if queue is None or not await queue_open(session, queue, now or datetime.now(UTC)):
        return False
    return (await queue_capacity(session, queue.id, m.Medium.CHAT)).slots > 0


async def inbox_with_config_id(session: AsyncSession, channel: str, key: str, value: int) -> int | None:
    """The inbox of ``channel`` whose ``config[key]`` is this integer (a bot already connected
    as another inbox), or None."""
    found: int | None = await session.scalar(
        select(m.Inbox.id).where(m.Inbox.channel == channel, m.Inbox.config[key].as_integer() == value)
    )
    return found


def do_store_inbox_secret(inbox: m.Inbox, secret_key: str, secret: str) -> None:
    """Keep a channel credential (a bot token) encrypted at rest; it is never read back out
    through the API."""
    inbox.secret_encrypted = crypto.encrypt(secret_key, secret)
