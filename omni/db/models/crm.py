"""The CRM integration: its settings, the screen-pop cache and what a connector created.

``omni.domain.crm`` owns these tables. Pushes themselves are ordinary webhook deliveries (a
``WebhookSubscription`` whose ``kind`` names the CRM format), so retries, the delivery log and
replay are the webhook machinery's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, BigId, utcnow


class CrmSettings(Base):
    """One row (``id = 1``): where the card comes from and where results go.

    In the database, like the retention policies, because admins change it from the admin
    pages and every node (and the Celery worker) must agree at once. Secrets are write-only
    through the admin form and REST (never echoed back).
    """

    __tablename__ = "crm_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fetch_url: Mapped[str] = mapped_column(String(2048), default="")
    """Card URL template (``{phone}``, ``{email}``, ``{identity}``...); empty = no screen-pop."""
    fetch_secret: Mapped[str] = mapped_column(String(128), default="")
    fetch_timeout_ms: Mapped[int] = mapped_column(Integer, default=2000)
    fetch_cache_seconds: Mapped[int] = mapped_column(Integer, default=300)
    push_url: Mapped[str] = mapped_column(String(2048), default="")
    """Where a closed conversation's result is POSTed; empty = no push."""
    push_secret: Mapped[str] = mapped_column(String(128), default="")
    push_subscription_id: Mapped[int | None] = mapped_column(Integer)
    """The webhook subscription (kind ``crm_push``) that carries the pushes."""
    bitrix_url: Mapped[str] = mapped_column(String(2048), default="")
    """Bitrix24 incoming-webhook base URL (``https://portal/rest/<user>/<token>/``)."""
    bitrix_entity: Mapped[str] = mapped_column(String(8), default="lead")
    """``lead`` or ``deal``: what a closed conversation creates or updates."""
    bitrix_user_id: Mapped[int] = mapped_column(Integer, default=1)
    """The Bitrix24 user who is responsible for created entities and owns attached calls."""
    bitrix_subscription_id: Mapped[int | None] = mapped_column(Integer)
    """The webhook subscription (kind ``bitrix24``) that carries the connector's pushes."""


class CrmCard(Base):
    """A fetched card, by the URL it came from (the same customer renders the same URL): what
    the operator's card shows within ``fetch_cache_seconds`` without asking the CRM again, and
    what a push sends as ``card``."""

    __tablename__ = "crm_cards"

    url_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """The last conversation it was fetched for (a push reads its card from here)."""


class CrmLink(Base):
    """A Bitrix24 entity a conversation created or updated, and the call attached to it.

    Written step by step during a push, so a retried delivery skips what already succeeded
    (no second lead when the call registration got a 503), and the contact's next conversation
    updates the same entity instead of creating another.
    """

    __tablename__ = "crm_links"
    __table_args__ = (UniqueConstraint("conversation_id", name="uq_crm_links_conversation"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(BigInteger)
    contact_id: Mapped[int] = mapped_column(Integer, index=True)
    entity_type: Mapped[str] = mapped_column(String(8))
    entity_id: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[str] = mapped_column(String(128), default="")
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Steps done for this conversation (``entity``, ``call``, ``finish``, ``comment``)."""
    updated: Mapped[bool] = mapped_column(Boolean, default=False)
    """True when the entity existed before (an update), False when this push created it."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
