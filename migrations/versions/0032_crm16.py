"""crm16: CRM settings, the screen-pop card cache, Bitrix24 links, webhook subscription kinds

Revision ID: 0032_crm16
Revises: 0031_phone17
Create Date: 2026-11-30 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032_crm16"
down_revision: str | None = "0031_phone17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="generic", nullable=False))
    op.create_table(
        "crm_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fetch_url", sa.String(length=2048), nullable=False),
        sa.Column("fetch_secret", sa.String(length=128), nullable=False),
        sa.Column("fetch_timeout_ms", sa.Integer(), nullable=False),
        sa.Column("fetch_cache_seconds", sa.Integer(), nullable=False),
        sa.Column("push_url", sa.String(length=2048), nullable=False),
        sa.Column("push_secret", sa.String(length=128), nullable=False),
        sa.Column("push_subscription_id", sa.Integer(), nullable=True),
        sa.Column("bitrix_url", sa.String(length=2048), nullable=False),
        sa.Column("bitrix_entity", sa.String(length=8), nullable=False),
        sa.Column("bitrix_user_id", sa.Integer(), nullable=False),
        sa.Column("bitrix_subscription_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_settings")),
    )
    op.create_table(
        "crm_cards",
        sa.Column("url_digest", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("url_digest", name=op.f("pk_crm_cards")),
    )
    with op.batch_alter_table("crm_cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_cards_conversation_id"), ["conversation_id"], unique=False)
    op.create_table(
        "crm_links",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("entity_type", sa.String(length=8), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("updated", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_links")),
        sa.UniqueConstraint("conversation_id", name="uq_crm_links_conversation"),
    )
    with op.batch_alter_table("crm_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_links_contact_id"), ["contact_id"], unique=False)


def downgrade() -> None:
    op.drop_table("crm_links")
    op.drop_table("crm_cards")
    op.drop_table("crm_settings")
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("kind")
