"""Operator inactivity: idle chats are closed, and an operator who lets offers ring out is paused.

Both are queue settings and both ride on persisted deadlines (``omni.domain.deadlines``), so
any node applies them, also after a restart:

- **Idle chats** (``Queue.idle_close_minutes``). Accepting a chat schedules one ``idle_close``
  deadline. When it fires, the chat's last message (either way) is looked at: if there was one
  within the limit, the deadline is moved to that message + the limit; otherwise the customer
  is told why (in their language) and the chat is closed with ``closed_by = "idle"`` and the
  queue's default result code, which frees the operator's capacity. No per-message write: a
  busy chat costs one deadline row per limit period, not one per message. A chat on hold is
  left alone (the operator put it there on purpose) and looked at again a period later.
- **Missed offers** (``Queue.missed_offers_pause``). When an offer rings out (``timeout``), the
  operator's offers since they last chose a status are looked at: when the last N all rang out
  (a declined or accepted one breaks the run) they are put on ``pause`` with a reason that
  supervisors see next to the status, in their language ("missed offers in a row"). Choosing a status again
  starts a new count, so coming back does not pause them at the next miss.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import deadlines
from omni.domain.presence import do_set_status, get_presence, status_by_code
from omni.i18n import _l, gettext

IDLE_CLOSE = "idle_close"
"""Deadline kind; ``ref_id`` is the conversation."""
CLOSED_BY_IDLE = "idle"
PAUSE_CODE = m.StatusKind.PAUSE.value
"""The system "Pause" status (every install has it, migration 0001)."""
IDLE_NOTICE = _l(
    "This chat was closed because there were no messages for {minutes} minutes. Write to us again any time."
)
MISSED_OFFERS = "missed_offers"
"""The pause reason, a code like ``disconnected``: each supervisor sees it in their language
(``enum.presence_reason.missed_offers``)."""


async def do_watch_idle(
    session: AsyncSession, conv: m.Conversation, queue: m.Queue | None, now: datetime
) -> None:
    """Start watching an accepted chat for silence (nothing when its queue has no limit)."""
    if conv.medium != m.Medium.CHAT or queue is None or queue.idle_close_minutes <= 0:
        return
    await deadlines.cancel(session, IDLE_CLOSE, conv.id)
    deadlines.schedule(session, IDLE_CLOSE, conv.id, now + timedelta(minutes=queue.idle_close_minutes))


async def do_idle_deadline(session: AsyncSession, deadline: m.Deadline) -> None:
    """The ``idle_close`` deadline fired: close the chat if it is still silent, else look again
    a limit after its last message."""
    from omni.domain import automated
    from omni.domain.conversations import do_close
    from omni.domain.outbound import preview

    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == deadline.ref_id).with_for_update()
    )
    if conv is None or conv.status not in (m.ConversationStatus.ACTIVE, m.ConversationStatus.ON_HOLD):
        return
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    if queue is None or queue.idle_close_minutes <= 0:
        return  # the limit was turned off meanwhile
    limit = timedelta(minutes=queue.idle_close_minutes)
    # It fired, so its time has come: the engine's clock may run ahead of this one.
    now = max(datetime.now(UTC), deadline.due_at)
    last = max(t for t in (conv.last_message_at, conv.accepted_at, deadline.due_at - limit) if t is not None)
    if conv.status == m.ConversationStatus.ON_HOLD:
        deadlines.schedule(session, IDLE_CLOSE, conv.id, now + limit)
        return
    if last + limit > now:
        deadlines.schedule(session, IDLE_CLOSE, conv.id, last + limit)
        return
    lang = str((conv.variables or {}).get("lang") or "en")
    notice = gettext(lang, IDLE_NOTICE, minutes=queue.idle_close_minutes)
    await automated.do_send_automated(session, conv.id, notice, locked=conv)
    code_id = queue.default_result_code_id
    await preview.do_apply_conversation_result(
        session, conv, code_id, user_id=conv.assigned_user_id, by_timeout=True
    )
    await do_close(session, conv, code_id, by=CLOSED_BY_IDLE)


async def do_count_missed_offer(session: AsyncSession, offer: m.Offer) -> bool:
    """An offer rang out: pause its operator if that makes N in a row (see the module
    docstring). Returns whether they were paused."""
    queue = await session.get(m.Queue, offer.queue_id) if offer.queue_id else None
    limit = queue.missed_offers_pause if queue is not None else 0
    if limit <= 0:
        return False
    presence = await get_presence(session, offer.user_id, lock=True)
    status = await session.get(m.OperatorStatus, presence.status_id)
    if status is None or not (status.receives_chats or status.receives_voice):
        return False  # already away: nothing to pause
    recent = list(
        await session.scalars(
            select(m.Offer.state)
            .where(
                m.Offer.user_id == offer.user_id,
                m.Offer.state.in_(("accepted", "declined", "timeout")),
                m.Offer.created_at >= presence.since,
            )
            .order_by(m.Offer.id.desc())
            .limit(limit)
        )
    )
    if len(recent) < limit or any(state != "timeout" for state in recent):
        return False
    pause = await status_by_code(session, PAUSE_CODE)
    await do_set_status(session, offer.user_id, pause, reason=MISSED_OFFERS)
    return True
