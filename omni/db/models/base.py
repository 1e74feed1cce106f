"""Declarative base, column types and the enums the tables use."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    literal_column,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.elements import ColumnElement

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def sql_constant(value: str) -> ColumnElement[str]:
    """``value`` (a status, a state, a medium: one of our own names) written into the SQL as a
    string literal, not sent as a bound value.

    PostgreSQL plans a prepared statement once (a generic plan) only when that plan is as cheap
    as one planned for the values at hand; a bound status or state hides which rows it selects,
    so the generic plan read every conversation and offer of an operator to keep the few that
    count, and the router's statements were planned again on every execution (1.3 ms of
    PostgreSQL's CPU per decision; bench/README.md, "Issue 15 … route6"). A literal also lets a
    partial index (``ix_offers_pending_user``) serve the condition, on SQLite too."""
    if not value.replace("_", "").isalnum():
        raise ValueError(f"not a plain name: {value!r}")
    return literal_column(f"'{value}'", String())


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


class PhoneEndpoint(enum.StrEnum):
    """Where an operator's calls ring: their desk phone (``sip_extension``) or the softphone
    in the operator window (a WebRTC endpoint whose credentials Omni issues)."""

    DESK = "desk"
    BROWSER = "browser"


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
    SNOOZED = "snoozed"
    """Set aside by its operator until a time or the customer's next message (``omni.domain.snooze``)."""


OPEN_STATUSES = (
    ConversationStatus.BOT,
    ConversationStatus.QUEUED,
    ConversationStatus.OFFERED,
    ConversationStatus.ACTIVE,
    ConversationStatus.ON_HOLD,
    ConversationStatus.WRAP_UP,
    ConversationStatus.SNOOZED,
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
