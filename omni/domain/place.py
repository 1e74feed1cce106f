"""One place in line for one customer, whichever channel they use (docs/routing.md, *One
place in line across channels*).

* **Keep the place, change the channel**: a caller waiting in line presses a key to be called
  back, a chat customer asks "call me": the *same* conversation stays in line with its
  ``first_enqueued_at`` and priority and becomes a voice contact; when the router offers it in
  its turn and the operator accepts, the voice adapter dials the customer. No new
  conversation, no jumping the line, no falling back to its end.
* **Same-customer affinity**: a new contact of a customer whose other open conversation an
  operator handles is offered to that operator alone for the queue's ``affinity_seconds``,
  then by the queue's strategy (``preferred_user_id`` for that long; ``AFFINITY`` deadline).
* **Blending that protects chats**: when an operator takes a call, the customers of their open
  chats are told the reply will take a moment (``blend_notice``), and a chat whose customer
  waits for that operator's reply longer than ``blend_reoffer_seconds`` goes back in line at
  its old place, for someone else (``BLEND_REOFFER`` deadline).
* **Why this was offered**: :func:`offer_why` names the rule behind an offer; it travels in
  ``conversation.offered`` and the operator's snapshot, and every rule writes a note in the
  conversation's timeline.

The state of a rule lives in ``Conversation.variables`` (``place``, ``affinity``,
``reoffered``): it is read by the router's payload, the adapters and the reports without a
join, and it survives restarts like every other column.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import deadlines
from omni.domain.conversations._common import MAX_BODY, S, _event
from omni.domain.errors import Conflict, InvalidInput, NotFound
from omni.domain.events import emit
from omni.domain.routing_signal import request_routing
from omni.domain.serialize import conversation_dict
from omni.i18n import _l, gettext

log = logging.getLogger(__name__)

__all__ = [
    "AFFINITY",
    "BLEND_REOFFER",
    "CALLBACK",
    "check_continue_in_telegram",
    "check_request_callback",
    "do_affinity",
    "do_affinity_expired",
    "do_blend_on_call",
    "do_blend_reoffer",
    "do_reoffer",
    "do_switch_to_callback",
    "is_callback",
    "keeps_place",
    "offer_why",
    "set_aside",
    "skips_ivr",
]

AFFINITY = "affinity"
"""Deadline kind: the affinity window of a conversation ends."""
BLEND_REOFFER = "blend_reoffer"
"""Deadline kind: check whether a chat has waited too long for an operator on a call."""
CALLBACK = "callback"
"""``variables["place"]["mode"]`` of a conversation the customer asked to be called back on."""

HANDLING = (S.ACTIVE, S.ON_HOLD)
WAITING = (S.QUEUED, S.OFFERED)

BLEND_NOTICE = _l("Your operator is on a phone call right now; the reply will take a moment.")
CALLBACK_NOTICE = _l("We will call you back at {number} when it is your turn; you keep your place in line.")


def is_callback(variables: dict[str, Any] | None) -> bool:
    """Whether a conversation (its ``variables``) waits to be called back."""
    place = (variables or {}).get("place")
    return isinstance(place, dict) and place.get("mode") == CALLBACK


def offer_why(conv: m.Conversation, user_id: int) -> dict[str, Any]:
    """Why ``conv`` is offered to ``user_id`` now: the rule and what it was decided on.

    ``rule``: ``affinity`` (they handle the customer's other conversation), ``transfer`` (it
    was transferred to them by name), ``reoffered`` (its operator was on a call too long),
    ``callback`` (the customer asked to be called back and kept their place), else ``turn``
    (its turn in the line: priority, then waiting since ``since``).
    """
    variables = conv.variables or {}
    since = conv.first_enqueued_at.isoformat() if conv.first_enqueued_at else None
    base: dict[str, Any] = {"priority": conv.priority, "since": since}
    affinity = variables.get("affinity")
    if (
        isinstance(affinity, dict)
        and affinity.get("user_id") == user_id
        and not affinity.get("ended")
        and (conv.preferred_user_id == user_id or conv.status not in WAITING)
    ):
        return base | {"rule": "affinity", "conversation_id": affinity.get("conversation_id")}
    if conv.preferred_user_id == user_id:
        return base | {"rule": "transfer"}
    reoffered = variables.get("reoffered")
    if isinstance(reoffered, dict):
        return base | {"rule": "reoffered", "from_user_id": reoffered.get("from_user_id")}
    if is_callback(variables):
        return base | {"rule": "callback", "via": variables["place"].get("via", "")}
    return base | {"rule": "turn"}


def set_aside(conv: m.Conversation) -> set[int]:
    """Operators the router passes over for ``conv`` while anyone else can take it, as if they
    had declined it: the operator on a call a chat was re-offered from (blending)."""
    reoffered = (conv.variables or {}).get("reoffered")
    if isinstance(reoffered, dict) and isinstance(reoffered.get("from_user_id"), int):
        return {int(reoffered["from_user_id"])}
    return set()


def _note(session: AsyncSession, conv: m.Conversation, body: str) -> None:
    """A line in the conversation's timeline, for staff only (a note with no author)."""
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="note",
        author_user_id=None,
        body=body[:MAX_BODY],
        attachments=[],
        delivery="stored",
        created_at=datetime.now(UTC),
    )
    session.add(message)


