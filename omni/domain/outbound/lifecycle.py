"""The life of a target: an attempt opens, ends with an outcome, and a result code may follow.

Every channel (voice, Telegram) and every dial mode goes through these three actions, so retry
rules, attempt limits, numbers tried in order, callbacks and DNC behave the same everywhere
and each step is one event (``campaign.attempt_started``, ``campaign.attempt_ended``,
``campaign.target_result``) for live views, reports and webhooks. The actions run inside the
caller's transaction and lock nothing themselves: callers hold the target (the scheduler
claims it with ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from omni.db import models as m
from omni.db.models.outbound import Outcome, ResultAction, TargetState
from omni.domain.errors import Conflict, InvalidInput
from omni.domain.events import emit
from omni.domain.outbound.dnc import do_add_dnc
from omni.domain.outbound.opening import (
    CLAIMED_COLUMNS,
    Attempt,
    Claimed,
    RowOpening,
    new_attempt,
    open_in_one_statement,
)
from omni.domain.outbound.retry import retry_minutes

__all__ = [
    "CLAIMED_COLUMNS",
    "Attempt",
    "Claimed",
    "Opening",
    "RowOpening",
    "attempt_dict",
    "do_apply_result",
    "do_close_attempt",
    "do_open_attempt",
    "do_open_attempts",
    "do_open_claimed",
    "target_dict",
]

T = TargetState

_NOT_COUNTED = (Outcome.SKIPPED, Outcome.REFUSED)
"""Outcomes of attempts that never reached the network: they don't use up ``max_attempts``."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def attempt_dict(a: m.CampaignAttempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "campaign_id": a.campaign_id,
        "target_id": a.target_id,
        "number": a.number,
        "phone": a.phone,
        "caller_id": a.caller_id,
        "channel": a.channel,
        "operator_id": a.operator_id,
        "conversation_id": a.conversation_id,
        "outcome": a.outcome,
        "cause": a.cause,
        "created_at": _iso(a.created_at),
        "started_at": _iso(a.started_at),
        "answered_at": _iso(a.answered_at),
        "ended_at": _iso(a.ended_at),
    }


def target_dict(t: m.CampaignTarget) -> dict[str, Any]:
    return {
        "id": t.id,
        "campaign_id": t.campaign_id,
        "list_id": t.list_id,
        "name": t.name,
        "phone": t.phone,
        "phones": list(t.phones),
        "phone_index": t.phone_index,
        "timezone": t.timezone,
        "region": t.region,
        "fields": dict(t.fields),
        "tags": list(t.tags),
        "state": t.state,
        "attempts": t.attempts,
        "next_due_at": _iso(t.next_due_at),
        "callback_user_id": t.callback_user_id,
        "last_outcome": t.last_outcome,
        "result_code_id": t.result_code_id,
        "contact_id": t.contact_id,
    }


async def _campaign(session: AsyncSession, campaign_id: int) -> m.Campaign:
    campaign = await session.get(m.Campaign, campaign_id)
    assert campaign is not None, "a target's campaign exists (FK)"
    return campaign


async def do_open_attempt(
    session: AsyncSession,
    target: m.CampaignTarget,
    *,
    caller_id: str = "",
    operator_id: int | None = None,
    now: datetime | None = None,
) -> m.CampaignAttempt:
    """A new attempt on the target's current number; the target is ``in_progress`` until it ends.

    ``started_at`` stays empty until the channel starts dialing or sending (the channel sets
    it), so a preview shown to an operator is an open attempt that has not dialed yet."""
    (attempt,) = await do_open_attempts(session, [Opening(target, caller_id, operator_id)], now=now)
    return attempt


@dataclass(frozen=True, slots=True)
class Opening:
    """One attempt to open: the target, the caller ID picked and the operator reserved."""

    target: m.CampaignTarget
    caller_id: str = ""
    operator_id: int | None = None


