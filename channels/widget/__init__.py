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
import contextlib
import hashlib
import hmac
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
import socketio
from socketio.exceptions import ConnectionRefusedError as Refused
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.widget.payloads import (
    CallMeIn,
    ConnectAuth,
    LeaveIn,
    MessageIn,
    RateIn,
    ResumeIn,
    SeenIn,
    SetAttributesIn,
    SetUserIn,
    TranscriptIn,
    TypingIn,
)
from omni import crypto
from omni.aio import wait_set
from omni.channels import ChannelSetup, DeliveryReceipt, OutboundMessage
from omni.db import models as m
from omni.domain import (
    automated,
    conversations,
    customer_view,
    files,
    identities,
    inboxes,
    place,
    transcript,
    visitor_profile,
)
from omni.domain.conversations import MAX_BODY, Admission, InboundMessage
from omni.domain.errors import DomainError, InvalidInput, NotFound, TooManyRequests
from omni.domain.events import DomainEvent
from omni.domain.routing import line_wait_infos, wait_info
from omni.domain.serialize import message_dict
from omni.i18n import _l, gettext, pick_language
from omni.ratelimit import RateLimiter, address_key
from omni.realtime import rooms
from omni.realtime.live import FanoutManager
from omni.services import Services
from omni.wire import decode

log = logging.getLogger(__name__)

NAMESPACE = "/widget"
VISITOR_PURPOSE = "omni.widget.visitor"
HISTORY_LIMIT = 200
PROFILE_CALLS_PER_MINUTE = 30
"""``set_user``/``set_attributes`` per visitor: a page calls them on load, not in a loop."""
ROOM_CACHE_SECONDS = 30.0
ROOM_CACHE_SIZE = 20_000
WAITING = (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED)
BUSY = _l("the server is busy; your message will be sent again")
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
POSITION_PUSH_SECONDS = 1.0
"""A queue's waiting visitors hear their position at most this often. A push tells every one
of them (up to ``line_wait_infos``' 500): with 1,000 waiting and operators taking them as fast
as they could, pushes back to back took a fifth of the node and slowed the very assignments
that moved the line (bench/README.md, "line15"). The first move after a quiet second is pushed
at once; moves within the second are told together at its end."""