async def _tell_customer(session: AsyncSession, conv: m.Conversation, text: str, **params: object) -> None:
    """A notice to the customer in their language (the inbox's when the customer's is unknown),
    delivered by the channel adapter like an operator reply."""
    from omni.domain.automated import do_send_automated

    inbox = await session.get(m.Inbox, conv.inbox_id) if conv.inbox_id else None
    lang = str(
        (conv.variables or {}).get("lang") or ((inbox.config or {}).get("language") if inbox else "") or "en"
    )
    await do_send_automated(session, conv.id, gettext(lang, text, **params), locked=conv)


# --- keep the place, change the channel ----------------------------------------------------


async def do_switch_to_callback(
    session: AsyncSession, conv: m.Conversation, *, number: str, via: str, now: datetime | None = None
) -> None:
    """The waiting ``conv`` (locked by the caller) becomes a callback to ``number``: same
    conversation, same ``first_enqueued_at`` and priority, medium ``voice`` (so it is offered
    to operators who take calls and weighs a call). A pending offer made for the old medium is
    withdrawn without penalty (``cancelled``) and the conversation is routed again in its turn.
    """
    from omni.domain.conversations.offers import _cancel_pending_offers

    if conv.status not in WAITING:
        raise Conflict("only a conversation waiting in line can switch to a callback")
    now = now or datetime.now(UTC)
    await _cancel_pending_offers(session, conv)
    conv.status = S.QUEUED
    conv.assigned_user_id = None
    before = conv.medium
    conv.medium = m.Medium.VOICE
    conv.variables = {
        **(conv.variables or {}),
        "place": {
            "mode": CALLBACK,
            "number": number,
            "via": via,
            "from_medium": before,
            "at": now.isoformat(),
        },
    }
    _note(session, conv, f"Callback to {number} requested ({via}); the place in line is kept.")
    _event(session, "conversation.place_kept", conv, mode=CALLBACK, via=via)
    request_routing(session)


