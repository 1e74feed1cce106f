"""Conversation lifecycle actions.

``bot → queued → offered → active ↔ on_hold → wrap_up → closed``, plus ``abandoned`` (the
customer left while waiting) and ``missed`` (nobody answered). ``do_*`` functions mutate and
emit events without permission checks; ``check_*`` functions validate the caller and input
first. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import deadlines
from omni.domain.auth import Principal, access_conversation, visible_queue_ids
from omni.domain.contacts import resolve_contact
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.events import emit
from omni.domain.hours import is_open
from omni.domain.presence import refresh_activity_of
from omni.domain.routing_signal import request_routing
from omni.domain.serialize import callback_dict, conversation_dict, message_dict
from omni.i18n import Label

log = logging.getLogger(__name__)

S = m.ConversationStatus
MAX_BODY = 10_000
REOPEN_WINDOW = timedelta(hours=24)


def _event(session: AsyncSession, type_: str, conv: m.Conversation, **extra: Any) -> None:
    payload = conversation_dict(conv)
    payload.update(extra)
    emit(
        session,
        type_,
        payload,
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


def _message_event(session: AsyncSession, conv: m.Conversation, message: m.Message) -> None:
    emit(
        session,
        "message.created",
        message_dict(message) | {"channel": conv.channel},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


# --- inbound ----------------------------------------------------------------------------


@dataclass(slots=True)
class InboundMessage:
    """What every channel adapter hands the core for one customer message or call."""

    inbox_id: int
    identity_kind: str
    identity_value: str
    body: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    client_id: str | None = None
    external_id: str | None = None
    contact_name: str = ""
    contact_phone: str | None = None
    contact_email: str | None = None
    subject: str = ""
    medium: str = m.Medium.CHAT
    priority: int = 0
    variables: dict[str, Any] = field(default_factory=dict)
    language: str = ""
    """The customer's language as the channel knows it (widget UI language, Telegram
    ``language_code``), e.g. ``ru`` or ``ru-RU``; empty = the inbox's ``language`` setting, if
    any. Kept as ``variables["lang"]`` (primary subtag), which the bot's texts are chosen by."""
    reopen_closed: bool = True
    """``False`` when the customer was told the conversation is closed (the widget): a new
    message then starts a new conversation instead of reopening the closed one."""


def customer_language(msg: InboundMessage, inbox: m.Inbox) -> str:
    """The primary language subtag of the customer (``ru-RU`` → ``ru``), or ``""``."""
    raw = msg.language or str((inbox.config or {}).get("language") or "")
    primary = raw.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary.isalpha() and len(primary) <= 8 else ""


def _refuse_unstorable(msg: InboundMessage) -> None:
    """A NUL character can't be stored in PostgreSQL text: refuse it as bad input (permanent),
    not let the insert fail like an outage the sender would retry forever."""
    named = {
        "body": msg.body,
        "name": msg.contact_name,
        "email": msg.contact_email or "",
        "phone": msg.contact_phone or "",
        "subject": msg.subject,
    }
    for name, value in named.items():
        if "\x00" in value:
            raise InvalidInput("the {field} contains a NUL character", field=name)


@dataclass(slots=True)
class IngestResult:
    conversation: m.Conversation
    message: m.Message
    duplicate: bool
    created: bool


