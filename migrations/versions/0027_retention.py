"""retention: how long personal data is kept, and contacts erased on request

Revision ID: 0027_retention
Revises: 0026_prompts
Create Date: 2026-11-30 04:46:56.662809
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_retention"
down_revision: str | None = "0026_prompts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("messages_days", sa.Integer(), nullable=True),
        sa.Column("attachments_days", sa.Integer(), nullable=True),
        sa.Column("recordings_days", sa.Integer(), nullable=True),
        sa.Column("audit_days", sa.Integer(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_counts", sa.JSON(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_settings")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
    op.drop_table("retention_settings")
