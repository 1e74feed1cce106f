"""daily: status seconds per local day of the install's zone

The month ``operator_status`` report summed ~227,000 hourly status rows; it now reads one row
per local day, operator and status. Existing installs get the tier filled here from the hourly
(or, for zones not offset by whole hours, the 15-minute) rows.

Revision ID: 0017_daily
Revises: 0010_perf
Create Date: 2026-11-29 21:10:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0017_daily"
down_revision: str | None = "0010_perf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _floor15(at: datetime) -> datetime:
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def _midnight(day: datetime, tz: ZoneInfo) -> datetime:
    local = datetime(day.year, day.month, day.day, tzinfo=tz)
    return _floor15(local.astimezone(UTC))


def _aware(value: object) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def upgrade() -> None:
    op.create_table(
        "report_status_days",
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("day", "user_id", "status_code", name=op.f("pk_report_status_days")),
    )
    bind = op.get_bind()
    name = bind.execute(sa.text("SELECT timezone FROM install_settings")).scalar()
    tz = ZoneInfo(name or "UTC")
    lo, hi = bind.execute(sa.text("SELECT min(bucket), max(bucket) FROM report_status_intervals")).one()
    if lo is None:
        return
    table = sa.table(
        "report_status_intervals",
        sa.column("bucket", sa.DateTime(timezone=True)),
        sa.column("user_id", sa.Integer()),
        sa.column("status_code", sa.String()),
        sa.column("seconds", sa.Float()),
    )
    days = sa.table(
        "report_status_days",
        sa.column("day", sa.DateTime(timezone=True)),
        sa.column("user_id", sa.Integer()),
        sa.column("status_code", sa.String()),
        sa.column("seconds", sa.Float()),
    )
    day = _aware(lo).astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    last = _aware(hi)
    while _midnight(day, tz) <= last:
        start, end = _midnight(day, tz), _midnight(day + timedelta(days=1), tz)
        sums = (
            sa.select(
                sa.literal(start, sa.DateTime(timezone=True)),
                table.c.user_id,
                table.c.status_code,
                sa.func.sum(table.c.seconds),
            )
            .where(table.c.bucket >= start, table.c.bucket < end, table.c.status_code != "offline")
            .group_by(table.c.user_id, table.c.status_code)
        )
        bind.execute(sa.insert(days).from_select(["day", "user_id", "status_code", "seconds"], sums))
        day += timedelta(days=1)


def downgrade() -> None:
    op.drop_table("report_status_days")
