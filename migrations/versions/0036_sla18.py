"""chat service levels: an SLA policy per queue and the waits for a reply (sla_targets)

Revision ID: 0036_sla18
Revises: 0035_macros18
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036_sla18"
down_revision: str | None = "0035_macros18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("first_response_seconds", sa.Integer(), nullable=False),
        sa.Column("next_response_seconds", sa.Integer(), nullable=False),
        sa.Column("warning_percent", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("transcript_at_close", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_sla_policies_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("queue_id", name=op.f("uq_sla_policies_queue_id")),
    )
    op.create_table(
        "sla_targets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warning_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_targets")),
    )
    with op.batch_alter_table("sla_targets", schema=None) as batch_op:
        batch_op.create_index("ix_sla_targets_conversation", ["conversation_id", "ended_at"], unique=False)
        batch_op.create_index("ix_sla_targets_queue_started", ["queue_id", "started_at"], unique=False)
        batch_op.create_index("ix_sla_targets_user_started", ["user_id", "started_at"], unique=False)


def downgrade() -> None:
    op.drop_table("sla_targets")
    op.drop_table("sla_policies")
