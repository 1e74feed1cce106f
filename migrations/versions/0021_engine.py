"""engine: the "takes outbound" status flag and the scheduler's indexes

``operator_statuses.takes_outbound``: shared statuses decide who receives campaign attempts
(blending); true for the statuses of kind ``available``, false for the others.

The scheduler's queries at 1,000,000 targets (bench/outbound_scheduler.py):
- ``ix_campaign_targets_zone_due`` (campaign, state, timezone, next_due_at): the distinct zones
  of a campaign's pending targets (a loose index scan: one seek per zone) and the oldest due
  targets of one zone whose window is open (a range scan that stops after the few it needs);
- ``ix_campaign_attempts_open_campaign`` / ``ix_campaign_attempts_open_operator``: open
  attempts (``ended_at IS NULL``) per campaign (concurrency) and per operator (who is free).

Revision ID: 0021_engine
Revises: 0020_tgcast
Create Date: 2026-11-29 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_engine"
down_revision: str | None = "0020_tgcast"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operator_statuses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("takes_outbound", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    statuses = sa.table(
        "operator_statuses", sa.column("kind", sa.String), sa.column("takes_outbound", sa.Boolean)
    )
    op.execute(statuses.update().where(statuses.c.kind == "available").values(takes_outbound=True))
    with op.batch_alter_table("operator_statuses", schema=None) as batch_op:
        batch_op.alter_column("takes_outbound", server_default=None)
    op.create_index(
        "ix_campaign_targets_zone_due",
        "campaign_targets",
        ["campaign_id", "state", "timezone", "next_due_at"],
    )
    op.create_index(
        "ix_campaign_attempts_open_campaign",
        "campaign_attempts",
        ["campaign_id"],
        postgresql_where=sa.text("ended_at IS NULL"),
        sqlite_where=sa.text("ended_at IS NULL"),
    )
    op.create_index(
        "ix_campaign_attempts_open_operator",
        "campaign_attempts",
        ["operator_id"],
        postgresql_where=sa.text("ended_at IS NULL"),
        sqlite_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_attempts_open_operator", table_name="campaign_attempts")
    op.drop_index("ix_campaign_attempts_open_campaign", table_name="campaign_attempts")
    op.drop_index("ix_campaign_targets_zone_due", table_name="campaign_targets")
    with op.batch_alter_table("operator_statuses", schema=None) as batch_op:
        batch_op.drop_column("takes_outbound")
