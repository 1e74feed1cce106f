"""route6: partial indexes on an operator's pending offers and the conversations they handle

An operator's load (the router's decision, ``capacity.load_rows``, per candidate) counts their
*pending* offers and the conversations they are handling; whether they are ringing
(``presence.do_refresh_activity``) looks for a pending offer. Through ``ix_offers_user_id``
PostgreSQL read every offer the operator was ever made and dropped all but the pending ones:
with 200,000 past offers (2,000 per operator) that was 19,000 buffers and 56 ms of a 57 ms
decision (bench/README.md, "Issue 15 … route6"). For the conversations it walked
``ix_conversations_status_queue`` (everyone's conversations in those statuses, per candidate)
when the statistics were taken while nobody was handling anything. Each partial index holds
only what is counted, a handful of rows per operator whatever the history. Building them reads
``offers`` and ``conversations`` once.

Revision ID: 0045_route6
Revises: 0044_routecache
Create Date: 2026-12-01 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0045_route6"
down_revision: str | None = "0044_routecache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


HOLDING = "status IN ('active', 'on_hold', 'wrap_up')"


def upgrade() -> None:
    op.create_index(
        "ix_conversations_holding_user",
        "conversations",
        ["assigned_user_id"],
        postgresql_where=sa.text(HOLDING),
        sqlite_where=sa.text(HOLDING),
    )
    op.create_index(
        "ix_offers_pending_user",
        "offers",
        ["user_id"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_offers_pending_user", table_name="offers")
    op.drop_index("ix_conversations_holding_user", table_name="conversations")
