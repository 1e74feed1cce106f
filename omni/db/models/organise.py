"""Organising the work (issue 18): labels on conversations and saved views of the lists.

Snooze needs no table: it is a conversation status (``snoozed``), its state lives in
``Conversation.variables["snooze"]`` and its timer in ``deadlines`` (``omni.domain.snooze``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, BigId, utcnow

__all__ = ["ConversationLabel", "Label", "SavedView"]


class Label(Base):
    """A coloured tag for conversations: global (``queue_id`` empty) or of one queue."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(7), default="#64748b")
    """``#rrggbb``."""
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationLabel(Base):
    """One label on one conversation; the truth behind ``Conversation.label_ids`` and filters."""

    __tablename__ = "conversation_labels"
    __table_args__ = (Index("ix_conversation_labels_label", "label_id", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SavedView(Base):
    """Filters of a conversation list a user keeps under a name; ``group_id`` shares it with
    that group (the owner's), empty keeps it private."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(16), default="conversations")
    """``conversations`` (operator/supervisor live lists) or ``history``."""
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
