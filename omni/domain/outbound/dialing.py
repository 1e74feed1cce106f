"""What a channel that *dials* campaign attempts records in the core (voice: AMI ``Originate``).

The channel adapter knows the wire (``channels/voice``); these actions keep the attempt row
true to it: when it was placed and under which channel id, when the customer answered and in
which conversation, how it ended. Every end goes through ``lifecycle.do_close_attempt`` under
the target's row lock, so the adapter's own event task and the deadline engine (any node, also
after a restart) can't close one attempt twice or differently.

The ring deadline (``RING_DEADLINE``) is the persisted safety net: an attempt placed with no
answer and no end reported within its ring time plus ``ANSWER_MARGIN_SECONDS`` (a lost
``OriginateResponse``, a node that died while the call rang) ends as ``no_answer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import Outcome
from omni.domain import deadlines
from omni.domain.outbound.lifecycle import do_close_attempt

__all__ = [
    "ANSWER_MARGIN_SECONDS",
    "RING_DEADLINE",
    "do_attempt_answered",
    "do_claim_operator",
    "do_end_attempt",
    "do_mark_placed",
    "do_record_amd",
    "do_ring_deadline",
    "do_unplace",
    "locked_attempt",
    "placed_open_attempts",
]

RING_DEADLINE = "campaign_ring"
ANSWER_MARGIN_SECONDS = 15
"""Beyond the campaign's ring time: how long Asterisk may take to report a placed call's end."""


async def locked_attempt(session: AsyncSession, attempt_id: int) -> m.CampaignAttempt | None:
    """The attempt, read fresh after locking its target (the lifecycle's contract: callers hold
    the target), so concurrent closers see each other's ``ended_at``."""
    target_id = await session.scalar(
        select(m.CampaignAttempt.target_id).where(m.CampaignAttempt.id == attempt_id)
    )
    if target_id is None:
        return None
    await session.scalar(
        select(m.CampaignTarget.id).where(m.CampaignTarget.id == target_id).with_for_update()
    )
    return await session.scalar(
        select(m.CampaignAttempt)
        .where(m.CampaignAttempt.id == attempt_id)
        .execution_options(populate_existing=True)
    )


async def do_mark_placed(
    session: AsyncSession,
    attempt: m.CampaignAttempt,
    external_id: str,
    *,
    ring_seconds: int,
    now: datetime | None = None,
) -> None:
    """The channel is about to dial: its id is stored (events map back to the attempt by it),
    dialing starts now (unless a preview already set it) and the ring deadline is persisted."""
    now = now or datetime.now(UTC)
    attempt.external_id = external_id[:128]
    if attempt.started_at is None:
        attempt.started_at = now
    due = now + timedelta(seconds=max(1, ring_seconds) + ANSWER_MARGIN_SECONDS)
    deadlines.schedule(session, RING_DEADLINE, attempt.id, due, {"ring_seconds": ring_seconds})
    await session.flush()


async def do_unplace(session: AsyncSession, attempt: m.CampaignAttempt, started_at: datetime | None) -> None:
    """The dial could not be sent after all (the link dropped): undo ``do_mark_placed`` so the
    engine refuses the attempt as never placed."""
    attempt.external_id = ""
    attempt.started_at = started_at
    await deadlines.cancel(session, RING_DEADLINE, attempt.id)
    await session.flush()


async def do_attempt_answered(
    session: AsyncSession, attempt: m.CampaignAttempt, *, conversation_id: int | None, now: datetime
) -> None:
    """The customer picked up: the answer time and the operator's conversation (the attempt
    stays open until the operator is connected: ``answered``, or not: ``dropped``)."""
    if attempt.answered_at is None:
        attempt.answered_at = now
    if conversation_id is not None:
        attempt.conversation_id = conversation_id
    await deadlines.cancel(session, RING_DEADLINE, attempt.id)
    await session.flush()


