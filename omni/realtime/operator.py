"""``/operator``: the single window's live link (status, offers, conversations, callbacks)."""

from __future__ import annotations

from typing import Any

from socketio.exceptions import ConnectionRefusedError as Refused

from omni.db import models as m
from omni.domain import auth, conversations, presence
from omni.domain.auth import Principal
from omni.domain.errors import NotAuthenticated
from omni.domain.serialize import callback_dict, conversation_dict, message_dict
from omni.realtime import BaseNamespace, _int, _ok, rooms


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