async def do_open_attempts(
    session: AsyncSession, openings: Sequence[Opening], *, now: datetime | None = None
) -> list[m.CampaignAttempt]:
    """``do_open_attempt`` for several targets at once: the scheduler opens a tick's attempts
    together. All or nothing: a target that is not pending refuses the whole batch with
    ``Conflict``. The caller IDs used are stamped ``last_used_at`` = ``now`` (the pool's
    rotation, ``scheduler.pick_caller_id``).

    On PostgreSQL the attempt rows, the targets' update and the ``campaign.attempt_started``
    events are one statement (``_OPEN``: one round trip, no ORM unit of work, which was most
    of a scheduler tick's time); the attempts returned are attached to the session as if
    loaded, and the targets' new values are set as committed. Elsewhere (SQLite) the ORM
    writes the same rows and events with one flush."""
    for o in openings:
        if o.target.state != T.PENDING:
            raise Conflict(
                "target {target_id} is {state}, not pending", target_id=o.target.id, state=o.target.state
            )
    now = now or datetime.now(UTC)
    opened: list[tuple[m.CampaignAttempt, m.Campaign]] = []
    for o in openings:
        target = o.target
        campaign = await _campaign(session, target.campaign_id)
        phones = list(target.phones) or [target.phone]
        attempt = m.CampaignAttempt(
            campaign_id=target.campaign_id,
            target_id=target.id,
            number=target.attempts + 1,
            phone=phones[target.phone_index % len(phones)],
            caller_id=o.caller_id,
            channel=campaign.channel,
            operator_id=o.operator_id,
            created_at=now,
            # Every column, as the row will read (``_open_in_one_statement`` loads nothing back).
            conversation_id=None,
            external_id="",
            started_at=None,
            answered_at=None,
            ended_at=None,
            outcome=None,
            amd="",
            cause="",
        )
        opened.append((attempt, campaign))
    if opened and session.get_bind().dialect.name == "postgresql":
        rows = [
            RowOpening(_claimed(o.target), o.caller_id, o.operator_id, c.channel, c.queue_id)
            for o, (_, c) in zip(openings, opened, strict=True)
        ]
        ids = await open_in_one_statement(session, rows, now)
        for o, (attempt, _), attempt_id in zip(openings, opened, ids, strict=True):
            # Every column is set, so nothing is left to load: in the session as if read back.
            attempt.id = attempt_id
            make_transient_to_detached(attempt)
            session.add(attempt)
            target = o.target
            set_committed_value(target, "state", str(T.IN_PROGRESS))
            set_committed_value(target, "attempts", attempt.number)
            set_committed_value(target, "next_due_at", None)
            set_committed_value(target, "updated_at", now)
        return [attempt for attempt, _ in opened]
    for o, (attempt, _) in zip(openings, opened, strict=True):
        session.add(attempt)
        target = o.target
        target.state = T.IN_PROGRESS
        target.attempts += 1
        target.next_due_at = None
        target.updated_at = now
    await session.flush()
    await _stamp_caller_ids(session, [a for a, _ in opened], now)
    for attempt, campaign in opened:
        emit(
            session,
            "campaign.attempt_started",
            attempt_dict(attempt),
            queue_id=campaign.queue_id,
            user_id=attempt.operator_id,
        )
    return [attempt for attempt, _ in opened]


async def _stamp_caller_ids(
    session: AsyncSession, attempts: Sequence[m.CampaignAttempt], now: datetime
) -> None:
    """The caller IDs the attempts use were last used ``now`` (the pool's rotation reads it)."""
    table = cast(Table, m.CampaignCallerId.__table__)
    used: dict[int, set[str]] = {}
    for a in attempts:
        if a.caller_id:
            used.setdefault(a.campaign_id, set()).add(a.caller_id)
    for campaign_id, numbers in used.items():
        await (await session.connection()).execute(
            update(table)
            .where(table.c.campaign_id == campaign_id, table.c.number.in_(sorted(numbers)))
            .values(last_used_at=now)
        )


