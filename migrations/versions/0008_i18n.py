"""i18n: result codes get a Russian name beside the English one

Demo data and admins wrote both languages into one name ("Resolved / Решено"); such names are
split into ``name`` / ``name_ru`` here, so each language shows only its own.

Revision ID: 0007_i18n
Revises: 0007_core_fixes
Create Date: 2026-11-29 13:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007_i18n"
down_revision: str | None = "0007_core_fixes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("result_codes") as batch:
        batch.add_column(sa.Column("name_ru", sa.String(length=128), nullable=False, server_default=""))
    codes = sa.table(
        "result_codes",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_ru", sa.String),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(codes.c.id, codes.c.name)).all():
        english, sep, russian = str(row.name).partition(" / ")
        if sep and english.strip() and russian.strip():
            bind.execute(
                codes.update()
                .where(codes.c.id == row.id)
                .values(name=english.strip(), name_ru=russian.strip())
            )


def downgrade() -> None:
    codes = sa.table(
        "result_codes",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_ru", sa.String),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(codes.c.id, codes.c.name, codes.c.name_ru)).all():
        if row.name_ru:
            bind.execute(
                codes.update().where(codes.c.id == row.id).values(name=f"{row.name} / {row.name_ru}"[:128])
            )
    with op.batch_alter_table("result_codes") as batch:
        batch.drop_column("name_ru")
