"""Taking a waiting conversation from the queue by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import (
    Principal,
    access_conversation,
    visible_queue_ids,
)
from omni.domain.capacity import fits, loads_for
from omni.domain.conversations import do_accept_offer
from omni.domain.errors import Conflict, PermissionDenied
from omni.domain.presence import get_presence
from omni.i18n import Label

S = m.ConversationStatus


# --- taking from the queue by hand ------------------------------------------------------


async def check_take(session: AsyncSession, who: Principal, conv_id: int) -> m.Conversation:
    """Take a waiting conversation from the queue without an offer.

    Allowed where the queue has ``manual_pick``, the caller is in the queue, their status
    receives this medium and their capacity has room. The conversation row is locked and
    waited for, not skipped: the router's pass locks every waiting conversation for a moment,
    also ones it can offer to nobody, and a person's click must not fail on that. Whoever held
    it, the status is read after the lock, so a conversation the router or another operator
    assigned meanwhile is "no longer waiting". Then the caller's presence row, with load
    re-read under that lock, so a take and a routing decision can never both assign it nor
    push the operator past capacity.
    """
    # Not found outside the caller's scope; locked (first read, so nothing stale is cached).
    conv = await access_conversation(session, who, conv_id, for_update=True)
    queues = await visible_queue_ids(session, who)
    if queues is not None and not (queues & {conv.queue_id, *conv.extra_queue_ids}):
        raise PermissionDenied("you are not in this conversation's queue")
    if conv.status != S.QUEUED:
        raise Conflict(
            "the conversation is no longer waiting (it is {status})", status=Label("status", conv.status)
        )
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    if queue is None or not queue.manual_pick:
        raise PermissionDenied("this queue does not allow taking conversations by hand")
    if conv.preferred_user_id is not None and conv.preferred_user_id != who.id:
        raise Conflict("this conversation was transferred to another operator")
    presence = await get_presence(session, who.id, lock=True)
    status = await session.get(m.OperatorStatus, presence.status_id)
    assert status is not None
    voice = conv.medium == m.Medium.VOICE
    if not (status.receives_voice if voice else status.receives_chats):
        raise Conflict(
            "your status '{name}' does not take {value}",
            name=status.name,
            value="calls" if voice else "chats",
            field="status",
        )
    user = await session.get(m.User, who.id)
    assert user is not None
    load = (await loads_for(session, [who.id]))[who.id]
    if not fits(user, load, conv.medium, chats_block_calls=queue.chats_block_calls):
        raise Conflict("you have no free capacity for another conversation")
    now = datetime.now(UTC)
    offer = m.Offer(
        conversation_id=conv.id,
        user_id=who.id,
        queue_id=queue.id,
        state="pending",
        created_at=now,
        expires_at=now,
    )
    session.add(offer)
    await session.flush()
    await do_accept_offer(session, conv, offer, now=now)
    return conv
