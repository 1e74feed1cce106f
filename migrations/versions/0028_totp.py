"""totp: two-factor sign-in (a TOTP secret per user, roles that must use it)

Revision ID: 0028_totp
Revises: 0027_retention
Create Date: 2026-11-30 05:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_totp"
down_revision: str | None = "0027_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("install_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_roles", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
    with op.batch_alter_table("install_settings", schema=None) as batch_op:
        batch_op.drop_column("totp_roles")
