"""Preview dialing from the operator's side, and the operator's result code on a campaign contact.

The engine opens a preview attempt reserved for one operator (``operator_id``; ``started_at``
empty) and ``campaign.attempt_started`` reaches that operator's room: the console shows the
customer's card with a countdown. The operator then

* calls (``do_preview_call``): the attempt starts; the transport hands the returned
  ``AttemptOrder`` to the channel's ``PlacesAttempts`` after the commit (``place_orders``);
* skips (``do_preview_skip``): the attempt ends ``skipped`` and the retry rules decide (a skip
  uses no attempt);
* reschedules (``do_preview_reschedule``): the target is pending again at the chosen time.

Nobody answering the card in time is a persisted deadline: the attempt's ``created_at`` plus
the campaign's ``preview_seconds``; ``do_expire_previews`` (run by the engine's tick) dials it
when the campaign says ``preview_auto_dial`` and otherwise puts the target back, due at once.

An answered attempt becomes an ordinary conversation whose ``variables`` carry
``campaign_id``/``target_id``/``attempt_id``. Closing it with a result code
(``conversations.check_close``) applies the code to the target through
``lifecycle.do_apply_result`` (``do_apply_conversation_result``); only the campaign's result
codes are offered and accepted for it (``campaign_code_ids``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.db.models.outbound import CampaignState, DialMode, Outcome, ResultAction, TargetState
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.outbound.lifecycle import do_apply_result, do_close_attempt
from omni.domain.richtext import sanitize

if TYPE_CHECKING:
    from omni.channels import AdapterRegistry, AttemptOrder

__all__ = [
    "CAMPAIGN_VARIABLES",
    "attempt_order",
    "campaign_code_ids",
    "campaign_of",
    "conversation_campaign",
    "do_apply_conversation_result",
    "do_expire_previews",
    "do_preview_call",
    "do_preview_reschedule",
    "do_preview_skip",
    "my_callbacks",
    "my_previews",
    "place_orders",
    "preview_card",
]

log = logging.getLogger(__name__)

CAMPAIGN_VARIABLES = ("campaign_id", "target_id", "attempt_id")
"""The conversation variables that tie an answered attempt's conversation to its campaign."""