async def ingest_inbound(session: AsyncSession, msg: InboundMessage) -> IngestResult:
    """Store a customer message (idempotently) and make sure someone will answer it.

    The message is stored before anything is acknowledged to the sender. A re-delivered
    message (same ``external_id`` per inbox, or same ``client_id`` per conversation) returns
    the stored one with ``duplicate=True``. A closed conversation is reopened within
    ``REOPEN_WINDOW``; after that a new conversation starts.
    """
    if len(msg.body) > MAX_BODY:
        raise InvalidInput("message is longer than {max_body} characters", max_body=MAX_BODY, field="body")
    _refuse_unstorable(msg)
    inbox = await session.get(m.Inbox, msg.inbox_id)
    if inbox is None or not inbox.active:
        raise NotFound("inbox {inbox_id} not found", inbox_id=msg.inbox_id)
    lang = customer_language(msg, inbox)
    if msg.external_id:
        existing = await session.scalar(
            select(m.Message).where(m.Message.inbox_id == inbox.id, m.Message.external_id == msg.external_id)
        )
        if existing is not None:
            conv = await session.get(m.Conversation, existing.conversation_id)
            assert conv is not None
            return IngestResult(conv, existing, duplicate=True, created=False)
    contact = await resolve_contact(
        session,
        msg.identity_kind,
        msg.identity_value,
        name=msg.contact_name,
        phone=msg.contact_phone,
        email=msg.contact_email,
    )
    now = datetime.now(UTC)
    conv = await session.scalar(
        select(m.Conversation)
        .where(m.Conversation.contact_id == contact.id, m.Conversation.inbox_id == inbox.id)
        .order_by(m.Conversation.id.desc())
        .limit(1)
        .with_for_update()
    )
    created = reopened = False
    scenario_key = ""
    queue: m.Queue | None = None
    bot = bot_gateway(session)
    if conv is not None and msg.client_id:
        existing = await session.scalar(
            select(m.Message).where(
                m.Message.conversation_id == conv.id, m.Message.client_id == msg.client_id
            )
        )
        if existing is not None:
            return IngestResult(conv, existing, duplicate=True, created=False)
    if conv is None or (conv.status not in m.OPEN_STATUSES and msg.medium == m.Medium.VOICE):
        conv = None
    elif conv.status not in m.OPEN_STATUSES:
        ended = conv.closed_at or conv.created_at
        if now - ended > REOPEN_WINDOW or contact.blacklisted or not msg.reopen_closed:
            conv = None
        else:
            await do_reopen(session, conv, now=now)
            reopened = True
    if conv is None:
        queue = await session.get(m.Queue, inbox.queue_id) if inbox.queue_id else None
        if queue is None:
            raise InvalidInput("inbox '{name}' has no queue to route to", name=inbox.name, field="queue_id")
        conv = m.Conversation(
            contact_id=contact.id,
            inbox_id=inbox.id,
            queue_id=queue.id,
            channel=inbox.channel,
            medium=msg.medium,
            status=S.QUEUED,
            subject=msg.subject[:256],
            variables=dict(msg.variables) | ({"lang": lang} if lang else {}),
            extra_queue_ids=[],
            created_at=now,
        )
        session.add(conv)
        await session.flush()
        created = True
        _event(session, "conversation.created", conv)
        scenario_key = str((inbox.config or {}).get("scenario") or "") if bot is not None else ""
        if contact.blacklisted:
            # Kept (nothing is lost, the history shows it) but never routed or answered by a bot.
            conv.status = S.CLOSED
            conv.closed_at = now
            conv.closed_by = "blacklist"
            _event(session, "conversation.blocked", conv)
        elif scenario_key:
            conv.status = S.BOT  # the scenario starts once the first message is stored
        else:
            await do_enqueue(session, conv, queue, priority=msg.priority, now=now)
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=inbox.id,
        direction="in",
        body=msg.body,
        attachments=list(msg.attachments),
        client_id=msg.client_id,
        external_id=msg.external_id,
        delivery="stored",
        created_at=now,
    )
    if not msg.client_id and not msg.external_id:
        # No idempotency key, nothing unique to collide on: skip the savepoint round trips.
        session.add(message)
        await session.flush()
    else:
        stored_dup = await _store_idempotent(session, conv, message, msg)
        if stored_dup is not None:
            return IngestResult(conv, stored_dup, duplicate=True, created=False)
    conv.last_message_at = now
    if lang and "lang" not in (conv.variables or {}):  # an older conversation learns it now
        conv.variables = {**(conv.variables or {}), "lang": lang}
    _message_event(session, conv, message)
    # A closed queue that overflows to a bot started that bot above (do_enqueue/do_reopen):
    # it is not started twice, and this message was there before it, so it is no answer to it.
    if created and scenario_key and conv.status == S.BOT and bot is not None:
        if not await bot.start(session, conv, scenario_key):
            assert queue is not None
            await do_enqueue(session, conv, queue, priority=msg.priority, now=now)  # not published
    elif conv.status == S.BOT and bot is not None and not (created or reopened):
        await bot.on_inbound(session, conv, message)
    return IngestResult(conv, message, duplicate=False, created=created)


