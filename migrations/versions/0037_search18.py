"""search: full-text indexes over message text (PostgreSQL GIN, SQLite FTS5)

PostgreSQL: a stored generated column ``messages.search_tsv`` =
``to_tsvector('russian', body) || to_tsvector('english', body)`` with a GIN index (stored, so
filtering and ranking never re-parse a body), and trigram GIN indexes (``pg_trgm``, a trusted
extension) for substring search of contact names, e-mails and identities. SQLite: an
external-content FTS5 table ``messages_fts`` kept in step by three triggers and filled from the
existing rows. None of this is mapped in the models; ``omni.domain.search`` queries it.

Revision ID: 0037_search18
Revises: 0036_sla18
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037_search18"
down_revision: str | None = "0036_sla18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_TSV = "(to_tsvector('russian'::regconfig, body) || to_tsvector('english'::regconfig, body))"
"""The generated column's expression (``omni.domain.search.PG_TSV`` documents it)."""

TRGM = (
    ("ix_contacts_name_trgm", "contacts", "name"),
    ("ix_contacts_email_trgm", "contacts", "email"),
    ("ix_contact_identities_value_trgm", "contact_identities", "value"),
)
"""Kept in step with ``omni.domain.search.UNMAPPED_INDEXES``."""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            f"ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_tsv tsvector GENERATED ALWAYS AS ({PG_TSV}) STORED"
        )
        op.execute("CREATE INDEX IF NOT EXISTS ix_messages_search ON messages USING gin (search_tsv)")
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for index, table, column in TRGM:
            op.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin ({column} gin_trgm_ops)")
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
        for index, _table, _column in TRGM:
            op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
        op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_tsv")
        return
    for trigger in ("messages_fts_ai", "messages_fts_ad", "messages_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS messages_fts")
