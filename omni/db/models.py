"""The relational model: the database is the source of truth for everything routed.

Timestamps are aware UTC everywhere (``UTCDateTime`` restores the zone SQLite drops).
JSON columns hold small, schema-checked documents (business hours, filters, custom fields).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; returns aware UTC on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Role(enum.StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    AUDITOR = "auditor"


class Medium(enum.StrEnum):
    """What the core knows of a channel: whether it is a chat or a call (capacity, statuses)."""

    CHAT = "chat"
    VOICE = "voice"


class ConversationStatus(enum.StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    OFFERED = "offered"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    WRAP_UP = "wrap_up"
    CLOSED = "closed"
    ABANDONED = "abandoned"
    MISSED = "missed"


OPEN_STATUSES = (
    ConversationStatus.BOT,
    ConversationStatus.QUEUED,
    ConversationStatus.OFFERED,
    ConversationStatus.ACTIVE,
    ConversationStatus.ON_HOLD,
    ConversationStatus.WRAP_UP,
)
# Statuses in which a conversation occupies an operator's capacity.
LOAD_STATUSES = (
    ConversationStatus.OFFERED,
    ConversationStatus.ACTIVE,
    ConversationStatus.ON_HOLD,
)


class Strategy(enum.StrEnum):
    RING_ALL = "ring_all"
    ROUND_ROBIN = "round_robin"
    LONGEST_IDLE = "longest_idle"
    FEWEST_HANDLED = "fewest_handled"
    LINEAR = "linear"
    RANDOM = "random"
    LEAST_LOADED = "least_loaded"
    SKILL_LEVEL = "skill_level"


class StatusKind(enum.StrEnum):
    """System meaning of a status; admin-defined statuses are ``available``/``pause``/``dnd``."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    TALKING = "talking"
    WRAP_UP = "wrap_up"
    PAUSE = "pause"
    DND = "dnd"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=Role.OPERATOR)
    language: Mapped[str] = mapped_column(String(8), default="en")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    sip_extension: Mapped[str | None] = mapped_column(String(32))
    handles_chat: Mapped[bool] = mapped_column(Boolean, default=True)
    handles_voice: Mapped[bool] = mapped_column(Boolean, default=True)
    capacity: Mapped[int] = mapped_column(Integer, default=3)
    """Load units; a conversation fits when current load + its weight stays within this."""
    chat_weight: Mapped[int] = mapped_column(Integer, default=1)
    voice_weight: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class SupervisorScope(Base):
    """A supervisor sees the groups and queues listed here, and nothing else."""

    __tablename__ = "supervisor_scopes"

    id: Mapped[int] = mapped_column(primary_key=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class UserSkill(Base):
    __tablename__ = "user_skills"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)


class ResultCode(Base):
    __tablename__ = "result_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    name_ru: Mapped[str] = mapped_column(String(128), default="", server_default="")
    """The Russian name (empty: the English ``name`` is shown in Russian too)."""
    colour: Mapped[str] = mapped_column(String(16), default="#888888")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def name_in(self, lang: str) -> str:
        return self.name_ru if lang == "ru" and self.name_ru else self.name


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    strategy: Mapped[str] = mapped_column(String(24), default=Strategy.LONGEST_IDLE)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """``{"timezone": "Europe/Moscow", "days": {"0": [["09:00","18:00"]], ...}}``; null = 24/7."""
    queue_timeout_seconds: Mapped[int] = mapped_column(Integer, default=300)
    operator_timeout_seconds: Mapped[int] = mapped_column(Integer, default=20)
    auto_accept: Mapped[bool] = mapped_column(Boolean, default=False)
    overflow_action: Mapped[str] = mapped_column(String(16), default="none")
    """none | queue | voicemail | offline_form | bot | callback."""
    overflow_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    overflow_scenario: Mapped[str] = mapped_column(String(64), default="")
    """Key of the published scenario ``overflow_action = "bot"`` starts (e.g. "leave a message")."""
    sla_seconds: Mapped[int] = mapped_column(Integer, default=20)
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=30)
    default_result_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("result_codes.id", ondelete="SET NULL")
    )
    chats_block_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    manual_pick: Mapped[bool] = mapped_column(Boolean, default=True)
    escalation: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Steps ``{"after_seconds": 60, "relax_levels": 1, "add_queue_id": 2}`` applied in order."""
    script: Mapped[str] = mapped_column(Text, default="")


class QueueSkill(Base):
    __tablename__ = "queue_skills"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    min_level: Mapped[int] = mapped_column(Integer, default=1)


class QueueResultCode(Base):
    __tablename__ = "queue_result_codes"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    result_code_id: Mapped[int] = mapped_column(
        ForeignKey("result_codes.id", ondelete="CASCADE"), primary_key=True
    )


class QueueMember(Base):
    """Operator membership; one operator may serve many queues (accounting is per queue)."""

    __tablename__ = "queue_members"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    """Order for the linear strategy (lower first)."""
    penalty: Mapped[int] = mapped_column(Integer, default=0)


class QueueRoutingState(Base):
    """Per-queue memory of strategies that need it (round-robin's last answerer)."""

    __tablename__ = "queue_routing_state"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    last_user_id: Mapped[int | None] = mapped_column(Integer)


class OperatorStatus(Base):
    """Admin-defined shared statuses; system ones are created by the first migration."""

    __tablename__ = "operator_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    name_ru: Mapped[str] = mapped_column(String(64), default="")
    colour: Mapped[str] = mapped_column(String(16), default="#888888")
    kind: Mapped[str] = mapped_column(String(16), default=StatusKind.PAUSE)
    receives_voice: Mapped[bool] = mapped_column(Boolean, default=False)
    receives_chats: Mapped[bool] = mapped_column(Boolean, default=False)
    productive: Mapped[bool] = mapped_column(Boolean, default=False)
    selectable: Mapped[bool] = mapped_column(Boolean, default=True)
    max_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)