class BotGateway(Protocol):
    """How the core hands conversations to the scenario engine (``bots.runner``) without
    importing it; the composition root plugs it in through ``Database.session_info``."""

    async def start(self, session: AsyncSession, conv: m.Conversation, scenario_key: str) -> bool: ...
    async def on_inbound(self, session: AsyncSession, conv: m.Conversation, message: m.Message) -> bool: ...
    async def hand_to_bot(self, session: AsyncSession, conv: m.Conversation, scenario_key: str) -> bool: ...


BOT_GATEWAY = "bot_gateway"


def bot_gateway(session: AsyncSession) -> BotGateway | None:
    """The scenario runner plugged into this database (``Database.session_info``), if any."""
    gateway: BotGateway | None = session.info.get(BOT_GATEWAY)
    return gateway


async def _store_idempotent(
    session: AsyncSession, conv: m.Conversation, message: m.Message, msg: InboundMessage
) -> m.Message | None:
    """Insert under a savepoint; on a unique clash return the copy a concurrent delivery stored."""
    try:
        async with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # A concurrent delivery of the same message won the race; return what it stored.
        stored = await session.scalar(
            select(m.Message).where(
                m.Message.conversation_id == conv.id,
                (m.Message.client_id == msg.client_id)
                if msg.client_id
                else (m.Message.external_id == msg.external_id),
            )
        )
        if stored is None:
            raise
        return stored
    return None


async def do_enqueue(
    session: AsyncSession,
    conv: m.Conversation,
    queue: m.Queue,
    *,
    priority: int = 0,
    now: datetime | None = None,
    keep_place: bool = False,
    hops: int = 0,
) -> None:
    """Put the conversation in line for ``queue`` and arm its timers.

    Outside the queue's business hours the overflow target applies at once (e.g. the
    widget's offline form, voicemail, or a queue that is open).
    """
    now = now or datetime.now(UTC)
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
    await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id)
    await deadlines.cancel(session, deadlines.ESCALATION, conv.id)
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
            conv.first_enqueued_at + timedelta(seconds=int(steps[0].get("after_seconds", 0))),
            {"step": 0},
        )
    _event(session, "conversation.queued", conv)
    if not is_open(queue, now):
        await _overflow(session, conv, queue, now=now, reason="closed", hops=hops)
        return
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


# --- offers -----------------------------------------------------------------------------


async def _pending_offer(
    session: AsyncSession, offer_id: int, who: Principal
) -> tuple[m.Offer, m.Conversation]:
    offer = await session.scalar(select(m.Offer).where(m.Offer.id == offer_id).with_for_update())
    if offer is None or offer.user_id != who.id:
        raise NotFound("offer {offer_id} not found", offer_id=offer_id)
    if offer.state != "pending":
        raise Conflict("offer {offer_id} is already {state}", offer_id=offer_id, state=offer.state)
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == offer.conversation_id).with_for_update()
    )
    assert conv is not None
    return offer, conv


async def _accepted_by(session: AsyncSession, offer_id: int, who: Principal) -> m.Conversation | None:
    """The conversation of an offer ``who`` accepted and still holds, else ``None``."""
    offer = await session.get(m.Offer, offer_id)
    if offer is None or offer.user_id != who.id or offer.state != "accepted":
        return None
    conv = await session.get(m.Conversation, offer.conversation_id)
    if conv is None or conv.assigned_user_id != who.id or conv.status not in m.OPEN_STATUSES:
        return None
    return conv


async def do_accept_offer(
    session: AsyncSession, conv: m.Conversation, offer: m.Offer, *, now: datetime | None = None
) -> None:
    now = now or datetime.now(UTC)
    offer.state = "accepted"
    offer.responded_at = now
    await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, offer.id)
    others = (
        await session.scalars(
            select(m.Offer).where(
                m.Offer.conversation_id == conv.id, m.Offer.state == "pending", m.Offer.id != offer.id
            )
        )
    ).all()
    for other in others:
        other.state = "cancelled"
        other.responded_at = now
        await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, other.id)
    conv.status = S.ACTIVE
    conv.assigned_user_id = offer.user_id
    conv.preferred_user_id = None
    conv.accepted_at = now
    await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id)
    await deadlines.cancel(session, deadlines.ESCALATION, conv.id)
    if conv.queue_id is not None:
        state = await session.get(m.QueueRoutingState, conv.queue_id)
        if state is None:
            session.add(m.QueueRoutingState(queue_id=conv.queue_id, last_user_id=offer.user_id))
        else:
            state.last_user_id = offer.user_id
    wait = (now - (conv.first_enqueued_at or conv.created_at)).total_seconds()
    _event(session, "conversation.accepted", conv, offer_id=offer.id, wait_seconds=round(wait, 3))
    for uid in {offer.user_id, *(o.user_id for o in others)}:
        await refresh_activity_of(session, uid)


