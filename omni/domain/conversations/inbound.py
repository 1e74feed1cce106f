"""Inbound: a customer message or call enters the core (stored idempotently before it is
acknowledged), plus what the customer does afterwards (edits a message, rates the contact)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, bindparam, null, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import driver
from omni.db import models as m
from omni.db.outbox import unflushed
from omni.db.unit_of_work import unit_of_work
from omni.domain.contacts import do_create_contact, do_resolve_contact, identity_value, learn_name
from omni.domain.conversations._common import (
    MAX_BODY,
    REOPEN_WINDOW,
    S,
    _event,
    _message_event,
    bot_gateway,
    defer_message,
    insert_message,
    insert_message_announced,
)
from omni.domain.conversations.queueing import do_enqueue, do_reopen, line_up
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.events import emit
from omni.domain.place import skips_ivr
from omni.domain.serialize import message_dict


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
    starting: Callable[[AsyncSession], Awaitable[dict[str, Any]]] | None = None
    """More ``variables`` for a conversation this message starts, asked only then (a
    channel's lookup, e.g. the campaign a Telegram reply answers: a join that every other
    message, appended to an open conversation, would pay for nothing). ``variables`` win."""
    channel: str = ""
    """The channel the inbox must belong to (``voice`` for a caller naming an inbox id), or
    ``""`` for any: an inbox of another channel, like an inactive one, is ``NotFound`` before
    anything is written, so the adapter can fall back to another inbox in the same transaction."""
    reopen_closed: bool = True
    """``False`` when the customer was told the conversation is closed (the widget): a new
    message then starts a new conversation instead of reopening the closed one."""
    admit: Callable[[AsyncSession, Admission], Awaitable[None]] | None = None
    """The channel's own check before anything is written (the widget's required pre-chat
    fields), given what the look-up found; it raises to refuse the message. Asked here, not
    before the ingest, so the channel reads nothing the look-up reads anyway."""


@dataclass(slots=True)
class Admission:
    """What ``InboundMessage.admit`` is told: the (active) inbox, and when the one-statement
    look-up ran (``looked_up``), the customer's contact (``None``: a new customer) and whether
    they have a conversation in this inbox. Not looked up (SQLite, an identity the look-up
    can't take): the check reads them itself."""

    inbox: m.Inbox
    looked_up: bool
    contact: m.Contact | None = None
    has_conversation: bool = False


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


def _another_call(conv: m.Conversation, msg: InboundMessage) -> bool:
    """Whether ``msg`` starts a call (it names the call's ``linkedid``) other than the one the
    open conversation ``conv`` belongs to. Digits and recordings of a call name none: they
    belong to the caller's open conversation."""
    if msg.medium != m.Medium.VOICE or conv.medium != m.Medium.VOICE:
        return False
    call = str(msg.variables.get("linkedid") or "")
    known = str((conv.variables or {}).get("linkedid") or "")
    return bool(call and known and call != known)


@dataclass(slots=True)
class _Found:
    identity: str
    """The identity's value as stored (``identity_value``), for a contact created next."""
    inbox: m.Inbox | None
    contact: m.Contact | None
    conversation: m.Conversation | None
    stored_id: int | None
    queue: m.Queue | None = None
    """The inbox's queue when it was asked for (a call); held here, because the session's
    identity map keeps an object only while something refers to it."""


@dataclass(frozen=True, slots=True)
class _LookUp:
    statement: Select[Any]
    entities: tuple[driver.Entity, ...]
    """In the row's order; the redelivery check's ``stored_id`` follows the first three."""
    stored_at: int
    """``stored_id``'s place in the row."""


@functools.cache
def _look_up_statement(
    redelivery: bool, companion: type[m.Base] | None = None, queue: bool = False
) -> _LookUp:
    """``_look_up``'s statement, built once per shape and run with bound parameters: building
    it (coercions, the lateral alias) cost more Python than the round trips it saves.

    A Core statement of plain columns, run straight on asyncpg (``omni.db.driver``): loading
    the row as four ORM entities through the session's execution was a third of a bot step's
    CPU (bench/README.md, scen7); :meth:`driver.Entity.load` makes the same persistent objects.

    ``companion``: the bot gateway's row keyed by the conversation id (its session), read
    ``FOR UPDATE`` after the conversation's lock, as the gateway itself would lock it.
    ``queue``: the inbox's queue too, for a message that nearly always starts a conversation
    (a call): the conversation's queue is then in the session, not one more select."""
    inboxes, contacts, identities = m.Inbox.__table__, m.Contact.__table__, m.ContactIdentity.__table__
    conversations, messages = m.Conversation.__table__, m.Message.__table__
    stored: Any = null()
    if redelivery:
        stored = (
            select(messages.c.id)
            .where(
                messages.c.inbox_id == bindparam("inbox_id"),
                messages.c.external_id == bindparam("external_id"),
            )
            .scalar_subquery()
        )
    latest = (
        select(conversations)
        .where(conversations.c.contact_id == contacts.c.id, conversations.c.inbox_id == inboxes.c.id)
        .order_by(conversations.c.id.desc())
        .limit(1)
        .with_for_update()
        .lateral("latest")
    )
    inbox, contact, conversation = (
        driver.Entity.of(m.Inbox),
        driver.Entity.of(m.Contact),
        driver.Entity.of(m.Conversation),
    )
    entities = [inbox, contact, conversation]
    statement = (
        select(
            *inbox.columns(inboxes),
            *contact.columns(contacts),
            *conversation.columns(latest),
            stored.label("stored_id"),
        )
        .select_from(inboxes)
        .outerjoin(
            identities,
            (identities.c.kind == bindparam("kind")) & (identities.c.value == bindparam("value")),
        )
        .outerjoin(contacts, contacts.c.id == identities.c.contact_id)
        .outerjoin(latest, true())
        .where(inboxes.c.id == bindparam("inbox_id"))
    )
    if companion is not None:
        table = companion.__table__
        (key,) = companion.__mapper__.primary_key
        held = select(table).where(key == latest.c.id).with_for_update().lateral("companion")
        entities.append(driver.Entity.of(companion))
        statement = statement.add_columns(*entities[-1].columns(held)).outerjoin(held, true())
    if queue:
        queues = m.Queue.__table__
        entities.append(driver.Entity.of(m.Queue))
        statement = statement.add_columns(*entities[-1].columns(queues)).outerjoin(
            queues, queues.c.id == inboxes.c.queue_id
        )
    return _LookUp(statement, tuple(entities), sum(len(e.keys) for e in entities[:3]))


async def _look_up(session: AsyncSession, msg: InboundMessage) -> _Found | None:
    """The inbox, the customer's contact, their latest conversation in this inbox (locked
    ``FOR UPDATE``, as the step-by-step path locks it) and the id of a message already stored
    under ``msg.external_id`` (a re-delivery): one round trip instead of four
    (bench/scenarios.py, bench/telegram.py, bench/voice.py). ``None`` means "look them up one
    by one": on SQLite (no ``LATERAL``; embedded, one process) and for an identity that is not
    valid, which the step-by-step path refuses after the inbox's own check."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    try:
        value = identity_value(msg.identity_kind, msg.identity_value)
    except InvalidInput:
        return None
    params = {"kind": msg.identity_kind, "value": value, "inbox_id": msg.inbox_id}
    if msg.external_id:
        params["external_id"] = msg.external_id
    gateway = bot_gateway(session)
    companion = gateway.companion if gateway is not None else None
    calling = msg.medium == m.Medium.VOICE
    look_up = _look_up_statement(bool(msg.external_id), companion, calling)
    if session.autoflush and unflushed(session):
        # Not through the session's execution, so no autoflush: what an earlier action of this
        # transaction left pending (a batch of calls' effects) is written first, as it was.
        await session.flush()
    row = await (await driver.session_statements(session)).first(look_up.statement, params)
    if row is None:
        return _Found(value, None, None, None, None)
    loaded: list[Any] = []
    at = 0
    for entity in look_up.entities:
        if at == look_up.stored_at:
            at += 1
        loaded.append(entity.load(session, row[at : at + len(entity.keys)]))
        at += len(entity.keys)
    inbox, contact, conv = loaded[0], loaded[1], loaded[2]
    stored_id = row[look_up.stored_at]
    if companion is not None and conv is not None:
        unit_of_work(session).held[(companion, conv.id)] = loaded[3]
    queue = loaded[-1] if calling else None
    return _Found(value, inbox, contact, conv, stored_id, queue)


@dataclass(slots=True)
class IngestResult:
    conversation: m.Conversation
    message: m.Message
    duplicate: bool
    created: bool


async def do_ingest_inbound(session: AsyncSession, msg: InboundMessage) -> IngestResult:
    """Store a customer message (idempotently) and make sure someone will answer it.

    The message is stored before anything is acknowledged to the sender. A re-delivered
    message (same ``external_id`` per inbox, or same ``client_id`` per conversation) returns
    the stored one with ``duplicate=True``. A closed conversation is reopened within
    ``REOPEN_WINDOW``; after that a new conversation starts.
    """
    if len(msg.body) > MAX_BODY:
        raise InvalidInput("message is longer than {max_body} characters", max_body=MAX_BODY, field="body")
    _refuse_unstorable(msg)
    inbox: m.Inbox | None
    conv: m.Conversation | None
    found = await _look_up(session, msg)
    existing: m.Message | None = None
    if found is not None:
        inbox, contact, conv = found.inbox, found.contact, found.conversation
        if found.stored_id is not None:
            existing = await session.get(m.Message, found.stored_id)
    else:
        inbox, contact, conv = await session.get(m.Inbox, msg.inbox_id), None, None
    if inbox is None or not inbox.active or (msg.channel and inbox.channel != msg.channel):
        raise NotFound("inbox {inbox_id} not found", inbox_id=msg.inbox_id)
    if msg.admit is not None:
        looked_up = found is not None
        await msg.admit(session, Admission(inbox, looked_up, contact, conv is not None and looked_up))
    lang = customer_language(msg, inbox)
    if found is None and msg.external_id:
        existing = await session.scalar(
            select(m.Message).where(m.Message.inbox_id == inbox.id, m.Message.external_id == msg.external_id)
        )
    if existing is not None:
        stored_conv = await session.get(m.Conversation, existing.conversation_id)
        assert stored_conv is not None
        return IngestResult(stored_conv, existing, duplicate=True, created=False)
    if found is None:
        contact = await do_resolve_contact(
            session,
            msg.identity_kind,
            msg.identity_value,
            name=msg.contact_name,
            phone=msg.contact_phone,
            email=msg.contact_email,
        )
        conv = await session.scalar(
            select(m.Conversation)
            .where(m.Conversation.contact_id == contact.id, m.Conversation.inbox_id == inbox.id)
            .order_by(m.Conversation.id.desc())
            .limit(1)
            .with_for_update()
        )
    elif contact is None:  # a new customer: nothing to lock yet
        contact = await do_create_contact(
            session,
            msg.identity_kind,
            found.identity,
            name=msg.contact_name,
            phone=msg.contact_phone,
            email=msg.contact_email,
        )
    else:
        learn_name(contact, msg.contact_name)
    now = datetime.now(UTC)
    created = reopened = False
    scenario_key = ""
    queue: m.Queue | None = None
    bot = bot_gateway(session)
    if conv is not None and msg.client_id and conv.status not in m.OPEN_STATUSES:
        # A resend to a closed conversation must not reopen it. To an open one, the insert
        # below finds the duplicate itself (ON CONFLICT), with no select first.
        existing = await session.scalar(
            select(m.Message).where(
                m.Message.conversation_id == conv.id, m.Message.client_id == msg.client_id
            )
        )
        if existing is not None:
            return IngestResult(conv, existing, duplicate=True, created=False)
    if conv is None or (conv.status not in m.OPEN_STATUSES and msg.medium == m.Medium.VOICE):
        conv = None
    elif _another_call(conv, msg):
        # A second call from the same number while the first is still open is a contact of
        # its own (its own place in line, operator and recording), not a message of the first.
        conv = None
    elif conv.status not in m.OPEN_STATUSES:
        ended = conv.closed_at or conv.created_at
        if now - ended > REOPEN_WINDOW or contact.blacklisted or not msg.reopen_closed:
            conv = None
        else:
            await do_reopen(session, conv, now=now)
            reopened = True
    if conv is None:
        if found is not None and found.queue is not None:
            queue = found.queue
        else:
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
            variables=(await msg.starting(session) if msg.starting is not None else {})
            | dict(msg.variables)
            | ({"lang": lang} if lang else {}),
            extra_queue_ids=[],
            created_at=now,
            last_message_at=now,
        )
        scenario_key = str((inbox.config or {}).get("scenario") or "") if bot is not None else ""
        if not scenario_key and not contact.blacklisted:
            # Queued at once (below): the insert carries its place in line, no UPDATE follows.
            line_up(conv, queue, priority=msg.priority, now=now)
        session.add(conv)
        await session.flush()
        created = True
        _event(session, "conversation.created", conv)
        if contact.blacklisted:
            # Kept (nothing is lost, the history shows it) but never routed or answered by a bot.
            conv.status = S.CLOSED
            conv.closed_at = now
            conv.closed_by = "blacklist"
            _event(session, "conversation.blocked", conv)
        elif scenario_key and not (queue.affinity_skip_ivr and await skips_ivr(session, conv, queue)):
            conv.status = S.BOT  # the scenario starts once the first message is stored
        else:
            await do_enqueue(session, conv, queue, priority=msg.priority, now=now, fresh=True)
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
    stepping = conv.status == S.BOT and bot is not None and not (created or reopened)
    if not msg.client_id and not msg.external_id:
        # No idempotency key, nothing unique to collide on: a plain insert (nothing flushed;
        # the result's message is a plain row, not in the session). An answer to a running
        # bot is inserted with the step's own statement (``bots.step_writes``), its event
        # with it, in emit order.
        conv.last_message_at = now
        if stepping:
            message = await defer_message(session, conv, message)
        else:
            message = await insert_message(session, message)
            _message_event(session, conv, message)
    else:
        # Stored, the conversation touched and the message announced: one statement.
        inserted = await insert_message_announced(session, conv, message)
        if inserted is None:
            # A concurrent (or earlier) delivery of the same message; return what it stored.
            return IngestResult(conv, await _stored_copy(session, conv, msg), duplicate=True, created=False)
        message = inserted
    if lang and "lang" not in (conv.variables or {}):  # an older conversation learns it now
        conv.variables = {**(conv.variables or {}), "lang": lang}
    if conv.status == S.SNOOZED:
        from omni.domain.snooze import do_wake  # snooze builds on this package

        await do_wake(session, conv, "customer", now=now)
    # A closed queue that overflows to a bot started that bot above (do_enqueue/do_reopen):
    # it is not started twice, and this message was there before it, so it is no answer to it.
    if created and scenario_key and conv.status == S.BOT and bot is not None:
        if not await bot.start(session, conv, scenario_key):
            assert queue is not None
            await do_enqueue(session, conv, queue, priority=msg.priority, now=now)  # not published
    elif conv.status == S.BOT and bot is not None and not (created or reopened):
        await bot.on_inbound(session, conv, message)
    if not message.id:  # deferred, and no bot step wrote it (none ran, or it stopped short)
        await session.flush()
    return IngestResult(conv, message, duplicate=False, created=created)


async def _stored_copy(session: AsyncSession, conv: m.Conversation, msg: InboundMessage) -> m.Message:
    """The stored message an idempotent insert collided with (same ``client_id`` in this
    conversation, or same ``external_id`` in this inbox)."""
    keys = []
    if msg.client_id:
        keys.append((m.Message.conversation_id == conv.id) & (m.Message.client_id == msg.client_id))
    if msg.external_id:
        keys.append((m.Message.inbox_id == msg.inbox_id) & (m.Message.external_id == msg.external_id))
    stored = await session.scalar(select(m.Message).where(or_(*keys)).limit(1))
    if stored is None:  # nothing to collide with: the insert was refused for another reason
        raise RuntimeError(f"message {msg.client_id or msg.external_id!r} neither stored nor found")
    return stored


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
    if scale != 5:  # reports map it onto 1..5 (``omni.domain.reports.chats.csat_on_five``)
        conv.variables = {**conv.variables, "csat_scale": scale}
    _event(session, "conversation.rated", conv, rating=rating, scale=scale)
    return True