async def do_claim_operator(session: AsyncSession, attempt_id: int, now: datetime) -> int | None:
    """An answered call of a campaign that reserves nobody (predictive) takes a free operator.

    The first of the campaign's operators ``scheduler.free_for_outbound`` finds (longest idle
    first; a voice campaign's operator needs a phone extension) whose presence row this
    transaction can lock (``SKIP LOCKED``, as the scheduler's ``_lock_operators``: an operator
    the router or another node is deciding about right now is left to it) and who holds no
    open attempt is written on the attempt. From then on ``free_for_outbound`` leaves the
    operator out (an open attempt names them), and the caller starts the operator's
    conversation (``outgoing.do_start_outgoing``) in the same transaction, so capacity counts
    the call from the commit on. ``None``: nobody is free now (the adapter asks again when an
    operator may have become free, until the campaign's ``drop_seconds`` have passed); also
    when the attempt has ended or already has its operator (then that one is returned)."""
    from omni.domain.outbound import scheduler  # the scheduler imports half the engine

    attempt = await locked_attempt(session, attempt_id)
    if attempt is None or attempt.ended_at is not None:
        return None
    if attempt.operator_id is not None:
        return attempt.operator_id
    campaign = await session.get(m.Campaign, attempt.campaign_id)
    if campaign is None:
        return None
    free = await scheduler.free_for_outbound(session, campaign)
    if free and campaign.channel == "voice":
        phones = set(
            await session.scalars(
                select(m.User.id).where(
                    m.User.id.in_(free),
                    or_(m.User.sip_extension != "", m.User.phone_endpoint == m.PhoneEndpoint.BROWSER),
                )
            )
        )
        free = [uid for uid in free if uid in phones]
    # One at a time, with the scheduler's lock rule: a tick reserving operators and this claim
    # never both win one operator, and the others stay unlocked for them meanwhile.
    for uid in free[:8]:
        if await scheduler.lock_operators(session, [uid]):
            attempt.operator_id = uid
            await session.flush()
            return uid
    return None


async def do_record_amd(session: AsyncSession, attempt: m.CampaignAttempt, status: str) -> None:
    """Keep what ``AMD()`` said about the call (``AMDSTATUS``: HUMAN, MACHINE, NOTSURE, HANGUP;
    empty when AMD could not run) on the attempt, for reports and the retry decision."""
    attempt.amd = (status or "")[:16]
    await session.flush()


async def do_end_attempt(
    session: AsyncSession,
    attempt_id: int,
    outcome: Outcome,
    *,
    cause: str,
    now: datetime | None = None,
    answered_at: datetime | None = None,
) -> m.CampaignTarget | None:
    """Close an attempt with the channel's outcome and cause (idempotent: the first end wins);
    ``None`` when the attempt is gone."""
    attempt = await locked_attempt(session, attempt_id)
    if attempt is None:
        return None
    if answered_at is not None and attempt.answered_at is None and attempt.ended_at is None:
        attempt.answered_at = answered_at
    target = await do_close_attempt(session, attempt, outcome, cause=cause, now=now)
    await deadlines.cancel(session, RING_DEADLINE, attempt.id)
    return target


async def do_ring_deadline(session: AsyncSession, deadline: m.Deadline) -> None:
    """Nothing reported the placed call's answer or end in time: ``no_answer``. An answered
    attempt is the adapter's (the customer waits for the operator's phone)."""
    attempt = await locked_attempt(session, deadline.ref_id)
    if attempt is None or attempt.ended_at is not None or attempt.answered_at is not None:
        return
    ring = int(deadline.payload.get("ring_seconds") or 0)
    await do_close_attempt(
        session,
        attempt,
        Outcome.NO_ANSWER,
        cause=f"no answer reported within {ring + ANSWER_MARGIN_SECONDS} s",
        now=deadline.due_at,
    )


async def placed_open_attempts(session: AsyncSession, channel: str) -> Sequence[m.CampaignAttempt]:
    """Attempts of ``channel`` that were placed (have a channel id) and have not ended."""
    rows = await session.scalars(
        select(m.CampaignAttempt).where(
            m.CampaignAttempt.channel == channel,
            m.CampaignAttempt.ended_at.is_(None),
            m.CampaignAttempt.external_id != "",
        )
    )
    return rows.all()
