"""Telegram broadcast campaigns: who can be reached, the message, its history, escalation.

A bot can only write to people who wrote to it first, so a target is reachable when its
contact (the one the list linked, or any contact whose phone matches one of the target's
numbers) has a ``telegram`` identity **and** a conversation in the campaign's bot inbox. The
message is stored in that contact's conversation like any bot message (so the operator sees
what was sent) and leaves through the channel's paced sender after commit; the sender's
delivery mark closes the attempt (``sent`` / ``send_failed`` with the Bot API's reason).

A conversation created for the message is ``closed`` (``closed_by = "broadcast"``) and carries
``campaign_id`` / ``target_id`` / ``attempt_id``: a reply reopens it into the campaign's queue
like any inbound Telegram message, with the campaign card. Later replies (past the reopen
window) are linked too (``reply_link``).

Escalation (``Campaign.escalation = {"unanswered_minutes": 30, "campaign_id": 7}``): Telegram
tells bots nothing about reading, so the rule is "no reply within N minutes" — a persisted
deadline set when the message is sent; when it fires without an inbound message from the
contact since, the target is added (once) to the voice campaign, due from the deadline on.

Template variables are ``{name}``, ``{phone}`` and the list's card fields; ``{{``/``}}`` are
literal braces. The values are inserted as plain text and the message is sent without a
parse mode, so nothing a customer's data contains is read as markup.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from omni.db import models as m
from omni.db.models.outbound import CampaignChannel, CampaignState, Outcome, TargetState
from omni.domain import deadlines
from omni.domain.conversations import MAX_BODY, _message_event, do_mark_delivery
from omni.domain.errors import InvalidInput
from omni.domain.outbound.lifecycle import do_close_attempt
from omni.i18n import _l

__all__ = [
    "BUILTIN_VARIABLES",
    "ESCALATION",
    "MAX_ESCALATION_MINUTES",
    "SEND_GUARD",
    "Placed",
    "Reach",
    "check_escalation",
    "check_template",
    "do_broadcast_delivered",
    "do_escalate",
    "do_place_broadcast",
    "do_send_guard",
    "escalation_rule",
    "find_reach",
    "render_message",
    "reply_link",
    "template_variables",
]

log = logging.getLogger(__name__)

KIND = "telegram"
ESCALATION = "campaign_escalation"
"""Deadline kind: ``ref_id`` = the sent attempt; fired by the routing engine on any node."""
SEND_GUARD = "broadcast_send_guard"
"""Deadline kind: ``ref_id`` = a placed attempt whose message has no delivery mark yet."""
SEND_GUARD_MINUTES = 15
"""The sender keeps its queue in memory: a message with no mark this long after it was placed
was lost with its node (or is stuck); the target goes back to the engine."""
BUILTIN_VARIABLES = ("name", "phone")
MAX_ESCALATION_MINUTES = 7 * 24 * 60
REPLY_LINK_DAYS = 7
"""A reply this long after a broadcast message still opens a conversation linked to it."""
EXTERNAL_PREFIX = "msg:"
"""``CampaignAttempt.external_id`` of a broadcast attempt: the stored message's id."""

# Attempt causes (stored in English like the Bot API's own; in the catalog for the screens
# that show them: ``omni.i18n.gettext(lang, cause)``).
NOT_ON_TELEGRAM = _l("not on Telegram: never wrote to this bot")
NO_BOT = _l("the campaign has no Telegram bot")
EMPTY_MESSAGE = _l("the message template is empty")
LOST_SEND = _l("not sent in time: the sending node stopped")

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


# --- template -------------------------------------------------------------------------------


def template_variables(text: str) -> list[str]:
    """The variables a template uses, in order; a stray brace is refused (``{{`` is one)."""
    names: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise InvalidInput(
                "the message template has an unmatched brace at character {position}; write a "
                "literal brace twice",
                position=match.start() + 1,
                field="message_template",
            )
        name = (match.group(1) or "").strip()
        if not name:
            raise InvalidInput(
                "the message template has an empty variable at character {position}",
                position=match.start() + 1,
                field="message_template",
            )
        names.append(name)
    return names


