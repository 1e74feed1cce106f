"""searchperf18: scope and date filters of message search as index conditions on PostgreSQL

``messages.search_queue_id`` is a copy of the conversation's ``queue_id`` kept by two triggers
(every writer of messages is covered, the ORM's and raw SQL alike): one fills it when a message
is inserted or moved to another conversation, the other rewrites a conversation's messages when
its queue changes (a transfer). With ``ix_messages_search_queue (search_queue_id, id)`` and
``ix_messages_created_at`` an operator's or supervisor's queues and a date range are bitmap
index conditions next to the GIN index, so a search no longer joins ``conversations`` for
millions of rows (bench/search_bench.py). Existing rows are filled in batches of ``BATCH`` ids.

``ix_conversations_assignee_queue`` and ``ix_conversations_preferred_queue`` (both databases, in
the models) find the conversations kept for an operator outside their queues, the other half of
the scope, from the index alone. SQLite (embedded mode)
searches through FTS5 and has no use for the copy. The column, triggers and the two message
indexes are not mapped in the models (``omni.domain.search.UNMAPPED_INDEXES``).

Revision ID: 0042_searchperf18
Revises: 0041_qa18
Create Date: 2026-11-30 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0042_searchperf18"
down_revision: str | None = "0041_qa18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT_INDEXES = (
    ("ix_conversations_assignee_queue", "assigned_user_id"),
    ("ix_conversations_preferred_queue", "preferred_user_id"),
)
"""Conversations assigned or reserved to an operator, with their queue (an index-only read)."""

BATCH = 50_000
"""Message ids per backfill statement."""

FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION omni_messages_search_queue() RETURNS trigger AS $$
    BEGIN
        NEW.search_queue_id := (SELECT queue_id FROM conversations WHERE id = NEW.conversation_id);
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION omni_conversations_search_queue() RETURNS trigger AS $$
    BEGIN
        UPDATE messages SET search_queue_id = NEW.queue_id
        WHERE conversation_id = NEW.id AND search_queue_id IS DISTINCT FROM NEW.queue_id;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
)


def upgrade() -> None:
    # both databases: search's scope looks up the conversations kept for an operator
    for index, column in KEPT_INDEXES:
        op.create_index(index, "conversations", [column, "queue_id"], if_not_exists=True)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_queue_id integer")
    for sql in FUNCTIONS:
        op.execute(sql)
    op.execute("DROP TRIGGER IF EXISTS messages_search_queue ON messages")
    op.execute(
        "CREATE TRIGGER messages_search_queue BEFORE INSERT OR UPDATE OF conversation_id ON messages "
        "FOR EACH ROW EXECUTE FUNCTION omni_messages_search_queue()"
    )
    op.execute("DROP TRIGGER IF EXISTS conversations_search_queue ON conversations")
    op.execute(
        "CREATE TRIGGER conversations_search_queue AFTER UPDATE OF queue_id ON conversations "
        "FOR EACH ROW WHEN (OLD.queue_id IS DISTINCT FROM NEW.queue_id) "
        "EXECUTE FUNCTION omni_conversations_search_queue()"
    )
    # existing rows, a batch of ids at a time (before the new indexes: fewer index writes)
    bind = op.get_bind()
    low, high = bind.execute(sa.text("SELECT min(id), max(id) FROM messages")).one()
    if low is not None:
        for start in range(low, high + 1, BATCH):
            bind.execute(
                sa.text(
                    "UPDATE messages SET search_queue_id = c.queue_id FROM conversations c "
                    "WHERE c.id = messages.conversation_id AND messages.id BETWEEN :a AND :b "
                    "AND c.queue_id IS NOT NULL"
                ),
                {"a": start, "b": start + BATCH - 1},
            )
    op.execute("CREATE INDEX IF NOT EXISTS ix_messages_search_queue ON messages (search_queue_id, id)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_messages_created_at ON messages (created_at)")


def downgrade() -> None:
    for index, _column in KEPT_INDEXES:
        op.drop_index(index, table_name="conversations", if_exists=True)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_created_at")
    op.execute("DROP INDEX IF EXISTS ix_messages_search_queue")
    op.execute("DROP TRIGGER IF EXISTS conversations_search_queue ON conversations")
    op.execute("DROP TRIGGER IF EXISTS messages_search_queue ON messages")
    op.execute("DROP FUNCTION IF EXISTS omni_conversations_search_queue()")
    op.execute("DROP FUNCTION IF EXISTS omni_messages_search_queue()")
    op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_queue_id")