async def check_request_callback(
    session: AsyncSession, conv_id: int, *, number: str | None, via: str, contact_id: int | None = None
) -> m.Conversation:
    """A customer asks "call me" (widget, Telegram, the IVR's key): checks, then
    :func:`do_switch_to_callback`. ``contact_id``: the customer asking (the widget's or
    Telegram's identity); another customer's conversation is not found. ``number`` defaults to
    the contact's phone; the queue must have a voice line to call from."""
    from omni.domain.calls import outgoing_voice_inbox
    from omni.domain.contacts import normalise_phone

    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None or (contact_id is not None and conv.contact_id != contact_id):
        raise NotFound("conversation {conv_id} not found", conv_id=conv_id)
    if is_callback(conv.variables):
        return conv  # asked twice (a double click): already so
    if conv.status not in WAITING:
        raise Conflict("only a conversation waiting in line can switch to a callback")
    contact = await session.get(m.Contact, conv.contact_id)
    raw = (number or "").strip() or (contact.phone if contact else "") or ""
    if not raw:
        raise InvalidInput("a phone number to call back is required", field="number")
    e164 = normalise_phone(raw)
    if conv.queue_id is None:
        raise InvalidInput("the conversation has no queue", field="queue_id")
    await outgoing_voice_inbox(session, conv.queue_id)  # refuses a queue with no voice line
    if contact is not None and not contact.phone:
        contact.phone = e164
    await do_switch_to_callback(session, conv, number=e164, via=via)
    if conv.channel != "voice":
        await _tell_customer(session, conv, CALLBACK_NOTICE, number=e164)
    return conv


TELEGRAM_NOTICE = _l("You keep your place in line; an operator will write to you here.")


def keeps_place(variables: dict[str, Any] | None) -> bool:
    """Whether the customer moved to another channel while waiting (a callback, Telegram):
    their call leg ending is no abandon."""
    place = (variables or {}).get("place")
    return isinstance(place, dict) and bool(place.get("mode"))


async def check_continue_in_telegram(session: AsyncSession, conv_id: int, *, via: str) -> m.Conversation:
    """A waiting caller (the IVR's ``telegram_key``) continues in Telegram, where Omni knows
    them: the same conversation moves to the Telegram bot they last wrote to (or the queue's),
    keeps its ``first_enqueued_at`` and priority, becomes a chat and is told so there. Refused
    when Omni knows no Telegram identity or bot for the customer, or it no longer waits."""
    from omni.domain.conversations.offers import _cancel_pending_offers

    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None:
        raise NotFound("conversation {conv_id} not found", conv_id=conv_id)
    if conv.status not in WAITING:
        raise Conflict("only a conversation waiting in line can move to Telegram")
    known = await session.scalar(
        select(m.ContactIdentity.value).where(
            m.ContactIdentity.contact_id == conv.contact_id, m.ContactIdentity.kind == "telegram"
        )
    )
    last = await session.scalar(
        select(m.Conversation.inbox_id)
        .join(m.Inbox, m.Inbox.id == m.Conversation.inbox_id)
        .where(
            m.Conversation.contact_id == conv.contact_id,
            m.Inbox.channel == "telegram",
            m.Inbox.active.is_(True),
        )
        .order_by(m.Conversation.id.desc())
        .limit(1)
    )
    inbox_id = last or await session.scalar(
        select(m.Inbox.id)
        .where(m.Inbox.channel == "telegram", m.Inbox.queue_id == conv.queue_id, m.Inbox.active.is_(True))
        .order_by(m.Inbox.id)
        .limit(1)
    )
    if known is None or inbox_id is None:
        raise InvalidInput("Omni knows no Telegram chat of this customer", field="channel")
    await _cancel_pending_offers(session, conv)
    now = datetime.now(UTC)
    before = conv.channel
    conv.status = S.QUEUED
    conv.assigned_user_id = None
    conv.channel = "telegram"
    conv.inbox_id = inbox_id
    conv.medium = m.Medium.CHAT
    conv.variables = {
        **(conv.variables or {}),
        "telegram_chat_id": int(known) if known.isdigit() else known,
        "place": {"mode": "telegram", "via": via, "from_channel": before, "at": now.isoformat()},
    }
    _note(session, conv, f"Moved from {before} to Telegram ({via}); the place in line is kept.")
    _event(session, "conversation.place_kept", conv, mode="telegram", via=via)
    await _tell_customer(session, conv, TELEGRAM_NOTICE)
    request_routing(session)
    return conv


# --- same-customer affinity ----------------------------------------------------------------


