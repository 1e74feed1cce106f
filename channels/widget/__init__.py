"""Web chat widget channel: the ``/widget`` Socket.IO namespace and the adapter that delivers
operator replies to the visitor's browser.

A visitor is identified by a signed visitor token kept by the widget (history survives
reloads and new tabs), or, when the site passes ``user_id`` + ``user_hash`` (HMAC-SHA256 of
the user id with the inbox secret), by the site's own user id. Every customer message is
stored before it is acknowledged; the widget's ``client_id`` makes a resend after a network
drop idempotent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused
from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncSession

from omni import crypto
from omni.channels import ChannelSetup, DeliveryReceipt, OutboundMessage
from omni.db import models as m
from omni.domain import automated, conversations, files
from omni.domain.conversations import MAX_BODY, InboundMessage
from omni.domain.errors import DomainError, InvalidInput, NotFound, TooManyRequests
from omni.domain.events import DomainEvent
from omni.domain.hours import is_open
from omni.domain.routing import line_wait_infos, queue_capacity, wait_info
from omni.domain.serialize import message_dict
from omni.i18n import _l, gettext, pick_language
from omni.ratelimit import RateLimiter, address_key
from omni.realtime import rooms
from omni.services import Services

log = logging.getLogger(__name__)

NAMESPACE = "/widget"
VISITOR_PURPOSE = "omni.widget.visitor"
HISTORY_LIMIT = 200
ROOM_CACHE_SECONDS = 30.0
ROOM_CACHE_SIZE = 20_000
WAITING = (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED)
BUSY = _l("the server is busy; your message will be sent again")
NOT_A_NUMBER = _l("message_id must be a number")
PRECHAT_FIELDS = ("name", "email", "phone", "subject")
CLOSED_BY_OTHERS_UNSEEN = frozenset({"customer", "blacklist"})
"""Closes the visitor needs no notice of: they left themselves, or they are blocked."""
TOO_MANY_CHATS = _l(
    "Too many new chats are being started right now. Please wait a minute: your message will be sent then."
)
LINE_MOVES = frozenset(
    {
        "conversation.queued",
        "conversation.accepted",
        "conversation.abandoned",
        "conversation.missed",
        "conversation.overflowed",
        "conversation.transferred",
    }
)
"""Events after which waiting customers' positions or expected waits may have changed."""


def visitor_room(identity: str) -> str:
    return f"visitor:{identity}"


