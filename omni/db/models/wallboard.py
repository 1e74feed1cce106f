"""Wallboard tokens: read-only links that open ``/wallboard`` on a wall screen without a login."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, utcnow


class WallboardToken(Base):
    """One wall screen's link. Only the SHA-256 of the secret is stored; the admin sees the
    secret once, when it is created. ``queue_ids`` ``None`` means every queue."""

    __tablename__ = "wallboard_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    queue_ids: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    """The queues the screen shows; ``None`` = all queues, including ones created later."""
    sl_target_pct: Mapped[int] = mapped_column(Integer, default=80)
    """SL % at or above this is green, within ``SL_AMBER_MARGIN`` below it amber, lower red."""
    expires_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    """Last page load or socket connection with this token."""
    revoked_at: Mapped[datetime | None] = mapped_column()


__all__ = ["WallboardToken"]