DEFAULT_CALLBACK_MINUTES = 60
"""A wrap-up that runs out on a callback code (nobody picked a time): call back this much later."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def attempt_order(session: AsyncSession, attempt: m.CampaignAttempt) -> AttemptOrder:
    """The order a channel needs to place ``attempt`` (the target's name and card fields go
    along as variables, with the ids that tie the answered call back to the campaign)."""
    from omni.channels import AttemptOrder  # omni.channels imports the conversations that import this

    campaign = await session.get(m.Campaign, attempt.campaign_id)
    target = await session.get(m.CampaignTarget, attempt.target_id)
    assert campaign is not None and target is not None, "an attempt's campaign and target exist (FK)"
    return AttemptOrder(
        attempt_id=attempt.id,
        campaign_id=campaign.id,
        target_id=target.id,
        channel=attempt.channel,
        dial_mode=campaign.dial_mode,
        phone=attempt.phone,
        caller_id=attempt.caller_id,
        inbox_id=campaign.inbox_id,
        queue_id=campaign.queue_id,
        operator_id=attempt.operator_id,
        ring_seconds=campaign.ring_seconds,
        variables={
            "campaign_id": campaign.id,
            "target_id": target.id,
            "attempt_id": attempt.id,
            "name": target.name,
            **{str(k): v for k, v in dict(target.fields).items()},
        },
    )


async def _my_preview(
    session: AsyncSession, who: Principal, attempt_id: int
) -> tuple[m.CampaignAttempt, m.Campaign]:
    """The caller's open preview, locked; anyone else's is refused."""
    attempt = await session.scalar(
        select(m.CampaignAttempt).where(m.CampaignAttempt.id == attempt_id).with_for_update()
    )
    if attempt is None:
        raise NotFound("attempt {attempt_id} not found", attempt_id=attempt_id)
    if attempt.operator_id != who.id:
        raise PermissionDenied("this preview is reserved for another operator")
    if attempt.ended_at is not None or attempt.started_at is not None:
        raise Conflict("this preview is already dialed or closed")
    campaign = await session.get(m.Campaign, attempt.campaign_id)
    assert campaign is not None
    return attempt, campaign


async def do_preview_call(
    session: AsyncSession, who: Principal, attempt_id: int, *, now: datetime | None = None
) -> AttemptOrder:
    """The reserved operator calls the previewed customer: the attempt starts now.

    The caller hands the returned order to the channel after the commit (``place_orders``),
    so a rolled-back call never rings anyone. A campaign that is no longer running places
    nothing (the card can still be skipped or rescheduled)."""
    attempt, campaign = await _my_preview(session, who, attempt_id)
    if campaign.state != CampaignState.RUNNING:
        raise Conflict("the campaign is {state}: calls can't be placed", state=campaign.state)
    attempt.started_at = now or datetime.now(UTC)
    await session.flush()
    return await attempt_order(session, attempt)


async def do_preview_skip(
    session: AsyncSession, who: Principal, attempt_id: int, *, now: datetime | None = None
) -> m.CampaignTarget:
    """The operator skips the card: ``skipped`` (no attempt used), retried by the campaign's
    rule for skips (``retry_rules["skipped"]``, an hour by default)."""
    attempt, _ = await _my_preview(session, who, attempt_id)
    return await do_close_attempt(session, attempt, Outcome.SKIPPED, cause="operator", now=now)


async def do_preview_reschedule(
    session: AsyncSession,
    who: Principal,
    attempt_id: int,
    at: datetime,
    *,
    now: datetime | None = None,
) -> m.CampaignTarget:
    """The operator puts the card off until ``at``: the target is pending then (for anyone),
    and the attempt, never dialed, uses up nothing."""
    now = now or datetime.now(UTC)
    if at.tzinfo is None:
        raise InvalidInput("the time needs a time zone", field="at")
    if at <= now:
        raise InvalidInput("the time is in the past", field="at")
    attempt, _ = await _my_preview(session, who, attempt_id)
    target = await do_close_attempt(
        session, attempt, Outcome.REFUSED, cause="rescheduled", now=now, refused_state=TargetState.PENDING
    )
    target.next_due_at = at.astimezone(UTC)
    await session.flush()
    return target


async def do_expire_previews(session: AsyncSession, now: datetime) -> list[AttemptOrder]:
    """Previews nobody answered within their campaign's ``preview_seconds``.

    Auto-dial campaigns start them (the caller places the returned orders after the commit);
    the others close them ``refused`` (no attempt used) with the target due again at once, so
    the next free operator gets the card. Locks what it takes (``SKIP LOCKED``): two nodes
    never expire one preview twice."""
    a, c = m.CampaignAttempt, m.Campaign
    rows = (
        await session.execute(
            select(a, c.preview_seconds, c.preview_auto_dial, c.state)
            .join(c, c.id == a.campaign_id)
            .where(
                a.ended_at.is_(None),
                a.started_at.is_(None),
                a.operator_id.is_not(None),
                c.dial_mode == DialMode.PREVIEW,
            )
            .order_by(a.created_at)
            .with_for_update(of=a, skip_locked=True)
        )
    ).all()
    orders: list[AttemptOrder] = []
    for attempt, seconds, auto_dial, state in rows:
        created = _aware(attempt.created_at)
        assert created is not None
        if created + timedelta(seconds=seconds) > now:
            continue
        if auto_dial and state == CampaignState.RUNNING:
            attempt.started_at = now
            await session.flush()
            orders.append(await attempt_order(session, attempt))
        else:
            target = await do_close_attempt(
                session,
                attempt,
                Outcome.REFUSED,
                cause="preview timeout",
                now=now,
                refused_state=TargetState.PENDING,
            )
            target.next_due_at = now
    await session.flush()
    return orders


async def place_orders(
    db: Database, adapters: AdapterRegistry, orders: Sequence[AttemptOrder]
) -> dict[int, str]:
    """Hand committed orders to their channels. A channel that can't place now (none
    registered, or ``ChannelNotReady``) gets the attempt closed ``refused`` with the target
    pending again at once: nothing is lost, no attempt is used up. Returns why each attempt
    that was not placed was not (by attempt id), for the operator who pressed Call."""
    from omni.channels import ChannelNotReady, PlacesAttempts  # see attempt_order

    unplaced: dict[int, str] = {}
    for order in orders:
        adapter: object = adapters.get(order.channel)
        reason = ""
        if isinstance(adapter, PlacesAttempts):
            try:
                await adapter.place(order)
                continue
            except ChannelNotReady as exc:
                reason = str(exc) or "not ready"
        else:
            reason = "no channel places attempts"
        log.warning("campaign attempt %s not placed on %s: %s", order.attempt_id, order.channel, reason)
        unplaced[order.attempt_id] = reason
        async with db.transaction() as session:
            attempt = await session.get(m.CampaignAttempt, order.attempt_id, with_for_update=True)
            if attempt is None or attempt.ended_at is not None:
                continue
            now = datetime.now(UTC)
            target = await do_close_attempt(
                session, attempt, Outcome.REFUSED, cause=reason, now=now, refused_state=TargetState.PENDING
            )
            target.next_due_at = now
    return unplaced


# --- what the console shows -------------------------------------------------------------


def _utc_offset(zone: str, now: datetime) -> int:
    try:
        offset = now.astimezone(ZoneInfo(zone)).utcoffset()
    except (ValueError, KeyError):  # an unknown zone name: UTC rather than no card
        offset = None
    return int(offset.total_seconds()) if offset is not None else 0


async def preview_card(
    session: AsyncSession, attempt: m.CampaignAttempt, *, now: datetime | None = None
) -> dict[str, Any]:
    """One campaign card: the customer (name, number, local time, card fields), the campaign's
    script and, for an undialed preview, when it runs out. Customer text is data: the page
    renders it as text; the script is sanitized HTML like the queue's."""
    now = now or datetime.now(UTC)
    campaign = await session.get(m.Campaign, attempt.campaign_id)
    target = await session.get(m.CampaignTarget, attempt.target_id)
    assert campaign is not None and target is not None
    queue = await session.get(m.Queue, campaign.queue_id)
    zone = target.timezone or campaign.timezone
    script = campaign.script or (queue.script if queue is not None else "") or ""
    created = _aware(attempt.created_at)
    assert created is not None
    return {
        "attempt_id": attempt.id,
        "campaign_id": campaign.id,
        "campaign_name": campaign.name,
        "target_id": target.id,
        "name": target.name,
        "phone": attempt.phone,
        "timezone": zone,
        "utc_offset": _utc_offset(zone, now),
        "fields": {str(k): v for k, v in dict(target.fields).items()},
        "attempt": attempt.number,
        "script": sanitize(script) if script else "",
        "started_at": _iso(_aware(attempt.started_at)),
        "expires_at": _iso(created + timedelta(seconds=campaign.preview_seconds)),
        "auto_dial": campaign.preview_auto_dial,
    }


