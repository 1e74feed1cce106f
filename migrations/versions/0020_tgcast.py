"""tgcast: campaign attempts by conversation

A Telegram customer's message looks up the broadcast sent to them (its campaign, target and
attempt) through ``campaign_attempts.conversation_id``; without an index that is a scan of every
attempt per inbound message.

Revision ID: 0020_tgcast
Revises: 0019_dnc
Create Date: 2026-11-29 22:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_tgcast"
down_revision: str | None = "0019_dnc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_campaign_attempts_conversation_id", "campaign_attempts", ["conversation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_attempts_conversation_id", table_name="campaign_attempts")
