"""searchperf2: phone digits through trigram indexes, scope with dates as one range (PostgreSQL)

A search that looks like a phone number ("+7 916 000 12", "123456") matches the digits of
``contacts.phone``, of phone identities and of ``calls.caller_number`` anywhere in the number
(``LIKE '%digits%'`` over the column with ``+ - ( ) .`` and spaces removed,
``omni.domain.search._sql_digits``). Without an index that is a scan of every contact (166,666
in bench/search_bench.py: ~60–200 ms per search). These are GIN ``pg_trgm`` indexes (the
extension comes with ``0037_search18``) on exactly that expression, so the planner uses them
for the search's ``LIKE``. PostgreSQL only, not mapped in the models
(``omni.domain.search.DIGITS_INDEXES``); SQLite (embedded mode, small data) keeps its scan.

``ix_messages_search_queue_created (search_queue_id, created_at)``: a search in a date range
by someone who sees some queues only walks each visible queue's messages of the range
backwards (``omni.domain.search_pg.window_ids``) instead of every queue's messages of the range
with the scope tested row by row (5,000,000 messages, a supervisor's 2 of 20 queues, 30 days:
401,000 rows read → 40,000). Built in ~5 s on 5,000,000 messages.

Revision ID: 0043_searchperf2
Revises: 0042_searchperf18
Create Date: 2026-11-30 15:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0043_searchperf2"
down_revision: str | None = "0042_searchperf18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def digits(column: str) -> str:
    """The digits of a phone column, as ``omni.domain.search._sql_digits`` writes it."""
    expr = column
    for ch in ("+", "-", " ", "(", ")", "."):
        expr = f"replace({expr}, '{ch}', '')"
    return expr


INDEXES = (
    ("ix_contacts_phone_digits_trgm", "contacts", "phone"),
    ("ix_contact_identities_phone_digits_trgm", "contact_identities", "value"),
    ("ix_calls_caller_digits_trgm", "calls", "caller_number"),
)
"""Kept in step with ``omni.domain.search.DIGITS_INDEXES``."""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index, table, column in INDEXES:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin (({digits(column)}) gin_trgm_ops)"
        )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_messages_search_queue_created "
        "ON messages (search_queue_id, created_at)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_search_queue_created")
    for index, _table, _column in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {index}")