class OperatorPresence(Base):
    """The current shared status of one operator: the row the router locks."""

    __tablename__ = "operator_presence"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    status_id: Mapped[int] = mapped_column(ForeignKey("operator_statuses.id"))
    since: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(256), default="")
    effective_code: Mapped[str] = mapped_column(String(32), default=StatusKind.OFFLINE)
    """What the operator is doing now (ringing, talking, wrap_up or the chosen status code)."""
    effective_since: Mapped[datetime] = mapped_column(default=utcnow)
    connections: Mapped[int] = mapped_column(Integer, default=0)
    last_disconnect_at: Mapped[datetime | None] = mapped_column()
    idle_since: Mapped[datetime] = mapped_column(default=utcnow)
    """When the operator last became free of all work (longest-idle strategy)."""
    over_limit_flagged: Mapped[bool] = mapped_column(Boolean, default=False)


class OperatorConnection(Base):
    """One open operator socket on one app node; a node that stops heartbeating loses them."""

    __tablename__ = "operator_connections"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusHistory(Base):
    __tablename__ = "status_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status_id: Mapped[int] = mapped_column(ForeignKey("operator_statuses.id"))
    status_code: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(256), default="")
    set_by_id: Mapped[int | None] = mapped_column(Integer)


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


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_status_queue", "status", "queue_id"),
        Index("ix_conversations_assignee_status", "assigned_user_id", "status"),
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


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_conversation_state", "conversation_id", "state"),)

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


class Event(Base):
    """Transactional outbox: written with the change, relayed after commit, replayable."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_undispatched", "dispatched", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    queue_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    """The operator the event is about (offers, presence)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[str] = mapped_column(String(16), default="ok")
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class UserSession(Base):
    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    event_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Empty = every event type."""
    filter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """``{"queue_ids": [...], "channels": [...]}``; empty = no filter."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_sub_event"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | succeeded | failed."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()


class Scenario(Base):
    """A bot scenario: an editable draft and a pointer to the published revision that runs."""

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    """Stable name used by inboxes (``config.scenario``) and ``goto_scenario`` nodes."""
    name: Mapped[str] = mapped_column(String(128))
    draft: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active_revision_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScenarioRevision(Base):
    """An immutable published document; conversations keep the revision they started on."""

    __tablename__ = "scenario_revisions"
    __table_args__ = (UniqueConstraint("scenario_id", "number", name="uq_scenario_revisions_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_by_id: Mapped[int | None] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(String(256), default="")


class BotSession(Base):
    """The engine state of one conversation, written after every step (restart-safe)."""

    __tablename__ = "bot_sessions"

    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"))
    revision_id: Mapped[int] = mapped_column(ForeignKey("scenario_revisions.id", ondelete="CASCADE"))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    timer_token: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped on every step so a stale timer deadline is ignored."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BotStep(Base):
    """One step of a run (entered / left:<port> / invalid / no_input / error): node statistics."""

    __tablename__ = "bot_steps"
    __table_args__ = (Index("ix_bot_steps_revision_node", "revision_id", "node"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("scenario_revisions.id", ondelete="CASCADE"))
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    channel: Mapped[str] = mapped_column(String(32), default="")
    node: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    revision_id: Mapped[int] = mapped_column(ForeignKey("scenario_revisions.id", ondelete="CASCADE"))
    node: Mapped[str] = mapped_column(String(64))
    variable: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Call(Base):
    """The telephony side of a voice conversation (``channels/voice``): Asterisk channel ids,
    the operator leg, ring/talk time and the recording. Written by the voice adapter only;
    the conversation keeps the channel-independent lifecycle (wait, hold, wrap-up)."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_open", "ended_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    inbox_id: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(8), default="in")
    """in | out (click-to-call)."""
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    """Asterisk ``Linkedid`` of the call: the customer leg's first ``Uniqueid``."""
    caller_uniqueid: Mapped[str] = mapped_column(String(64), default="")
    caller_channel: Mapped[str] = mapped_column(String(128), default="")
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    agent_uniqueid: Mapped[str] = mapped_column(String(64), default="")
    agent_channel: Mapped[str] = mapped_column(String(128), default="")
    agent_user_id: Mapped[int | None] = mapped_column(Integer)
    ring_seconds: Mapped[float] = mapped_column(default=0.0)
    """All ringing of operators' phones for this call, over every attempt."""
    talk_seconds: Mapped[float] = mapped_column(default=0.0)
    """Connected time minus hold time."""
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    hangup_cause: Mapped[str] = mapped_column(String(32), default="")
    recording_path: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
