"""Interval rollups of chats, bot runs and survey answers (``omni.domain.reports.chats``,
``bots_funnel``, ``surveys``): rebuilt per 15-minute interval, so a month's chat, bot or survey
report never reads ``messages``, ``bot_steps`` or ``survey_answers``.

Key parts that don't apply are 0 / "" (no queue, no inbox, no operator), so keys have no NULLs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base

FRT_THRESHOLDS = (30, 60, 180, 300)
"""Seconds of the chat response-time buckets (first response within each)."""


class ReportChatInterval(Base):
    """Conversations whose wait began in the interval (``first_enqueued_at``), per queue × channel
    × inbox × operator (the last assignee) × medium.

    The response-time and closed-by columns are filled for chats; the CSAT columns for every
    medium (a call can be rated too).
    """

    __tablename__ = "report_chat_intervals"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    inbox_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    medium: Mapped[str] = mapped_column(String(8), primary_key=True)
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    frt_count: Mapped[int] = mapped_column(Integer, default=0)
    """Conversations with a first operator reply (the base of the mean FRT and the buckets)."""
    frt_sum: Mapped[float] = mapped_column(Float, default=0.0)
    """Seconds from the start of the wait (``first_enqueued_at``) to the first operator reply."""
    frt_max: Mapped[float] = mapped_column(Float, default=0.0)
    frt_accept_count: Mapped[int] = mapped_column(Integer, default=0)
    frt_accept_sum: Mapped[float] = mapped_column(Float, default=0.0)
    """Seconds from ``accepted_at`` to the first operator reply after it: the operator's own part
    (what the operator-performance report calls first response)."""
    frt_30: Mapped[int] = mapped_column(Integer, default=0)
    frt_60: Mapped[int] = mapped_column(Integer, default=0)
    frt_180: Mapped[int] = mapped_column(Integer, default=0)
    frt_300: Mapped[int] = mapped_column(Integer, default=0)
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    """Customer turns answered by an operator (first unanswered customer message → next reply)."""
    reply_sum: Mapped[float] = mapped_column(Float, default=0.0)
    closed_operator: Mapped[int] = mapped_column(Integer, default=0)
    closed_timeout: Mapped[int] = mapped_column(Integer, default=0)
    closed_customer: Mapped[int] = mapped_column(Integer, default=0)
    closed_other: Mapped[int] = mapped_column(Integer, default=0)
    """Closed by the bot, the system or a blacklist."""
    csat_count: Mapped[int] = mapped_column(Integer, default=0)
    csat_sum: Mapped[float] = mapped_column(Float, default=0.0)
    csat_good: Mapped[int] = mapped_column(Integer, default=0)
    """Ratings of 4 or 5."""


class ReportChatLoadInterval(Base):
    """One operator's chats in one interval, from the accepted … closed spans (split at
    interval boundaries): how many at once at the peak, and chat-seconds over busy seconds."""

    __tablename__ = "report_chat_load_intervals"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chats: Mapped[int] = mapped_column(Integer, default=0)
    """Chats open with the operator at some point of the interval."""
    peak: Mapped[int] = mapped_column(Integer, default=0)
    chat_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    """Sum over chats of the seconds each was open with the operator in the interval."""
    busy_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    """Seconds with at least one chat open (the base of the average concurrency)."""


class ReportBotInterval(Base):
    """Bot runs (a conversation on a scenario revision) that started in the interval, by outcome."""

    __tablename__ = "report_bot_intervals"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started: Mapped[int] = mapped_column(Integer, default=0)
    handed_off: Mapped[int] = mapped_column(Integer, default=0)
    contained: Mapped[int] = mapped_column(Integer, default=0)
    dropped: Mapped[int] = mapped_column(Integer, default=0)
    moved: Mapped[int] = mapped_column(Integer, default=0)
    """Went on to another scenario (``goto_scenario``)."""
    running: Mapped[int] = mapped_column(Integer, default=0)
    """Still with the bot when the interval was last rebuilt."""


class ReportBotNodeInterval(Base):
    """Per node of the runs that started in the interval: the builder's node statistics
    (``bots.service.fold_steps``) plus the runs dropped there."""

    __tablename__ = "report_bot_node_intervals"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    entered: Mapped[int] = mapped_column(Integer, default=0)
    left: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    no_input: Mapped[int] = mapped_column(Integer, default=0)
    dropped: Mapped[int] = mapped_column(Integer, default=0)


class ReportSurveyInterval(Base):
    """Survey answers given in the interval, per question (revision × node × variable) and answer
    value, queue, channel, inbox and operator. A multiple-choice answer is stored as its option
    ids joined by "," (option ids never hold one); the report splits it per option."""

    __tablename__ = "report_survey_intervals"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    variable: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    answers: Mapped[int] = mapped_column(Integer, default=0)
