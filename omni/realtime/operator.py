"""``/operator``: the single window's live link (status, offers, conversations, callbacks)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from socketio.exceptions import ConnectionRefusedError as Refused

from omni.channels import ATTENDED_NEEDS_OPERATOR, CallControl, ChannelAuthFailed, ChannelNotReady
from omni.db import models as m
from omni.domain import auth, conversations, presence, workspace
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, InvalidInput, NotAuthenticated, PermissionDenied
from omni.domain.serialize import callback_dict, conversation_dict, message_dict
from omni.i18n import Label
from omni.realtime import BaseNamespace, _int, _ok, rooms

T = TypeVar("T")


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
        """Everything the single window needs after a (re)connect (``workspace.snapshot``)."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                return _ok(**await workspace.snapshot(session, who))

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

    # --- the single window's panels and actions (``omni.domain.workspace``) --------------

    async def on_open(self, sid: str, data: Any) -> dict[str, Any]:
        """One conversation: messages, customer card, script, result codes, transfer targets."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                return _ok(**await workspace.conversation_view(session, who, _int(data, "conversation_id")))

        return await self._call(sid, run)

    async def on_history(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                return _ok(**await workspace.contact_history(session, who, _int(data, "conversation_id")))

        return await self._call(sid, run)

    async def on_card_update(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            values = _dict(data).get("values")
            if not isinstance(values, dict):
                raise InvalidInput("'values' must be an object of field → value", field="values")
            async with self.services.db.transaction() as session:
                card = await workspace.update_card(session, who, _int(data, "conversation_id"), values)
                return _ok(card=card)

        return await self._call(sid, run)

    async def on_canned(self, sid: str, data: Any = None) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            conv_id = _int(data, "conversation_id") if _dict(data).get("conversation_id") else None
            async with self.services.db.transaction() as session:
                return _ok(replies=await workspace.canned_replies(session, who, conv_id))

        return await self._call(sid, run)

    async def on_canned_save(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            body = _dict(data)
            async with self.services.db.transaction() as session:
                reply = await workspace.save_personal_canned(
                    session,
                    who,
                    shortcut=str(body.get("shortcut", "")),
                    title=str(body.get("title", "")),
                    body=str(body.get("body", "")),
                    reply_id=_int(body, "id") if body.get("id") else None,
                )
                return _ok(reply=reply)

        return await self._call(sid, run)

    async def on_canned_delete(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                await workspace.delete_personal_canned(session, who, _int(data, "id"))
                return _ok()

        return await self._call(sid, run)

    async def on_blacklist(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            body = _dict(data)
            async with self.services.db.transaction() as session:
                contact = await workspace.set_blacklisted(
                    session,
                    who,
                    _int(body, "conversation_id"),
                    blacklisted=bool(body.get("blacklisted", True)),
                    reason=str(body.get("reason", "")),
                )
                return _ok(contact_id=contact.id, blacklisted=contact.blacklisted)

        return await self._call(sid, run)

    async def on_take(self, sid: str, data: Any) -> dict[str, Any]:
        """Take a waiting conversation by hand (queues with manual pick)."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await workspace.check_take(session, who, _int(data, "conversation_id"))
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_transfer(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            body = _dict(data)
            async with self.services.db.transaction() as session:
                conv = await conversations.check_transfer(
                    session,
                    who,
                    _int(body, "conversation_id"),
                    to_user_id=_int(body, "to_user_id") if body.get("to_user_id") else None,
                    to_queue_id=_int(body, "to_queue_id") if body.get("to_queue_id") else None,
                    note=str(body.get("note", "")),
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_hand_to_bot(self, sid: str, data: Any) -> dict[str, Any]:
        """``{conversation_id, scenario}``: the conversation goes to a published scenario."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await workspace.check_hand_to_bot(
                    session, who, _int(data, "conversation_id"), str(data.get("scenario", ""))[:64]
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_schedule_callback(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            body = _dict(data)
            async with self.services.db.transaction() as session:
                cb = await conversations.check_schedule_callback(
                    session,
                    who,
                    _int(body, "conversation_id"),
                    due_at=_when(body.get("due_at")),
                    kind=str(body.get("kind", "standard")),
                    note=str(body.get("note", "")),
                )
                return _ok(callback=callback_dict(cb))

        return await self._call(sid, run)

    async def on_finish_callback(self, sid: str, data: Any) -> dict[str, Any]:
        """A taken callback is done, or goes back to the shared list (``done: false``)."""

        async def run(who: Principal) -> dict[str, Any]:
            body = _dict(data)
            async with self.services.db.transaction() as session:
                cb = await conversations.check_finish_callback(
                    session,
                    who,
                    _int(body, "callback_id"),
                    done=bool(body.get("done", True)),
                    note=str(body.get("note", "")),
                )
                return _ok(callback=callback_dict(cb))

        return await self._call(sid, run)

    async def on_queue(self, sid: str, _data: Any = None) -> dict[str, Any]:
        """The waiting line of the caller's queues (refreshed by the window as events arrive)."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                return _ok(waiting=await workspace.waiting_panel(session, who))

        return await self._call(sid, run)

    async def on_callbacks(self, sid: str, _data: Any = None) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                return _ok(callbacks=await workspace.callbacks_panel(session, who))

        return await self._call(sid, run)

    # --- calls (the voice adapter's ``CallControl``) ---------------------------------------

    async def on_call_hold(self, sid: str, data: Any) -> dict[str, Any]:
        """``{conversation_id, hold}``: the core records the hold, then the PBX plays music.

        The PBX acts inside the core's transaction: when it refuses, the hold is rolled back
        and the operator gets the PBX's reason (the same for hang-up and transfers)."""

        async def run(who: Principal) -> dict[str, Any]:
            voice = call_control(self.services)
            on = bool(_dict(data).get("hold", True))
            async with self.services.db.transaction() as session:
                conv = await conversations.check_hold(session, who, _int(data, "conversation_id"), on)
                await _pbx(voice.hold(conv.id, on))
            return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_call_hangup(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            voice = call_control(self.services)
            async with self.services.db.transaction() as session:
                conv = await conversations.check_end(session, who, _int(data, "conversation_id"))
                await _pbx(voice.hangup(conv.id))
            return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_call_transfer(self, sid: str, data: Any) -> dict[str, Any]:
        """``{conversation_id, to_user_id | to_queue_id | to_scenario | to_extension, attended}``.

        ``to_scenario`` (a published scenario's key) sends the caller to the IVR: the core hands
        the conversation to the scenario (``check_hand_to_bot``), then the PBX redirects the
        caller to the IVR context and hangs the operator's leg up. Attended transfers need an
        operator to consult, so they are refused towards a queue or an IVR."""

        async def run(who: Principal) -> dict[str, Any]:
            voice = call_control(self.services)
            body = _dict(data)
            conv_id = _int(body, "conversation_id")
            to_user = _int(body, "to_user_id") if body.get("to_user_id") else None
            to_queue = _int(body, "to_queue_id") if body.get("to_queue_id") else None
            to_scenario = str(body.get("to_scenario") or "")[:64] or None
            to_ext = str(body.get("to_extension") or "")[:32] or None
            attended = bool(body.get("attended", False))
            if sum(x is not None for x in (to_user, to_queue, to_scenario, to_ext)) != 1:
                raise InvalidInput(
                    "transfer needs exactly one of to_user_id, to_queue_id, to_scenario or to_extension",
                    field="to_user_id",
                )
            if attended and to_user is None:
                raise InvalidInput(ATTENDED_NEEDS_OPERATOR, field="attended")

            def transfer() -> Awaitable[None]:
                return voice.transfer(
                    conv_id,
                    to_extension=to_ext,
                    to_user_id=to_user,
                    to_queue_id=to_queue,
                    to_scenario=to_scenario,
                    attended=attended,
                    by_user_id=who.id,
                )

            moved = False
            async with self.services.db.transaction() as session:
                conv = await auth.access_conversation(session, who, conv_id)
                if conv.assigned_user_id != who.id and who.role == m.Role.OPERATOR:
                    raise PermissionDenied("only the operator handling the call can transfer it")
                if to_scenario is not None or (not attended and to_ext is None):
                    await workspace.check_caller_can_move(session, conv_id)  # before the core moves
                if to_scenario is not None:
                    if conv.status not in (m.ConversationStatus.ACTIVE, m.ConversationStatus.ON_HOLD):
                        raise Conflict(
                            "a {status} call can't be transferred to an IVR",
                            status=Label("status", conv.status),
                        )
                    conv = await workspace.check_hand_to_bot(session, who, conv_id, to_scenario)
                elif not attended and to_ext is None:
                    conv = await conversations.check_transfer(
                        session, who, conv_id, to_user_id=to_user, to_queue_id=to_queue
                    )
                if to_scenario is not None or (not attended and to_ext is None):
                    moved = True  # the core moved it: the PBX must too, or it is rolled back
                    await _pbx(transfer())
            if not moved:
                await _pbx(transfer())  # the core follows the PBX (AttendedTransfer, check_end)
            if to_ext is not None and not attended:
                async with self.services.db.transaction() as session:
                    conv = await conversations.check_end(session, who, conv_id)
            return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_click_to_call(self, sid: str, data: Any) -> dict[str, Any]:
        """``{number, queue_id}``: the operator's phone rings first, then the customer's."""

        async def run(who: Principal) -> dict[str, Any]:
            voice = call_control(self.services)
            queue_id = _int(data, "queue_id")
            async with self.services.db.transaction() as session:
                queues = await auth.visible_queue_ids(session, who)
            if queues is not None and queue_id not in queues:
                raise PermissionDenied("you are not in this queue")
            conv_id = await _pbx(voice.originate(who.id, str(_dict(data).get("number", ""))[:32], queue_id))
            return _ok(conversation_id=conv_id)

        return await self._call(sid, run)


def _dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def _when(value: Any) -> datetime | None:
    """An ISO timestamp with a zone (the browser sends UTC), or none."""
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("'due_at' must be a date and time", field="due_at") from None
    if when.tzinfo is None:
        raise InvalidInput("'due_at' must carry a time zone", field="due_at")
    if when < datetime.now(UTC) - timedelta(minutes=1):
        raise InvalidInput("'due_at' is in the past", field="due_at")
    return when.astimezone(UTC)


def call_control(services: Any) -> CallControl:
    """The voice adapter, or a clear refusal when voice is not enabled on this install."""
    adapter: object = services.adapters.get("voice")
    if not isinstance(adapter, CallControl):
        raise Conflict("calls are not enabled on this server")
    return adapter


async def _pbx(action: Awaitable[T]) -> T:
    """Run a PBX action; a PBX that can't be reached is a conflict the window can show."""
    try:
        return await action
    except (ChannelNotReady, ChannelAuthFailed) as exc:
        raise Conflict("the phone system is not reachable: {exc}", exc=exc) from exc
