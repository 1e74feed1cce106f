"""operators: operator and status-time interval rollups (and status time per hour)

Revision ID: 0010_operators
Revises: 0010_facts
Create Date: 2026-11-29 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_operators"
down_revision: str | None = "0010_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "offers",
    "accepted",
    "declined",
    "timed_out",
    "handled",
    "ended_operator",
    "ended_customer",
    "ended_timeout",
    "ended_system",
    "transfers_made",
    "transfers_received",
    "frt_count",
    "csat_count",
    "csat_good",
)
SUMS = ("talk_sum", "hold_sum", "wrap_sum", "frt_sum", "csat_sum")


def upgrade() -> None:
    for table in ("report_operator_intervals", "report_operator_hours"):
        op.create_table(
            table,
            sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("queue_id", sa.Integer(), nullable=False),
            sa.Column("channel", sa.String(length=32), nullable=False),
            sa.Column("result_code_id", sa.Integer(), nullable=False),
            *[sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in COUNTS],
            *[sa.Column(name, sa.Float(), nullable=False, server_default="0") for name in SUMS],
            sa.PrimaryKeyConstraint(
                "bucket", "user_id", "queue_id", "channel", "result_code_id", name=op.f(f"pk_{table}")
            ),
        )
    op.create_table(
        "report_status_intervals",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("bucket", "user_id", "status_code", name=op.f("pk_report_status_intervals")),
    )
    op.create_table(
        "report_status_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("hour", "user_id", "status_code", name=op.f("pk_report_status_hours")),
    )
    op.create_index("ix_offers_created_at", "offers", ["created_at"])
    op.create_index("ix_events_type_created_at", "events", ["type", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_events_type_created_at", table_name="events")
    op.drop_index("ix_offers_created_at", table_name="offers")
    op.drop_table("report_status_hours")
    op.drop_table("report_status_intervals")
    op.drop_table("report_operator_hours")
    op.drop_table("report_operator_intervals")