async def check_accept_offer(session: AsyncSession, who: Principal, offer_id: int) -> m.Conversation:
    """Accept an offer; accepting one the caller has already accepted (a double click, the
    notification and the button) answers with the conversation again instead of a conflict."""
    again = await _accepted_by(session, offer_id, who)
    if again is not None:
        return again
    offer, conv = await _pending_offer(session, offer_id, who)
    if offer.expires_at <= datetime.now(UTC):
        raise Conflict("offer {offer_id} has expired", offer_id=offer_id)
    await do_accept_offer(session, conv, offer)
    return conv


async def _offer_ended(session: AsyncSession, conv: m.Conversation, offer: m.Offer, state: str) -> None:
    now = datetime.now(UTC)
    offer.state = state
    offer.responded_at = now
    await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, offer.id)
    still_pending = await session.scalar(
        select(m.Offer.id).where(m.Offer.conversation_id == conv.id, m.Offer.state == "pending").limit(1)
    )
    if still_pending is None and conv.status == S.OFFERED:
        conv.status = S.QUEUED
        conv.assigned_user_id = None
        request_routing(session)
    emit(
        session,
        f"conversation.offer_{state}",
        conversation_dict(conv) | {"offer_id": offer.id},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=offer.user_id,
    )
    await refresh_activity_of(session, offer.user_id)


async def check_decline_offer(session: AsyncSession, who: Principal, offer_id: int) -> m.Conversation:
    offer, conv = await _pending_offer(session, offer_id, who)
    await _offer_ended(session, conv, offer, "declined")
    return conv


async def on_offer_timeout(session: AsyncSession, offer_id: int) -> None:
    offer = await session.scalar(select(m.Offer).where(m.Offer.id == offer_id).with_for_update())
    if offer is None or offer.state != "pending":
        return
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == offer.conversation_id).with_for_update()
    )
    assert conv is not None
    await _offer_ended(session, conv, offer, "timeout")


async def do_withdraw_offers(session: AsyncSession, channels: Collection[str]) -> int:
    """Cancel the pending offers of conversations on channels that can't reach anyone now.

    An adapter reported its channel unavailable (the PBX link is down: no phone can ring), so
    an offer made on it would only ring out. The conversation goes back to its place in line
    (``queued``, ``first_enqueued_at`` and its queue deadlines untouched) and the offer ends
    ``cancelled``, not ``timeout``/``declined``: the operator is not charged with a missed
    offer and may be offered the same conversation again. Returns how many were withdrawn.
    """
    if not channels:
        return 0
    conv_ids = (
        await session.scalars(
            select(m.Offer.conversation_id)
            .join(m.Conversation, m.Conversation.id == m.Offer.conversation_id)
            .where(m.Offer.state == "pending", m.Conversation.channel.in_(list(channels)))
            .distinct()
        )
    ).all()
    withdrawn = 0
    for conv_id in sorted(conv_ids):
        # Never wait for a lock (accepts take offer then conversation, hang-ups the reverse):
        # whatever is busy elsewhere is left for the next pass.
        conv = await session.scalar(
            select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update(skip_locked=True)
        )
        if conv is None:
            continue
        offers = (
            await session.scalars(
                select(m.Offer)
                .where(m.Offer.conversation_id == conv_id, m.Offer.state == "pending")
                .order_by(m.Offer.id)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for offer in offers:
            await _offer_ended(session, conv, offer, "cancelled")
        withdrawn += len(offers)
    return withdrawn


async def _cancel_pending_offers(session: AsyncSession, conv: m.Conversation) -> None:
    offers = (
        await session.scalars(
            select(m.Offer).where(m.Offer.conversation_id == conv.id, m.Offer.state == "pending")
        )
    ).all()
    now = datetime.now(UTC)
    for offer in offers:
        offer.state = "cancelled"
        offer.responded_at = now
        await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, offer.id)
        emit(
            session,
            "conversation.offer_cancelled",
            conversation_dict(conv) | {"offer_id": offer.id},
            conversation_id=conv.id,
            queue_id=conv.queue_id,
            user_id=offer.user_id,
        )
    for uid in {o.user_id for o in offers}:
        await refresh_activity_of(session, uid)


# --- waiting-line timers ----------------------------------------------------------------


async def on_queue_timeout(session: AsyncSession, conv_id: int, due_at: datetime | None = None) -> None:
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
    await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id)
    await deadlines.cancel(session, deadlines.ESCALATION, conv.id)
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
    await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id)
    await deadlines.cancel(session, deadlines.ESCALATION, conv.id)
    # Announced before the scenario runs, so what it says and does (hand-off, close) follows.
    _event(session, "conversation.overflowed", conv, action="bot", reason=reason, scenario=key)
    return await bot.hand_to_bot(session, conv, key)


