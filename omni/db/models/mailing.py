"""Scheduled report mailings: which report, filtered how, mailed when and to whom.

The filter is stored as chosen (``FilterParams.to_json()``: "yesterday", not a date) and
resolved anew at each send; the report runs with the owner's scope at that moment
(``omni.domain.reports.mailing``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, utcnow


class ReportSchedule(Base):
    __tablename__ = "report_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    """Whose scope the report runs with (a supervisor's mail holds only their groups)."""
    report_key: Mapped[str] = mapped_column(String(64))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """``FilterParams.to_json()``."""
    format: Mapped[str] = mapped_column(String(8), default="xlsx")
    frequency: Mapped[str] = mapped_column(String(16), default="daily")
    """``daily`` | ``weekly`` (on ``weekday``) | ``monthly`` (on ``day_of_month``)."""
    weekday: Mapped[int | None] = mapped_column(Integer)
    """0 = Monday … 6 = Sunday (weekly only)."""
    day_of_month: Mapped[int | None] = mapped_column(Integer)
    """1 … 31 (monthly only); a month without that day sends on its last day."""
    send_time: Mapped[str] = mapped_column(String(5), default="08:00")
    """Local ``HH:MM`` in the install's time zone."""
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    """The slot to send next (UTC); the report's "now" is this slot, also on a retry."""
    retry_at: Mapped[datetime | None] = mapped_column()
    """Set after a failed send: the same slot is tried again from then on."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failed sends of the current slot."""
    claimed_until: Mapped[datetime | None] = mapped_column()
    """A runner is sending this slot until then (another node skips it; after a crash the
    claim expires and the slot is sent again)."""
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
