"""Chat service levels (``omni.domain.sla``): a policy per queue and one row per wait for a reply."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, BigId, utcnow

__all__ = ["SlaPolicy", "SlaTarget"]


class SlaPolicy(Base):
    """How fast a queue's chats must be answered: the first reply after the customer is put in
    line, and each next reply after the customer writes. ``0`` = that kind is not measured."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), unique=True)
    first_response_seconds: Mapped[int] = mapped_column(Integer, default=0)
    next_response_seconds: Mapped[int] = mapped_column(Integer, default=0)
    warning_percent: Mapped[int] = mapped_column(Integer, default=75)
    """Share of the deadline after which the conversation shows as "warning" (amber)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    transcript_at_close: Mapped[bool] = mapped_column(Boolean, default=False)
    """Mail the customer the conversation when it closes (``omni.domain.transcript``), if their
    card has an e-mail address."""


class SlaTarget(Base):
    """One wait for an operator's reply: the live clock while ``ended_at`` is empty, and the
    fact reports count afterwards (``breached_at`` set = the deadline passed unanswered)."""

    __tablename__ = "sla_targets"
    __table_args__ = (
        Index("ix_sla_targets_conversation", "conversation_id", "ended_at"),
        Index("ix_sla_targets_queue_started", "queue_id", "started_at"),
        Index("ix_sla_targets_user_started", "user_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(BigInteger)
    queue_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    """The operator who handles it (set at acceptance, or by the reply); None while waiting in line."""
    kind: Mapped[str] = mapped_column(String(8))
    """first | next."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    warning_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    breached_at: Mapped[datetime | None] = mapped_column()
    replied_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    """Replied, or the conversation closed / left the queue's measurement."""
