"""Operator interval rollups: what each operator did and where their time went, per 15 minutes.

Filled by ``omni.domain.reports.operators`` (rebuilt per interval, idempotent); read by the
operator performance, operator status and result code reports and by an operator's own
statistics. Key parts that don't apply are 0 (no queue, no result code), so keys have no NULLs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base
from omni.db.models.conversations import Offer
from omni.db.models.people import StatusHistory
from omni.db.models.platform import Event

__all__ = [
    "OperatorFigures",
    "ReportHoldDay",
    "ReportOperatorHour",
    "ReportOperatorInterval",
    "ReportStatusDay",
    "ReportStatusHour",
    "ReportStatusInterval",
]


class OperatorFigures:
    """The columns of the operator rollup, per 15-minute interval or per UTC hour (``bucket``)."""

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    result_code_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offers: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    declined: Mapped[int] = mapped_column(Integer, default=0)
    timed_out: Mapped[int] = mapped_column(Integer, default=0)
    handled: Mapped[int] = mapped_column(Integer, default=0)
    """Accepted and closed by this operator (the last one to hold it): the base of AHT."""
    talk_sum: Mapped[float] = mapped_column(Float, default=0.0)
    hold_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wrap_sum: Mapped[float] = mapped_column(Float, default=0.0)
    ended_operator: Mapped[int] = mapped_column(Integer, default=0)
    ended_customer: Mapped[int] = mapped_column(Integer, default=0)
    ended_timeout: Mapped[int] = mapped_column(Integer, default=0)
    ended_system: Mapped[int] = mapped_column(Integer, default=0)
    transfers_made: Mapped[int] = mapped_column(Integer, default=0)
    transfers_received: Mapped[int] = mapped_column(Integer, default=0)
    frt_sum: Mapped[float] = mapped_column(Float, default=0.0)
    """Chats: seconds from accepting to the operator's first reply, summed over ``frt_count``."""
    frt_count: Mapped[int] = mapped_column(Integer, default=0)
    csat_count: Mapped[int] = mapped_column(Integer, default=0)
    csat_good: Mapped[int] = mapped_column(Integer, default=0)
    """Ratings of 4 or 5 (CSAT % = good / count)."""
    csat_sum: Mapped[float] = mapped_column(Float, default=0.0)


class ReportOperatorInterval(OperatorFigures, Base):
    """One 15-minute interval of one operator × queue × channel × result code.

    Offers count in the interval they were made (``offers.created_at``); a contact's handling,
    who ended it, its first reply and its rating count in the contact's interval
    (``first_enqueued_at``), like the queue intervals; transfers in the interval they happened.
    """

    __tablename__ = "report_operator_intervals"


class ReportOperatorHour(OperatorFigures, Base):
    """``report_operator_intervals`` summed per UTC hour (``bucket`` = the hour's start): what the
    reports read when their rows fall on whole hours. Kept by the operator rollup."""

    __tablename__ = "report_operator_hours"


class ReportStatusInterval(Base):
    """Seconds one operator spent in one status code within one 15-minute interval.

    The codes are those of ``status_history``: the chosen status (``available``, ``pause``,
    admin-defined ones, ``offline``) or the derived activity (``ringing``, ``talking``,
    ``wrap_up``). Spans are split at interval boundaries; an open span is not stored (the
    report adds it up to "now" when it runs).
    """

    __tablename__ = "report_status_intervals"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class ReportStatusHour(Base):
    """The status seconds of ``report_status_intervals`` summed per UTC hour.

    A month's status report over 200 operators reads ~700,000 interval rows; whenever its row
    boundaries fall on whole UTC hours (local days in every zone offset by whole hours) it reads
    these instead, a quarter as many. Kept by the status rollup together with the intervals.
    """

    __tablename__ = "report_status_hours"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class ReportStatusDay(Base):
    """The status seconds (offline left out) summed per local day of the install's zone.

    A month's status report summed ~227,000 hour rows (~0.55 s at 1,000,000 conversations);
    reports over whole local days read these, ~30 times fewer. ``day`` is the day's local
    midnight (on the 15-minute grid) as UTC, so the rows belong to one zone: the status rollup
    re-sums the days its rebuilt hours touch, and a zone change rebuilds the whole tier
    (``omni.domain.reports.daily``).
    """

    __tablename__ = "report_status_days"

    day: Mapped[datetime] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class ReportHoldDay(Base):
    """Hold seconds per local day of the install's zone, operator and channel (rows with hold only).

    The other half of the month's status report (~0.25 s summing ~331,000 operator hours);
    kept by the operator rollup like ``ReportStatusDay`` by the status rollup.
    """

    __tablename__ = "report_hold_days"

    day: Mapped[datetime] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    hold_sum: Mapped[float] = mapped_column(Float, default=0.0)


# What a rebuild of one interval looks up by time: the contacts whose wait began in it (or that
# were created in it, never queued), the offers made and the transfers done in it. Without these
# every interval rebuild would scan the whole table. (Conversations by ``first_enqueued_at`` and
# ``created_at``: ``ix_conversations_first_enqueued`` / ``ix_conversations_created``.)
Index("ix_offers_created_at", Offer.created_at)
Index("ix_events_type_created_at", Event.type, Event.created_at)
# The spans still open (one per operator), which every status report adds up to "now".
Index(
    "ix_status_history_open",
    StatusHistory.user_id,
    postgresql_where=StatusHistory.ended_at.is_(None),
    sqlite_where=StatusHistory.ended_at.is_(None),
)
