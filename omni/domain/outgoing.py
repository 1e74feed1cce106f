"""Contacts an operator starts: click-to-call today, the outbound dialer's answered calls later.

An outgoing contact never waits in a line and no bot answers it: the operator who starts it
handles it from the first second. ``do_ingest_inbound`` is the wrong door for it (it starts the
inbox's scenario, queues and routes), so this module is the one core action for it, with no
channel knowledge: the adapter places the call after the transaction commits.

The history is the same shape as an inbound contact's: one ``offers`` row (created and
accepted at the same instant, so offer replays and reports see who held it), and the
``conversation.created`` / ``conversation.accepted`` events. ``first_enqueued_at`` stays
empty: the customer never waited, so the queue's contacts, SL and ASA don't count it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.capacity import fits, loads_for
from omni.domain.contacts import do_resolve_contact
from omni.domain.errors import Conflict, InvalidInput, NotFound
from omni.domain.events import emit
from omni.domain.presence import do_refresh_activity, get_presence
from omni.domain.serialize import conversation_dict, message_dict
from omni.i18n import Label

__all__ = ["OutgoingContact", "do_start_outgoing"]

S = m.ConversationStatus


@dataclass(slots=True)
class OutgoingContact:
    """Who an operator reaches, from which inbox (its queue and caller id)."""

    inbox_id: int
    identity_kind: str
    identity_value: str
    external_id: str
    """The channel's id of the contact (the call's Linkedid): a retry returns the same conversation."""
    contact_name: str = ""
    contact_phone: str | None = None
    medium: str = m.Medium.VOICE
    note: str = ""
    """What the history shows first (e.g. "Outgoing call to +7…"); staff-only."""
    variables: dict[str, Any] = field(default_factory=dict)


async def do_start_outgoing(
    session: AsyncSession, user_id: int, contact: OutgoingContact, *, now: datetime | None = None
) -> m.Conversation:
    """Create the conversation already assigned to ``user_id`` (status ``active``).

    Refused (``Conflict``) when the operator's status does not take this medium, when the
    contact would not fit in the operator's remaining capacity (the same rule as routing, under
    the same presence lock, so the router can't fill the slot at the same time), or when the
    contact already has an open conversation of this medium in the inbox. Idempotent on
    ``external_id`` per inbox.
    """
    inbox = await session.get(m.Inbox, contact.inbox_id)
    if inbox is None or not inbox.active:
        raise NotFound("inbox {inbox_id} not found", inbox_id=contact.inbox_id)
    queue = await session.get(m.Queue, inbox.queue_id) if inbox.queue_id else None
    if queue is None:
        raise InvalidInput("inbox '{name}' has no queue to call from", name=inbox.name, field="queue_id")
    existing = await session.scalar(
        select(m.Message).where(m.Message.inbox_id == inbox.id, m.Message.external_id == contact.external_id)
    )
    if existing is not None:
        done = await session.get(m.Conversation, existing.conversation_id)
        assert done is not None
        return done
    user = await session.get(m.User, user_id)
    if user is None or not user.is_active:
        raise NotFound("user {user_id} not found", user_id=user_id)
    presence = await get_presence(session, user_id, lock=True)  # the router locks the same row
    status = await session.get(m.OperatorStatus, presence.status_id)
    assert status is not None
    receives = status.receives_voice if contact.medium == m.Medium.VOICE else status.receives_chats
    if not receives:
        raise Conflict(
            "your status '{code}' does not take {medium} contacts",
            code=status.code,
            medium=Label("medium", contact.medium),
        )
    load = (await loads_for(session, [user_id]))[user_id]
    if not fits(user, load, contact.medium, chats_block_calls=queue.chats_block_calls):
        raise Conflict(
            "you have no free capacity for another {medium} contact", medium=Label("medium", contact.medium)
        )
    customer = await do_resolve_contact(
        session,
        contact.identity_kind,
        contact.identity_value,
        name=contact.contact_name,
        phone=contact.contact_phone,
    )
    open_one = await session.scalar(
        select(m.Conversation.status)
        .where(
            m.Conversation.contact_id == customer.id,
            m.Conversation.inbox_id == inbox.id,
            m.Conversation.medium == contact.medium,
            m.Conversation.status.in_(m.OPEN_STATUSES),
        )
        .limit(1)
    )
    if open_one is not None:
        raise Conflict(
            "this contact already has an open {medium} conversation ({open_one})",
            medium=Label("medium", contact.medium),
            open_one=Label("status", open_one),
        )
    now = now or datetime.now(UTC)
    conv = m.Conversation(
        contact_id=customer.id,
        inbox_id=inbox.id,
        queue_id=queue.id,
        channel=inbox.channel,
        medium=contact.medium,
        status=S.ACTIVE,
        assigned_user_id=user_id,
        subject="",
        variables={**contact.variables, "direction": "out"},
        extra_queue_ids=[],
        created_at=now,
        offered_at=now,
        accepted_at=now,
        last_message_at=now,
    )
    session.add(conv)
    await session.flush()
    offer = m.Offer(
        conversation_id=conv.id,
        user_id=user_id,
        queue_id=queue.id,
        state="accepted",
        created_at=now,
        expires_at=now,
        responded_at=now,
    )
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=inbox.id,
        direction="note",
        author_user_id=user_id,
        body=contact.note,
        attachments=[],
        external_id=contact.external_id,
        delivery="stored",
        created_at=now,
    )
    session.add_all([offer, message])
    await session.flush()
    emit(
        session,
        "conversation.created",
        conversation_dict(conv) | {"direction": "out"},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=user_id,
    )
    emit(
        session,
        "message.created",
        message_dict(message) | {"channel": conv.channel},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=user_id,
    )
    emit(
        session,
        "conversation.accepted",
        conversation_dict(conv) | {"offer_id": offer.id, "wait_seconds": 0.0, "direction": "out"},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=user_id,
    )
    await do_refresh_activity(session, presence, now=now)
    return conv
