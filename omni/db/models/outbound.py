"""Outbound campaigns: campaigns, their contact lists, targets, attempts, do-not-call.

A campaign engine sits beside the router (``omni.domain.outbound``): lists and attempts are
rows, a scheduler picks due targets, a dial-mode policy decides how many to place, a channel
adapter places them and reports the outcome. Answered contacts become ordinary conversations
(``omni.domain.outgoing``), so operators, statuses, capacity, result codes and reports are the
inbound ones.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, BigId, utcnow


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"


class CampaignChannel(enum.StrEnum):
    VOICE = "voice"
    TELEGRAM = "telegram"


class DialMode(enum.StrEnum):
    """How many attempts to place: ``omni.domain.outbound.policy`` has one policy per mode."""

    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"
    AGENTLESS = "agentless"


class TargetState(enum.StrEnum):
    """Where one list contact is in the campaign."""

    PENDING = "pending"
    """Waiting for its ``next_due_at`` (first attempt, retry or callback)."""
    IN_PROGRESS = "in_progress"
    """An attempt is open (ringing, previewed by an operator, message being sent)."""
    DONE = "done"
    """Reached and finished (a result code finished it, or the message was sent)."""
    FAILED = "failed"
    """Attempts or numbers exhausted."""
    DNC = "dnc"
    """On a do-not-call list (found before dialing or added by a result code)."""
    CANCELLED = "cancelled"
    """Removed by a supervisor or its list was deleted."""


OPEN_TARGET_STATES = (TargetState.PENDING, TargetState.IN_PROGRESS)


class Outcome(enum.StrEnum):
    """How an attempt ended; retry rules are keyed by these (``Campaign.retry_rules``)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    """An answering machine picked up (AMD; next issue) — retried like no answer by default."""
    CONGESTION = "congestion"
    """Network/trunk failure: congestion, channel unavailable, invalid number."""
    DROPPED = "dropped"
    """Answered but no operator took it in time (progressive/predictive), or the customer hung
    up before the bridge."""
    SKIPPED = "skipped"
    """The operator skipped a preview; the target goes back for another attempt later."""
    REFUSED = "refused"
    """Not placed: DNC, the pre-dial check said no, or the number is outside its window."""
    SENT = "sent"
    """A Telegram broadcast message was delivered to the Bot API."""
    SEND_FAILED = "send_failed"
    """The Bot API refused the message (blocked by the user, chat not found)."""


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=CampaignState.DRAFT)
    channel: Mapped[str] = mapped_column(String(16), default=CampaignChannel.VOICE)
    dial_mode: Mapped[str] = mapped_column(String(16), default=DialMode.PREVIEW)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="RESTRICT"))
    """Operators of this queue work the campaign (plus ``campaign_operators`` when set)."""
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    """The channel instance to place from (a voice trunk's inbox or a Telegram bot's inbox)."""
    priority: Mapped[int] = mapped_column(Integer, default=0)
    """Higher first among campaigns competing for the same operators."""
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    """Fallback zone for numbers whose zone the number plan does not tell."""
    default_region: Mapped[str] = mapped_column(String(2), default="RU")
    """Region for parsing numbers written without a country code."""
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Calling windows in the CUSTOMER's local time, by ISO weekday (1 = Monday):
    ``{"1": [["09:00", "21:00"]], ..., "7": []}``; an absent day means no calls that day."""
    holidays: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """ISO dates (``"2026-12-31"``) with no calls, in the customer's local calendar."""
    calendar_ids: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    """Shared holiday calendars (``omni.domain.calendars``) closing days next to ``holidays``."""
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    """Per target, over all its numbers."""
    retry_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Minutes before the next attempt, per outcome: ``{"busy": [15, 60, 1440], "no_answer":
    [60], ...}``; the n-th retry uses the n-th value (the last repeats); an outcome without a
    rule (or an empty list) ends the target as failed."""
    max_concurrency: Mapped[int] = mapped_column(Integer, default=10)
    """Open attempts of this campaign at once (the trunk's share)."""
    preview_seconds: Mapped[int] = mapped_column(Integer, default=30)
    """Preview mode: how long the operator sees the card before the timeout action."""
    preview_auto_dial: Mapped[bool] = mapped_column(Boolean, default=False)
    """Preview timeout: dial automatically (true) or put the target back (false)."""
    ring_seconds: Mapped[int] = mapped_column(Integer, default=30)
    """How long an originated call rings before it counts as no answer."""
    script: Mapped[str] = mapped_column(Text, default="")
    """What the operator says (shown with the card); the queue's script when empty."""
    message_template: Mapped[str] = mapped_column(Text, default="")
    """Telegram broadcast text with ``{name}``/``{field}`` variables."""
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Cross-channel rule, e.g. ``{"unanswered_minutes": 30, "campaign_id": 7}``: a Telegram
    message with no reply in time places the target in the (voice) campaign. Bots get no read
    receipts, so ``unread_minutes`` is read as the same rule (``outbound.broadcast``)."""
    predial_url: Mapped[str] = mapped_column(String(512), default="")
    predial_timeout_ms: Mapped[int] = mapped_column(Integer, default=1000)
    predial_on_timeout: Mapped[str] = mapped_column(String(8), default="call")
    """call | skip | later: what a pre-dial check that did not answer in time means."""
    inbound_priority: Mapped[bool] = mapped_column(Boolean, default=True)
    """Blending: an operator with an inbound contact waiting for them gets no outbound one."""
    target_abandon_pct: Mapped[float] = mapped_column(Float, default=3.0)
    """Predictive: the drop (abandon) rate the pacing controller keeps under, in % of answered
    calls, over a rolling window and per day (``omni.domain.outbound.pacing``)."""
    max_lines_per_operator: Mapped[float] = mapped_column(Float, default=3.0)
    """Predictive: a cap on lines ringing or waiting per operator able to take them."""
    drop_seconds: Mapped[int] = mapped_column(Integer, default=2)
    """Predictive: an answered call with no free operator within this time is dropped."""
    drop_prompt_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id", ondelete="SET NULL"))
    drop_text: Mapped[str] = mapped_column(Text, default="")
    """What a dropped customer hears: the prompt, else this text through TTS, else silence."""
    amd_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    """Run Asterisk's ``AMD()`` on answered calls (parameters: ``VoiceSettings.amd_*``)."""
    machine_action: Mapped[str] = mapped_column(String(16), default="retry")
    """What an answering machine gets: ``retry`` (outcome ``machine``, its retry rule) or
    ``message`` (hears ``machine_prompt_id``/``machine_text``, then outcome ``machine``)."""
    machine_prompt_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id", ondelete="SET NULL"))
    machine_text: Mapped[str] = mapped_column(Text, default="")
    scenario: Mapped[str] = mapped_column(String(64), default="")
    """Agentless: the key of the published voice bot scenario an answered call runs."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class CampaignOperator(Base):
    """Operators assigned to a campaign by name (besides the campaign queue's members)."""

    __tablename__ = "campaign_operators"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class CampaignCallerId(Base):
    """One number of a campaign's caller-ID pool; rotated least-recently-used first,
    preferring a number of the customer's region when the pool has one."""

    __tablename__ = "campaign_caller_ids"
    __table_args__ = (UniqueConstraint("campaign_id", "number", name="uq_campaign_caller_ids_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(8), default="")
    """ISO region of the number, or a Russian-style region code (``"RU-MOW"``); empty = any."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_used_at: Mapped[datetime | None] = mapped_column()


class ResultAction(enum.StrEnum):
    RETRY = "retry"
    """Try again after ``retry_minutes`` (or at the time the operator picked)."""
    DNC = "dnc"
    """Add the number to the campaign's do-not-call list and end the target."""
    FINISH = "finish"
    """The target is done."""
    CALLBACK = "callback"
    """Call back at the time the operator picks, for the operator or for anyone."""


class CampaignResultCode(Base):
    """A result code an operator may pick in this campaign and what it does to the target."""

    __tablename__ = "campaign_result_codes"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    result_code_id: Mapped[int] = mapped_column(
        ForeignKey("result_codes.id", ondelete="CASCADE"), primary_key=True
    )
    action: Mapped[str] = mapped_column(String(16), default=ResultAction.FINISH)
    retry_minutes: Mapped[int | None] = mapped_column(Integer)
    global_dnc: Mapped[bool] = mapped_column(Boolean, default=False)
    """``dnc`` action: add to the global list instead of the campaign's."""


class CallList(Base):
    """One imported file (or API batch) of a campaign's contacts."""

    __tablename__ = "call_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ListImport(Base):
    """An import job: the uploaded file, its column mapping, progress and the invalid rows."""

    __tablename__ = "list_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("call_lists.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    file_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("stored_files.id", ondelete="SET NULL")
    )
    filename: Mapped[str] = mapped_column(String(256), default="")
    format: Mapped[str] = mapped_column(String(8), default="csv")
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """``{"phones": [0, 3], "name": 1, "timezone": null, "fields": {"debt": 2}, "tags": 4,
    "header": true, "delimiter": ","}`` — columns by index."""
    state: Mapped[str] = mapped_column(String(16), default=ImportState.PENDING)
    bytes_total: Mapped[int] = mapped_column(Integer, default=0)
    bytes_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    rows_invalid: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    invalid_file_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("stored_files.id", ondelete="SET NULL")
    )
    """CSV of the rejected rows with the reason, for download."""
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    rows_dnc: Mapped[int] = mapped_column(Integer, default=0)
    """Imported rows whose first number is on a do-not-call list (imported as ``dnc``)."""
    sniffed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What the upload looked like: ``{"encoding", "delimiter", "header", "columns", "sample"}``."""
    updated_at: Mapped[datetime | None] = mapped_column()
    """Heartbeat of a running job (every batch): a running job whose heartbeat is stale lost its
    node (restart, crash) and is failed with a message instead of staying "running" forever."""


class CampaignTarget(Base):
    """One contact of a campaign's list: its numbers, local zone, card fields and progress."""

    __tablename__ = "campaign_targets"
    __table_args__ = (UniqueConstraint("campaign_id", "phone", name="uq_campaign_targets_phone"),)
    """The write path of a list import (``0025_import13``): besides the key and the unique key,
    one index (the scheduler's ``ix_campaign_targets_zone_due`` below; its prefix serves every
    read by campaign and state) and one
    foreign key (the campaign's, deleting its targets). ``list_id``, ``callback_user_id``,
    ``result_code_id`` and ``contact_id`` carry no foreign key (each fired its check for every
    imported row): lists go only with their campaign, users and result codes are never deleted,
    ``contacts.do_merge_contacts`` moves a merged contact's targets."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(Integer)
    """The ``call_lists`` row (no foreign key, see above)."""
    name: Mapped[str] = mapped_column(String(256), default="")
    phone: Mapped[str] = mapped_column(String(32))
    """The first number (E.164): the campaign's de-duplication key."""
    phones: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Every number in the order they are tried (``phones[0] == phone``)."""
    phone_index: Mapped[int] = mapped_column(Integer, default=0)
    """The number the next attempt dials."""
    timezone: Mapped[str] = mapped_column(String(64), default="")
    """The customer's zone: from the list, else from the number, else the campaign's."""
    region: Mapped[str] = mapped_column(String(8), default="")
    """ISO region of the first number (caller-ID matching)."""
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Card fields from the list (debt amount, contract number...)."""
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default=TargetState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None] = mapped_column()
    """When it may be attempted next (``None`` once it is not pending)."""
    callback_user_id: Mapped[int | None] = mapped_column(Integer)
    """A callback for this operator only (``None``: anyone of the campaign); a ``users`` id."""
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    result_code_id: Mapped[int | None] = mapped_column(Integer)
    """A ``result_codes`` id."""
    contact_id: Mapped[int | None] = mapped_column(Integer)
    """The Omni contact once reached (or found by number at import)."""
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Agentless: what the scenario stored for this contact (``{"confirmed": true, "digits":
    "1", "recording_file_id": "…", "node": "…"}``), shown per contact and exported."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignAttempt(Base):
    """One try to reach a target: a call or a message, with its times and outcome."""

    __tablename__ = "campaign_attempts"
    __table_args__ = (Index("ix_campaign_attempts_campaign_created", "campaign_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("campaign_targets.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer, default=1)
    """1 for the target's first attempt, 2 for the second..."""
    phone: Mapped[str] = mapped_column(String(32))
    caller_id: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(16), default=CampaignChannel.VOICE)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    """The conversation of an answered call or of a broadcast message (indexed: a Telegram
    reply finds its campaign through it)."""
    external_id: Mapped[str] = mapped_column(String(128), default="", index=True)
    """The channel's id of the attempt (AMI ActionID/Uniqueid, Telegram message id)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    """Dialing began (after a preview: when the operator pressed call)."""
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(16))
    amd: Mapped[str] = mapped_column(String(16), default="")
    """Asterisk's ``AMDSTATUS`` of an answered call (``HUMAN``, ``MACHINE``, ``NOTSURE``,
    ``HANGUP``); empty when AMD did not run."""
    cause: Mapped[str] = mapped_column(String(64), default="")
    """The channel's own reason (ISDN hang-up cause, OriginateResponse reason, Bot API error).
    The recording of an answered call is the conversation's (``calls.recording_path``)."""