def check_template(text: str, fields: Iterable[str]) -> str:
    """Validate a broadcast template when the campaign is saved: every variable must be
    ``name``, ``phone`` or one of the campaign's card ``fields``; returns the text."""
    if not text.strip():
        raise InvalidInput("write the message to send", field="message_template")
    if len(text) > MAX_BODY:
        raise InvalidInput(
            "message is longer than {max_body} characters", max_body=MAX_BODY, field="message_template"
        )
    known = {*BUILTIN_VARIABLES, *(str(f) for f in fields)}
    for name in template_variables(text):
        if name not in known:
            raise InvalidInput(
                "the message template uses an unknown variable '{variable}'; known: {known}",
                variable=name,
                known=", ".join(sorted(known)),
                field="message_template",
            )
    return text


def render_message(text: str, target: m.CampaignTarget) -> str:
    """The template with the target's values, as plain text (a missing field is empty)."""
    values: dict[str, Any] = {**(target.fields or {}), "name": target.name, "phone": target.phone}

    def fill(match: re.Match[str]) -> str:
        part = match.group(0)
        if part in ("{{", "}}"):
            return part[0]
        if match.group(1) is None:
            return part
        value = values.get(match.group(1).strip())
        return "" if value is None else str(value)

    return _TOKEN.sub(fill, text)


# --- escalation rule ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EscalationRule:
    minutes: int
    campaign_id: int


def escalation_rule(raw: Mapping[str, Any] | None) -> EscalationRule | None:
    """The stored rule, or None (no rule, or one that no longer parses)."""
    if not raw:
        return None
    minutes = raw.get("unanswered_minutes", raw.get("unread_minutes"))
    campaign_id = raw.get("campaign_id")
    if not isinstance(minutes, int) or not isinstance(campaign_id, int) or minutes < 1:
        return None
    return EscalationRule(minutes, campaign_id)


async def check_escalation(
    session: AsyncSession, raw: Mapping[str, Any] | None, *, campaign_id: int | None = None
) -> dict[str, int] | None:
    """Validate ``Campaign.escalation`` when a Telegram campaign is saved: minutes without a
    reply (1 … 7 days; ``unread_minutes`` is read as the same thing, Telegram has no read
    receipts for bots) and an existing voice campaign other than this one."""
    if not raw:
        return None
    minutes = raw.get("unanswered_minutes", raw.get("unread_minutes"))
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not 1 <= minutes <= MAX_ESCALATION_MINUTES
    ):
        raise InvalidInput(
            "escalate after 1 to {max_minutes} minutes without a reply",
            max_minutes=MAX_ESCALATION_MINUTES,
            field="escalation",
        )
    target_id = raw.get("campaign_id")
    voice = (
        await session.get(m.Campaign, target_id)
        if isinstance(target_id, int) and not isinstance(target_id, bool)
        else None
    )
    if voice is None or voice.id == campaign_id or voice.channel != CampaignChannel.VOICE:
        raise InvalidInput("escalate to an existing voice campaign", field="escalation")
    return {"unanswered_minutes": minutes, "campaign_id": voice.id}


# --- reach ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reach:
    contact_id: int
    chat_id: int


