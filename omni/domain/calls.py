"""Calls: the telephony row of a voice conversation and the core steps a phone system drives.

A telephony adapter (``channels/voice``) knows channels, legs and AMI; the core knows
conversations, offers and the ``calls`` row that keeps a call's Asterisk ids, ring and talk
time and its recording. Everything the adapter needs from the database goes through this
module, so the adapter never writes a row itself and the same steps serve a second phone
system (or the outbound dialer) later. No channel knowledge here: a call is described by
:class:`CallLeg`, which the adapter's live call state satisfies as it is.

Every action takes the caller's session (the adapter's transaction) and emits, through the
conversation actions it calls, exactly the events those emit; writing the ``calls`` row emits
none (it is telephony detail, read by the operator view and reports).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import conversations
from omni.domain.auth import Principal
from omni.domain.conversations._common import _event
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.place import is_callback, keeps_place

__all__ = [
    "VOICE",
    "WAITING",
    "CallLeg",
    "do_answer_offer",
    "do_attended_transfer",
    "do_call_changed",
    "do_call_connected",
    "do_call_ended",
    "do_decline_unanswered",
    "do_end_ghost",
    "do_force_end",
    "do_phone_hold",
    "do_save_call",
    "open_call",
    "open_calls",
    "outgoing_voice_inbox",
    "pending_offers",
    "phone_user",
    "voice_inbox",
    "waiting_conversation",
    "waiting_voice_conversations",
]

log = logging.getLogger(__name__)

VOICE = "voice"
"""``Inbox.channel`` / ``Conversation.channel`` of phone calls."""
S = m.ConversationStatus
WAITING = (S.QUEUED, S.OFFERED)


class CallLeg(Protocol):
    """What the core stores of a live call (the adapter's call state, read only)."""

    @property
    def conversation_id(self) -> int | None: ...
    @property
    def direction(self) -> str: ...
    @property
    def linkedid(self) -> str: ...
    @property
    def caller_uniqueid(self) -> str: ...
    @property
    def caller_channel(self) -> str: ...
    @property
    def caller_number(self) -> str: ...
    @property
    def agent_uniqueid(self) -> str: ...
    @property
    def agent_channel(self) -> str: ...
    @property
    def agent_user_id(self) -> int | None: ...
    @property
    def ring_seconds(self) -> float: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def recording_path(self) -> str: ...


# --- lookups ---------------------------------------------------------------------------------


async def voice_inbox(session: AsyncSession, hint: str) -> m.Inbox:
    """The voice inbox a caller dialled: by id (``Inbox: <id>`` of ``OmniEnqueue``), else by
    its ``did`` config, else the first active voice inbox (a resync knows no inbox)."""
    if hint.isdigit():
        inbox = await session.get(m.Inbox, int(hint))
        if inbox is not None and inbox.channel == VOICE and inbox.active:
            return inbox
    inboxes = (
        await session.scalars(
            select(m.Inbox).where(m.Inbox.channel == VOICE, m.Inbox.active.is_(True)).order_by(m.Inbox.id)
        )
    ).all()
    for inbox in inboxes:
        if hint and str((inbox.config or {}).get("did", "")) == hint:
            return inbox
    if not inboxes:
        raise NotFound("no active voice inbox")
    return inboxes[0]


async def outgoing_voice_inbox(session: AsyncSession, queue_id: int) -> m.Inbox:
    """The voice line a queue calls out from (its caller id); refused when it has none."""
    inbox = await session.scalar(
        select(m.Inbox)
        .where(m.Inbox.channel == VOICE, m.Inbox.queue_id == queue_id, m.Inbox.active.is_(True))
        .order_by(m.Inbox.id)
        .limit(1)
    )
    if inbox is None:
        raise InvalidInput("this queue has no voice line to call from", field="queue_id")
    return inbox


async def phone_user(session: AsyncSession, user_id: int) -> m.User | None:
    """A user whose phone is to ring (``sip_extension``), or ``None`` when there is none."""
    return await session.get(m.User, user_id)


async def open_call(session: AsyncSession, conversation_id: int) -> m.Call | None:
    """The conversation's call while it has not ended."""
    row = await session.scalar(select(m.Call).where(m.Call.conversation_id == conversation_id))
    if row is None or row.ended_at is not None:
        return None
    return row


async def open_calls(session: AsyncSession) -> Sequence[m.Call]:
    """Every call not ended: what a phone system must still have after a reconnect."""
    return (await session.scalars(select(m.Call).where(m.Call.ended_at.is_(None)))).all()


async def waiting_conversation(session: AsyncSession, conversation_id: int) -> m.Conversation | None:
    """The conversation while it waits in line (queued or offered), else ``None``."""
    conv = await session.get(m.Conversation, conversation_id)
    if conv is None or conv.status not in WAITING:
        return None
    return conv


async def waiting_voice_conversations(
    session: AsyncSession, created_before: datetime
) -> list[tuple[int, str]]:
    """``(conversation id, the caller's Linkedid)`` of voice conversations waiting in line that
    were created before a channel listing (so a caller arriving since is not judged by it)."""
    rows = (
        await session.execute(
            select(m.Conversation.id, m.Conversation.variables).where(
                m.Conversation.channel == VOICE,
                m.Conversation.status.in_(WAITING),
                m.Conversation.created_at < created_before,
            )
        )
    ).all()
    # A callback waits with no call on purpose (the caller hung up to be called back).
    return [
        (conv_id, str((variables or {}).get("linkedid") or ""))
        for conv_id, variables in rows
        if not is_callback(variables)
    ]


async def pending_offers(session: AsyncSession, offer_ids: Sequence[int]) -> set[int]:
    """Which of these offers still wait for an answer."""
    return set(
        await session.scalars(select(m.Offer.id).where(m.Offer.id.in_(offer_ids), m.Offer.state == "pending"))
    )


# --- the calls row ---------------------------------------------------------------------------


async def do_save_call(
    session: AsyncSession, call: CallLeg, *, inbox_id: int | None = None, new: bool = False, **extra: Any
) -> None:
    """Create or update the conversation's ``calls`` row from the live call (one per
    conversation: a replay or a resync updates it). ``extra``: columns set as given
    (``ended_at``, ``talk_seconds``, ``hangup_cause``). ``new``: the conversation was created
    in this transaction, so it has no row to look for (one statement less per call). An
    existing row is updated in one ``UPDATE … RETURNING`` (no select first)."""
    if call.conversation_id is None:
        return
    values: dict[str, Any] = {
        "caller_uniqueid": call.caller_uniqueid,
        "caller_channel": call.caller_channel,
        "caller_number": call.caller_number[:64],
        "ring_seconds": round(call.ring_seconds, 3),
        "answered_at": call.answered_at,
    }
    if call.agent_uniqueid:
        values["agent_uniqueid"] = call.agent_uniqueid
        values["agent_channel"] = call.agent_channel
    if call.agent_user_id is not None:
        values["agent_user_id"] = call.agent_user_id
    if call.recording_path:
        values["recording_path"] = call.recording_path
    values.update(extra)
    if not new:
        updated = await session.scalar(
            update(m.Call)
            .where(m.Call.conversation_id == call.conversation_id)
            .values(values)
            .returning(m.Call.id),
            execution_options={"synchronize_session": "evaluate"},
        )
        if updated is not None:
            return
    first = {
        "conversation_id": call.conversation_id,
        "inbox_id": inbox_id,
        "direction": call.direction,
        "linkedid": call.linkedid,
        "created_at": datetime.now(UTC),
    }
    session.add(m.Call(**(first | values)))
    await session.flush()


async def do_call_changed(session: AsyncSession, conversation_id: int | None, state: str) -> None:
    """The call Omni placed for a handled conversation changed (``conversation.call_changed``):
    the operator's call panel follows it (dialling → talking), as it follows an inbound call
    through the offer's acceptance. Nothing for a conversation no longer handled."""
    conv = await session.get(m.Conversation, conversation_id) if conversation_id is not None else None
    if conv is not None and conv.status in (S.ACTIVE, S.ON_HOLD):
        _event(session, "conversation.call_changed", conv, call_state=state)


async def do_call_connected(session: AsyncSession, call: CallLeg) -> None:
    """The customer answered a call Omni placed (a callback, a click-to-call): the row gets its
    ``answered_at`` and the operator's window is told (``do_call_changed``)."""
    await do_save_call(session, call)
    await do_call_changed(session, call.conversation_id, "talking")


# --- what the phones do ----------------------------------------------------------------------


async def do_answer_offer(session: AsyncSession, conversation_id: int | None, offer_id: int) -> bool:
    """An operator's phone was picked up for an offer: accept it (``do_accept_offer``, its
    events). True when the call is the operator's now (also when the offer was accepted
    already: a replay after a resync); False when the offer moved on (the phone hangs up)."""
    offer = await session.scalar(select(m.Offer).where(m.Offer.id == offer_id).with_for_update())
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == conversation_id).with_for_update()
    )
    if offer is not None and conv is not None and offer.state == "pending":
        await conversations.do_accept_offer(session, conv, offer)
        return True
    return conv is not None and offer is not None and offer.state == "accepted"


