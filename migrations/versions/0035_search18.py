"""search: full-text indexes over message text (PostgreSQL GIN, SQLite FTS5)

PostgreSQL: a GIN index on ``to_tsvector('russian', body) || to_tsvector('english', body)``
(an expression index, so ``messages`` keeps its mapped columns and nothing has to maintain a
stored copy). SQLite: an external-content FTS5 table ``messages_fts`` kept in step by three
triggers and filled from the existing rows. ``omni.domain.search`` queries both.

Revision ID: 0035_search18
Revises: 0034_line17
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035_search18"
down_revision: str | None = "0034_line17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_TSV = "(to_tsvector('russian'::regconfig, body) || to_tsvector('english'::regconfig, body))"
"""Must stay identical to ``omni.domain.search.PG_TSV`` or the planner won't use the index."""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_messages_search ON messages USING gin ({PG_TSV})")
        return
    op.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5("
        "body, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS messages_fts_ai AFTER INSERT ON messages BEGIN "
        "INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body); END"
    )
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS messages_fts_ad AFTER DELETE ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body); END"
    )
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS messages_fts_au AFTER UPDATE OF body ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body); "
        "INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body); END"
    )
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
        return
    for trigger in ("messages_fts_ai", "messages_fts_ad", "messages_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS messages_fts")