def _claimed(t: m.CampaignTarget) -> Claimed:
    return Claimed(*(getattr(t, name) for name in CLAIMED_COLUMNS))


async def do_open_claimed(
    session: AsyncSession, openings: Sequence[RowOpening], *, now: datetime
) -> list[Attempt]:
    """``do_open_attempts`` for targets claimed as plain rows (the scheduler's tick): the same
    rows, events and caller-ID stamps, all or nothing (a target that is not pending refuses
    the batch with ``Conflict``); an opening with ``dnc`` is also closed ``refused`` at once.
    Returns the attempts in the order given. On PostgreSQL one statement and no ORM object at
    all (``_OPEN``); elsewhere (SQLite) the targets are loaded and opened (and closed) by the
    ORM path: ``do_open_attempt`` and ``do_close_attempt`` for the refused ones, then
    ``do_open_attempts``."""
    for o in openings:
        if o.target.state != T.PENDING:
            raise Conflict(
                "target {target_id} is {state}, not pending", target_id=o.target.id, state=o.target.state
            )
    if not openings:
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = await open_in_one_statement(session, openings, now)
        return [Attempt(i, *new_attempt(o)) for i, o in zip(ids, openings, strict=True)]
    loaded = {
        t.id: t
        for t in await session.scalars(
            select(m.CampaignTarget)
            .where(m.CampaignTarget.id.in_([o.target.id for o in openings]))
            .execution_options(populate_existing=True)
        )
    }
    opened: dict[int, m.CampaignAttempt] = {}
    for o in openings:
        if o.dnc:
            attempt = await do_open_attempt(session, loaded[o.target.id], caller_id=o.caller_id, now=now)
            await do_close_attempt(
                session, attempt, Outcome.REFUSED, cause="dnc", now=now, refused_state=T.DNC
            )
            opened[o.target.id] = attempt
    batch = [Opening(loaded[o.target.id], o.caller_id, o.operator_id) for o in openings if not o.dnc]
    for attempt in await do_open_attempts(session, batch, now=now):
        opened[attempt.target_id] = attempt
    return [
        Attempt(a.id, a.campaign_id, a.target_id, a.number, a.phone, a.caller_id, a.channel, a.operator_id)
        for a in (opened[o.target.id] for o in openings)
    ]


async def _nth(session: AsyncSession, target_id: int, outcome: str) -> int:
    """How many attempts of this target ended with ``outcome`` (this one included)."""
    count = await session.scalar(
        select(func.count())
        .select_from(m.CampaignAttempt)
        .where(m.CampaignAttempt.target_id == target_id, m.CampaignAttempt.outcome == outcome)
    )
    return int(count or 0)


async def do_close_attempt(
    session: AsyncSession,
    attempt: m.CampaignAttempt,
    outcome: Outcome,
    *,
    cause: str = "",
    now: datetime | None = None,
    refused_state: TargetState | None = None,
) -> m.CampaignTarget:
    """End an attempt and decide what happens to its target.

    - ``answered``: the target stays ``in_progress`` until the operator's result code
      (``do_apply_result``); ``sent``: done.
    - ``refused``: the target takes ``refused_state`` (``dnc``, or ``pending`` again with the
      due time the caller set: a closed window, a pre-dial "later").
    - anything else: retried on the next number after the outcome's retry interval
      (``Campaign.retry_rules``, the n-th interval for the n-th such outcome), unless the
      campaign's ``max_attempts`` are used up or the outcome has no rule — then ``failed``.
      Skips and refusals don't use up attempts.
    Idempotent: a second close of an ended attempt changes nothing.
    """
    target = await session.get(m.CampaignTarget, attempt.target_id)
    assert target is not None
    if attempt.ended_at is not None:
        return target
    campaign = await _campaign(session, attempt.campaign_id)
    now = now or datetime.now(UTC)
    attempt.outcome = outcome
    attempt.cause = cause[:64]
    attempt.ended_at = now
    if outcome == Outcome.ANSWERED and attempt.answered_at is None:
        attempt.answered_at = now
    target.last_outcome = outcome
    target.updated_at = now
    if outcome in _NOT_COUNTED:
        target.attempts = max(0, target.attempts - 1)
    await session.flush()
    if outcome == Outcome.ANSWERED:
        pass
    elif outcome == Outcome.SENT:
        target.state = T.DONE
    elif outcome == Outcome.REFUSED:
        target.state = refused_state or T.FAILED
        if target.state != T.PENDING:
            target.next_due_at = None
    else:
        minutes = retry_minutes(campaign.retry_rules, outcome, await _nth(session, target.id, outcome))
        if minutes is None or target.attempts >= campaign.max_attempts:
            target.state = T.FAILED
        else:
            target.state = T.PENDING
            target.next_due_at = now + timedelta(minutes=minutes)
            if outcome != Outcome.SKIPPED and len(target.phones) > 1:
                target.phone_index = (target.phone_index + 1) % len(target.phones)
    emit(
        session,
        "campaign.attempt_ended",
        {**attempt_dict(attempt), "target_state": target.state, "next_due_at": _iso(target.next_due_at)},
        queue_id=campaign.queue_id,
        user_id=attempt.operator_id,
    )
    return target


