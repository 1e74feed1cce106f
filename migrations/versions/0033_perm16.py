"""perm16: per-role grants changed by admins, and the webhooks that receive masked data

Revision ID: 0033_perm16
Revises: 0032_crm16
Create Date: 2026-11-30 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033_perm16"
down_revision: str | None = "0032_crm16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "role_grants",
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("grant", sa.String(length=64), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role", "grant", name=op.f("pk_role_grants")),
    )
    op.create_table(
        "masked_webhooks",
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_masked_webhooks_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_masked_webhooks")),
    )


def downgrade() -> None:
    op.drop_table("masked_webhooks")
    op.drop_table("role_grants")
