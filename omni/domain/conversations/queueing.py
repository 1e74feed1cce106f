"""Queueing: a conversation in line, its waiting-line timers (queue timeout, escalation)
and where it overflows when nobody can take it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import deadlines
from omni.domain.conversations._common import S, _event, bot_gateway
from omni.domain.conversations.callbacks import _add_callback
from omni.domain.conversations.offers import _cancel_pending_offers
from omni.domain.errors import InvalidInput
from omni.domain.hours import queue_open
from omni.domain.routing_signal import request_routing

log = logging.getLogger(__name__)


def line_up(
    conv: m.Conversation, queue: m.Queue, *, priority: int = 0, now: datetime, keep_place: bool = False
) -> None:
    """The conversation's place in line for ``queue``, on its columns only. A conversation
    created to be queued at once gets them before its insert (``do_ingest_inbound``), so the
    insert carries them and ``do_enqueue`` setting the same values writes no ``UPDATE``."""
    conv.queue_id = queue.id
    conv.status = S.QUEUED
    conv.priority = queue.priority + priority
    conv.enqueued_at = now
    if conv.first_enqueued_at is None or not keep_place:
        conv.first_enqueued_at = now
    conv.assigned_user_id = None
    conv.escalation_step = 0
    conv.skill_relax = 0
    conv.extra_queue_ids = []


async def do_enqueue(
    session: AsyncSession,
    conv: m.Conversation,
    queue: m.Queue,
    *,
    priority: int = 0,
    now: datetime | None = None,
    keep_place: bool = False,
    hops: int = 0,
    fresh: bool = False,
) -> None:
    """Put the conversation in line for ``queue`` and arm its timers.

    Outside the queue's business hours the overflow target applies at once (e.g. the
    widget's offline form, voicemail, or a queue that is open). ``fresh``: the conversation
    was created in this transaction, so it has no timers to cancel (one statement less on
    every new contact).
    """
    now = now or datetime.now(UTC)
    line_up(conv, queue, priority=priority, now=now, keep_place=keep_place)
    if not fresh:
        await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id, deadlines.ESCALATION)
    if queue.queue_timeout_seconds > 0:
        deadlines.schedule(
            session, deadlines.QUEUE_TIMEOUT, conv.id, now + timedelta(seconds=queue.queue_timeout_seconds)
        )
    steps = queue.escalation or []
    if steps:
        deadlines.schedule(
            session,
            deadlines.ESCALATION,
            conv.id,
            (conv.first_enqueued_at or now) + timedelta(seconds=int(steps[0].get("after_seconds", 0))),
            {"step": 0},
        )
    _event(session, "conversation.queued", conv)
    if not await queue_open(session, queue, now):
        await _overflow(session, conv, queue, now=now, reason="closed", hops=hops)
        return
    if not keep_place and queue.affinity_seconds > 0:
        from omni.domain.place import do_affinity  # place builds on this module

        await do_affinity(session, conv, queue, now=now)
    request_routing(session)


async def do_reopen(session: AsyncSession, conv: m.Conversation, *, now: datetime) -> None:
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    conv.closed_at = None
    conv.wrap_up_at = None
    conv.accepted_at = None
    conv.offered_at = None
    conv.result_code_id = None
    conv.closed_by = None
    conv.first_enqueued_at = None
    _event(session, "conversation.reopened", conv)
    if queue is None:
        raise InvalidInput("the conversation's queue no longer exists", field="queue_id")
    await do_enqueue(session, conv, queue, now=now)


async def do_queue_timeout(session: AsyncSession, conv_id: int, due_at: datetime | None = None) -> None:
    """Nobody answered in time: apply the queue's overflow target."""
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None or conv.status not in (S.QUEUED, S.OFFERED):
        return
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    now = datetime.now(UTC)
    stale = (
        due_at is not None
        and queue is not None
        and conv.enqueued_at is not None
        and due_at < conv.enqueued_at + timedelta(seconds=queue.queue_timeout_seconds - 1)
    )
    if stale:
        return  # set before a re-enqueue (transfer) and fired while that enqueue cancelled it
    await _cancel_pending_offers(session, conv)
    await _overflow(session, conv, queue, now=now, reason="timeout")


