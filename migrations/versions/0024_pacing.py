"""pacing: index for the predictive controller's per-day abandon rate

Revision ID: 0024_pacing
Revises: 0023_dialer
Create Date: 2026-11-30 01:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024_pacing"
down_revision: str | None = "0023_dialer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # pacing.measure counts a campaign's answered and dropped calls since local midnight on
    # every scheduler tick: an index-only range scan instead of all of today's attempts.
    op.create_index(
        "ix_campaign_attempts_campaign_outcome_ended",
        "campaign_attempts",
        ["campaign_id", "outcome", "ended_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_attempts_campaign_outcome_ended", table_name="campaign_attempts")
