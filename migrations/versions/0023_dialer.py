"""dialer: predictive pacing, AMD and agentless settings of a campaign, per-contact results,
prompts, the staff file area and the TTS cache

Revision ID: 0023_dialer
Revises: 0022_lists
Create Date: 2026-11-30 01:22:18.011710
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0023_dialer"
down_revision: str | None = "0022_lists"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tts_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sound", sa.String(length=512), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tts_cache")),
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=True),
        sa.Column("sound", sa.String(length=512), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_prompts_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["stored_files.id"],
            name=op.f("fk_prompts_file_id_stored_files"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.UniqueConstraint("folder", "name", name="uq_prompts_folder_name"),
    )
    op.create_table(
        "staff_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["stored_files.id"],
            name=op.f("fk_staff_files_file_id_stored_files"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_staff_files_uploaded_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_files")),
        sa.UniqueConstraint("folder", "name", name="uq_staff_files_folder_name"),
    )
    with op.batch_alter_table("campaign_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amd", sa.String(length=16), nullable=False, server_default=""))

    with op.batch_alter_table("campaign_targets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=False, server_default="{}"))

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_abandon_pct", sa.Float(), nullable=False, server_default="3.0"))
        batch_op.add_column(
            sa.Column("max_lines_per_operator", sa.Float(), nullable=False, server_default="3.0")
        )
        batch_op.add_column(sa.Column("drop_seconds", sa.Integer(), nullable=False, server_default="2"))
        batch_op.add_column(sa.Column("drop_prompt_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("drop_text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("amd_enabled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(
            sa.Column("machine_action", sa.String(length=16), nullable=False, server_default="retry")
        )
        batch_op.add_column(sa.Column("machine_prompt_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("machine_text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("scenario", sa.String(length=64), nullable=False, server_default=""))
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_drop_prompt_id_prompts"),
            "prompts",
            ["drop_prompt_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_machine_prompt_id_prompts"),
            "prompts",
            ["machine_prompt_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaigns_machine_prompt_id_prompts"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_campaigns_drop_prompt_id_prompts"), type_="foreignkey")
        batch_op.drop_column("scenario")
        batch_op.drop_column("machine_text")
        batch_op.drop_column("machine_prompt_id")
        batch_op.drop_column("machine_action")
        batch_op.drop_column("amd_enabled")
        batch_op.drop_column("drop_text")
        batch_op.drop_column("drop_prompt_id")
        batch_op.drop_column("drop_seconds")
        batch_op.drop_column("max_lines_per_operator")
        batch_op.drop_column("target_abandon_pct")

    with op.batch_alter_table("campaign_targets", schema=None) as batch_op:
        batch_op.drop_column("result")

    with op.batch_alter_table("campaign_attempts", schema=None) as batch_op:
        batch_op.drop_column("amd")

    op.drop_table("staff_files")
    op.drop_table("prompts")
    op.drop_table("tts_cache")
