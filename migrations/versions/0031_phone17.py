"""phone17: an operator's phone endpoint (desk phone or the browser softphone)

Revision ID: 0031_phone17
Revises: 0030_ldap16
Create Date: 2026-11-30 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031_phone17"
down_revision: str | None = "0030_ldap16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("phone_endpoint", sa.String(length=16), server_default="desk", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("phone_endpoint")
