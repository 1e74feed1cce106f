"""Per-role grants an admin changed from the defaults, and the webhooks that get masked data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, utcnow

__all__ = ["MaskedWebhook", "RoleGrant"]


class RoleGrant(Base):
    """One role's grant where it differs from ``omni.domain.grants``' default (no row: default)."""

    __tablename__ = "role_grants"

    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    grant: Mapped[str] = mapped_column(String(64), primary_key=True)
    allowed: Mapped[bool] = mapped_column(Boolean)
    scope: Mapped[str | None] = mapped_column(String(8), nullable=True, default=None)
    """``own`` / ``group`` / ``all`` for the grants whose rows have an owner (``None``: the
    role's natural scope, ``omni.domain.grants.NATURAL``)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MaskedWebhook(Base):
    """A webhook subscription whose payloads carry masked phones and e-mails."""

    __tablename__ = "masked_webhooks"

    subscription_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
