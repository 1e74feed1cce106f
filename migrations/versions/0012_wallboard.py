"""wallboard: read-only wallboard tokens (hashed secret, queues, expiry, revocation)

Revision ID: 0010_wallboard
Revises: 0010_mailing
Create Date: 2026-11-29 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_wallboard"
down_revision: str | None = "0010_mailing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wallboard_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("queue_ids", sa.JSON(), nullable=True),
        sa.Column("sl_target_pct", sa.Integer(), nullable=False, server_default="80"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_wallboard_tokens_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallboard_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_wallboard_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("wallboard_tokens")