async def _handler_of_other(session: AsyncSession, conv: m.Conversation) -> tuple[int, int] | None:
    """``(operator id, conversation id)`` of the customer's other conversation an operator
    handles now (the most recently accepted), or ``None``."""
    row = (
        await session.execute(
            select(m.Conversation.assigned_user_id, m.Conversation.id)
            .where(
                m.Conversation.contact_id == conv.contact_id,
                m.Conversation.id != conv.id,
                m.Conversation.status.in_((S.ACTIVE, S.ON_HOLD, S.WRAP_UP)),
                m.Conversation.assigned_user_id.is_not(None),
            )
            .order_by(m.Conversation.accepted_at.desc(), m.Conversation.id.desc())
            .limit(1)
        )
    ).first()
    return (int(row[0] or 0), int(row[1])) if row is not None else None


async def skips_ivr(session: AsyncSession, conv: m.Conversation, queue: m.Queue) -> bool:
    """The queue lets a customer an operator is already handling skip the bot (the IVR)."""
    return queue.affinity_skip_ivr and await _handler_of_other(session, conv) is not None


async def do_affinity(
    session: AsyncSession, conv: m.Conversation, queue: m.Queue, *, now: datetime | None = None
) -> bool:
    """A new contact just queued: when an operator handles the customer's other conversation
    and the queue has ``affinity_seconds``, only that operator is offered it for that long
    (then the strategy decides, ``do_affinity_expired``). True when the rule applied."""
    if queue.affinity_seconds <= 0 or conv.preferred_user_id is not None or conv.status != S.QUEUED:
        return False
    other = await _handler_of_other(session, conv)
    if other is None:
        return False
    now = now or datetime.now(UTC)
    user_id, other_id = other
    until = now + timedelta(seconds=queue.affinity_seconds)
    conv.preferred_user_id = user_id
    conv.variables = {
        **(conv.variables or {}),
        "affinity": {"user_id": user_id, "conversation_id": other_id, "until": until.isoformat()},
    }
    deadlines.schedule(session, AFFINITY, conv.id, until)
    _note(
        session,
        conv,
        f"Offered first to the operator handling this customer's conversation #{other_id}"
        f" for {queue.affinity_seconds} s.",
    )
    _event(session, "conversation.affinity", conv, user_id=user_id, other_conversation_id=other_id)
    request_routing(session)
    return True


async def do_affinity_expired(session: AsyncSession, conv_id: int) -> None:
    """The affinity window ended: the conversation, still waiting, is routed by the strategy
    (a pending offer to the operator runs until its own timeout)."""
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None or conv.status not in WAITING:
        return
    affinity = (conv.variables or {}).get("affinity")
    if not isinstance(affinity, dict) or affinity.get("ended"):
        return
    if conv.preferred_user_id == affinity.get("user_id"):
        conv.preferred_user_id = None
    conv.variables = {**(conv.variables or {}), "affinity": {**affinity, "ended": True}}
    _note(session, conv, "The operator did not take it in time; offered by the queue's strategy.")
    request_routing(session)


# --- blending ------------------------------------------------------------------------------


async def _open_chats(session: AsyncSession, user_id: int) -> list[m.Conversation]:
    return list(
        await session.scalars(
            select(m.Conversation)
            .where(
                m.Conversation.assigned_user_id == user_id,
                m.Conversation.status == S.ACTIVE,
                m.Conversation.medium != m.Medium.VOICE,
            )
            .order_by(m.Conversation.id)
        )
    )


async def do_blend_on_call(
    session: AsyncSession, call: m.Conversation, *, now: datetime | None = None
) -> None:
    """``call`` (a voice conversation) was just accepted: the operator's open chats whose
    queue asks for it get the customer notice and the re-offer check."""
    if call.medium != m.Medium.VOICE or call.assigned_user_id is None:
        return
    now = now or datetime.now(UTC)
    for chat in await _open_chats(session, call.assigned_user_id):
        queue = await session.get(m.Queue, chat.queue_id) if chat.queue_id else None
        if queue is None:
            continue
        if queue.blend_notice:
            await _tell_customer(session, chat, BLEND_NOTICE)
            _note(
                session, chat, f"The operator took a call (conversation #{call.id}); the customer was told."
            )
        if queue.blend_reoffer_seconds > 0:
            deadlines.schedule(
                session,
                BLEND_REOFFER,
                chat.id,
                now + timedelta(seconds=queue.blend_reoffer_seconds),
                {"call_id": call.id, "user_id": call.assigned_user_id},
            )


