"""Snooze: an operator sets a conversation aside until a time or the customer's next message.

The rules (docs/routing.md, *Snooze*):

* Only the operator handling an active (or held) chat, or a supervisor/admin in scope, snoozes
  it; calls are not snoozed (a call can't wait on a shelf).
* **A snoozed conversation frees its operator's capacity.** It waits on something outside the
  operator's hands (a date, the customer's answer, often hours away in Telegram); a slot held
  that long would keep new customers in line behind nothing. It stays assigned to the operator
  (their list shows it, "snoozed"), so nobody else picks it up meanwhile.
* It wakes when the time comes (a persisted ``deadlines`` row: any node fires it, after a
  restart or a SIGKILL too), **or whenever the customer writes** — a customer who writes waits
  for an answer, whatever time was picked — or when its operator takes it back by hand.
* On waking it goes back in line at its old place (``first_enqueued_at`` kept) and, when its
  operator can take it now (available, with room), is offered to them alone for
  ``RETURN_SECONDS`` (the place module's affinity window), then by the queue's strategy; when
  they can't, the queue's strategy decides at once. The operator taking it back by hand gets
  it active at once.

The state lives in ``Conversation.variables["snooze"]`` (``user_id``, ``until``,
``until_customer``, ``since``), read without a join and kept over restarts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, deadlines
from omni.domain.auth import Principal, access_conversation
from omni.domain.conversations._common import S, _event
from omni.domain.conversations.queueing import do_enqueue
from omni.domain.errors import Conflict, InvalidInput, PermissionDenied
from omni.domain.presence import do_refresh_activity_of
from omni.domain.routing import free_queue_ids
from omni.domain.routing_signal import request_routing
from omni.i18n import Label

__all__ = ["MAX_SNOOZE", "RETURN_SECONDS", "SNOOZE_WAKE", "check_snooze", "check_unsnooze", "do_wake"]

SNOOZE_WAKE = "snooze_wake"
MAX_SNOOZE = timedelta(days=30)
RETURN_SECONDS = 120
"""How long a woken conversation is offered to its operator alone before the queue decides."""

Reason = Literal["time", "customer", "operator"]


def _require_handler(conv: m.Conversation, who: Principal) -> None:
    if conv.assigned_user_id != who.id and who.role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
        raise PermissionDenied("only the operator handling the conversation can do this")


async def check_snooze(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    *,
    until: datetime | None,
    until_customer: bool,
    now: datetime | None = None,
) -> m.Conversation:
    """Set the conversation aside; ``until`` and/or ``until_customer`` (at least one)."""
    now = now or datetime.now(UTC)
    if until is None and not until_customer:
        raise InvalidInput("pick a time or 'until the customer writes'", field="until")
    if until is not None:
        if until.tzinfo is None:
            raise InvalidInput("{field} needs a time zone", field="until")
        if until <= now:
            raise InvalidInput("{field} must be in the future", field="until")
        if until - now > MAX_SNOOZE:
            raise InvalidInput(
                "a conversation can be snoozed for at most {days} days", days=30, field="until"
            )
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.medium != m.Medium.CHAT:
        raise Conflict("only chats can be snoozed")
    if conv.status not in (S.ACTIVE, S.ON_HOLD) or conv.assigned_user_id is None:
        raise Conflict("a {status} conversation can't be snoozed", status=Label("status", conv.status))
    if conv.status == S.ON_HOLD and conv.hold_started_at:
        conv.hold_seconds += int((now - conv.hold_started_at).total_seconds())
        conv.hold_started_at = None
    user_id = conv.assigned_user_id
    conv.status = S.SNOOZED
    conv.variables = {
        **(conv.variables or {}),
        "snooze": {
            "user_id": user_id,
            "until": until.astimezone(UTC).isoformat() if until else None,
            "until_customer": until_customer,
            "since": now.isoformat(),
            "by_user_id": who.id,
        },
    }
    await deadlines.cancel(session, SNOOZE_WAKE, conv.id)
    if until is not None:
        deadlines.schedule(session, SNOOZE_WAKE, conv.id, until)
    _event(
        session,
        "conversation.snoozed",
        conv,
        until=until.astimezone(UTC).isoformat() if until else None,
        until_customer=until_customer,
        user_id=user_id,
    )
    audit.record(
        session,
        who,
        "conversation.snooze",
        object_type="conversation",
        object_id=conv.id,
        data={"until": until.isoformat() if until else None, "until_customer": until_customer},
    )
    await do_refresh_activity_of(session, user_id)
    request_routing(session)  # the slot it held is free
    return conv


def _state(conv: m.Conversation) -> dict[str, Any]:
    state = (conv.variables or {}).get("snooze")
    return state if isinstance(state, dict) else {}


async def do_wake(
    session: AsyncSession, conv: m.Conversation, reason: Reason, *, now: datetime | None = None
) -> bool:
    """Bring a snoozed conversation back (see the module docstring); False if it isn't snoozed.

    The caller holds the conversation's row lock."""
    if conv.status != S.SNOOZED:
        return False
    now = now or datetime.now(UTC)
    state = _state(conv)
    user_id = state.get("user_id")
    await deadlines.cancel(session, SNOOZE_WAKE, conv.id)
    variables = {k: v for k, v in (conv.variables or {}).items() if k != "snooze"}
    conv.variables = variables | {"snoozed": {**state, "woken": now.isoformat(), "reason": reason}}
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    to_user: int | None = None
    if reason == "operator" and isinstance(user_id, int):
        conv.status = S.ACTIVE  # its operator asked for it: theirs at once
        conv.assigned_user_id = user_id
        to_user = user_id
    elif queue is None:
        conv.status = S.ACTIVE if isinstance(user_id, int) else S.QUEUED
        to_user = user_id if isinstance(user_id, int) else None
    else:
        free = isinstance(user_id, int) and user_id in (await free_queue_ids(session))[1]
        await do_enqueue(session, conv, queue, now=now, keep_place=True)
        if free and conv.status == S.QUEUED and isinstance(user_id, int):
            from omni.domain.place import AFFINITY  # place builds on the conversations package

            until = now + timedelta(seconds=RETURN_SECONDS)
            conv.preferred_user_id = user_id
            conv.variables = {
                **(conv.variables or {}),
                "affinity": {"user_id": user_id, "conversation_id": conv.id, "until": until.isoformat()},
            }
            deadlines.schedule(session, AFFINITY, conv.id, until)
            to_user = user_id
    _event(session, "conversation.woken", conv, reason=reason, to_user_id=to_user)
    if isinstance(user_id, int):
        await do_refresh_activity_of(session, user_id)
    request_routing(session)
    return True


async def do_snooze_deadline(session: AsyncSession, d: m.Deadline) -> None:
    """The engine fires the wake-up time; a conversation already woken is left alone."""
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == d.ref_id).with_for_update())
    if conv is not None:
        await do_wake(session, conv, "time")


async def check_unsnooze(session: AsyncSession, who: Principal, conv_id: int) -> m.Conversation:
    """Its operator (or a supervisor/admin in scope) takes it back before its time."""
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.status != S.SNOOZED:
        raise Conflict(
            "the conversation is not snoozed (it is {status})", status=Label("status", conv.status)
        )
    await do_wake(session, conv, "operator")
    audit.record(session, who, "conversation.unsnooze", object_type="conversation", object_id=conv.id)
    return conv