async def on_escalation(session: AsyncSession, conv_id: int, step: int) -> None:
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


# --- handling ---------------------------------------------------------------------------


def _require_handler(conv: m.Conversation, who: Principal) -> None:
    if conv.assigned_user_id != who.id and who.role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
        raise PermissionDenied("only the operator handling the conversation can do this")


async def check_hold(session: AsyncSession, who: Principal, conv_id: int, hold: bool) -> m.Conversation:
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    now = datetime.now(UTC)
    if hold:
        if conv.status != S.ACTIVE:
            raise Conflict(
                "only an active conversation can be put on hold (it is {status})",
                status=Label("status", conv.status),
            )
        conv.status = S.ON_HOLD
        conv.hold_started_at = now
        _event(session, "conversation.on_hold", conv)
    else:
        if conv.status != S.ON_HOLD:
            raise Conflict(
                "the conversation is not on hold (it is {status})", status=Label("status", conv.status)
            )
        conv.status = S.ACTIVE
        if conv.hold_started_at:
            conv.hold_seconds += int((now - conv.hold_started_at).total_seconds())
        conv.hold_started_at = None
        _event(session, "conversation.resumed", conv)
    return conv


async def do_end(session: AsyncSession, conv: m.Conversation, *, by: str) -> None:
    """Handling is over (operator ended it, or the customer left): start wrap-up."""
    now = datetime.now(UTC)
    if conv.status == S.ON_HOLD and conv.hold_started_at:
        conv.hold_seconds += int((now - conv.hold_started_at).total_seconds())
        conv.hold_started_at = None
    conv.status = S.WRAP_UP
    conv.wrap_up_at = now
    conv.closed_by = by
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    seconds = queue.wrap_up_seconds if queue else 0
    deadlines.schedule(session, deadlines.WRAP_UP, conv.id, now + timedelta(seconds=max(0, seconds)))
    _event(session, "conversation.wrap_up", conv, wrap_up_seconds=seconds)
    if conv.assigned_user_id:
        await refresh_activity_of(session, conv.assigned_user_id)


async def check_end(session: AsyncSession, who: Principal, conv_id: int) -> m.Conversation:
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.status not in (S.ACTIVE, S.ON_HOLD):
        raise Conflict(
            "only an active conversation can be ended (it is {status})", status=Label("status", conv.status)
        )
    await do_end(session, conv, by="operator")
    return conv


async def _validate_result_code(session: AsyncSession, conv: m.Conversation, code_id: int) -> m.ResultCode:
    code = await session.get(m.ResultCode, code_id)
    if code is None or not code.active:
        raise InvalidInput(
            "result code {code_id} does not exist or is inactive", code_id=code_id, field="result_code_id"
        )
    if conv.queue_id is not None:
        allowed = set(
            await session.scalars(
                select(m.QueueResultCode.result_code_id).where(m.QueueResultCode.queue_id == conv.queue_id)
            )
        )
        if allowed and code_id not in allowed:
            raise InvalidInput(
                "result code '{code}' is not allowed in this queue", code=code.code, field="result_code_id"
            )
    return code