async def my_previews(
    session: AsyncSession, who: Principal, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The caller's preview cards not dialed yet (a reload shows them again)."""
    a = m.CampaignAttempt
    attempts = await session.scalars(
        select(a)
        .where(a.operator_id == who.id, a.ended_at.is_(None), a.started_at.is_(None))
        .order_by(a.created_at)
    )
    return [await preview_card(session, attempt, now=now) for attempt in attempts]


async def my_callbacks(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """Campaign contacts the caller promised to call back (``callback_user_id`` = them), soonest first."""
    t, c = m.CampaignTarget, m.Campaign
    rows = await session.execute(
        select(t.id, t.campaign_id, c.name, t.name, t.phone, t.next_due_at)
        .join(c, c.id == t.campaign_id)
        .where(t.callback_user_id == who.id, t.state == TargetState.PENDING)
        .order_by(t.next_due_at, t.id)
    )
    return [
        {
            "target_id": target_id,
            "campaign_id": campaign_id,
            "campaign_name": campaign_name,
            "name": name,
            "phone": phone,
            "due_at": _iso(_aware(due)),
        }
        for target_id, campaign_id, campaign_name, name, phone, due in rows.all()
    ]


# --- the operator's result code on a campaign conversation ----------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


async def campaign_of(
    session: AsyncSession, conv: m.Conversation
) -> tuple[m.Campaign, m.CampaignTarget] | None:
    """The campaign and target a conversation was placed for, from its variables (``None``
    for an ordinary conversation, or when the ids don't match one campaign's target)."""
    variables = conv.variables or {}
    campaign_id, target_id = _int(variables.get("campaign_id")), _int(variables.get("target_id"))
    if campaign_id is None or target_id is None:
        return None
    target = await session.get(m.CampaignTarget, target_id)
    if target is None or target.campaign_id != campaign_id:
        return None
    campaign = await session.get(m.Campaign, campaign_id)
    return (campaign, target) if campaign is not None else None


async def campaign_code_ids(session: AsyncSession, conv: m.Conversation) -> dict[int, str] | None:
    """For a campaign conversation, the campaign's result codes and their action (``None``: not
    a campaign conversation, or a campaign without its own codes — the queue's rule applies)."""
    found = await campaign_of(session, conv)
    if found is None:
        return None
    rows = await session.execute(
        select(m.CampaignResultCode.result_code_id, m.CampaignResultCode.action).where(
            m.CampaignResultCode.campaign_id == found[0].id
        )
    )
    codes = {code_id: action for code_id, action in rows.all()}
    return codes or None


async def do_apply_conversation_result(
    session: AsyncSession,
    conv: m.Conversation,
    result_code_id: int | None,
    *,
    user_id: int | None,
    callback_at: datetime | None = None,
    for_me: bool = False,
    by_timeout: bool = False,
    now: datetime | None = None,
) -> m.CampaignTarget | None:
    """Apply a closed campaign conversation's result code to its target.

    The attempt that reached the customer ends ``answered`` if its channel has not closed it
    yet. A target no longer in progress (already given a result) is left alone. When the
    wrap-up runs out on a callback code, nobody picked a time: the callback is for anyone,
    ``DEFAULT_CALLBACK_MINUTES`` later. Refusals (a callback code without a time) roll the
    close back, so the operator sees the form error and the conversation stays open."""
    found = await campaign_of(session, conv)
    if found is None:
        return None
    campaign, target = found
    now = now or datetime.now(UTC)
    attempt_id = _int((conv.variables or {}).get("attempt_id"))
    if attempt_id is not None:
        attempt = await session.get(m.CampaignAttempt, attempt_id)
        if attempt is not None and attempt.target_id == target.id and attempt.ended_at is None:
            if attempt.conversation_id is None:
                attempt.conversation_id = conv.id
            await do_close_attempt(session, attempt, Outcome.ANSWERED, cause="closed by operator", now=now)
    if target.state != TargetState.IN_PROGRESS:
        return target
    if by_timeout and callback_at is None and result_code_id is not None:
        rule = await session.get(m.CampaignResultCode, (campaign.id, result_code_id))
        if rule is not None and rule.action == ResultAction.CALLBACK:
            callback_at = now + timedelta(minutes=rule.retry_minutes or DEFAULT_CALLBACK_MINUTES)
            for_me = False
    return await do_apply_result(
        session, target, result_code_id, user_id=user_id, callback_at=callback_at, for_me=for_me, now=now
    )


async def conversation_campaign(session: AsyncSession, conv: m.Conversation) -> dict[str, Any] | None:
    """The campaign card of a campaign conversation (``None`` for an ordinary one)."""
    found = await campaign_of(session, conv)
    if found is None:
        return None
    attempt_id = _int((conv.variables or {}).get("attempt_id"))
    attempt = await session.get(m.CampaignAttempt, attempt_id) if attempt_id is not None else None
    if attempt is None or attempt.target_id != found[1].id:
        return None
    return await preview_card(session, attempt)