class PrechatMissing(Exception):
    """A required pre-chat field the visitor has not given (the message is refused, unwritten)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


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


def prechat_values(sent: MessageIn) -> dict[str, str]:
    """The pre-chat fields of a message (absent = empty)."""
    return {
        "name": sent.name or "",
        "email": sent.email or "",
        "phone": sent.phone or "",
        "subject": sent.subject or "",
    }


def check_message(sent: MessageIn, lang: str = "en") -> dict[str, Any] | None:
    """Refusals decided by the message alone, before any rate limit or database work."""
    for name, value in (("body", sent.body), *prechat_values(sent).items()):
        if "\x00" in value:
            return refusal(
                "bad_characters",
                _l("the {name} contains a character that can't be sent"),
                lang=lang,
                params={"name": name},
                field=name,
            )
    if len(sent.body) > MAX_BODY:
        return refusal(
            "too_long",
            _l("message is longer than {max_body} characters"),
            lang=lang,
            params={"max_body": MAX_BODY},
            field="body",
            max=MAX_BODY,
        )
    return None


def invalid(exc: DomainError, lang: str, whole: str = "request") -> dict[str, Any]:
    """The ack for a payload of the wrong shape: never accepted as sent, so ``retry`` is false;
    ``field`` names what is wrong (``whole`` when the payload is not even an object: an event
    with one field names that one, ``resume``'s ``after``)."""
    return refusal("invalid", exc, lang=lang, field=exc.field or whole)


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
        self.profile_limiter = RateLimiter(PROFILE_CALLS_PER_MINUTE)
        widget = services.settings.widget
        self.new_per_address = services.limits.limiter(
            "widget-new-address", widget.new_conversations_per_address
        )
        self.new_per_inbox = services.limits.limiter("widget-new-inbox", widget.new_conversations_per_inbox)
        self.transcripts = services.limits.limiter("widget-transcript", widget.transcripts_per_minute)
        # Visitors share the connection pool with the outbox relay and the router; a flood of
        # visitors must queue here, not starve delivery of what is already stored.
        self.gate = asyncio.Semaphore(services.settings.widget.max_concurrent_db)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        data = auth if isinstance(auth, dict) else {}
        lang = pick_language(str(data.get("lang") or ""), str(environ.get("HTTP_ACCEPT_LANGUAGE") or ""))
        try:
            given = decode(auth, ConnectAuth)
        except InvalidInput as exc:
            raise Refused(exc.localized(lang)) from exc
        secret_key = self.services.settings.effective_secret_key()
        async with self.gate, self.services.db.transaction() as session:
            inbox = await inboxes.public_inbox(session, given.inbox, WidgetChannel.kind)
            if inbox is None:
                raise Refused(gettext(lang, "unknown or disabled widget"))
            allowed = inbox.config.get("allowed_origins") or []
            origin = str(environ.get("HTTP_ORIGIN") or "").rstrip("/")
            if allowed and origin not in {str(o).rstrip("/") for o in allowed}:
                raise Refused(gettext(lang, _l("this widget is not enabled on this site")))
            identity: str
            if given.user_id:
                user_id = str(given.user_id)[:128]
                secret = crypto.decrypt(secret_key, inbox.secret_encrypted) if inbox.secret_encrypted else ""
                if not secret or not hmac.compare_digest(identity_hash(secret, user_id), given.user_hash):
                    raise Refused(gettext(lang, _l("the user_hash does not match this user_id")))
                identity = f"user:{inbox.id}:{user_id}"
            else:
                visitor = crypto.unsign_value(secret_key, VISITOR_PURPOSE, given.visitor)
                identity = visitor or f"v:{inbox.id}:{uuid.uuid4().hex}"
            history, conv_id = await self._history(session, inbox.id, identity)
            online = await inboxes.chat_online(session, inbox)
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

    async def _conversation_id(self, session: AsyncSession, inbox_id: int, identity: str) -> int | None:
        """The visitor's latest conversation in this inbox."""
        return await identities.latest_conversation_id(session, WidgetChannel.kind, identity, inbox_id)

    async def _history(
        self, session: AsyncSession, inbox_id: int, identity: str
    ) -> tuple[list[dict[str, Any]], int | None]:
        conv_id = await self._conversation_id(session, inbox_id, identity)
        if conv_id is None:
            return [], None
        rows = await customer_view.customer_history(session, conv_id, HISTORY_LIMIT)
        return [public_message(x) for x in rows], conv_id

    async def on_message(self, sid: str, data: Any) -> dict[str, Any]:
        """Acked only after the message is stored; the same ``client_id`` again is a no-op."""
        sess = await self.get_session(sid)
        lang = str(sess.get("lang", "en"))
        try:
            sent = decode(data, MessageIn)
        except InvalidInput as exc:
            return invalid(exc, lang)
        refused = check_message(sent, lang)
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
            client_id = sent.client_id[:64]
            if not client_id:
                raise InvalidInput("client_id is required", field="client_id")
            # A quick-reply press: the label is the text, the id tells the bot which one.
            pressed = [automated.button_reply(sent.button)] if sent.button else []
            async with self.gate, self.services.db.transaction() as session:
                claimed = await files.access_uploads(session, sess["identity"], list(sent.attachments or []))
                result = await conversations.do_ingest_inbound(
                    session,
                    InboundMessage(
                        inbox_id=sess["inbox_id"],
                        identity_kind="widget",
                        identity_value=sess["identity"],
                        body=sent.body,
                        client_id=client_id,
                        contact_name=(sent.name or "")[:256],
                        contact_email=(sent.email[:254] if sent.email else None),
                        contact_phone=(sent.phone or None),
                        subject=sent.subject or "",
                        attachments=[files.descriptor(f) for f in claimed] + pressed,
                        language=(sent.lang or "")[:16],
                        reopen_closed=False,  # the widget told the customer it was closed
                        # The pre-chat check, on what the ingest's look-up read (nothing more).
                        admit=lambda s, found: self._check_prechat(s, sess, sent, found),
                    ),
                )
                if result.created:
                    # Raises (rolling the new conversation back) past the limits.
                    await self._admit_new_conversation(sid, sess["inbox_id"])
                if not result.duplicate:
                    files.do_link_uploads(claimed, result.conversation.id)
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
        except PrechatMissing as exc:  # nothing was written
            return refusal(
                "prechat_required",
                _l("{field} is required before the chat starts"),
                lang=lang,
                params={"field": exc.field},
                field=exc.field,
            )
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

    async def _check_prechat(
        self, session: AsyncSession, sess: dict[str, Any], sent: MessageIn, found: Admission
    ) -> None:
        """Raises ``PrechatMissing`` with the first required pre-chat field neither in the
        message nor already known of the visitor: a widget that sent before its form was filled
        must not create a nameless contact whose conversation no one can route. Runs inside the
        ingest (``InboundMessage.admit``) on the inbox, contact and conversation its look-up
        read; reads them itself only where there was no such look-up (SQLite)."""
        config = found.inbox.config or {}
        required = [
            str(f.get("name"))
            for f in (config.get("prechat") or [])
            if isinstance(f, dict) and f.get("required") and f.get("name") in PRECHAT_FIELDS
        ]
        given = prechat_values(sent)
        missing = [name for name in required if not given[name].strip()]
        if not missing:
            return
        contact, has_conversation = found.contact, found.has_conversation
        if not found.looked_up:
            contact = await identities.identity_contact(session, WidgetChannel.kind, sess["identity"])
            conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
            has_conversation = conv_id is not None
        if contact is None:
            raise PrechatMissing(missing[0])
        known = {
            "name": bool(contact.name),
            "email": bool(contact.email),
            "phone": bool(contact.phone),
            "subject": has_conversation,
        }
        absent = next((name for name in missing if not known[name]), None)
        if absent is not None:
            raise PrechatMissing(absent)

    async def on_rate(self, sid: str, data: Any) -> dict[str, Any]:
        """The visitor's answer to the satisfaction question shown with the closed notice."""
        sess = await self.get_session(sid)
        lang = str(sess.get("lang", "en"))
        try:
            rating = decode(data, RateIn).rating
        except InvalidInput as exc:
            return invalid(exc, lang)
        try:
            async with self.gate, self.services.db.transaction() as session:
                conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
                csat = csat_of(await inboxes.inbox_config(session, sess["inbox_id"]))
                if conv_id is None or csat is None:
                    raise NotFound("there is no conversation to rate")
                first = await conversations.do_record_rating(
                    session, conv_id, rating, scale=len(csat["labels"])
                )
            return {"ok": True, "recorded": first}
        except DomainError as exc:
            return refusal("invalid", exc, lang=lang, field=exc.field)

    async def on_call_me(self, sid: str, data: Any) -> dict[str, Any]:
        """The visitor waiting in line asks to be called back: the same conversation keeps its
        place as a callback (``omni.domain.place``); the operator who gets it in its turn
        accepts and the voice adapter dials ``phone``."""
        sess = await self.get_session(sid)
        lang = str(sess.get("lang", "en"))
        try:
            phone = decode(data, CallMeIn).phone
        except InvalidInput as exc:
            return invalid(exc, lang)
        try:
            async with self.gate, self.services.db.transaction() as session:
                conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
                if conv_id is None:
                    raise NotFound("there is no conversation to call back")
                conv = await place.check_request_callback(session, conv_id, number=phone, via="widget")
            return {"ok": True, "status": conv.status}
        except DomainError as exc:
            return refusal("invalid", exc, lang=lang, field=exc.field)

    async def on_transcript(self, sid: str, data: Any) -> dict[str, Any]:
        """The visitor asks for the transcript: their's latest conversation mailed to ``email`` or
        the address on their card; a refusal with ``field = "email"`` asks for one. Rate
        limited per visitor (``transcripts_per_minute``, shared with the PDF download)."""
        sess = await self.get_session(sid)
        lang = str(sess.get("lang", "en"))
        try:
            email = decode(data, TranscriptIn).email
        except InvalidInput as exc:
            return invalid(exc, lang)
        if not await self.transcripts.allow(sess["identity"]):
            return refusal("rate_limited", _l("too many transcript requests, wait a minute"), lang=lang)
        try:
            async with self.gate, self.services.db.transaction() as session:
                to = await transcript.visitor_request(
                    session,
                    self.services.settings.smtp,
                    kind=WidgetChannel.kind,
                    identity=sess["identity"],
                    inbox_id=sess["inbox_id"],
                    email=email,
                    lang=lang,
                )
            return {"ok": True, "to": to}
        except DomainError as exc:
            return refusal("invalid", exc, lang=lang, field=exc.field)

    async def on_set_user(self, sid: str, data: Any) -> dict[str, Any]:
        """``Omni.setUser``: the site's name/e-mail/phone of its visitor, onto the visitor's own
        contact only (the identity of this connection); refused whole on any bad field."""
        sess = await self.get_session(sid)
        lang = str(sess.get("lang", "en"))
        try:
            given = decode(data, SetUserIn)
        except InvalidInput as exc:
            return invalid(exc, lang)
        user = {k: v for k, v in msgspec.structs.asdict(given).items() if v is not msgspec.UNSET}
        return await self._profile(
            sid,
            sess,
            lambda s: visitor_profile.do_set_visitor_user(s, WidgetChannel.kind, sess["identity"], user),
        )

    async def on_set_attributes(self, sid: str, data: Any) -> dict[str, Any]:
        """``Omni.setCustomAttributes``: merged into the contact's card fields (bounded)."""
        sess = await self.get_session(sid)
        lang = str(sess.get("lang", "en"))
        try:
            given = decode(data, SetAttributesIn)
        except InvalidInput as exc:
            return invalid(exc, lang)
        return await self._profile(
            sid,
            sess,
            lambda s: visitor_profile.do_set_visitor_attributes(
                s, WidgetChannel.kind, sess["identity"], given.attributes
            ),
        )

    async def _profile(
        self, sid: str, sess: dict[str, Any], action: Callable[[AsyncSession], Awaitable[m.Contact]]
    ) -> dict[str, Any]:
        lang = str(sess.get("lang", "en"))
        if not self.profile_limiter.allow(sess["identity"]):
            wait = math.ceil(self.profile_limiter.retry_after(sess["identity"]))
            return refusal(
                "rate_limited",
                _l("too many messages, wait a minute"),
                retry=True,
                lang=lang,
                retry_after=wait,
            )
        for attempt in (1, 2):
            try:
                async with self.gate, self.services.db.transaction() as session:
                    await action(session)
                return {"ok": True}
            except DomainError as exc:
                log.info("widget %s: site data refused: %s", sess["identity"], exc)
                return refusal("invalid", exc, lang=lang, field=exc.field)
            except IntegrityError:
                # Two calls (or tabs) created the visitor's contact at once: it exists now.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

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

    async def on_typing(self, sid: str, data: Any = None) -> dict[str, Any] | None:
        """Relayed to the operator handling the conversation (and supervisors of its queue).
        A hint the widget does not wait for: only a malformed one is answered."""
        sess = await self.get_session(sid)
        try:
            typing = decode(data, TypingIn).typing
        except InvalidInput as exc:
            return invalid(exc, str(sess.get("lang", "en")))
        if self.gate.locked():
            return None  # a hint only: drop it rather than queue behind messages
        async with self.gate, self.services.db.transaction() as session:
            conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
            conv = await customer_view.channel_conversation(session, conv_id) if conv_id is not None else None
        if conv is None:
            return None
        payload = {"conversation_id": conv.id, "who": "customer", "typing": typing}
        if conv.assigned_user_id is not None:
            await self.server.emit(
                "typing", payload, to=rooms.user(conv.assigned_user_id), namespace="/operator"
            )
        if conv.queue_id is not None:
            await self.server.emit("typing", payload, to=rooms.queue(conv.queue_id), namespace="/supervisor")
        return None

    async def on_seen(self, sid: str, data: Any) -> dict[str, Any]:
        """The widget showed (``read``) or received (``delivered``) an operator message."""
        sess = await self.get_session(sid)
        try:
            seen = decode(data, SeenIn)
        except InvalidInput as exc:
            return invalid(exc, str(sess.get("lang", "en")))
        try:
            async with self.gate, self.services.db.transaction() as session:
                conv_id = await self._conversation_id(session, sess["inbox_id"], sess["identity"])
                await customer_view.check_customer_seen(session, conv_id, seen.message_id, seen.state)
            return {"ok": True}
        except DomainError as exc:
            return refusal("invalid", exc, lang=str(sess.get("lang", "en")), field=exc.field)

    async def on_resume(self, sid: str, data: Any) -> dict[str, Any]:
        """The visitor's messages (any of their conversations in this inbox) with an id above
        ``after``: what the widget asks for on ``sync`` when the live path may have lost some."""
        sess = await self.get_session(sid)
        try:
            after = decode(data, ResumeIn).after
        except InvalidInput as exc:
            return invalid(exc, str(sess.get("lang", "en")), whole="after")
        async with self.gate, self.services.db.transaction() as session:
            rows = await customer_view.customer_messages_after(
                session, WidgetChannel.kind, sess["identity"], sess["inbox_id"], after, HISTORY_LIMIT + 1
            )
        more = len(rows) > HISTORY_LIMIT
        return {"ok": True, "messages": [public_message(x) for x in rows[:HISTORY_LIMIT]], "more": more}

    async def on_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The visitor closed the chat: abandoned if still waiting, wrap-up if being served."""
        sess = await self.get_session(sid)
        try:
            decode(data, LeaveIn)
        except InvalidInput as exc:
            return invalid(exc, str(sess.get("lang", "en")))
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
        self._moved_queues: set[int] = set()
        self._pushing: asyncio.Task[None] | None = None
        self._pushed_at: dict[int, float] = {}
        self._moved = asyncio.Event()
        self.push_interval = POSITION_PUSH_SECONDS
        self.clock: Callable[[], float] = time.monotonic  # a test's own clock paces the pushes

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        pushing, self._pushing = self._pushing, None
        if pushing is not None and not pushing.done():
            pushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pushing

    async def _rooms(self, conversation_id: int) -> list[str]:
        """The visitor rooms of a conversation's contact, cached briefly: every reply and typing
        hint needs them, and a contact's widget identities rarely change."""
        now = time.monotonic()
        cached = self._room_cache.get(conversation_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.services.db.transaction() as session:
            found = await identities.conversation_identities(session, conversation_id, self.kind)
        targets = [visitor_room(i) for i in found]
        self._remember(now, {conversation_id: targets})
        return targets

    def _remember(self, now: float, rooms: dict[int, list[str]]) -> None:
        """Cache conversations' rooms for ``ROOM_CACHE_SECONDS``; a full cache starts over."""
        if len(self._room_cache) + len(rooms) > ROOM_CACHE_SIZE:
            self._room_cache.clear()
        expires = now + ROOM_CACHE_SECONDS
        for conv_id, targets in rooms.items():
            self._room_cache[conv_id] = (expires, targets)

    async def prefetch(self, conversation_ids: Sequence[int]) -> None:
        """``SupportsPrefetch``: the rooms of a relay batch's conversations not cached yet, in
        one query, so that ``send`` finds them (``_rooms``)."""
        now = time.monotonic()
        missing = [i for i in conversation_ids if (hit := self._room_cache.get(i)) is None or hit[0] <= now]
        if not missing:
            return
        async with self.services.db.transaction() as session:
            rows = await identities.conversations_identities(session, missing, self.kind)
        found: dict[int, list[str]] = {i: [] for i in missing}
        for conv_id, identity in rows:
            found[conv_id].append(visitor_room(identity))
        self._remember(now, found)

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        targets = await self._rooms(msg.conversation_id)
        if not targets:
            return DeliveryReceipt("failed", error="no widget visitor for this conversation")
        if msg.created_at is None:  # an older caller: read what the visitor may see
            async with self.services.db.transaction() as session:
                stored = await customer_view.customer_message(session, msg.message_id)
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
        manager = self.sio.manager
        # A node whose live fan-out replayed this event from the outbox (``replay_locally``)
        # drops this push when it comes late through Redis: its visitors have the message.
        live = isinstance(manager, FanoutManager)
        with manager.delivering(msg.event_seq) if live else contextlib.nullcontext():
            await self.sio.emit("message", payload, to=targets, namespace=NAMESPACE)
        return DeliveryReceipt("sent")

    async def on_events(self, events: Sequence[DomainEvent]) -> None:
        """Post-commit relay sink: when a queue's line moves, tell its waiting visitors their
        new position and expected wait.

        Coalesced: a push reads the whole line and tells every waiting visitor, so line moves
        that arrive while one is under way need one more push after it, not one each (a burst
        of N assignments with N visitors waiting was N² ``position`` emits, which held up the
        post-commit sinks behind it: replies to visitors, closed notices). And paced: at most
        one push per queue every ``push_interval`` seconds (``POSITION_PUSH_SECONDS``)."""
        queue_ids = {e.queue_id for e in events if e.type in LINE_MOVES and e.queue_id is not None}
        if not queue_ids:
            return
        self._moved_queues |= queue_ids
        self._moved.set()
        if self._pushing is None or self._pushing.done():
            self._pushing = asyncio.create_task(self._push_positions(), name="widget-positions")

    async def _push_positions(self) -> None:
        while self._moved_queues:
            self._moved.clear()
            now = self.clock()
            due = {q: self._pushed_at.get(q, -math.inf) + self.push_interval for q in self._moved_queues}
            ready = sorted(q for q, at in due.items() if at <= now)
            if not ready:
                # Until the earliest is due; a move in another queue wakes it early to look
                # again (that queue may be due at once).
                await wait_set(self._moved, min(due.values()) - now)
                continue
            for queue_id in ready:
                self._moved_queues.discard(queue_id)
                self._pushed_at[queue_id] = self.clock()
                try:
                    await self._push_line(queue_id)
                except Exception:
                    log.exception("widget positions of queue %s not pushed", queue_id)

    async def _push_line(self, queue_id: int) -> None:
        async with self.services.db.transaction() as session:
            infos = await line_wait_infos(session, queue_id, channel=self.kind)
            if not infos:
                return
            rows = await identities.conversations_identities(session, list(infos), self.kind)
        manager = self.sio.manager
        batch = manager.batched() if isinstance(manager, FanoutManager) else contextlib.nullcontext()
        async with batch:  # one Redis message for the whole line, not one per visitor
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
    conv = await customer_view.channel_conversation(session, conv_id)
    if (
        conv is None
        or conv.status != m.ConversationStatus.CLOSED
        or conv.closed_by in CLOSED_BY_OTHERS_UNSEEN
    ):
        return None
    csat = csat_of(await inboxes.inbox_config(session, conv.inbox_id))
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