async def _unanswered_since(session: AsyncSession, conv_id: int) -> datetime | None:
    """When the customer's oldest message not yet answered by a person was written, else ``None``."""
    rows = (
        await session.execute(
            select(m.Message.direction, m.Message.author_user_id, m.Message.created_at)
            .where(m.Message.conversation_id == conv_id, m.Message.direction.in_(("in", "out")))
            .order_by(m.Message.id.desc())
            .limit(200)
        )
    ).all()
    since: datetime | None = None
    for direction, author, created in rows:
        if direction == "out" and author is not None:
            break
        if direction == "in":
            since = created
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since


async def do_blend_reoffer(
    session: AsyncSession, deadline: m.Deadline, *, now: datetime | None = None
) -> None:
    """A chat's check while its operator is on a call: waited for a reply at least the queue's
    ``blend_reoffer_seconds`` → back in line at its old place (``first_enqueued_at`` and
    priority kept), for anyone but that operator; not yet → checked again when it would be;
    the call or the chat ended → nothing. The check runs no earlier than it was due, so its
    clock is at least the deadline's (a node catching up late does not see an early time)."""
    due_at = deadline.due_at if deadline.due_at.tzinfo else deadline.due_at.replace(tzinfo=UTC)
    now = now or max(datetime.now(UTC), due_at)
    chat = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == deadline.ref_id).with_for_update()
    )
    user_id = deadline.payload.get("user_id")
    if chat is None or chat.status != S.ACTIVE or chat.assigned_user_id != user_id:
        return
    call = await session.get(m.Conversation, int(deadline.payload.get("call_id") or 0))
    if call is None or call.status not in HANDLING or call.assigned_user_id != user_id:
        return  # the call is over: the operator can answer again
    queue = await session.get(m.Queue, chat.queue_id) if chat.queue_id else None
    if queue is None or queue.blend_reoffer_seconds <= 0:
        return
    threshold = timedelta(seconds=queue.blend_reoffer_seconds)
    since = await _unanswered_since(session, chat.id)
    if since is None or now - since < threshold:
        due = (since + threshold) if since is not None else now + threshold
        deadlines.schedule(
            session, BLEND_REOFFER, chat.id, max(due, now + timedelta(seconds=1)), deadline.payload
        )
        return
    await do_reoffer(session, chat, queue, from_user_id=int(user_id or 0), now=now)


async def do_reoffer(
    session: AsyncSession, chat: m.Conversation, queue: m.Queue, *, from_user_id: int, now: datetime
) -> None:
    """Take ``chat`` from its operator and put it back in line where it stood."""
    from omni.domain.conversations.queueing import do_enqueue
    from omni.domain.presence import do_refresh_activity_of

    priority = chat.priority - queue.priority  # do_enqueue adds the queue's priority back
    chat.variables = {
        **(chat.variables or {}),
        "reoffered": {"from_user_id": from_user_id, "at": now.isoformat()},
    }
    waited = int(queue.blend_reoffer_seconds)
    _note(
        session,
        chat,
        f"Re-offered: the customer waited over {waited} s for a reply while the operator was on a call;"
        " the place in line is kept.",
    )
    await do_enqueue(session, chat, queue, priority=priority, now=now, keep_place=True)
    # To the operator it was taken from (the chat is nobody's now): their window drops it.
    emit(
        session,
        "conversation.reoffered",
        conversation_dict(chat) | {"from_user_id": from_user_id},
        conversation_id=chat.id,
        queue_id=chat.queue_id,
        user_id=from_user_id,
    )
    await do_refresh_activity_of(session, from_user_id)