class DncEntry(Base):
    """A do-not-call number or prefix range; ``campaign_id`` ``None`` = the global list."""

    __tablename__ = "dnc_entries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number", name="uq_dnc_entries_campaign_number"),
        # The constraint above never fires for the global list: NULLs are distinct in a UNIQUE
        # constraint (PostgreSQL and SQLite alike), so the global list has its own partial index.
        Index(
            "uq_dnc_entries_global_number",
            "number",
            unique=True,
            postgresql_where=text("campaign_id IS NULL"),
            sqlite_where=text("campaign_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(32), index=True)
    """E.164 number, or its leading digits when ``prefix`` (``+7495`` covers Moscow)."""
    prefix: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(256), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The scheduler's queries (omni/domain/outbound/scheduler.py; migration 0019_engine): the zones
# of a campaign's pending targets and the oldest due ones of an open zone; open attempts per
# campaign (concurrency) and per operator (who is free for outbound).
Index(
    "ix_campaign_targets_zone_due",
    CampaignTarget.campaign_id,
    CampaignTarget.state,
    CampaignTarget.timezone,
    CampaignTarget.next_due_at,
)
Index(
    "ix_campaign_attempts_open_campaign",
    CampaignAttempt.campaign_id,
    postgresql_where=CampaignAttempt.ended_at.is_(None),
    sqlite_where=CampaignAttempt.ended_at.is_(None),
)
Index(
    "ix_campaign_attempts_open_operator",
    CampaignAttempt.operator_id,
    postgresql_where=CampaignAttempt.ended_at.is_(None),
    sqlite_where=CampaignAttempt.ended_at.is_(None),
)

# Predictive pacing (omni/domain/outbound/pacing.py; migration 0024_pacing): today's answered and
# dropped calls of a campaign, counted every tick from the index alone.
Index(
    "ix_campaign_attempts_campaign_outcome_ended",
    CampaignAttempt.campaign_id,
    CampaignAttempt.outcome,
    CampaignAttempt.ended_at,
)


__all__ = [
    "OPEN_TARGET_STATES",
    "CallList",
    "Campaign",
    "CampaignAttempt",
    "CampaignCallerId",
    "CampaignChannel",
    "CampaignOperator",
    "CampaignResultCode",
    "CampaignState",
    "CampaignTarget",
    "DialMode",
    "DncEntry",
    "ImportState",
    "ListImport",
    "Outcome",
    "ResultAction",
    "TargetState",
]
