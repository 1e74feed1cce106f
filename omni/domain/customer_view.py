"""The customer's side of conversations: what a channel may show them and what they mark.

A customer sees their own inbound and outbound messages, never private notes; they may mark
an operator's message of their own conversation delivered or read, and nothing else. Adapters
read and mark through these functions so that rule is written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.conversations import do_mark_delivery
from omni.domain.errors import NotFound

CUSTOMER_DIRECTIONS = ("in", "out")
"""Messages a customer sees (``note`` and other directions are the operators' own)."""

SEEN_STATES = ("delivered", "read")


async def channel_conversation(session: AsyncSession, conversation_id: int) -> m.Conversation | None:
    """The conversation a channel event or reply is about (None once it is gone)."""
    return await session.get(m.Conversation, conversation_id)


async def customer_history(session: AsyncSession, conversation_id: int, limit: int) -> list[m.Message]:
    """The conversation's last ``limit`` customer-visible messages, oldest first."""
    rows = await session.scalars(
        select(m.Message)
        .where(m.Message.conversation_id == conversation_id, m.Message.direction.in_(CUSTOMER_DIRECTIONS))
        .order_by(m.Message.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


async def customer_messages_after(
    session: AsyncSession, kind: str, value: str, inbox_id: int, after: int, limit: int
) -> list[m.Message]:
    """The identity's customer-visible messages in any of its conversations in this inbox with
    an id above ``after``, in id order, at most ``limit`` (ask again from the last one)."""
    rows = await session.scalars(
        select(m.Message)
        .join(m.Conversation, m.Conversation.id == m.Message.conversation_id)
        .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
        .where(
            m.ContactIdentity.kind == kind,
            m.ContactIdentity.value == value,
            m.Conversation.inbox_id == inbox_id,
            m.Message.direction.in_(CUSTOMER_DIRECTIONS),
            m.Message.id > after,
        )
        .order_by(m.Message.id)
        .limit(limit)
    )
    return list(rows)


async def customer_message(session: AsyncSession, message_id: int) -> m.Message | None:
    """A stored message as the channel may deliver it (None if it is not there)."""
    return await session.get(m.Message, message_id)


async def check_customer_seen(
    session: AsyncSession, conversation_id: int | None, message_id: int, state: str
) -> None:
    """The customer's client showed (``read``) or received (``delivered``) an operator message:
    only one of their own conversation's outbound messages can be marked."""
    msg = await session.get(m.Message, message_id)
    if msg is None or msg.conversation_id != conversation_id or msg.direction != "out":
        raise NotFound("message {message_id} not found", message_id=message_id)
    await do_mark_delivery(session, msg.id, state)


async def inbound_stored(session: AsyncSession, inbox_id: int, external_id: str) -> bool:
    """Whether a channel message with this external id was already stored in the inbox (a
    re-delivered update: skip the downloads before ``do_ingest_inbound`` dedupes it anyway)."""
    found = await session.scalar(
        select(m.Message.id).where(m.Message.inbox_id == inbox_id, m.Message.external_id == external_id)
    )
    return found is not None


async def attached_files(session: AsyncSession, attachments: Iterable[dict[str, Any]]) -> list[m.StoredFile]:
    """The stored files behind file attachments (``{"id": ...}``), skipping any that are gone."""
    rows = [await session.get(m.StoredFile, str(a["id"])) for a in attachments]
    return [r for r in rows if r is not None]
