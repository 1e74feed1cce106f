"""daily: status seconds and hold per local day of the install's zone

The month ``operator_status`` report summed ~227,000 hourly status rows and the month's operator
hours for hold; it now reads one row per local day, operator and status (and per day, operator
and channel for hold). Existing installs get both tiers filled here from the 15-minute rows.

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
    op.create_table(
        "report_hold_days",
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("hold_sum", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("day", "user_id", "channel", name=op.f("pk_report_hold_days")),
    )
    bind = op.get_bind()
    name = bind.execute(sa.text("SELECT timezone FROM install_settings")).scalar()
    tz = ZoneInfo(name or "UTC")
    _fill(bind, tz, "report_status_intervals", "report_status_days", "status_code", "seconds", "offline")
    _fill(bind, tz, "report_operator_intervals", "report_hold_days", "channel", "hold_sum", None)


def _fill(
    bind: sa.Connection, tz: ZoneInfo, source: str, target: str, key: str, value: str, offline: str | None
) -> None:
    """Sum ``source``'s 15-minute rows per local day of ``tz`` into ``target``."""
    when = sa.DateTime(timezone=True)
    src = sa.table(source, sa.column("bucket", when), sa.column("user_id"), sa.column(key), sa.column(value))
    dst = sa.table(target, sa.column("day", when), sa.column("user_id"), sa.column(key), sa.column(value))
    lo, hi = bind.execute(sa.select(sa.func.min(src.c.bucket), sa.func.max(src.c.bucket))).one()
    if lo is None:
        return
    day = _aware(lo).astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    last = _aware(hi)
    while _midnight(day, tz) <= last:
        start, end = _midnight(day, tz), _midnight(day + timedelta(days=1), tz)
        conds = [src.c.bucket >= start, src.c.bucket < end, src.c[value] > 0]
        if offline is not None:
            conds.append(src.c[key] != offline)
        sums = (
            sa.select(sa.literal(start, when), src.c.user_id, src.c[key], sa.func.sum(src.c[value]))
            .where(*conds)
            .group_by(src.c.user_id, src.c[key])
        )
        bind.execute(sa.insert(dst).from_select(["day", "user_id", key, value], sums))
        day += timedelta(days=1)


def downgrade() -> None:
    op.drop_table("report_hold_days")
    op.drop_table("report_status_days")