async def do_close(
    session: AsyncSession, conv: m.Conversation, result_code_id: int | None, *, by: str | None = None
) -> None:
    now = datetime.now(UTC)
    if conv.status in (S.ACTIVE, S.ON_HOLD):
        await do_end(session, conv, by=by or "operator")
    conv.status = S.CLOSED
    conv.closed_at = now
    conv.result_code_id = result_code_id
    await deadlines.cancel(session, deadlines.WRAP_UP, conv.id)
    _event(session, "conversation.closed", conv, result_by=by or "operator")
    if conv.assigned_user_id:
        await refresh_activity_of(session, conv.assigned_user_id)


async def check_close(
    session: AsyncSession, who: Principal, conv_id: int, result_code_id: int
) -> m.Conversation:
    """Close with a result code (from active/on-hold directly, or from wrap-up)."""
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.status not in (S.ACTIVE, S.ON_HOLD, S.WRAP_UP):
        raise Conflict("a {status} conversation can't be closed", status=Label("status", conv.status))
    await _validate_result_code(session, conv, result_code_id)
    await do_close(session, conv, result_code_id, by="operator")
    return conv


async def on_wrap_up_expired(session: AsyncSession, conv_id: int) -> None:
    """Wrap-up ran out: close with the queue's default result code."""
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None or conv.status != S.WRAP_UP:
        return
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    await do_close(session, conv, queue.default_result_code_id if queue else None, by="timeout")


async def do_customer_left(session: AsyncSession, conv_id: int) -> m.Conversation | None:
    """The customer went away (hung up, closed the chat): abandoned if still waiting."""
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None:
        return None
    if conv.status in (S.QUEUED, S.OFFERED, S.BOT):
        was_waiting = conv.status != S.BOT
        await _cancel_pending_offers(session, conv)
        now = datetime.now(UTC)
        conv.status = S.ABANDONED
        conv.assigned_user_id = None
        conv.closed_at = now
        conv.closed_by = "customer"
        await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id)
        await deadlines.cancel(session, deadlines.ESCALATION, conv.id)
        wait = (now - (conv.first_enqueued_at or conv.created_at)).total_seconds()
        _event(session, "conversation.abandoned", conv, wait_seconds=round(wait, 3))
        if was_waiting:
            await _add_callback(session, conv, reason="abandoned")
    elif conv.status in (S.ACTIVE, S.ON_HOLD):
        await do_end(session, conv, by="customer")
    return conv


async def check_transfer(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    *,
    to_user_id: int | None = None,
    to_queue_id: int | None = None,
    note: str = "",
) -> m.Conversation:
    """Hand the conversation to another operator or queue; the note goes to the next handler."""
    if (to_user_id is None) == (to_queue_id is None):
        raise InvalidInput("transfer needs exactly one of to_user_id or to_queue_id", field="to_user_id")
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.status not in (S.ACTIVE, S.ON_HOLD, S.QUEUED, S.OFFERED):
        raise Conflict("a {status} conversation can't be transferred", status=Label("status", conv.status))
    from_user = conv.assigned_user_id
    if to_queue_id is not None:
        queue = await session.get(m.Queue, to_queue_id)
        if queue is None:
            raise InvalidInput(
                "queue {to_queue_id} does not exist", to_queue_id=to_queue_id, field="to_queue_id"
            )
    else:
        assert to_user_id is not None
        target = await session.get(m.User, to_user_id)
        if target is None or not target.is_active or target.role != m.Role.OPERATOR:
            raise InvalidInput(
                "operator {to_user_id} does not exist", to_user_id=to_user_id, field="to_user_id"
            )
        if to_user_id == conv.assigned_user_id:
            raise InvalidInput("the conversation is already with this operator", field="to_user_id")
        queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
        if queue is None:
            raise InvalidInput("the conversation has no queue", field="to_user_id")
    await _cancel_pending_offers(session, conv)
    if note.strip():
        session.add(
            m.Message(
                conversation_id=conv.id,
                inbox_id=conv.inbox_id,
                direction="note",
                author_user_id=who.id,
                body=note[:MAX_BODY],
                attachments=[],
                delivery="stored",
            )
        )
    await do_enqueue(session, conv, queue, now=datetime.now(UTC), keep_place=True)
    conv.preferred_user_id = to_user_id
    _event(
        session,
        "conversation.transferred",
        conv,
        from_user_id=from_user,
        to_user_id=to_user_id,
        to_queue_id=to_queue_id,
        note=note[:MAX_BODY],
    )
    if from_user is not None:
        await refresh_activity_of(session, from_user)
    return conv


