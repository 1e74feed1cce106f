"""A customer as a channel knows them: an identity (``widget`` visitor, ``telegram`` chat,
``phone`` number) that belongs to a contact and, through it, to conversations.

Adapters address customers by identity (a Socket.IO room per visitor, a chat id per Telegram
user) and find "this customer's conversation" by it; these are the only queries that join
identities to conversations, so merging contacts or adding identity kinds changes one module.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.contacts import do_apply_phone, do_merge_contacts, do_resolve_contact

log = logging.getLogger(__name__)


async def latest_conversation_id(session: AsyncSession, kind: str, value: str, inbox_id: int) -> int | None:
    """The identity's newest conversation in this inbox (one indexed query, no messages)."""
    conv_id: int | None = await session.scalar(
        select(m.Conversation.id)
        .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
        .where(
            m.ContactIdentity.kind == kind,
            m.ContactIdentity.value == value,
            m.Conversation.inbox_id == inbox_id,
        )
        .order_by(m.Conversation.id.desc())
        .limit(1)
    )
    return conv_id


async def conversation_identities(session: AsyncSession, conversation_id: int, kind: str) -> list[str]:
    """Every ``kind`` identity of the conversation's contact (a visitor with several devices)."""
    rows = await session.scalars(
        select(m.ContactIdentity.value)
        .join(m.Conversation, m.Conversation.contact_id == m.ContactIdentity.contact_id)
        .where(m.Conversation.id == conversation_id, m.ContactIdentity.kind == kind)
    )
    return list(rows)


async def conversations_identities(
    session: AsyncSession, conversation_ids: Collection[int], kind: str
) -> list[tuple[int, str]]:
    """(conversation id, identity) pairs for many conversations at once (a line that moved)."""
    if not conversation_ids:
        return []
    rows = await session.execute(
        select(m.Conversation.id, m.ContactIdentity.value)
        .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
        .where(m.Conversation.id.in_(list(conversation_ids)), m.ContactIdentity.kind == kind)
    )
    return [(int(conv_id), str(value)) for conv_id, value in rows.all()]


async def contact_identity(session: AsyncSession, contact_id: int, kind: str) -> str | None:
    """The contact's ``kind`` identity (e.g. the Telegram chat to answer in), or None."""
    value: str | None = await session.scalar(
        select(m.ContactIdentity.value)
        .where(m.ContactIdentity.contact_id == contact_id, m.ContactIdentity.kind == kind)
        .limit(1)
    )
    return value


async def identity_contact(session: AsyncSession, kind: str, value: str) -> m.Contact | None:
    """The contact owning this identity, without creating one (``do_resolve_contact`` does)."""
    contact: m.Contact | None = await session.scalar(
        select(m.Contact)
        .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Contact.id)
        .where(m.ContactIdentity.kind == kind, m.ContactIdentity.value == value)
    )
    return contact


async def identity_in_conversation(session: AsyncSession, conversation_id: int, value: str) -> bool:
    """Whether the identity belongs to the conversation's customer (may read its files)."""
    found = await session.scalar(
        select(m.ContactIdentity.id)
        .join(m.Conversation, m.Conversation.contact_id == m.ContactIdentity.contact_id)
        .where(m.Conversation.id == conversation_id, m.ContactIdentity.value == value)
        .limit(1)
    )
    return found is not None


async def do_join_phone(
    session: AsyncSession, kind: str, value: str, phone: str, *, name: str = ""
) -> m.Contact:
    """The customer proved this (normalised) phone number is theirs: their ``kind:value``
    identity joins the contact that has it (their calls, other chats), or the number is added
    to their own contact; either way it becomes a ``phone`` identity of the one kept."""
    own = await do_resolve_contact(session, kind, value, name=name)
    by_identity = await session.scalar(
        select(m.ContactIdentity.contact_id).where(
            m.ContactIdentity.kind == "phone", m.ContactIdentity.value == phone
        )
    )
    target_id = by_identity or await session.scalar(
        select(m.Contact.id)
        .where(m.Contact.phone == phone, m.Contact.id != own.id)
        .order_by(m.Contact.id)
        .limit(1)
    )
    keep = own
    if target_id is not None and target_id != own.id:
        target = await session.get(m.Contact, target_id)
        if target is not None:
            keep = await do_merge_contacts(session, target, own)
            log.info("%s contact %s joined contact %s by phone", kind, own.id, keep.id)
    if not keep.phone:
        do_apply_phone(keep, phone)
    if by_identity is None:
        session.add(m.ContactIdentity(contact_id=keep.id, kind="phone", value=phone))
        await session.flush()
    return keep
