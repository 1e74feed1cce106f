"""vacuum15: the router's hot tables vacuumed after a few hundred dead rows, not a fifth of the table

Every contact moves its ``conversations`` row through queued → offered → active → wrap-up →
closed and its ``offers`` row from pending to accepted: each move leaves a dead row version
behind, and the old versions stay in the partial indexes that count an operator's load
(``0045_route6``) until a vacuum removes them. The router reads those indexes for every
candidate of every decision, so each decision grew slower as the day's contacts closed:
``bench/routing.py --operators 100 --conversations 2000`` went from p50 2.3 ms in its first pass
to 4.7 ms in its fifth; with ``VACUUM conversations, offers`` after each pass it stayed at
1.9–2.1 ms (bench/README.md, "vacuum15"). PostgreSQL's default starts autovacuum at 50 dead
rows + 20 % of the table, which on a year of conversations is never during a working day.

(Corrected later, bench/README.md "stats15": the slowdown came from the router's prepared
statements keeping plans made while ``offers`` was nearly empty until a vacuum or analyze
replaced them, not from the dead versions. A prompt vacuum still keeps these tables small.)

Here both tables are vacuumed once 500 rows are dead whatever their size
(``autovacuum_vacuum_scale_factor = 0``); how soon autovacuum looks is the server's
``autovacuum_naptime`` (default 1 min; docs/deployment.md). PostgreSQL only: SQLite has no
autovacuum of this kind.

Revision ID: 0046_vacuum15
Revises: 0045_route6
Create Date: 2026-12-02 14:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0046_vacuum15"
down_revision: str | None = "0045_route6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("conversations", "offers")
DEAD_ROWS = 500


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, "
            f"autovacuum_vacuum_threshold = {DEAD_ROWS})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)")
