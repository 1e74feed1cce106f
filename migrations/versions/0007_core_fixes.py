"""queues.overflow_scenario: the scenario a queue timeout overflows to (overflow_action 'bot')

Revision ID: 0007_core_fixes
Revises: 0006
Create Date: 2026-11-29 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007_core_fixes"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("overflow_scenario", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.drop_column("overflow_scenario")
