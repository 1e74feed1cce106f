"""Socket.IO transport: ``/operator`` and ``/supervisor`` namespaces over the domain."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from http.cookies import SimpleCookie
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from omni.db import models as m
from omni.domain import auth, grants
from omni.domain.auth import Principal
from omni.domain.errors import DomainError, NotAuthenticated
from omni.domain.event_types import is_private
from omni.domain.events import DomainEvent, events_after
from omni.domain.masking import mask_payload
from omni.i18n import LANG_COOKIE, error_body, pick_language
from omni.realtime import pii, rooms
from omni.realtime.live import FanoutManager, LiveFanout
from omni.realtime.live import live_fanout as live_fanout
from omni.realtime.membership import follow_queue_members, leave
from omni.realtime.payloads import ResumeIn, decode
from omni.realtime.transport import InlineEmitManager, OmniSocketServer
from omni.services import Services
from omni.settings import Settings
from omni.wire import WIRE_JSON

log = logging.getLogger(__name__)

SESSION_COOKIE = "omni_session"
NAMESPACES = ("/operator", "/supervisor")


def build_server(settings: Settings) -> socketio.AsyncServer:
    manager: socketio.AsyncManager = InlineEmitManager()
    if not settings.embedded:
        # Wrapped: a Redis restart must not cost events (see omni.realtime.live).
        manager = FanoutManager(settings.redis_url, channel=f"{settings.redis_prefix}:socketio")
    # Any origin may open the transport (the widget lives on customer sites); each namespace
    # decides in on_connect: staff namespaces refuse cross-site cookie logins, the widget
    # checks its inbox's allowed origins.
    # Several worker processes share the port: a long-polling session's requests could land on
    # different ones, so WebSocket only (omni.realtime.transport, docs/deployment.md).
    transports = ["websocket"] if settings.workers > 1 else ["polling", "websocket"]
    server: socketio.AsyncServer = OmniSocketServer(
        async_mode="asgi",
        transports=transports,
        workers=settings.workers,
        client_manager=manager,
        cors_allowed_origins="*",
        max_http_buffer_size=settings.socketio_max_message_bytes,
        json=WIRE_JSON,
        logger=False,
        engineio_logger=False,
    )
    return server


def event_rooms(event: DomainEvent, namespace: str = "/supervisor") -> list[str]:
    """The rooms an event goes to in ``namespace``.

    Staff-only content (a private note, a supervisor's whisper: ``event_types.is_private``)
    never goes to a queue room of ``/operator``, where every operator of the queue sits: only
    the handling operator's room there; supervisors get it through their queue rooms of
    ``/supervisor`` as any other event."""
    targets = [rooms.ALL]
    private = namespace == "/operator" and is_private(event.type, event.payload)
    if event.queue_id is not None and not private:
        targets.append(rooms.queue(event.queue_id))
    if event.user_id is not None:
        targets.append(rooms.user(event.user_id))
    if event.conversation_id is not None:
        targets.append(rooms.conversation(event.conversation_id))
    return targets


def socket_sink(sio: socketio.AsyncServer) -> Callable[[Sequence[DomainEvent]], Awaitable[None]]:
    """Relay sink: each event goes once to every socket in any of its rooms (deduplicated).

    A Redis manager delivers to this node's sockets through ``FanoutManager._handle_emit``,
    which moves sockets between queue rooms on ``queue.members_changed`` (on every node); the
    in-process manager has no such hook, so the sink does it here."""
    manager = sio.manager
    local = not isinstance(manager, FanoutManager)

    async def emit_all(events: Sequence[DomainEvent]) -> None:
        for event in events:
            wire = event.to_wire()
            masked = pii.masked_wire(wire)  # once per event, for every masked reader
            for namespace in NAMESPACES:
                leaving = await follow_queue_members(sio, namespace, wire) if local else []
                await pii.emit_event(sio, namespace, wire, masked, event_rooms(event, namespace))
                await leave(sio, namespace, leaving)

    async def sink(events: Sequence[DomainEvent]) -> None:
        if isinstance(manager, FanoutManager):
            async with manager.batched():  # one Redis publish for the whole relay batch
                await emit_all(events)
        else:
            await emit_all(events)

    return sink


def _ok(**data: Any) -> dict[str, Any]:
    return {"ok": True, **data}


def _err(exc: DomainError, lang: str = "en") -> dict[str, Any]:
    """A refusal ack; ``detail`` in the caller's language (``omni.i18n``)."""
    return {"ok": False, **error_body(exc, lang)}


class BaseNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # untyped base class
    roles: tuple[m.Role, ...] = ()

    def __init__(self, namespace: str, services: Services) -> None:
        super().__init__(namespace)
        self.services = services

    async def _authenticate(self, environ: dict[str, Any], auth_data: Any) -> Principal:
        token = auth_data.get("token") if isinstance(auth_data, dict) else None
        cookie_header = environ.get("HTTP_COOKIE", "")
        async with self.services.db.transaction() as session:
            user = None
            if token:
                user = await auth.user_for_api_token(session, str(token))
            elif cookie_header:
                origin = environ.get("HTTP_ORIGIN")
                if origin and origin.rstrip("/") != self.services.settings.public_base_url.rstrip("/"):
                    # A page on another site must not ride the operator's session cookie.
                    raise Refused("cross-site connection refused", {"error": "forbidden"})
                jar: SimpleCookie = SimpleCookie()
                jar.load(cookie_header)
                if SESSION_COOKIE in jar:
                    user = await auth.user_for_session(session, jar[SESSION_COOKIE].value)
            if user is None:
                raise NotAuthenticated("log in first")
            who = Principal.of(user)
            jar_lang: SimpleCookie = SimpleCookie()
            jar_lang.load(cookie_header)
            chosen = jar_lang[LANG_COOKIE].value if LANG_COOKIE in jar_lang else user.language
            lang = pick_language(chosen, environ.get("HTTP_ACCEPT_LANGUAGE", ""))
            who = dataclasses.replace(who, language=lang)
        if who.role not in self.roles:
            raise Refused(f"{self.namespace} is not for {who.role}", {"error": "forbidden"})
        return who

    async def _who(self, sid: str) -> Principal:
        sess = await self.get_session(sid)
        who: Principal = sess["who"]
        return who

    async def _call(self, sid: str, fn: Callable[[Principal], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        try:
            who = await self._who(sid)
            return await fn(who)
        except DomainError as exc:
            sess = await self.get_session(sid)
            return _err(exc, sess["who"].language if "who" in sess else "en")

    async def _reads_masked(self, who: Principal) -> bool:
        """Whether this reader gets phones and e-mails masked (``omni.realtime.pii``)."""
        async with self.services.db.transaction() as session:
            return not await grants.allowed(session, who, grants.PII_VIEW)

    async def _enter_event_rooms(self, sid: str, names: Sequence[str]) -> None:
        """Join event rooms, or their masked twins for a reader without ``PII_VIEW``."""
        masked = bool((await self.get_session(sid)).get("masked"))
        for name in names:
            await self.enter_room(sid, pii.twin(name, masked))

    async def _visible(self, who: Principal) -> tuple[set[int] | None, set[int] | None]:
        async with self.services.db.transaction() as session:
            return await auth.visible_queue_ids(session, who), await auth.visible_user_ids(session, who)

    def _may_replay(self, event: DomainEvent, who: Principal) -> bool:
        private = self.namespace == "/operator" and is_private(event.type, event.payload)
        return not private or event.user_id == who.id

    async def on_resume(self, sid: str, data: Any) -> dict[str, Any]:
        """Everything after the last ``seq`` the client saw, limited to what it may see."""

        async def run(who: Principal) -> dict[str, Any]:
            after = decode(data, ResumeIn).after
            queues, users = await self._visible(who)
            async with self.services.db.transaction() as session:
                events = await events_after(session, after)
            # One scope rule for the socket resume and the REST event feed; what the live
            # fan-out keeps out of /operator queue rooms (private notes) stays out of the replay.
            visible = [
                e.to_wire()
                for e in events
                if auth.event_visible(e, who, queues, users) and self._may_replay(e, who)
            ]
            if (await self.get_session(sid)).get("masked"):
                visible = [mask_payload(w) for w in visible]
            return _ok(events=visible, last_seq=events[-1].id if events else after)

        return await self._call(sid, run)


def register(sio: socketio.AsyncServer, services: Services) -> None:
    from omni.realtime.operator import OperatorNamespace
    from omni.realtime.supervisor import SupervisorNamespace
    from omni.realtime.wallboard import register as register_wallboard

    sio.register_namespace(OperatorNamespace("/operator", services))
    sio.register_namespace(SupervisorNamespace("/supervisor", services))
    register_wallboard(sio, services)  # token-authenticated; gets no domain events (see there)
    services.relay.sinks.append(socket_sink(sio))
    if isinstance(sio.manager, FanoutManager):
        sio.manager.live = LiveFanout(sio, services.db, NAMESPACES, event_rooms)
