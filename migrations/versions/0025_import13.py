"""import13: the write path of campaign_targets for list imports

A list import inserts every row into ``campaign_targets``; PostgreSQL pays per row for each
index and each foreign-key trigger (bench/outbound_insert_parts.py, docs/outbound.md "Speed"):

- ``ix_campaign_targets_due`` (campaign, state, next_due_at): no query needs it any more —
  every read of a campaign's targets by state is served by the prefix of
  ``ix_campaign_targets_zone_due`` (campaign, state, timezone, next_due_at) or the unique key;
- ``ix_campaign_targets_list_id``: only the list foreign key's ``SET NULL`` used it (a list goes
  only with its campaign; the lists and targets pages filter by campaign first);
- the foreign keys of ``list_id``, ``callback_user_id``, ``result_code_id`` and ``contact_id``:
  an import leaves them NULL, yet each fires its RI trigger for every row. Lists are deleted
  only with their campaign (whose foreign key, kept, deletes the targets), users and result
  codes are deactivated, never deleted, and a merged contact's targets move to the contact
  kept (``contacts.do_merge_contacts``): the deleting code keeps them right.

Revision ID: 0025_import13
Revises: 0024_pacing
Create Date: 2026-11-30 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_import13"
down_revision: str | None = "0024_pacing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = (
    ("list_id", "call_lists"),
    ("callback_user_id", "users"),
    ("result_code_id", "result_codes"),
    ("contact_id", "contacts"),
)


def upgrade() -> None:
    op.drop_index("ix_campaign_targets_due", table_name="campaign_targets")
    op.drop_index("ix_campaign_targets_list_id", table_name="campaign_targets")
    with op.batch_alter_table("campaign_targets", schema=None) as batch_op:
        for column, table in FOREIGN_KEYS:
            batch_op.drop_constraint(f"fk_campaign_targets_{column}_{table}", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("campaign_targets", schema=None) as batch_op:
        for column, table in FOREIGN_KEYS:
            batch_op.create_foreign_key(
                f"fk_campaign_targets_{column}_{table}", table, [column], ["id"], ondelete="SET NULL"
            )
    op.create_index("ix_campaign_targets_list_id", "campaign_targets", ["list_id"])
    op.create_index("ix_campaign_targets_due", "campaign_targets", ["campaign_id", "state", "next_due_at"])
