"""reports: the install settings (time zone, short-abandon grace, business days)

Revision ID: 0009_reports
Revises: 0007_i18n
Create Date: 2026-11-29 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_reports"
down_revision: str | None = "0007_i18n"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "install_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"),
        sa.Column("short_abandon_seconds", sa.Integer(), nullable=False, server_default="5"),
        sa.Column("business_days", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_install_settings")),
    )


def downgrade() -> None:
    op.drop_table("install_settings")
