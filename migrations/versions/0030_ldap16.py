"""ldap16: directory (LDAP) accounts; idle-chat close and missed-offer pause per queue

Revision ID: 0030_ldap16
Revises: 0029_password_resets
Create Date: 2026-11-30 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_ldap16"
down_revision: str | None = "0029_password_resets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auth_source", sa.String(length=16), nullable=False, server_default="local")
        )
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idle_close_minutes", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("missed_offers_pause", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.drop_column("missed_offers_pause")
        batch_op.drop_column("idle_close_minutes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("auth_source")
