"""routecache: a version of the queues' routing configuration, bumped by triggers (PostgreSQL)

The PostgreSQL router keeps each queue's settings, members and required skills per node
(``omni.domain.routing_config``) instead of reading them on the first decision of each queue
in every routing pass. ``routing_config`` holds one row whose ``version`` triggers on
``queues``, ``queue_members`` and ``queue_skills`` set to a new number from a sequence (one
statement-level trigger each, for inserts, updates, deletes and truncates, cascades included)
in the transaction that makes the change, so it becomes visible with the change; the router reads it in its first statement and
drops its cache when it moved. The table exists on SQLite too (one history, same models), with
no triggers: SQLite's ORM path reads the configuration per pass.

Revision ID: 0044_routecache
Revises: 0043_searchperf2
Create Date: 2026-12-01 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0044_routecache"
down_revision: str | None = "0043_searchperf2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("queues", "queue_members", "queue_skills")
FUNCTION = "omni_routing_config_changed"


def upgrade() -> None:
    op.create_table(
        "routing_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_config")),
    )
    op.execute("INSERT INTO routing_config (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name != "postgresql":
        return
    # A sequence, not ``version + 1``: a rolled-back change never hands its number to the next
    # one, so content a node read inside a transaction that then rolled back (its own change
    # visible to it) can never be taken for what a later committed change wrote.
    op.execute("CREATE SEQUENCE IF NOT EXISTS routing_config_version_seq")
    op.execute(
        "CREATE OR REPLACE FUNCTION omni_routing_config_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE routing_config SET version = nextval('routing_config_version_seq') WHERE id = 1; "
        "RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_routing_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_routing_config ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
        op.execute("DROP SEQUENCE IF EXISTS routing_config_version_seq")
    op.drop_table("routing_config")
