"""Voice call legs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import (
    Base,
    BigId,
    utcnow,
)


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
