"""lists: import job heartbeat, DNC count and the sniffed shape of the upload

Revision ID: 0022_lists
Revises: 0021_engine
Create Date: 2026-11-29 22:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_lists"
down_revision: str | None = "0021_engine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("list_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rows_dnc", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("sniffed", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("list_imports", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("sniffed")
        batch_op.drop_column("rows_dnc")
