"""What an IVR reads of the core: the line a call came in on, the caller's identity, what the
bot said and is still to be played, the conversation a held caller belongs to.

The FastAGI side (``channels/voice/agi``) drives a call through the inbox's bot scenario; it
writes through the ordinary actions (``do_ingest_inbound``, ``do_mark_delivery``, the bot runner)
and reads through these getters, so it never queries a table itself. None of them writes or
emits an event.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m

__all__ = [
    "agentless_call",
    "bot_said",
    "call_conversation",
    "contact_identity",
    "conversation",
    "voice_inbox_by_token",
]


async def voice_inbox_by_token(session: AsyncSession, token: str) -> m.Inbox | None:
    """The active voice inbox of a dialplan's public token (``AGI(…/ivr,<token>)``)."""
    if not token:
        return None
    inbox = await session.scalar(select(m.Inbox).where(m.Inbox.public_token == token))
    if inbox is None or not inbox.active or inbox.channel != "voice":
        return None
    return inbox


async def contact_identity(
    session: AsyncSession, contact_id: int, prefer_kind: str
) -> tuple[str, str] | None:
    """One identity ``(kind, value)`` of a contact, of ``prefer_kind`` when it has one: the
    identity a call's digits must be ingested under to reach the call's conversation, whoever
    ingested the call first (the IVR or the AMI side)."""
    found = (
        await session.execute(
            select(m.ContactIdentity.kind, m.ContactIdentity.value)
            .where(m.ContactIdentity.contact_id == contact_id)
            .order_by((m.ContactIdentity.kind == prefer_kind).desc(), m.ContactIdentity.id)
            .limit(1)
        )
    ).first()
    return (found[0], found[1]) if found else None


async def conversation(
    session: AsyncSession, conversation_id: int, *, lock: bool = False
) -> m.Conversation | None:
    """The conversation (locked for update with ``lock``), or ``None``."""
    return await session.get(m.Conversation, conversation_id, with_for_update=lock)


async def bot_said(session: AsyncSession, conversation_id: int, after: int) -> Sequence[m.Message]:
    """Bot messages (outbound, no author) with an id after ``after``, in order, said by the
    running bot session only: after a transfer to the IVR (a new scenario on a call that
    skipped the IVR, so with nothing played yet) the words of an earlier run are not replayed."""
    query = select(m.Message).where(
        m.Message.conversation_id == conversation_id,
        m.Message.direction == "out",
        m.Message.author_user_id.is_(None),
        m.Message.id > after,
    )
    bot = await session.get(m.BotSession, conversation_id)
    if bot is not None:
        query = query.where(m.Message.created_at >= bot.started_at)
    return (await session.scalars(query.order_by(m.Message.id))).all()


async def call_conversation(session: AsyncSession, linkedid: str) -> m.Conversation | None:
    """The latest conversation a call (its Linkedid, the inbound message's ``external_id``)
    started: how a held caller who skipped the IVR is found."""
    return await session.scalar(
        select(m.Conversation)
        .join(m.Message, m.Message.conversation_id == m.Conversation.id)
        .where(m.Message.external_id == linkedid, m.Message.direction == "in")
        .order_by(m.Conversation.id.desc())
        .limit(1)
    )


async def agentless_call(session: AsyncSession, attempt_id: int) -> tuple[m.Conversation, m.Inbox] | None:
    """The conversation and line of an answered agentless campaign attempt (the ``outbound``
    AGI route's argument), or ``None``."""
    attempt = await session.get(m.CampaignAttempt, attempt_id)
    if attempt is None or attempt.conversation_id is None:
        return None
    conv = await session.get(m.Conversation, attempt.conversation_id)
    inbox = await session.get(m.Inbox, conv.inbox_id) if conv is not None and conv.inbox_id else None
    if conv is None or inbox is None or conv.medium != m.Medium.VOICE:
        return None
    return conv, inbox
