"""Socket.IO transport: ``/operator`` and ``/supervisor`` namespaces over the domain."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http.cookies import SimpleCookie
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from omni.db import models as m
from omni.domain import auth, conversations, presence
from omni.domain.auth import Principal
from omni.domain.errors import DomainError, InvalidInput, NotAuthenticated
from omni.domain.events import DomainEvent, events_after
from omni.domain.serialize import callback_dict, conversation_dict, message_dict
from omni.realtime import rooms
from omni.services import Services
from omni.settings import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "omni_session"
NAMESPACES = ("/operator", "/supervisor")


def build_server(settings: Settings) -> socketio.AsyncServer:
    manager = None
    if not settings.embedded:
        manager = socketio.AsyncRedisManager(settings.redis_url, channel=f"{settings.redis_prefix}:socketio")
    # Any origin may open the transport (the widget lives on customer sites); each namespace
    # decides in on_connect: staff namespaces refuse cross-site cookie logins, the widget
    # checks its inbox's allowed origins.
    return socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins="*",
        logger=False,
        engineio_logger=False,
    )


def event_rooms(event: DomainEvent) -> list[str]:
    targets = [rooms.ALL]
    if event.queue_id is not None:
        targets.append(rooms.queue(event.queue_id))
    if event.user_id is not None:
        targets.append(rooms.user(event.user_id))
    if event.conversation_id is not None:
        targets.append(rooms.conversation(event.conversation_id))
    return targets


def socket_sink(sio: socketio.AsyncServer) -> Callable[[Sequence[DomainEvent]], Awaitable[None]]:
    """Relay sink: each event goes once to every socket in any of its rooms (deduplicated)."""

    async def sink(events: Sequence[DomainEvent]) -> None:
        for event in events:
            targets = event_rooms(event)
            wire = event.to_wire()
            for namespace in NAMESPACES:
                await sio.emit("event", wire, to=targets, namespace=namespace)

    return sink


def _ok(**data: Any) -> dict[str, Any]:
    return {"ok": True, **data}


def _err(exc: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": exc.code, "detail": exc.message}
    if exc.field:
        body["field"] = exc.field
    return body


def _int(data: Any, key: str) -> int:
    try:
        return int(data[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"'{key}' must be a number", field=key) from exc


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
        if who.role not in self.roles:
            raise Refused(f"{self.namespace} is not for {who.role}", {"error": "forbidden"})
        return who

    async def _who(self, sid: str) -> Principal:
        sess = await self.get_session(sid)
        who: Principal = sess["who"]
        return who

    async def _call(self, sid: str, fn: Callable[[Principal], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        try:
            return await fn(await self._who(sid))
        except DomainError as exc:
            return _err(exc)

    async def _visible(self, who: Principal) -> tuple[set[int] | None, set[int] | None]:
        async with self.services.db.transaction() as session:
            return await auth.visible_queue_ids(session, who), await auth.visible_user_ids(session, who)

    async def on_resume(self, sid: str, data: Any) -> dict[str, Any]:
        """Everything after the last ``seq`` the client saw, limited to what it may see."""

        async def run(who: Principal) -> dict[str, Any]:
            after = _int(data, "after")
            queues, users = await self._visible(who)
            async with self.services.db.transaction() as session:
                events = await events_after(session, after)
            visible = [
                e.to_wire()
                for e in events
                if queues is None
                or (e.queue_id is not None and e.queue_id in queues)
                or (
                    e.user_id is not None
                    and (e.user_id == who.id or (users is not None and e.user_id in users))
                )
            ]
            return _ok(events=visible, last_seq=events[-1].id if events else after)

        return await self._call(sid, run)


class OperatorNamespace(BaseNamespace):
    roles = (m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        try:
            who = await self._authenticate(environ, auth_data)
        except NotAuthenticated as exc:
            raise Refused(exc.message, {"error": exc.code}) from exc
        await self.save_session(sid, {"who": who})
        queues, _ = await self._visible(who)
        await self.enter_room(sid, rooms.user(who.id))
        for qid in queues or ():
            await self.enter_room(sid, rooms.queue(qid))
        if who.role == m.Role.OPERATOR:
            async with self.services.db.transaction() as session:
                await presence.do_connect(session, who.id, sid, self.services.node_id)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        sess = await self.get_session(sid)
        who: Principal | None = sess.get("who")
        if who is not None and who.role == m.Role.OPERATOR:
            async with self.services.db.transaction() as session:
                await presence.do_disconnect(
                    session, who.id, sid, self.services.settings.routing.offline_grace_seconds
                )

    async def on_snapshot(self, sid: str, _data: Any = None) -> dict[str, Any]:
        """Everything the single window needs after a (re)connect."""

        async def run(who: Principal) -> dict[str, Any]:
            from sqlalchemy import select

            async with self.services.db.transaction() as session:
                p = await presence.get_presence(session, who.id)
                status = await session.get(m.OperatorStatus, p.status_id)
                assert status is not None
                mine = (
                    await session.scalars(
                        select(m.Conversation).where(
                            m.Conversation.assigned_user_id == who.id,
                            m.Conversation.status.in_(m.OPEN_STATUSES),
                        )
                    )
                ).all()
                offers = (
                    await session.scalars(
                        select(m.Offer).where(m.Offer.user_id == who.id, m.Offer.state == "pending")
                    )
                ).all()
                queues = await auth.visible_queue_ids(session, who)
                waiting_stmt = select(m.Conversation).where(
                    m.Conversation.status == m.ConversationStatus.QUEUED
                )
                if queues is not None:
                    waiting_stmt = waiting_stmt.where(m.Conversation.queue_id.in_(queues))
                waiting = (
                    await session.scalars(
                        waiting_stmt.order_by(
                            m.Conversation.priority.desc(), m.Conversation.first_enqueued_at
                        ).limit(200)
                    )
                ).all()
                callbacks = await conversations.list_callbacks(session, who)
                last_seq = await session.scalar(select(m.Event.id).order_by(m.Event.id.desc()).limit(1))
                return _ok(
                    presence=presence.presence_dict(p, status),
                    conversations=[conversation_dict(c) for c in mine],
                    offers=[
                        {
                            "id": o.id,
                            "conversation_id": o.conversation_id,
                            "expires_at": o.expires_at.isoformat(),
                        }
                        for o in offers
                    ],
                    waiting=[conversation_dict(c) for c in waiting],
                    callbacks=[callback_dict(c) for c in callbacks],
                    last_seq=last_seq or 0,
                )

        return await self._call(sid, run)

    async def on_set_status(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                p = await presence.check_set_status(
                    session,
                    who.id,
                    who.role,
                    who.id,
                    str(data.get("status", "")),
                    str(data.get("reason", "")),
                )
                status = await session.get(m.OperatorStatus, p.status_id)
                assert status is not None
                return _ok(presence=presence.presence_dict(p, status))

        return await self._call(sid, run)

    async def on_accept(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_accept_offer(session, who, _int(data, "offer_id"))
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_decline(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_decline_offer(session, who, _int(data, "offer_id"))
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_send(self, sid: str, data: Any) -> dict[str, Any]:
        """Acked only after the message is stored, so a resend with the same client id is safe."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                msg = await conversations.check_send_message(
                    session,
                    who,
                    _int(data, "conversation_id"),
                    str(data.get("body", "")),
                    client_id=(str(data["client_id"])[:64] if data.get("client_id") else None),
                    private=bool(data.get("private", False)),
                )
                return _ok(message=message_dict(msg))

        return await self._call(sid, run)

    async def on_end(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_end(session, who, _int(data, "conversation_id"))
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_close(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_close(
                    session, who, _int(data, "conversation_id"), _int(data, "result_code_id")
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_hold(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_hold(
                    session, who, _int(data, "conversation_id"), bool(data.get("hold", True))
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_typing(self, sid: str, data: Any) -> dict[str, Any]:
        """The operator is typing: forwarded to the customer's channel (the widget shows it)."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await auth.access_conversation(session, who, _int(data, "conversation_id"))
            await self.services.adapters.typing(conv.channel, conv.id, bool(data.get("typing", True)))
            return _ok()

        return await self._call(sid, run)

    async def on_claim_callback(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                cb = await conversations.check_claim_callback(session, who, _int(data, "callback_id"))
                return _ok(callback=callback_dict(cb))

        return await self._call(sid, run)


class SupervisorNamespace(BaseNamespace):
    roles = (m.Role.SUPERVISOR, m.Role.ADMIN)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        try:
            who = await self._authenticate(environ, auth_data)
        except NotAuthenticated as exc:
            raise Refused(exc.message, {"error": exc.code}) from exc
        await self.save_session(sid, {"who": who})
        queues, users = await self._visible(who)
        if queues is None:
            await self.enter_room(sid, rooms.ALL)
            return
        for qid in queues:
            await self.enter_room(sid, rooms.queue(qid))
        for uid in users or ():
            await self.enter_room(sid, rooms.user(uid))

    async def on_set_operator_status(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            _, users = await self._visible(who)
            async with self.services.db.transaction() as session:
                p = await presence.check_set_status(
                    session,
                    who.id,
                    who.role,
                    _int(data, "user_id"),
                    str(data.get("status", "")),
                    str(data.get("reason", "")),
                    supervised=users,
                )
                status = await session.get(m.OperatorStatus, p.status_id)
                assert status is not None
                return _ok(presence=presence.presence_dict(p, status))

        return await self._call(sid, run)


def register(sio: socketio.AsyncServer, services: Services) -> None:
    sio.register_namespace(OperatorNamespace("/operator", services))
    sio.register_namespace(SupervisorNamespace("/supervisor", services))
    services.relay.sinks.append(socket_sink(sio))
