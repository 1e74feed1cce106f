"""chatbot: chat, chat-load, bot-run, bot-node and survey interval rollups

Revision ID: 0010_chatbot
Revises: 0010_operators
Create Date: 2026-11-29 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_chatbot"
down_revision: str | None = "0010_operators"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(*cols: tuple[str, sa.types.TypeEngine[object]]) -> list[sa.Column[object]]:
    return [sa.Column(name, kind, nullable=False) for name, kind in cols]


def _counts(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(n, sa.Integer(), nullable=False, server_default="0") for n in names]


def _sums(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(n, sa.Float(), nullable=False, server_default="0") for n in names]


BUCKET = ("bucket", sa.DateTime(timezone=True))


def upgrade() -> None:
    op.create_table(
        "report_chat_intervals",
        *_key(
            BUCKET,
            ("queue_id", sa.Integer()),
            ("channel", sa.String(length=32)),
            ("inbox_id", sa.Integer()),
            ("user_id", sa.Integer()),
            ("medium", sa.String(length=8)),
        ),
        *_counts("conversations", "accepted", "frt_count"),
        *_sums("frt_sum", "frt_max"),
        *_counts("frt_accept_count"),
        *_sums("frt_accept_sum"),
        *_counts("frt_30", "frt_60", "frt_180", "frt_300", "reply_count"),
        *_sums("reply_sum"),
        *_counts("closed_operator", "closed_timeout", "closed_customer", "closed_other", "csat_count"),
        *_sums("csat_sum"),
        *_counts("csat_good"),
        sa.PrimaryKeyConstraint(
            "bucket",
            "queue_id",
            "channel",
            "inbox_id",
            "user_id",
            "medium",
            name=op.f("pk_report_chat_intervals"),
        ),
    )
    op.create_table(
        "report_chat_load_intervals",
        *_key(BUCKET, ("user_id", sa.Integer())),
        *_counts("chats", "peak"),
        *_sums("chat_seconds", "busy_seconds"),
        sa.PrimaryKeyConstraint("bucket", "user_id", name=op.f("pk_report_chat_load_intervals")),
    )
    run_key = (
        BUCKET,
        ("revision_id", sa.Integer()),
        ("channel", sa.String(length=32)),
        ("queue_id", sa.Integer()),
        ("inbox_id", sa.Integer()),
    )
    op.create_table(
        "report_bot_intervals",
        *_key(*run_key),
        *_counts("started", "handed_off", "contained", "dropped", "moved", "running"),
        sa.PrimaryKeyConstraint(
            "bucket", "revision_id", "channel", "queue_id", "inbox_id", name=op.f("pk_report_bot_intervals")
        ),
    )
    op.create_table(
        "report_bot_node_intervals",
        *_key(*run_key, ("node", sa.String(length=64))),
        *_counts("entered", "left", "invalid", "no_input", "dropped"),
        sa.PrimaryKeyConstraint(
            "bucket",
            "revision_id",
            "channel",
            "queue_id",
            "inbox_id",
            "node",
            name=op.f("pk_report_bot_node_intervals"),
        ),
    )
    op.create_table(
        "report_survey_intervals",
        *_key(
            BUCKET,
            ("revision_id", sa.Integer()),
            ("node", sa.String(length=64)),
            ("variable", sa.String(length=64)),
            ("value", sa.String(length=128)),
            ("channel", sa.String(length=32)),
            ("queue_id", sa.Integer()),
            ("inbox_id", sa.Integer()),
            ("user_id", sa.Integer()),
        ),
        *_counts("answers"),
        sa.PrimaryKeyConstraint(
            "bucket",
            "revision_id",
            "node",
            "variable",
            "value",
            "channel",
            "queue_id",
            "inbox_id",
            "user_id",
            name=op.f("pk_report_survey_intervals"),
        ),
    )
    # The rollups rebuild an interval from the raw rows of that interval: find them by time.
    op.create_index("ix_survey_answers_created_at", "survey_answers", ["created_at"])
    op.create_index("ix_bot_steps_created_at", "bot_steps", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_bot_steps_created_at", table_name="bot_steps")
    op.drop_index("ix_survey_answers_created_at", table_name="survey_answers")
    op.drop_table("report_survey_intervals")
    op.drop_table("report_bot_node_intervals")
    op.drop_table("report_bot_intervals")
    op.drop_table("report_chat_load_intervals")
    op.drop_table("report_chat_intervals")
