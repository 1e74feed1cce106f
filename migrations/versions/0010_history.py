"""history: indexes for the contact history search, report export jobs

Revision ID: 0010_history
Revises: 0009_reports
Create Date: 2026-11-29 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_history"
down_revision: str | None = "0009_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_conversations_created", "conversations", ["created_at"])
    op.create_index("ix_conversations_queue_created", "conversations", ["queue_id", "created_at"])
    op.create_index("ix_conversations_assignee_created", "conversations", ["assigned_user_id", "created_at"])
    op.create_table(
        "report_exports",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("report", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=256), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_report_exports_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_exports")),
    )
    op.create_index("ix_report_exports_user_id", "report_exports", ["user_id"])
    op.create_index("ix_report_exports_expires", "report_exports", ["state", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_report_exports_expires", table_name="report_exports")
    op.drop_index("ix_report_exports_user_id", table_name="report_exports")
    op.drop_table("report_exports")
    op.drop_index("ix_conversations_assignee_created", table_name="conversations")
    op.drop_index("ix_conversations_queue_created", table_name="conversations")
    op.drop_index("ix_conversations_created", table_name="conversations")