async def find_reach(session: AsyncSession, inbox_id: int, target: m.CampaignTarget) -> Reach | None:
    """The contact and Telegram chat of a target, if it ever wrote to this bot: the linked
    contact first, else a contact with one of the target's numbers (``Contact.phone`` or a
    ``phone`` identity, e.g. from sharing their contact with the bot). One query."""
    phones = sorted({target.phone, *(str(p) for p in (target.phones or []))} - {""})
    ident = m.ContactIdentity
    phone_ident = aliased(m.ContactIdentity)
    # Candidates first (each part an indexed lookup), then their Telegram identity: an OR of
    # IN-subqueries would make PostgreSQL scan every identity.
    parts = [
        select(m.Contact.id.label("contact_id")).where(m.Contact.phone.in_(phones)),
        select(phone_ident.contact_id.label("contact_id")).where(
            phone_ident.kind == "phone", phone_ident.value.in_(phones)
        ),
    ]
    if target.contact_id is not None:
        parts.append(select(m.Contact.id.label("contact_id")).where(m.Contact.id == target.contact_id))
    candidates = union(*parts).subquery()
    talked = exists().where(
        m.Conversation.contact_id == ident.contact_id, m.Conversation.inbox_id == inbox_id
    )
    order = [ident.id.desc()]
    if target.contact_id is not None:
        order.insert(0, case((ident.contact_id == target.contact_id, 0), else_=1).asc())
    row = (
        await session.execute(
            select(ident.contact_id, ident.value)
            .where(ident.kind == KIND, ident.contact_id.in_(select(candidates.c.contact_id)), talked)
            .order_by(*order)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    try:
        return Reach(int(row[0]), int(row[1]))
    except ValueError:
        return None


# --- placing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placed:
    conversation_id: int
    message_id: int
    chat_id: int


async def do_place_broadcast(
    session: AsyncSession,
    attempt_id: int,
    *,
    text: str = "",
    variables: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Placed | None:
    """Store the broadcast message of an open attempt in the contact's conversation; the
    outbox relay hands it to the channel after commit (``message.created``). ``text``: the
    order's rendered message; empty = render the campaign's template here. ``variables``: the
    order's card variables (the target's name and fields when not given), kept on the
    conversation with ``campaign_id`` / ``target_id`` / ``attempt_id`` as the voice adapter does.

    A target nobody can message (never wrote to the bot, no bot, empty text) is closed at
    once as ``refused`` with the cause and the target ``failed``: no attempt used, no retry.
    Returns None then, and for an attempt that already ended."""
    attempt = await session.get(m.CampaignAttempt, attempt_id, with_for_update=True)
    if attempt is None or attempt.ended_at is not None:
        return None
    target = await session.get(m.CampaignTarget, attempt.target_id)
    campaign = await session.get(m.Campaign, attempt.campaign_id)
    assert target is not None and campaign is not None, "an attempt's target and campaign exist (FK)"
    now = now or datetime.now(UTC)
    inbox = await session.get(m.Inbox, campaign.inbox_id) if campaign.inbox_id is not None else None
    cause = ""
    reach: Reach | None = None
    body = text if text.strip() else render_message(campaign.message_template or "", target)
    if inbox is None or inbox.channel != KIND:
        cause = NO_BOT
    elif not body.strip():
        cause = EMPTY_MESSAGE
    else:
        reach = await find_reach(session, inbox.id, target)
        if reach is None:
            cause = NOT_ON_TELEGRAM
    if reach is None or inbox is None:
        await do_close_attempt(
            session, attempt, Outcome.REFUSED, cause=cause, now=now, refused_state=TargetState.FAILED
        )
        return None
    link = {"campaign_id": campaign.id, "target_id": target.id, "attempt_id": attempt.id}
    card = dict(variables) if variables else {**(target.fields or {}), "name": target.name}
    conv = await session.scalar(
        select(m.Conversation)
        .where(
            m.Conversation.contact_id == reach.contact_id,
            m.Conversation.inbox_id == inbox.id,
            m.Conversation.status.in_(m.OPEN_STATUSES),
        )
        .order_by(m.Conversation.id.desc())
        .limit(1)
        .with_for_update()
    )
    if conv is None:
        # Closed from the start: nobody waits for it; the customer's reply reopens it into
        # the campaign's queue (do_ingest_inbound), with the campaign card.
        conv = m.Conversation(
            contact_id=reach.contact_id,
            inbox_id=inbox.id,
            queue_id=campaign.queue_id,
            channel=inbox.channel,
            medium=m.Medium.CHAT,
            status=m.ConversationStatus.CLOSED,
            subject=campaign.name[:256],
            variables={**card, **link, "telegram_chat_id": reach.chat_id, "direction": "out"},
            extra_queue_ids=[],
            created_at=now,
            closed_at=now,
            closed_by="broadcast",
        )
        session.add(conv)
        await session.flush()
    elif "campaign_id" not in (conv.variables or {}):
        conv.variables = {**card, **(conv.variables or {}), **link}
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=inbox.id,
        direction="out",
        author_user_id=None,
        body=body,
        attachments=[],
        delivery="pending",
        created_at=now,
    )
    session.add(message)
    await session.flush()
    conv.last_message_at = now
    attempt.started_at = now
    attempt.conversation_id = conv.id
    attempt.external_id = f"{EXTERNAL_PREFIX}{message.id}"
    target.contact_id = reach.contact_id
    deadlines.schedule(session, SEND_GUARD, attempt.id, now + timedelta(minutes=SEND_GUARD_MINUTES))
    _message_event(session, conv, message)
    return Placed(conv.id, message.id, reach.chat_id)


async def do_broadcast_delivered(
    session: AsyncSession, message_id: int, state: str, error: str = "", *, now: datetime | None = None
) -> m.CampaignTarget | None:
    """The channel's delivery mark of a message: when it carried a broadcast attempt, the
    attempt ends ``sent`` (target done; the escalation deadline starts) or ``send_failed``
    with the Bot API's description as the cause. Other messages: nothing (None)."""
    if state not in ("sent", "failed"):
        return None
    attempt = await session.scalar(
        select(m.CampaignAttempt)
        .where(
            m.CampaignAttempt.external_id == f"{EXTERNAL_PREFIX}{message_id}",
            m.CampaignAttempt.channel == KIND,
        )
        .with_for_update()
    )
    if attempt is None or attempt.ended_at is not None:
        return None
    now = now or datetime.now(UTC)
    await deadlines.cancel(session, SEND_GUARD, attempt.id)
    outcome = Outcome.SENT if state == "sent" else Outcome.SEND_FAILED
    target = await do_close_attempt(session, attempt, outcome, cause=error, now=now)
    if outcome == Outcome.SENT:
        campaign = await session.get(m.Campaign, attempt.campaign_id)
        rule = escalation_rule(campaign.escalation if campaign is not None else None)
        if rule is not None:
            deadlines.schedule(
                session,
                ESCALATION,
                attempt.id,
                now + timedelta(minutes=rule.minutes),
                {"campaign_id": rule.campaign_id},
            )
    return target


# --- replies and escalation -----------------------------------------------------------------


async def reply_link(session: AsyncSession, inbox_id: int, identity_value: str) -> dict[str, Any]:
    """Campaign variables for a conversation a Telegram customer starts: those of the latest
    broadcast message sent to them from this bot in the last ``REPLY_LINK_DAYS`` (``{}`` when
    none). A reply within the reopen window reopens the broadcast conversation instead."""
    since = datetime.now(UTC) - timedelta(days=REPLY_LINK_DAYS)
    row = (
        await session.execute(
            select(m.CampaignAttempt.campaign_id, m.CampaignAttempt.target_id, m.CampaignAttempt.id)
            .join(m.Conversation, m.Conversation.id == m.CampaignAttempt.conversation_id)
            .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
            .where(
                m.ContactIdentity.kind == KIND,
                m.ContactIdentity.value == identity_value,
                m.Conversation.inbox_id == inbox_id,
                m.CampaignAttempt.outcome == Outcome.SENT,
                m.CampaignAttempt.ended_at >= since,
            )
            .order_by(m.CampaignAttempt.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return {}
    return {"campaign_id": int(row[0]), "target_id": int(row[1]), "attempt_id": int(row[2])}


async def do_escalate(session: AsyncSession, deadline: m.Deadline) -> m.CampaignTarget | None:
    """The escalation deadline of a sent message fired: without a reply from the contact in
    the bot's inbox since the message, the target joins the voice campaign (same name,
    numbers, zone, fields and contact), due at the deadline. Once: the deadline fires once and
    a number already in the voice campaign is left as it is. Returns the new target."""
    attempt = await session.get(m.CampaignAttempt, deadline.ref_id)
    if attempt is None or attempt.outcome != Outcome.SENT or attempt.conversation_id is None:
        return None
    conv = await session.get(m.Conversation, attempt.conversation_id)
    target = await session.get(m.CampaignTarget, attempt.target_id)
    if conv is None or target is None:
        return None
    since = attempt.started_at or attempt.created_at
    replied = await session.scalar(
        select(m.Message.id)
        .join(m.Conversation, m.Conversation.id == m.Message.conversation_id)
        .where(
            m.Conversation.contact_id == conv.contact_id,
            m.Conversation.inbox_id == conv.inbox_id,
            m.Message.direction == "in",
            m.Message.created_at >= since,
        )
        .limit(1)
    )
    if replied is not None:
        return None
    voice_id = deadline.payload.get("campaign_id")
    voice = await session.get(m.Campaign, voice_id) if isinstance(voice_id, int) else None
    if voice is None or voice.channel != CampaignChannel.VOICE or voice.state == CampaignState.FINISHED:
        log.warning(
            "broadcast attempt %s: no reply, but voice campaign %s is gone, not voice or finished",
            attempt.id,
            voice_id,
        )
        return None
    taken = await session.scalar(
        select(m.CampaignTarget.id).where(
            m.CampaignTarget.campaign_id == voice.id, m.CampaignTarget.phone == target.phone
        )
    )
    if taken is not None:
        return None
    copy = m.CampaignTarget(
        campaign_id=voice.id,
        name=target.name,
        phone=target.phone,
        phones=list(target.phones or [target.phone]),
        timezone=target.timezone,
        region=target.region,
        fields=dict(target.fields or {}),
        tags=list(target.tags or []),
        state=TargetState.PENDING,
        next_due_at=deadline.due_at,
        contact_id=target.contact_id,
        created_at=deadline.due_at,
        updated_at=deadline.due_at,
    )
    try:
        async with session.begin_nested():
            session.add(copy)
    except IntegrityError:  # imported into the voice campaign at the same moment
        return None
    log.info(
        "broadcast attempt %s: no reply in time; target %s added to voice campaign %s",
        attempt.id,
        copy.id,
        voice.id,
    )
    return copy


async def do_send_guard(session: AsyncSession, deadline: m.Deadline) -> m.CampaignTarget | None:
    """A placed message got no delivery mark in ``SEND_GUARD_MINUTES``: the node whose sender
    queued it stopped (its queue is in memory). The message is marked failed for the operator
    and the attempt closed ``refused`` (no attempt used) with the target pending again from the
    deadline on, so the engine places it anew; nothing waits forever."""
    attempt = await session.get(m.CampaignAttempt, deadline.ref_id, with_for_update=True)
    if attempt is None or attempt.ended_at is not None:
        return None
    target = await session.get(m.CampaignTarget, attempt.target_id)
    assert target is not None
    message_id = attempt.external_id.removeprefix(EXTERNAL_PREFIX)
    message = await session.get(m.Message, int(message_id)) if message_id.isdigit() else None
    if message is not None and message.delivery == "pending":
        await do_mark_delivery(session, message.id, "failed", LOST_SEND)
    target.next_due_at = deadline.due_at
    closed = await do_close_attempt(
        session,
        attempt,
        Outcome.REFUSED,
        cause=LOST_SEND,
        now=deadline.due_at,
        refused_state=TargetState.PENDING,
    )
    closed.next_due_at = deadline.due_at
    log.warning("broadcast attempt %s: no delivery mark in time; its target is pending again", attempt.id)
    return closed
