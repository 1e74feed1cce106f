"""quality assessment: scorecards (versioned) and evaluations of conversations

Revision ID: 0041_qa18
Revises: 0040_cal16
Create Date: 2026-11-30 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0041_qa18"
down_revision: str | None = "0040_cal16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DT = sa.DateTime(timezone=True)
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "qa_scorecards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_qa_scorecards_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_scorecards")),
    )
    with op.batch_alter_table("qa_scorecards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_scorecards_family_id"), ["family_id"], unique=False)
    op.create_table(
        "qa_evaluations",
        sa.Column("id", BIG, nullable=False),
        sa.Column("scorecard_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", BIG, nullable=False),
        sa.Column("grader_id", sa.Integer(), nullable=True),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("critical_failed", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("operator_comment", sa.Text(), nullable=False),
        sa.Column("acknowledged_at", UTC_DT, nullable=True),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["scorecard_id"],
            ["qa_scorecards.id"],
            name=op.f("fk_qa_evaluations_scorecard_id_qa_scorecards"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_qa_evaluations_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["grader_id"], ["users.id"], name=op.f("fk_qa_evaluations_grader_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["users.id"],
            name=op.f("fk_qa_evaluations_operator_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_evaluations")),
    )
    with op.batch_alter_table("qa_evaluations", schema=None) as batch_op:
        batch_op.create_index("ix_qa_evaluations_conversation", ["conversation_id"], unique=False)
        batch_op.create_index(
            "ix_qa_evaluations_operator_created", ["operator_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_qa_evaluations_queue_created", ["queue_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("qa_evaluations")
    op.drop_table("qa_scorecards")
