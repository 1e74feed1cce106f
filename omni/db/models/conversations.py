"""Contacts, inboxes, conversations, messages, files, offers, deadlines and callbacks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import (
    Base,
    BigId,
    ConversationStatus,
    Medium,
    sql_constant,
    utcnow,
)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    region: Mapped[str | None] = mapped_column(String(128))
    timezone: Mapped[str | None] = mapped_column(String(64))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column()
    """Set when the contact's personal data was erased on request (``omni.domain.retention``):
    the row stays so conversations and reports keep their figures, with nothing personal left."""


class ContactIdentity(Base):
    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_contact_identities_kind_value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """phone | email | telegram | widget | ..."""
    value: Mapped[str] = mapped_column(String(256))


class Inbox(Base):
    """A configured channel instance (one widget site, one Telegram bot, one trunk)."""

    __tablename__ = "inboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    public_token: Mapped[str] = mapped_column(String(64), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


HOLDING_BY_USER = "status IN ('active', 'on_hold', 'wrap_up')"
"""The predicate of ``ix_conversations_holding_user``: what ``capacity.load_rows`` counts as an
operator's assigned conversations, written the same way (``sql_constant``s in this order)."""


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_status_queue", "status", "queue_id"),
        Index("ix_conversations_assignee_status", "assigned_user_id", "status"),
        # Contact history (omni.domain.reports.history): a period, newest first, by queue / operator.
        Index("ix_conversations_created", "created_at"),
        Index("ix_conversations_queue_created", "queue_id", "created_at"),
        Index("ix_conversations_assignee_created", "assigned_user_id", "created_at"),
        # the queue rollup rebuilds an interval from the contacts whose wait began in it
        Index("ix_conversations_first_enqueued", "first_enqueued_at"),
        # search's scope: the conversations kept for an operator outside their queues, read
        # from the index alone (omni.domain.search_pg.kept_conversations)
        Index("ix_conversations_assignee_queue", "assigned_user_id", "queue_id"),
        Index("ix_conversations_preferred_queue", "preferred_user_id", "queue_id"),
        # An operator's load (``capacity.load_rows``, per candidate of every routing decision):
        # the conversations they are handling among all they ever had, read through this index
        # whatever the statistics say. With statistics taken when nobody was handling anything
        # PostgreSQL walked ``ix_conversations_status_queue`` instead, every operator's
        # conversations of those statuses for each candidate (migration 0045_route6).
        Index(
            "ix_conversations_holding_user",
            "assigned_user_id",
            postgresql_where=text(HOLDING_BY_USER),
            sqlite_where=text(HOLDING_BY_USER),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32))
    medium: Mapped[str] = mapped_column(String(8), default=Medium.CHAT)
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.QUEUED)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    extra_queue_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Overflow queues added by escalation while the customer keeps their place."""
    priority: Mapped[int] = mapped_column(Integer, default=0)
    skill_relax: Mapped[int] = mapped_column(Integer, default=0)
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    preferred_user_id: Mapped[int | None] = mapped_column(Integer)
    """Set by a transfer to a named operator: only they are offered it."""
    subject: Mapped[str] = mapped_column(String(256), default="")
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column()
    first_enqueued_at: Mapped[datetime | None] = mapped_column()
    offered_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    wrap_up_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    hold_seconds: Mapped[int] = mapped_column(Integer, default=0)
    hold_started_at: Mapped[datetime | None] = mapped_column()
    result_code_id: Mapped[int | None] = mapped_column(ForeignKey("result_codes.id"))
    closed_by: Mapped[str | None] = mapped_column(String(16))
    """operator | customer | timeout | system."""
    last_message_at: Mapped[datetime | None] = mapped_column()
    label_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Copy of its ``conversation_labels`` kept by ``omni.domain.labels`` in the same
    transaction, so every conversation event (webhooks included) carries the labels."""


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_id", name="uq_messages_conversation_client"),
        UniqueConstraint("inbox_id", "external_id", name="uq_messages_inbox_external"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    inbox_id: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(8))
    """in | out | note | system."""
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    client_id: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    delivery: Mapped[str] = mapped_column(String(16), default="stored")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredFile(Base):
    """An uploaded attachment; readable by its uploader and by staff who can see its conversation."""

    __tablename__ = "stored_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    owner: Mapped[str] = mapped_column(String(256), index=True)
    """Who uploaded it: a widget visitor identity, or ``user:<id>`` for staff."""
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(256))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedReply(Base):
    """A prepared answer: queue-wide (``queue_id``), global (neither) or personal (``owner_user_id``)."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), index=True)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    shortcut: Mapped[str] = mapped_column(String(32))
    """Typed after "/" in the composer, e.g. ``hello``."""
    title: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    """May hold placeholders such as ``{{contact.name}}`` and ``{{operator.name}}``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CardField(Base):
    """One field of the customer card, shown to operators; stored in ``Contact.custom_fields[key]``.

    ``queue_id`` NULL means every queue shows it.
    """

    __tablename__ = "card_fields"
    __table_args__ = (UniqueConstraint("queue_id", "key", name="uq_card_fields_queue_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128))
    label_ru: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16), default="text")
    """text | number | email | phone | date | select | checkbox."""
    options: Mapped[list[Any]] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    editable: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


OFFER_PENDING = sql_constant("pending")
"""The state of an offer still ringing, written into the SQL (``Offer.state == OFFER_PENDING``),
not bound: only then can a generic plan (and SQLite) use ``ix_offers_pending_user`` for it."""


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_conversation_state", "conversation_id", "state"),
        # An operator's pending offers (their load, whether they are ringing) among all their
        # past ones: a year of offers is thousands per operator, pending ones a handful
        # (migration 0045_route6; bench/README.md, "Issue 15 … route6").
        Index(
            "ix_offers_pending_user",
            "user_id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    queue_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | accepted | declined | timeout | cancelled."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    responded_at: Mapped[datetime | None] = mapped_column()


class Deadline(Base):
    """A persisted timer: any node picks an expired one up, even after a restart."""

    __tablename__ = "deadlines"
    __table_args__ = (
        Index("ix_deadlines_due", "done", "due_at"),
        Index("ix_deadlines_ref", "kind", "ref_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[int] = mapped_column(BigInteger)
    due_at: Mapped[datetime] = mapped_column()
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Callback(Base):
    """The shared missed/abandoned list; one operator claims an entry at a time."""

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="standard")
    """standard | queue | operator."""
    reason: Mapped[str] = mapped_column(String(16), default="abandoned")
    """abandoned | missed | requested | scheduled."""
    target_user_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="open")
    """open | claimed | done."""
    claimed_by_id: Mapped[int | None] = mapped_column(Integer)
    claimed_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