def identity_hash(inbox_secret: str, user_id: str) -> str:
    """What the site computes server-side and passes to the widget as ``user_hash``."""
    return hmac.new(inbox_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def refusal(
    error: str,
    detail: str | DomainError,
    *,
    retry: bool = False,
    lang: str = "en",
    params: Mapping[str, object] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A refused ``message`` ack. ``retry`` tells the widget whether sending the same message
    again can ever succeed (busy server, rate limit) or never will (too long, a NUL character,
    missing pre-chat fields): then it gives the text back to the customer and forgets it.
    ``detail`` is a catalog text (with ``params``) or a domain error, shown in ``lang``."""
    text = (
        detail.localized(lang) if isinstance(detail, DomainError) else gettext(lang, detail, **(params or {}))
    )
    return {"ok": False, "error": error, "detail": text, "retry": retry, **extra}


def check_message(data: dict[str, Any], lang: str = "en") -> dict[str, Any] | None:
    """Refusals decided by the message alone, before any rate limit or database work."""
    for name in ("body", *PRECHAT_FIELDS):
        if "\x00" in str(data.get(name) or ""):
            return refusal(
                "bad_characters",
                _l("the {name} contains a character that can't be sent"),
                lang=lang,
                params={"name": name},
                field=name,
            )
    if len(str(data.get("body") or "")) > MAX_BODY:
        return refusal(
            "too_long",
            _l("message is longer than {max_body} characters"),
            lang=lang,
            params={"max_body": MAX_BODY},
            field="body",
            max=MAX_BODY,
        )
    return None


def widget_limits(services: Services) -> dict[str, int]:
    """What the widget checks before sending (``welcome.limits``): it never sends a message
    the server would refuse for its size or a frame that would close the connection."""
    return {
        "max_body": MAX_BODY,
        "max_message_bytes": services.settings.socketio_max_message_bytes,
        "max_upload_bytes": services.settings.widget.max_upload_bytes,
    }


def csat_of(config: dict[str, Any]) -> dict[str, Any] | None:
    """The inbox's satisfaction question (``config.csat = {question, labels?}``), or None."""
    csat = config.get("csat")
    if not isinstance(csat, dict) or not csat.get("question"):
        return None
    labels = csat.get("labels") or ["1", "2", "3", "4", "5"]
    return {"question": str(csat["question"]), "labels": [str(x) for x in labels]}


def public_message(msg: m.Message) -> dict[str, Any]:
    """What a visitor may see of a message (no operator ids, no private notes)."""
    data = message_dict(msg)
    return {
        k: data[k] for k in ("id", "direction", "body", "attachments", "client_id", "delivery", "created_at")
    }


# Refusals (socketio's ConnectionRefusedError, not the builtin) carry a plain sentence:
# the browser client shows ``err.message`` as is.
class WidgetNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # untyped base class
    def __init__(self, services: Services) -> None:
        super().__init__(NAMESPACE)
        self.services = services
        self.limiter = RateLimiter(services.settings.widget.messages_per_minute)
        widget = services.settings.widget
        self.new_per_address = services.limits.limiter(
            "widget-new-address", widget.new_conversations_per_address
        )
        self.new_per_inbox = services.limits.limiter("widget-new-inbox", widget.new_conversations_per_inbox)
        # Visitors share the connection pool with the outbox relay and the router; a flood of
        # visitors must queue here, not starve delivery of what is already stored.
        self.gate = asyncio.Semaphore(services.settings.widget.max_concurrent_db)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        data = auth if isinstance(auth, dict) else {}
        lang = pick_language(str(data.get("lang") or ""), str(environ.get("HTTP_ACCEPT_LANGUAGE") or ""))
        secret_key = self.services.settings.effective_secret_key()
        async with self.gate, self.services.db.transaction() as session:
            inbox = await session.scalar(
                select(m.Inbox).where(m.Inbox.public_token == str(data.get("inbox", "")))
            )
            if inbox is None or not inbox.active or inbox.channel != WidgetChannel.kind:
                raise Refused(gettext(lang, "unknown or disabled widget"))
            allowed = inbox.config.get("allowed_origins") or []
            origin = str(environ.get("HTTP_ORIGIN") or "").rstrip("/")
            if allowed and origin not in {str(o).rstrip("/") for o in allowed}:
                raise Refused(gettext(lang, _l("this widget is not enabled on this site")))
            identity: str
            if data.get("user_id"):
                user_id = str(data["user_id"])[:128]
                secret = crypto.decrypt(secret_key, inbox.secret_encrypted) if inbox.secret_encrypted else ""
                given = str(data.get("user_hash", ""))
                if not secret or not hmac.compare_digest(identity_hash(secret, user_id), given):
                    raise Refused(gettext(lang, _l("the user_hash does not match this user_id")))
                identity = f"user:{inbox.id}:{user_id}"
            else:
                visitor = crypto.unsign_value(secret_key, VISITOR_PURPOSE, str(data.get("visitor", "")))
                identity = visitor or f"v:{inbox.id}:{uuid.uuid4().hex}"
            history, conv_id = await self._history(session, inbox.id, identity)
            online = await self._online(session, inbox)
            closed = await closed_notice(session, conv_id) if conv_id is not None else None
        token = crypto.sign_value(secret_key, VISITOR_PURPOSE, identity)
        await self.save_session(sid, {"inbox_id": inbox.id, "identity": identity, "lang": lang})
        await self.enter_room(sid, visitor_room(identity))
        await self.emit(
            "welcome",
            {
                "visitor": token,
                "conversation_id": conv_id,
                "messages": history,
                "config": inbox.config,
                "online": online,
                "limits": widget_limits(self.services),
                "closed": closed,
            },
            to=sid,
        )

    async def _online(self, session: AsyncSession, inbox: m.Inbox) -> bool:
        """Whether to show the chat (true) or the offline form: the queue is within business
        hours and someone in it is in a status that receives chats."""
        queue = await session.get(m.Queue, inbox.queue_id) if inbox.queue_id else None
        if queue is None or not is_open(queue, datetime.now(UTC)):
            return False
        return (await queue_capacity(session, queue.id, m.Medium.CHAT)).slots > 0

    async def _conversation_id(self, session: AsyncSession, inbox_id: int, identity: str) -> int | None:
        """The visitor's latest conversation in this inbox (one indexed query, no messages)."""
        conv_id: int | None = await session.scalar(
            select(m.Conversation.id)
            .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
            .where(
                m.ContactIdentity.kind == "widget",
                m.ContactIdentity.value == identity,
                m.Conversation.inbox_id == inbox_id,
            )
            .order_by(m.Conversation.id.desc())
            .limit(1)
        )
        return conv_id

    async def _history(
        self, session: AsyncSession, inbox_id: int, identity: str
    ) -> tuple[list[dict[str, Any]], int | None]:
        conv_id = await self._conversation_id(session, inbox_id, identity)
        if conv_id is None:
            return [], None
        rows = await session.scalars(
            select(m.Message)
            .where(m.Message.conversation_id == conv_id, m.Message.direction.in_(("in", "out")))
            .order_by(m.Message.id.desc())
            .limit(HISTORY_LIMIT)
        )
        return [public_message(x) for x in reversed(list(rows))], conv_id

    async def on_message(self, sid: str, data: Any) -> dict[str, Any]:
        """Acked only after the message is stored; the same ``client_id`` again is a no-op."""
        sess = await self.get_session(sid)
        lang = str(sess.get("lang", "en"))
        if not isinstance(data, dict):
            return refusal("invalid", _l("message must be an object"), lang=lang)
        refused = check_message(data, lang)
        if refused is not None:
            return refused
        if not self.limiter.allow(sess["identity"]):
            wait = math.ceil(self.limiter.retry_after(sess["identity"]))
            return refusal(
                "rate_limited",
                _l("too many messages, wait a minute"),
                retry=True,
                lang=lang,
                retry_after=wait,
            )
        try:
            client_id = str(data.get("client_id") or "")[:64]
            if not client_id:
                raise InvalidInput("client_id is required", field="client_id")
            ids = data.get("attachments") or []
            if not isinstance(ids, list):
                raise InvalidInput("attachments must be a list of file ids", field="attachments")
            # A quick-reply press: the label is the text, the id tells the bot which one.
            pressed = [automated.button_reply(data["button"])] if data.get("button") else []
            async with self.gate, self.services.db.transaction() as session:
                missing = await self._missing_prechat(session, sess, data)
                if missing is not None:
                    return refusal(
                        "prechat_required",
                        _l("{field} is required before the chat starts"),
                        lang=lang,
                        params={"field": missing},
                        field=missing,
                    )
                claimed = await files.claim(session, sess["identity"], [str(i) for i in ids])
                result = await conversations.ingest_inbound(
                    session,
                    InboundMessage(
                        inbox_id=sess["inbox_id"],
                        identity_kind="widget",
                        identity_value=sess["identity"],
                        body=str(data.get("body", "")),
                        client_id=client_id,
                        contact_name=str(data.get("name", ""))[:256],
                        contact_email=(str(data["email"])[:254] if data.get("email") else None),
                        contact_phone=(str(data["phone"]) if data.get("phone") else None),
                        subject=str(data.get("subject", "")),
                        attachments=[files.descriptor(f) for f in claimed] + pressed,
                        language=str(data.get("lang") or "")[:16],
                        reopen_closed=False,  # the widget told the customer it was closed
                    ),
                )
                if result.created:
                    # Raises (rolling the new conversation back) past the limits.
                    await self._admit_new_conversation(sid, sess["inbox_id"])
                if not result.duplicate:
                    files.link(claimed, result.conversation.id)
                ack: dict[str, Any] = {
                    "ok": True,
                    "duplicate": result.duplicate,
                    "conversation_id": result.conversation.id,
                    "message": public_message(result.message),
                }
                if result.conversation.status in WAITING:  # the line only matters while waiting
                    info = await wait_info(session, result.conversation)
                    ack["position"] = info.position
                    ack["estimated_wait_seconds"] = info.estimated_wait_seconds
                return ack
        except DomainError as exc:
            # A rate limit (e.g. too many new chats from one address) passes: send it again later.
            return refusal(exc.code, exc, field=exc.field, retry=isinstance(exc, TooManyRequests), lang=lang)
        except DataError:
            # The database refused the values themselves: sending them again can't help.
            log.warning("widget message from %s has values the database refuses", sess["identity"])
            return refusal("invalid", _l("the message can't be stored as sent"), lang=lang)
        except Exception:
            # Not stored (database overloaded or down): say so, so the widget keeps the message
            # and sends it again with the same client id instead of believing it was delivered.
            log.exception("widget message from %s not stored", sess["identity"])
            return refusal("unavailable", BUSY, retry=True, lang=lang)

    async def _missing_prechat(
        self, session: AsyncSession, sess: dict[str, Any], data: dict[str, Any]
    ) -> str | None:
        """The first required pre-chat field neither in the message nor already known of the
        visitor: a widget that sent before its form was filled must not create a nameless
        contact whose conversation no one can route."""
        inbox = await session.get(m.Inbox, sess["inbox_id"])
        required = [
            str(f.get("name"))
            for f in ((inbox.config or {}).get("prechat") or [] if inbox else [])
            if isinstance(f, dict) and f.get("required") and f.get("name") in PRECHAT_FIELDS
        ]
        missing = [name for name in required if not str(data.get(name) or "").strip()]
        if not missing:
            return None
        contact = await session.scalar(
            select(m.Contact)
            .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Contact.id)
            .where(m.ContactIdentity.kind == "widget", m.ContactIdentity.value == sess["identity"])
        )
        if contact is None:
            return missing[0]
        conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
        known = {
            "name": bool(contact.name),
            "email": bool(contact.email),
            "phone": bool(contact.phone),
            "subject": conv_id is not None,
        }
        return next((name for name in missing if not known[name]), None)

    async def on_rate(self, sid: str, data: Any) -> dict[str, Any]:
        """The visitor's answer to the satisfaction question shown with the closed notice."""
        sess = await self.get_session(sid)
        try:
            rating = int(data.get("rating", 0)) if isinstance(data, dict) else 0
            async with self.gate, self.services.db.transaction() as session:
                conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
                inbox = await session.get(m.Inbox, sess["inbox_id"])
                csat = csat_of(inbox.config or {}) if inbox else None
                if conv_id is None or csat is None:
                    raise NotFound("there is no conversation to rate")
                first = await conversations.do_record_rating(
                    session, conv_id, rating, scale=len(csat["labels"])
                )
            return {"ok": True, "recorded": first}
        except (DomainError, ValueError, TypeError) as exc:
            detail = exc if isinstance(exc, DomainError) else _l("rating must be a number")
            return refusal("invalid", detail, lang=str(sess.get("lang", "en")))

    async def _admit_new_conversation(self, sid: str, inbox_id: int) -> None:
        """Per-address and per-inbox limits on new conversations: a script opening chats from
        fresh visitor tokens must not fill the queue. The refusal is ``rate_limited``, so the
        widget keeps the message and sends it again later."""
        environ: dict[str, Any] = self.server.get_environ(sid, namespace=NAMESPACE) or {}
        client = (environ.get("asgi.scope") or {}).get("client")
        address = str(client[0]) if client else ""
        by_address = await self.new_per_address.allow(address_key(address))
        if not by_address or not await self.new_per_inbox.allow(str(inbox_id)):
            log.warning("widget inbox %s: new conversation from %s refused (limit)", inbox_id, address)
            raise TooManyRequests(TOO_MANY_CHATS)  # shown in the visitor's language (``refusal``)

    async def on_typing(self, sid: str, data: Any = None) -> None:
        """Relayed to the operator handling the conversation (and supervisors of its queue)."""
        sess = await self.get_session(sid)
        if self.gate.locked():
            return  # a hint only: drop it rather than queue behind messages
        async with self.gate, self.services.db.transaction() as session:
            conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
            conv = await session.get(m.Conversation, conv_id) if conv_id is not None else None
        if conv is None:
            return
        typing = bool(data.get("typing", True)) if isinstance(data, dict) else True
        payload = {"conversation_id": conv.id, "who": "customer", "typing": typing}
        if conv.assigned_user_id is not None:
            await self.server.emit(
                "typing", payload, to=rooms.user(conv.assigned_user_id), namespace="/operator"
            )
        if conv.queue_id is not None:
            await self.server.emit("typing", payload, to=rooms.queue(conv.queue_id), namespace="/supervisor")

    async def on_seen(self, sid: str, data: Any) -> dict[str, Any]:
        """The widget showed (``read``) or received (``delivered``) an operator message."""
        sess = await self.get_session(sid)
        try:
            if not isinstance(data, dict) or data.get("state") not in ("delivered", "read"):
                raise InvalidInput("state must be delivered or read", field="state")
            message_id = int(data.get("message_id", 0))
            async with self.gate, self.services.db.transaction() as session:
                conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
                msg = await session.get(m.Message, message_id)
                if msg is None or msg.conversation_id != conv_id or msg.direction != "out":
                    raise NotFound("message {message_id} not found", message_id=message_id)
                await conversations.mark_delivery(session, msg.id, str(data["state"]))
            return {"ok": True}
        except (DomainError, ValueError) as exc:
            detail = (
                exc.localized(sess.get("lang", "en"))
                if isinstance(exc, DomainError)
                else gettext(sess.get("lang", "en"), NOT_A_NUMBER)
            )
            return {"ok": False, "error": "invalid", "detail": detail}

    async def on_resume(self, sid: str, data: Any) -> dict[str, Any]:
        """The visitor's messages (any of their conversations in this inbox) with an id above
        ``after``: what the widget asks for on ``sync`` when the live path may have lost some."""
        sess = await self.get_session(sid)
        try:
            after = int(data["after"]) if isinstance(data, dict) else -1
        except (KeyError, TypeError, ValueError):
            after = -1
        if after < 0:
            return {"ok": False, "error": "invalid", "detail": "after must be a message id", "field": "after"}
        async with self.gate, self.services.db.transaction() as session:
            rows = list(
                await session.scalars(
                    select(m.Message)
                    .join(m.Conversation, m.Conversation.id == m.Message.conversation_id)
                    .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
                    .where(
                        m.ContactIdentity.kind == "widget",
                        m.ContactIdentity.value == sess["identity"],
                        m.Conversation.inbox_id == sess["inbox_id"],
                        m.Message.direction.in_(("in", "out")),
                        m.Message.id > after,
                    )
                    .order_by(m.Message.id)
                    .limit(HISTORY_LIMIT + 1)
                )
            )
        more = len(rows) > HISTORY_LIMIT
        return {"ok": True, "messages": [public_message(x) for x in rows[:HISTORY_LIMIT]], "more": more}

    async def on_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The visitor closed the chat: abandoned if still waiting, wrap-up if being served."""
        sess = await self.get_session(sid)
        async with self.gate, self.services.db.transaction() as session:
            conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
            if conv_id is None:
                return {"ok": False, "error": "not_found", "detail": "no conversation to leave"}
            conv = await conversations.do_customer_left(session, conv_id)
            return {"ok": True, "status": conv.status if conv else None}


class WidgetChannel:
    """Delivers operator replies to every open tab of the visitor (any node, via the manager)."""

    kind: ClassVar[str] = "widget"

    def __init__(self, sio: socketio.AsyncServer, services: Services) -> None:
        self.sio = sio
        self.services = services
        self._room_cache: dict[int, tuple[float, list[str]]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def _rooms(self, conversation_id: int) -> list[str]:
        """The visitor rooms of a conversation's contact, cached briefly: every reply and typing
        hint needs them, and a contact's widget identities rarely change."""
        now = time.monotonic()
        cached = self._room_cache.get(conversation_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.services.db.transaction() as session:
            identities = await session.scalars(
                select(m.ContactIdentity.value)
                .join(m.Conversation, m.Conversation.contact_id == m.ContactIdentity.contact_id)
                .where(m.Conversation.id == conversation_id, m.ContactIdentity.kind == "widget")
            )
            targets = [visitor_room(i) for i in identities]
        if len(self._room_cache) >= ROOM_CACHE_SIZE:
            self._room_cache.clear()
        self._room_cache[conversation_id] = (now + ROOM_CACHE_SECONDS, targets)
        return targets

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        targets = await self._rooms(msg.conversation_id)
        if not targets:
            return DeliveryReceipt("failed", error="no widget visitor for this conversation")
        if msg.created_at is None:  # an older caller: read what the visitor may see
            async with self.services.db.transaction() as session:
                stored = await session.get(m.Message, msg.message_id)
            if stored is None:
                return DeliveryReceipt("failed", error=f"message {msg.message_id} not found")
            payload = public_message(stored)
        else:
            payload = {
                "id": msg.message_id,
                "direction": "out",
                "body": msg.body,
                "attachments": msg.attachments,
                "client_id": msg.client_id,
                "created_at": msg.created_at,
            }
        payload["delivery"] = "sent"
        await self.sio.emit("message", payload, to=targets, namespace=NAMESPACE)
        return DeliveryReceipt("sent")

    async def on_events(self, events: Sequence[DomainEvent]) -> None:
        """Post-commit relay sink: when a queue's line moves, tell its waiting visitors their
        new position and expected wait."""
        queue_ids = {e.queue_id for e in events if e.type in LINE_MOVES and e.queue_id is not None}
        for queue_id in queue_ids:
            async with self.services.db.transaction() as session:
                infos = await line_wait_infos(session, queue_id, channel=self.kind)
                if not infos:
                    continue
                rows = (
                    await session.execute(
                        select(m.Conversation.id, m.ContactIdentity.value)
                        .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
                        .where(m.Conversation.id.in_(list(infos)), m.ContactIdentity.kind == "widget")
                    )
                ).all()
            for conv_id, identity in rows:
                info = infos[conv_id]
                await self.sio.emit(
                    "position",
                    {
                        "conversation_id": conv_id,
                        "position": info.position,
                        "estimated_wait_seconds": info.estimated_wait_seconds,
                    },
                    to=visitor_room(identity),
                    namespace=NAMESPACE,
                )

    async def replay_locally(self, events: Sequence[DomainEvent]) -> None:
        """``LiveFanout`` hook: operator replies whose events this node missed (a Redis outage)
        go to this node's visitors again; the widget shows each message id once."""
        for event in events:
            data = event.payload
            if event.type != "message.created" or data.get("channel") != self.kind:
                continue
            if data.get("direction") != "out":  # private notes have their own direction
                continue
            targets = await self._rooms(int(data["conversation_id"]))
            if not targets:
                continue
            keys = ("id", "direction", "body", "attachments", "client_id", "created_at")
            payload = {k: data.get(k) for k in keys}
            payload["delivery"] = "sent"
            await self.sio.emit("message", payload, to=targets, namespace=NAMESPACE, ignore_queue=True)

    async def show_typing(self, conversation_id: int, typing: bool) -> None:
        targets = await self._rooms(conversation_id)
        if targets:
            await self.sio.emit(
                "typing", {"who": "operator", "typing": typing}, to=targets, namespace=NAMESPACE
            )


async def closed_notice(session: AsyncSession, conv_id: int) -> dict[str, Any] | None:
    """What the widget shows when the visitor's conversation was closed by the operator (or a
    timeout): the notice, the satisfaction question if the inbox asks one and it is not yet
    answered. ``None`` while it is open or when the visitor closed it themselves."""
    conv = await session.get(m.Conversation, conv_id)
    if (
        conv is None
        or conv.status != m.ConversationStatus.CLOSED
        or conv.closed_by in CLOSED_BY_OTHERS_UNSEEN
    ):
        return None
    inbox = await session.get(m.Inbox, conv.inbox_id)
    csat = csat_of(inbox.config or {}) if inbox else None
    rated = "csat" in (conv.variables or {})
    return {"conversation_id": conv.id, "csat": None if rated else csat}


async def tell_closed(channel: WidgetChannel, events: Sequence[DomainEvent]) -> None:
    """Post-commit relay sink: a widget conversation closed → the visitor's tabs show it, so
    writing again visibly starts a new conversation instead of silently queueing one."""
    for event in events:
        if (
            event.type != "conversation.closed"
            or event.payload.get("channel") != WidgetChannel.kind
            or event.conversation_id is None
        ):
            continue
        async with channel.services.db.transaction() as session:
            notice = await closed_notice(session, event.conversation_id)
        targets = await channel._rooms(event.conversation_id)
        if notice is not None and targets:
            await channel.sio.emit("closed", notice, to=targets, namespace=NAMESPACE)


def setup(services: Services, sio: socketio.AsyncServer) -> ChannelSetup:
    """The widget's entry point (``omni.channels.SetupChannel``): the ``/widget`` namespace,
    the adapter, the visitor file routes and the sinks that push positions and closed notices."""
    from channels.widget.http import CONTROLLERS  # imports this module: load it once we exist

    channel = WidgetChannel(sio, services)
    return ChannelSetup(
        adapter=channel,
        routes=CONTROLLERS,
        post_commit_sinks=[channel.on_events, lambda events: tell_closed(channel, events)],
        namespaces=[WidgetNamespace(services)],
        replay_sinks=[channel.replay_locally],
        sync_namespaces=[NAMESPACE],
    )
