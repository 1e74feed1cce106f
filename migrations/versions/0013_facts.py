"""facts: the rollup driver's cursor over the event log; contacts indexed by the start of their wait

Revision ID: 0010_facts
Revises: 0010_wallboard
Create Date: 2026-11-29 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_facts"
down_revision: str | None = "0010_wallboard"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("gaps", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_cursors")),
    )
    op.create_index("ix_conversations_first_enqueued", "conversations", ["first_enqueued_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_first_enqueued", table_name="conversations")
    op.drop_table("report_cursors")
