"""Quality assessment (issue 18, ``omni.domain.qa``): scorecards and the evaluations made with them.

A scorecard is never edited once an evaluation uses it: a change then writes a new version
(``family_id`` shared, ``version`` + 1) and retires the old one, so an old grade keeps the
questions and weights it was given against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, BigId, utcnow

__all__ = ["QaEvaluation", "QaScorecard"]


class QaScorecard(Base):
    """One version of a scorecard: its questions (``items``) with weights and kinds."""

    __tablename__ = "qa_scorecards"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The first version's id (every version of one scorecard shares it)."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    items: Mapped[list[Any]] = mapped_column(default=list)
    """``[{"key", "text", "kind": "yesno"|"scale", "weight", "critical", "scale_max"}]``."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    """False: retired (a newer version replaced it, or it was archived); kept for old grades."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaEvaluation(Base):
    """One grader's grade of one conversation (or call) with one scorecard version."""

    __tablename__ = "qa_evaluations"
    __table_args__ = (
        Index("ix_qa_evaluations_conversation", "conversation_id"),
        Index("ix_qa_evaluations_operator_created", "operator_id", "created_at"),
        Index("ix_qa_evaluations_queue_created", "queue_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("qa_scorecards.id", ondelete="RESTRICT"))
    conversation_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    grader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """The operator graded (the conversation's operator unless the grader named another)."""
    queue_id: Mapped[int | None] = mapped_column(Integer)
    """The conversation's queue when graded (the QA report groups by it)."""
    mode: Mapped[str] = mapped_column(String(8), default="history")
    """``history`` (after the fact) or ``live`` (while it ran)."""
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """``{item key: true/false (yes/no) | 0..scale_max (scale) | null (not applicable)}``."""
    score: Mapped[float] = mapped_column(Float, default=0.0)
    """0–100, computed by the server; 0 when a critical item failed."""
    critical_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    """The grader's remark to the operator."""
    operator_comment: Mapped[str] = mapped_column(Text, default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    """When the operator read it (and commented, if they did)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