async def check_send_message(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    body: str,
    *,
    client_id: str | None = None,
    private: bool = False,
    attachments: list[dict[str, Any]] | None = None,
) -> m.Message:
    """An operator reply (or a private note): stored, then delivered by the channel adapter."""
    if not body.strip() and not attachments:
        raise InvalidInput("message is empty", field="body")
    if len(body) > MAX_BODY:
        raise InvalidInput("message is longer than {max_body} characters", max_body=MAX_BODY, field="body")
    conv = await access_conversation(session, who, conv_id, for_update=True)
    if not private:
        _require_handler(conv, who)
        if conv.status not in (S.ACTIVE, S.ON_HOLD, S.WRAP_UP):
            raise Conflict("can't reply in a {status} conversation", status=Label("status", conv.status))
    if client_id:
        existing = await session.scalar(
            select(m.Message).where(m.Message.conversation_id == conv.id, m.Message.client_id == client_id)
        )
        if existing is not None:
            return existing
    now = datetime.now(UTC)
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="note" if private else "out",
        author_user_id=who.id,
        body=body,
        attachments=attachments or [],
        client_id=client_id,
        delivery="stored" if private else "pending",
        created_at=now,
    )
    session.add(message)
    await session.flush()
    if not private:
        conv.last_message_at = now
    _message_event(session, conv, message)
    return message


# --- missed / abandoned list ------------------------------------------------------------


async def _add_callback(session: AsyncSession, conv: m.Conversation, *, reason: str) -> m.Callback:
    cb = m.Callback(
        conversation_id=conv.id,
        contact_id=conv.contact_id,
        queue_id=conv.queue_id,
        kind="standard",
        reason=reason,
        state="open",
        note="",
        created_at=datetime.now(UTC),
    )
    session.add(cb)
    await session.flush()
    emit(session, "callback.created", callback_dict(cb), conversation_id=conv.id, queue_id=conv.queue_id)
    return cb


async def list_callbacks(session: AsyncSession, who: Principal, *, state: str = "open") -> list[m.Callback]:
    queues = await visible_queue_ids(session, who)
    stmt = select(m.Callback).where(m.Callback.state == state).order_by(m.Callback.created_at)
    if queues is not None:
        stmt = stmt.where(m.Callback.queue_id.in_(queues))
    if who.role == m.Role.OPERATOR:
        stmt = stmt.where((m.Callback.target_user_id.is_(None)) | (m.Callback.target_user_id == who.id))
    return list((await session.scalars(stmt)).all())


async def _load_callback(session: AsyncSession, who: Principal, cb_id: int) -> m.Callback:
    cb = await session.scalar(select(m.Callback).where(m.Callback.id == cb_id).with_for_update())
    queues = await visible_queue_ids(session, who)
    if cb is None or (queues is not None and cb.queue_id not in queues):
        raise NotFound("callback {cb_id} not found", cb_id=cb_id)
    return cb


async def check_claim_callback(session: AsyncSession, who: Principal, cb_id: int) -> m.Callback:
    """Take a callback; it disappears from everyone else's list at once."""
    if who.role not in (m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN):
        raise PermissionDenied("only operators take callbacks")
    cb = await _load_callback(session, who, cb_id)
    if cb.state != "open":
        raise Conflict("this callback has already been taken by another operator")
    if cb.target_user_id is not None and cb.target_user_id != who.id:
        raise PermissionDenied("this callback is assigned to another operator")
    cb.state = "claimed"
    cb.claimed_by_id = who.id
    cb.claimed_at = datetime.now(UTC)
    emit(
        session,
        "callback.claimed",
        callback_dict(cb),
        conversation_id=cb.conversation_id,
        queue_id=cb.queue_id,
    )
    return cb


