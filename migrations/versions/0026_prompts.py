"""prompts: folders of the prompt manager and the staff file area

Revision ID: 0026_prompts
Revises: 0025_import13
Create Date: 2026-11-30 01:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_prompts"
down_revision: str | None = "0025_import13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_folders")),
        sa.UniqueConstraint("area", "path", name="uq_media_folders_area_path"),
    )


def downgrade() -> None:
    op.drop_table("media_folders")
