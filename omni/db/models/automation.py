"""Macros, automation rules (with their run log) and operator scripts (issue 18).

Actions of macros and rules are one JSON list of ``{"kind": ..., ...}`` checked by the action
registry of ``omni.domain.automation.actions``; the tables only keep what was checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, BigId, utcnow

__all__ = ["AutomationRule", "Macro", "OperatorScript", "RuleCausedEvent", "RuleRun"]


class Macro(Base):
    """A named, ordered list of actions an operator runs with one click (global or per queue)."""

    __tablename__ = "macros"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), index=True)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AutomationRule(Base):
    """event → conditions → actions, run by the outbox relay once per (rule, event)."""

    __tablename__ = "automation_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(32))
    """message_in | queued | assigned | closed (``omni.domain.automation.rules.TRIGGERS``)."""
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleRun(Base):
    """What one rule did for one event; the unique key makes a run happen at most once even
    when two nodes or a restarted relay see the same event."""

    __tablename__ = "rule_runs"
    __table_args__ = (
        UniqueConstraint("rule_id", "event_id", name="uq_rule_runs_rule_event"),
        Index("ix_rule_runs_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="done")
    """done | failed (stopped at the first failing action)."""
    done: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleCausedEvent(Base):
    """An event a rule's actions emitted: it never triggers rules again (loop safety)."""

    __tablename__ = "rule_caused_events"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    rule_run_id: Mapped[int] = mapped_column(BigInteger)


class OperatorScript(Base):
    """A script shown beside the conversation (one per queue, or the global one): text with
    placeholders, the card fields the operator fills, optional POSTs at start and at close
    through a webhook subscription of its own (signed, retried like every delivery)."""

    __tablename__ = "operator_scripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), unique=True, nullable=True
    )
    body: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Card field keys (``card_fields.key`` or name/email/phone) the script asks for, in order."""
    start_url: Mapped[str] = mapped_column(String(2048), default="")
    close_url: Mapped[str] = mapped_column(String(2048), default="")
    start_subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="SET NULL")
    )
    """The subscription whose URL and secret the start POST uses (made for ``start_url``)."""
    close_subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