async def check_finish_callback(
    session: AsyncSession, who: Principal, cb_id: int, *, done: bool, note: str = ""
) -> m.Callback:
    """Mark a claimed callback done, or release it back to the shared list."""
    cb = await _load_callback(session, who, cb_id)
    if cb.state != "claimed" or (cb.claimed_by_id != who.id and who.role == m.Role.OPERATOR):
        raise Conflict("you have not taken this callback")
    if note:
        cb.note = note[:MAX_BODY]
    if done:
        cb.state = "done"
    else:
        cb.state = "open"
        cb.claimed_by_id = None
        cb.claimed_at = None
    emit(
        session,
        "callback.done" if done else "callback.released",
        callback_dict(cb),
        conversation_id=cb.conversation_id,
        queue_id=cb.queue_id,
    )
    return cb


async def check_schedule_callback(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    *,
    due_at: datetime | None,
    kind: str = "standard",
    target_user_id: int | None = None,
    note: str = "",
) -> m.Callback:
    """An operator promises to call/write back: standard, to a queue, or to one operator."""
    if kind not in ("standard", "queue", "operator"):
        raise InvalidInput("callback kind must be standard, queue or operator", field="kind")
    if kind == "operator" and target_user_id is None:
        target_user_id = who.id
    conv = await access_conversation(session, who, conv_id)
    cb = m.Callback(
        conversation_id=conv.id,
        contact_id=conv.contact_id,
        queue_id=conv.queue_id,
        kind=kind,
        reason="scheduled",
        target_user_id=target_user_id if kind == "operator" else None,
        state="open",
        due_at=due_at,
        note=note[:MAX_BODY],
        created_at=datetime.now(UTC),
    )
    session.add(cb)
    await session.flush()
    emit(session, "callback.created", callback_dict(cb), conversation_id=conv.id, queue_id=conv.queue_id)
    return cb


async def mark_delivery(session: AsyncSession, message_id: int, state: str, error: str = "") -> None:
    """Channel adapters report delivered / read / failed; operators see the mark."""
    if state not in ("sent", "delivered", "read", "failed"):
        raise InvalidInput("unknown delivery state '{state}'", state=state, field="delivery")
    msg = await session.get(m.Message, message_id)
    if msg is None:
        raise NotFound("message {message_id} not found", message_id=message_id)
    msg.delivery = state
    conv = await session.get(m.Conversation, msg.conversation_id)
    assert conv is not None
    emit(
        session,
        "message.delivery",
        {"message_id": msg.id, "delivery": state, "error": error},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


async def do_edit_inbound(
    session: AsyncSession,
    inbox_id: int,
    external_id: str,
    body: str,
    attachments: list[dict[str, Any]] | None = None,
) -> m.Message | None:
    """The customer edited a message in their messenger (Telegram): update the stored copy
    and tell the operator (``message.edited``). Unknown message or no change: ``None``."""
    if len(body) > MAX_BODY:
        raise InvalidInput("message is longer than {max_body} characters", max_body=MAX_BODY, field="body")
    msg = await session.scalar(
        select(m.Message)
        .where(m.Message.inbox_id == inbox_id, m.Message.external_id == external_id)
        .with_for_update()
    )
    if msg is None or msg.direction != "in":
        return None
    new_attachments = list(msg.attachments or []) if attachments is None else list(attachments)
    if msg.body == body and new_attachments == list(msg.attachments or []):
        return None
    previous = msg.body
    msg.body = body
    msg.attachments = new_attachments
    conv = await session.get(m.Conversation, msg.conversation_id)
    assert conv is not None
    emit(
        session,
        "message.edited",
        message_dict(msg) | {"channel": conv.channel, "previous_body": previous},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )
    return msg


async def do_record_rating(session: AsyncSession, conv_id: int, rating: int, *, scale: int = 5) -> bool:
    """A customer's answer to the post-contact satisfaction question (CSAT), kept in the
    conversation's variables without reopening it; ``conversation.rated`` for reports/CRM.
    Only the first answer counts (a second press returns ``False``)."""
    if not 1 <= rating <= scale:
        raise InvalidInput("rating must be 1 to {scale}", scale=scale, field="rating")
    conv = await session.get(m.Conversation, conv_id, with_for_update=True)
    if conv is None:
        raise NotFound("conversation {conv_id} not found", conv_id=conv_id)
    if "csat" in (conv.variables or {}):
        return False
    conv.variables = {**(conv.variables or {}), "csat": rating}
    _event(session, "conversation.rated", conv, rating=rating, scale=scale)
    return True
