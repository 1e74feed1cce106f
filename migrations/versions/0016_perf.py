"""perf: partial index on the open status spans

Every operator report and the staffing report add the spans still open (``ended_at IS NULL``:
one per operator) to the rollups; without this index each run scanned all of
``status_history`` (3.8 M rows in bench/reports.py at 1,000,000 conversations: ~0.35 s).

Revision ID: 0010_perf
Revises: 0010_chatbot
Create Date: 2026-11-29 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_perf"
down_revision: str | None = "0010_chatbot"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_status_history_open",
        "status_history",
        ["user_id"],
        postgresql_where=sa.text("ended_at IS NULL"),
        sqlite_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_status_history_open", table_name="status_history")
