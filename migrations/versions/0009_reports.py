"""reports: the install settings (time zone, short-abandon grace, business days), queue intervals

Revision ID: 0009_reports
Revises: 0007_i18n
Create Date: 2026-11-29 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_reports"
down_revision: str | None = "0007_i18n"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "install_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"),
        sa.Column("short_abandon_seconds", sa.Integer(), nullable=False, server_default="5"),
        sa.Column("business_days", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_install_settings")),
    )
    op.create_table(
        "report_queue_intervals",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("result_code_id", sa.Integer(), nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("answered", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("answered_in_sl", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abandoned", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abandoned_short", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("missed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("overflowed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("callbacks_made", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("transfers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("wait_answered_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("wait_abandoned_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("wait_max", sa.Float(), nullable=False, server_default="0"),
        sa.Column("handled", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("talk_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("hold_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("wrap_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("ans_5", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_10", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_15", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_20", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_30", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_45", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_60", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_90", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_120", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_180", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ans_300", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_5", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_10", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_15", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_20", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_30", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_45", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_60", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_90", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_120", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_180", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("abn_300", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint(
            "bucket",
            "queue_id",
            "channel",
            "inbox_id",
            "result_code_id",
            name=op.f("pk_report_queue_intervals"),
        ),
    )


def downgrade() -> None:
    op.drop_table("report_queue_intervals")
    op.drop_table("install_settings")
