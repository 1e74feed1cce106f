"""queues: one place in line across channels (affinity to the customer's operator, blending)

Revision ID: 0034_line17
Revises: 0033_perm16
Create Date: 2026-11-30 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034_line17"
down_revision: str | None = "0033_perm16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("affinity_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("affinity_skip_ivr", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("blend_notice", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("blend_reoffer_seconds", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.drop_column("blend_reoffer_seconds")
        batch_op.drop_column("blend_notice")
        batch_op.drop_column("affinity_skip_ivr")
        batch_op.drop_column("affinity_seconds")