MAX_OVERFLOW_HOPS = 3


async def _overflow(
    session: AsyncSession,
    conv: m.Conversation,
    queue: m.Queue | None,
    *,
    now: datetime,
    reason: str,
    hops: int = 0,
) -> None:
    """Send the conversation where its queue says when nobody can take it (timeout, closed)."""
    action = queue.overflow_action if queue else "none"
    if queue is not None and action == "queue" and queue.overflow_queue_id and hops < MAX_OVERFLOW_HOPS:
        target = await session.get(m.Queue, queue.overflow_queue_id)
        if target is not None:
            _event(
                session,
                "conversation.overflowed",
                conv,
                action="queue",
                reason=reason,
                from_queue_id=queue.id,
                to_queue_id=target.id,
            )
            await do_enqueue(session, conv, target, now=now, keep_place=True, hops=hops + 1)
            return
    if action == "bot" and queue is not None and await _overflow_to_bot(session, conv, queue, reason=reason):
        return
    conv.status = S.MISSED
    conv.assigned_user_id = None
    conv.closed_at = now
    conv.closed_by = "timeout" if reason == "timeout" else "system"
    await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id, deadlines.ESCALATION)
    _event(session, "conversation.missed", conv, action=action, reason=reason)
    await _add_callback(session, conv, reason="missed")


async def _overflow_to_bot(
    session: AsyncSession, conv: m.Conversation, queue: m.Queue, *, reason: str
) -> bool:
    """Start the queue's ``overflow_scenario`` on the conversation; ``False`` (logged, the caller
    then marks it missed with a callback) when no scenario can run, so a customer is never
    left in status ``bot`` with no bot: never routed, closed or marked missed."""
    bot = bot_gateway(session)
    key = queue.overflow_scenario
    published = key and await session.scalar(
        select(m.Scenario.id).where(m.Scenario.key == key, m.Scenario.active_revision_id.is_not(None))
    )
    if bot is None or not published:
        problem = (
            "names no overflow_scenario" if not key
            else f"its overflow_scenario {key!r} is not published" if not published
            else "no bot runner is installed"
        )  # fmt: skip
        log.error("queue %s (%s) overflows to a bot but %s; conversation %s is missed with a callback",
                  queue.id, queue.name, problem, conv.id)  # fmt: skip
        return False
    conv.status = S.BOT
    conv.assigned_user_id = None
    await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id, deadlines.ESCALATION)
    # Announced before the scenario runs, so what it says and does (hand-off, close) follows.
    _event(session, "conversation.overflowed", conv, action="bot", reason=reason, scenario=key)
    return await bot.hand_to_bot(session, conv, key)


async def do_escalation(session: AsyncSession, conv_id: int, step: int) -> None:
    """Widen the conversation's reach after waiting; the customer keeps their place."""
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None or conv.status not in (S.QUEUED, S.OFFERED) or conv.escalation_step != step:
        return
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    steps = (queue.escalation if queue else None) or []
    if step >= len(steps):
        return
    spec = steps[step]
    conv.skill_relax += int(spec.get("relax_levels", 0))
    add = spec.get("add_queue_id")
    if add and add not in conv.extra_queue_ids:
        conv.extra_queue_ids = [*conv.extra_queue_ids, int(add)]
    conv.escalation_step = step + 1
    if step + 1 < len(steps):
        first = conv.first_enqueued_at or conv.created_at
        deadlines.schedule(
            session,
            deadlines.ESCALATION,
            conv.id,
            first + timedelta(seconds=int(steps[step + 1].get("after_seconds", 0))),
            {"step": step + 1},
        )
    _event(session, "conversation.escalated", conv, step=step + 1)
    request_routing(session)