async def do_decline_unanswered(session: AsyncSession, offer_id: int | None, user_id: int | None) -> None:
    """A phone stopped ringing unanswered: busy or unreachable more than a second before the
    core's offer deadline declines the offer now (the router moves on); later, the deadline
    itself ends it (``offer_timeout``)."""
    offer = await session.scalar(select(m.Offer).where(m.Offer.id == offer_id))
    user = await session.get(m.User, user_id) if user_id else None
    early = offer is not None and (offer.expires_at - datetime.now(UTC)).total_seconds() > 1.0
    if offer is not None and offer.state == "pending" and user is not None and early:
        # Busy or unreachable before the core's timeout: move on to the next operator now.
        await conversations.check_decline_offer(session, Principal.of(user), offer.id)


async def do_call_ended(
    session: AsyncSession, call: CallLeg, *, caller_left: bool, now: datetime, cause: str
) -> None:
    """One side hung up. The caller: ``do_customer_left`` (abandoned while waiting, wrap-up
    while talking). The operator: ``do_end(by="operator")`` while the call is active or on
    hold. Then the call row is closed with its talk time (connected time minus hold)."""
    if call.conversation_id is None:
        return
    if caller_left:
        # Locked once here and handed on: the callback check and ``do_customer_left`` read it.
        locked = await session.get(m.Conversation, call.conversation_id, with_for_update=True)
        if locked is None:
            return
        if locked.status in WAITING and keeps_place(locked.variables):
            # The caller hung up after asking to be called back (or to go on in Telegram): they
            # keep their place in line.
            await do_save_call(session, call, ended_at=now, talk_seconds=0.0, hangup_cause="callback")
            return
        conv = await conversations.do_customer_left(session, call.conversation_id, locked=locked)
        if conv is None:
            return
    else:
        conv = await session.scalar(
            select(m.Conversation).where(m.Conversation.id == call.conversation_id).with_for_update()
        )
        if conv is None:
            return
        if conv.status in (S.ACTIVE, S.ON_HOLD):
            await conversations.do_end(session, conv, by="operator")
    talk = 0.0
    if call.answered_at is not None:
        talk = max(0.0, (now - call.answered_at).total_seconds() - conv.hold_seconds)
    await do_save_call(
        session,
        call,
        ended_at=now,
        talk_seconds=round(talk, 3),
        hangup_cause=cause[:32],
    )


