"""Reporting: the install-wide settings reports and the live monitor share.

The report fact and interval tables live beside the rollups that fill them
(``omni.domain.reports``); this module holds what every report reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, utcnow


class InstallSettings(Base):
    """One row (``id = 1``): what "today", "offered" and "a working day" mean for this install.

    In the database rather than in ``Settings`` because admins change it from the admin pages and
    every node must agree at once; ``omni.domain.reports.config`` reads it.
    """

    __tablename__ = "install_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    """IANA zone; days, weeks and months of the reports and the monitor's "today" start here."""
    short_abandon_seconds: Mapped[int] = mapped_column(Integer, default=5)
    """Customers leaving the line within this grace are neither offered nor abandoned for SL."""
    business_days: Mapped[list[Any]] = mapped_column(JSON, default=lambda: [0, 1, 2, 3, 4])
    """ISO weekdays 0 (Monday) … 6 (Sunday) that count as working days in reports."""
    totp_roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Roles that must sign in with a second factor (TOTP); their users enrol at their next
    sign-in (``omni.domain.totp``)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


SL_THRESHOLDS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
"""Seconds of the service-level buckets (SipRing's): answered / abandoned within each."""


class ReportQueueInterval(Base):
    """One 15-minute interval of one queue × channel × inbox × result code: the contacts whose
    wait began in it (``first_enqueued_at``), with their outcome and handling.

    Rebuilt per interval by ``omni.domain.reports.queues`` (idempotent); key parts that don't
    apply are 0 / "" (no queue, no inbox, no result code), so the key has no NULLs.
    """

    __tablename__ = "report_queue_intervals"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    inbox_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_code_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offered: Mapped[int] = mapped_column(Integer, default=0)
    """Left the line (answered, abandoned after the grace, missed, overflowed)."""
    answered: Mapped[int] = mapped_column(Integer, default=0)
    answered_in_sl: Mapped[int] = mapped_column(Integer, default=0)
    """Answered within the queue's ``sla_seconds`` (as set when the interval was rebuilt)."""
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    """All abandons, short ones included."""
    abandoned_short: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    overflowed: Mapped[int] = mapped_column(Integer, default=0)
    callbacks_made: Mapped[int] = mapped_column(Integer, default=0)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    wait_answered_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wait_abandoned_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wait_max: Mapped[float] = mapped_column(Float, default=0.0)
    """The longest wait of any contact of the interval (answered or not)."""
    handled: Mapped[int] = mapped_column(Integer, default=0)
    """Answered and closed (their handling is complete): the base of AHT."""
    talk_sum: Mapped[float] = mapped_column(Float, default=0.0)
    hold_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wrap_sum: Mapped[float] = mapped_column(Float, default=0.0)
    ans_5: Mapped[int] = mapped_column(Integer, default=0)
    ans_10: Mapped[int] = mapped_column(Integer, default=0)
    ans_15: Mapped[int] = mapped_column(Integer, default=0)
    ans_20: Mapped[int] = mapped_column(Integer, default=0)
    ans_30: Mapped[int] = mapped_column(Integer, default=0)
    ans_45: Mapped[int] = mapped_column(Integer, default=0)
    ans_60: Mapped[int] = mapped_column(Integer, default=0)
    ans_90: Mapped[int] = mapped_column(Integer, default=0)
    ans_120: Mapped[int] = mapped_column(Integer, default=0)
    ans_180: Mapped[int] = mapped_column(Integer, default=0)
    ans_300: Mapped[int] = mapped_column(Integer, default=0)
    abn_5: Mapped[int] = mapped_column(Integer, default=0)
    abn_10: Mapped[int] = mapped_column(Integer, default=0)
    abn_15: Mapped[int] = mapped_column(Integer, default=0)
    abn_20: Mapped[int] = mapped_column(Integer, default=0)
    abn_30: Mapped[int] = mapped_column(Integer, default=0)
    abn_45: Mapped[int] = mapped_column(Integer, default=0)
    abn_60: Mapped[int] = mapped_column(Integer, default=0)
    abn_90: Mapped[int] = mapped_column(Integer, default=0)
    abn_120: Mapped[int] = mapped_column(Integer, default=0)
    abn_180: Mapped[int] = mapped_column(Integer, default=0)
    abn_300: Mapped[int] = mapped_column(Integer, default=0)


class ReportCursor(Base):
    """How far the rollup driver has followed the event log (one row per driver, ``name``).

    ``gaps`` are ids below ``last_event_id`` not seen yet: a transaction that took its id
    earlier may commit later, so the driver looks for them again until they turn up or
    are old enough to be rollbacks (``omni.domain.reports.driver``).
    """

    __tablename__ = "report_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    gaps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """``{"<event id>": "<ISO time first missed>"}``."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionSettings(Base):
    """One row (``id = 1``): how long personal data is kept, per kind (``omni.domain.retention``).

    ``None`` keeps that kind forever (the default: nothing is purged until an admin decides).
    In the database, like the install settings, because admins change it from the admin pages
    and every node's purge pass must agree. ``last_*`` tell the admin page what the last pass did.
    """

    __tablename__ = "retention_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    messages_days: Mapped[int | None] = mapped_column(Integer)
    attachments_days: Mapped[int | None] = mapped_column(Integer)
    recordings_days: Mapped[int | None] = mapped_column(Integer)
    audit_days: Mapped[int | None] = mapped_column(Integer)
    last_run_at: Mapped[datetime | None] = mapped_column()
    last_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
