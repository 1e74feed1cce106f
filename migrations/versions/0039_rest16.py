"""role_grants.scope: a grant held at own / group / all (admins widen and narrow with a scope)

Revision ID: 0039_rest16
Revises: 0038_organise18
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039_rest16"
down_revision: str | None = "0038_organise18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_column("scope")