async def do_phone_hold(session: AsyncSession, conversation_id: int | None, on: bool) -> None:
    """Hold pressed on the operator's phone: the core follows, as if the operator pressed it
    in the window (``check_hold`` as the assigned operator); nothing when it already agrees."""
    conv = await session.get(m.Conversation, conversation_id)
    user = await session.get(m.User, conv.assigned_user_id) if conv and conv.assigned_user_id else None
    if conv is None or user is None or (conv.status == S.ON_HOLD) == on:
        return
    await conversations.check_hold(session, Principal.of(user), conv.id, on)


async def do_attended_transfer(
    session: AsyncSession, conversation_id: int | None, target_user_id: int | None
) -> bool:
    """Asterisk completed an attended transfer: the core transfers the conversation to the
    target as the operator who started it (``check_transfer``). False when there is nothing
    to transfer (no conversation, no assigned operator or no target)."""
    conv = await session.get(m.Conversation, conversation_id)
    user = await session.get(m.User, conv.assigned_user_id) if conv and conv.assigned_user_id else None
    if conv is None or user is None or target_user_id is None:
        return False
    await conversations.check_transfer(session, Principal.of(user), conv.id, to_user_id=target_user_id)
    return True


async def do_end_ghost(session: AsyncSession, conversation_id: int, *, now: datetime, when: str) -> bool:
    """A waiting voice conversation whose caller the phone system no longer has: the caller
    left unseen, so it is abandoned (``do_customer_left``: callback in the shared list, pending
    offers cancelled) and its call row closed as ``gone``. False when it no longer waits."""
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == conversation_id).with_for_update()
    )
    if conv is None or conv.status not in WAITING:
        return False
    log.warning(
        "voice: conversation %s waits for a call Asterisk doesn't have (linkedid %r, %s); marked abandoned",
        conversation_id,
        (conv.variables or {}).get("linkedid"),
        when,
    )
    await conversations.do_customer_left(session, conversation_id)
    row = await session.scalar(select(m.Call).where(m.Call.conversation_id == conversation_id))
    if row is not None and row.ended_at is None:
        row.ended_at = now
        row.hangup_cause = "gone"
    return True


async def do_force_end(session: AsyncSession, conversation_id: int) -> None:
    """A supervisor ends a call: ``do_end(by="supervisor")`` while it is active or on hold.
    The caller's transaction also asks the phone system to hang up, so a refusal rolls this back."""
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == conversation_id).with_for_update()
    )
    if conv is not None and conv.status in (S.ACTIVE, S.ON_HOLD):
        await conversations.do_end(session, conv, by="supervisor")