async def do_apply_result(
    session: AsyncSession,
    target: m.CampaignTarget,
    result_code_id: int | None,
    *,
    user_id: int | None,
    callback_at: datetime | None = None,
    for_me: bool = False,
    now: datetime | None = None,
) -> m.CampaignTarget:
    """Apply the operator's result code to a reached target (its campaign action decides).

    ``retry``: pending again after the code's minutes, or at ``callback_at`` when given;
    ``callback``: pending at ``callback_at`` (required), for ``user_id`` only when ``for_me``;
    ``dnc``: the number goes on the campaign's (or the global) do-not-call list; ``finish`` (and
    a code the campaign does not configure): done. Callbacks and retries chosen by a person
    are honoured even when ``max_attempts`` is used up."""
    campaign = await _campaign(session, target.campaign_id)
    now = now or datetime.now(UTC)
    action: str = ResultAction.FINISH
    rule = None
    if result_code_id is not None:
        rule = await session.get(m.CampaignResultCode, (campaign.id, result_code_id))
        if rule is not None:
            action = rule.action
    if callback_at is not None and callback_at.tzinfo is None:
        raise InvalidInput("the callback time needs a time zone", field="callback_at")
    target.result_code_id = result_code_id
    target.updated_at = now
    target.callback_user_id = None
    if action == ResultAction.CALLBACK or (action == ResultAction.RETRY and callback_at is not None):
        if callback_at is None:
            raise InvalidInput("pick the time to call back", field="callback_at")
        if callback_at <= now:
            raise InvalidInput("the callback time is in the past", field="callback_at")
        target.state = T.PENDING
        target.next_due_at = callback_at
        target.callback_user_id = user_id if for_me else None
    elif action == ResultAction.RETRY:
        target.state = T.PENDING
        target.next_due_at = now + timedelta(
            minutes=(rule.retry_minutes if rule and rule.retry_minutes else 60)
        )
    elif action == ResultAction.DNC:
        scope = None if rule is not None and rule.global_dnc else campaign.id
        # Already listed (also as its own prefix, or by a concurrent close): nothing to add.
        await do_add_dnc(
            session, scope, [(target.phone, False)], reason="result code", user_id=user_id, now=now
        )
        target.state = T.DNC
        target.next_due_at = None
    else:
        target.state = T.DONE
        target.next_due_at = None
    await session.flush()
    emit(
        session,
        "campaign.target_result",
        {
            "campaign_id": campaign.id,
            "target_id": target.id,
            "state": target.state,
            "result_code_id": result_code_id,
            "action": action,
            "next_due_at": _iso(target.next_due_at),
            "callback_user_id": target.callback_user_id,
            "user_id": user_id,
        },
        queue_id=campaign.queue_id,
        user_id=user_id,
    )
    return target
