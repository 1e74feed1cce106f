"""dnc: one entry per number on the global do-not-call list too

``uq_dnc_entries_campaign_number`` (campaign_id, number) never fires for the global list: NULLs
are distinct in a UNIQUE constraint on PostgreSQL and SQLite, so the same number could be
listed globally any number of times. A partial unique index over the global rows closes that.
Existing global duplicates are folded into the oldest entry first.

Revision ID: 0019_dnc
Revises: 0018_outbound
Create Date: 2026-11-29 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_dnc"
down_revision: str | None = "0018_outbound"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM dnc_entries WHERE campaign_id IS NULL AND id NOT IN "
        "(SELECT MIN(id) FROM dnc_entries WHERE campaign_id IS NULL GROUP BY number)"
    )
    op.create_index(
        "uq_dnc_entries_global_number",
        "dnc_entries",
        ["number"],
        unique=True,
        postgresql_where=sa.text("campaign_id IS NULL"),
        sqlite_where=sa.text("campaign_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_dnc_entries_global_number", table_name="dnc_entries")
