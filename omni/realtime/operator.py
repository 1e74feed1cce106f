"""``/operator``: the single window's live link (status, offers, conversations, callbacks)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from socketio.exceptions import ConnectionRefusedError as Refused

from omni.channels import ATTENDED_NEEDS_OPERATOR, CallControl, ChannelAuthFailed, ChannelNotReady
from omni.db import models as m
from omni.domain import auth, conversations, labels, presence, snooze, softphone, workspace
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, InvalidInput, NotAuthenticated, PermissionDenied
from omni.domain.outbound import preview
from omni.domain.serialize import callback_dict, conversation_dict, message_dict
from omni.i18n import Label
from omni.realtime import BaseNamespace, _ok, rooms
from omni.realtime import payloads as p
from omni.realtime.payloads import decode

T = TypeVar("T")


class OperatorNamespace(BaseNamespace):
    roles = (m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        try:
            who = await self._authenticate(environ, auth_data)
        except NotAuthenticated as exc:
            raise Refused(exc.message, {"error": exc.code}) from exc
        await self.save_session(sid, {"who": who, "masked": await self._reads_masked(who)})
        queues, _ = await self._visible(who)
        await self.enter_room(sid, rooms.exports(who.id))
        await self._enter_event_rooms(sid, [rooms.user(who.id), *(rooms.queue(q) for q in queues or ())])
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

    async def on_snapshot(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Everything the single window needs after a (re)connect (``workspace.snapshot``)."""

        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                return _ok(**await workspace.snapshot(session, who))

        return await self._call(sid, run)

    async def on_set_status(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.SetStatusIn)
            async with self.services.db.transaction() as session:
                pr = await presence.check_set_status(
                    session, who.id, who.role, who.id, req.status, req.reason
                )
                status = await session.get(m.OperatorStatus, pr.status_id)
                assert status is not None
                return _ok(presence=presence.presence_dict(pr, status))

        return await self._call(sid, run)

    async def on_accept(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_accept_offer(session, who, decode(data, p.OfferIn).offer_id)
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_decline(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_decline_offer(session, who, decode(data, p.OfferIn).offer_id)
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_send(self, sid: str, data: Any) -> dict[str, Any]:
        """Acked only after the message is stored, so a resend with the same client id is safe."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.SendIn)
            async with self.services.db.transaction() as session:
                msg = await conversations.check_send_message(
                    session,
                    who,
                    req.conversation_id,
                    req.body,
                    client_id=req.client_id or None,
                    private=req.private,
                )
                return _ok(message=message_dict(msg))

        return await self._call(sid, run)

    async def on_end(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await conversations.check_end(
                    session, who, decode(data, p.ConversationIn).conversation_id
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_close(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.CloseIn)
            async with self.services.db.transaction() as session:
                conv = await conversations.check_close(
                    session,
                    who,
                    req.conversation_id,
                    req.result_code_id,
                    callback_at=_picked_time(req.callback_at, "callback_at"),
                    for_me=req.for_me,
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_hold(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.HoldIn)
            async with self.services.db.transaction() as session:
                conv = await conversations.check_hold(session, who, req.conversation_id, req.hold)
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    # --- organise the work (issue 18): labels and snooze (docs/organise.md) ---------------

    async def on_labels(self, sid: str, data: Any = None) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data or {}, p.LabelListIn)
            async with self.services.db.transaction() as session:
                rows = await labels.list_labels(session, who, queue_id=req.queue_id)
                return _ok(labels=[labels.label_dict(x) for x in rows])

        return await self._call(sid, run)

    async def on_set_labels(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.LabelsIn)
            async with self.services.db.transaction() as session:
                conv = await labels.check_set_labels(
                    session, who, req.conversation_id, add=req.add, remove=req.remove
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_snooze(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.SnoozeIn)
            async with self.services.db.transaction() as session:
                conv = await snooze.check_snooze(
                    session,
                    who,
                    req.conversation_id,
                    until=_until(req.until),
                    until_customer=req.until_customer,
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_unsnooze(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.ConversationIn)
            async with self.services.db.transaction() as session:
                conv = await snooze.check_unsnooze(session, who, req.conversation_id)
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_typing(self, sid: str, data: Any) -> dict[str, Any]:
        """The operator is typing: forwarded to the customer's channel (the widget shows it)."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.TypingIn)
            async with self.services.db.transaction() as session:
                conv = await auth.access_conversation(session, who, req.conversation_id)
            await self.services.adapters.typing(conv.channel, conv.id, req.typing)
            return _ok()

        return await self._call(sid, run)

    async def on_claim_callback(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                cb = await conversations.check_claim_callback(
                    session, who, decode(data, p.CallbackIn).callback_id
                )
                return _ok(callback=callback_dict(cb))

        return await self._call(sid, run)

    # --- the single window's panels and actions (``omni.domain.workspace``) --------------

    async def on_open(self, sid: str, data: Any) -> dict[str, Any]:
        """One conversation: messages, customer card, script, result codes, transfer targets."""

        async def run(who: Principal) -> dict[str, Any]:
            conv_id = decode(data, p.ConversationIn).conversation_id
            async with self.services.db.transaction() as session:
                return _ok(**await workspace.conversation_view(session, who, conv_id))

        return await self._call(sid, run)

    async def on_history(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            conv_id = decode(data, p.ConversationIn).conversation_id
            async with self.services.db.transaction() as session:
                return _ok(**await workspace.contact_history(session, who, conv_id))

        return await self._call(sid, run)

    async def on_card_update(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            if isinstance(data, dict) and not isinstance(data.get("values"), dict):
                raise InvalidInput("'values' must be an object of field → value", field="values")
            req = decode(data, p.CardUpdateIn)
            async with self.services.db.transaction() as session:
                card = await workspace.check_update_card(session, who, req.conversation_id, req.values)
                return _ok(card=card)

        return await self._call(sid, run)

    async def on_canned(self, sid: str, data: Any = None) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            conv_id = decode(data, p.CannedIn).conversation_id
            async with self.services.db.transaction() as session:
                return _ok(replies=await workspace.canned_replies(session, who, conv_id))

        return await self._call(sid, run)

    async def on_canned_save(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.CannedSaveIn)
            async with self.services.db.transaction() as session:
                reply = await workspace.check_save_personal_canned(
                    session, who, shortcut=req.shortcut, title=req.title, body=req.body, reply_id=req.id
                )
                return _ok(reply=reply)

        return await self._call(sid, run)

    async def on_canned_delete(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                await workspace.check_delete_personal_canned(session, who, decode(data, p.CannedDeleteIn).id)
                return _ok()

        return await self._call(sid, run)

    async def on_blacklist(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.BlacklistIn)
            async with self.services.db.transaction() as session:
                contact = await workspace.check_set_blacklisted(
                    session, who, req.conversation_id, blacklisted=req.blacklisted, reason=req.reason
                )
                return _ok(contact_id=contact.id, blacklisted=contact.blacklisted)

        return await self._call(sid, run)

    async def on_take(self, sid: str, data: Any) -> dict[str, Any]:
        """Take a waiting conversation by hand (queues with manual pick)."""

        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await workspace.check_take(
                    session, who, decode(data, p.ConversationIn).conversation_id
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_transfer(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.TransferIn)
            async with self.services.db.transaction() as session:
                conv = await conversations.check_transfer(
                    session,
                    who,
                    req.conversation_id,
                    to_user_id=req.to_user_id,
                    to_queue_id=req.to_queue_id,
                    note=req.note,
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_hand_to_bot(self, sid: str, data: Any) -> dict[str, Any]:
        """``{conversation_id, scenario}``: the conversation goes to a published scenario."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.HandToBotIn)
            async with self.services.db.transaction() as session:
                conv = await workspace.check_hand_to_bot(session, who, req.conversation_id, req.scenario)
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_schedule_callback(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.ScheduleCallbackIn)
            async with self.services.db.transaction() as session:
                cb = await conversations.check_schedule_callback(
                    session, who, req.conversation_id, due_at=_when(req.due_at), kind=req.kind, note=req.note
                )
                return _ok(callback=callback_dict(cb))

        return await self._call(sid, run)

    async def on_finish_callback(self, sid: str, data: Any) -> dict[str, Any]:
        """A taken callback is done, or goes back to the shared list (``done: false``)."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.FinishCallbackIn)
            async with self.services.db.transaction() as session:
                cb = await conversations.check_finish_callback(
                    session, who, req.callback_id, done=req.done, note=req.note
                )
                return _ok(callback=callback_dict(cb))

        return await self._call(sid, run)

    async def on_queue(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The waiting line of the caller's queues (refreshed by the window as events arrive)."""

        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                return _ok(waiting=await workspace.waiting_panel(session, who))

        return await self._call(sid, run)

    async def on_callbacks(self, sid: str, data: Any = None) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                return _ok(callbacks=await workspace.callbacks_panel(session, who))

        return await self._call(sid, run)

    # --- outbound campaigns: preview cards and my callbacks (``omni.domain.outbound.preview``)

    async def on_campaign_panel(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The caller's preview cards not dialed yet and the campaign callbacks they promised."""

        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                return _ok(
                    previews=await preview.my_previews(session, who),
                    callbacks=await preview.my_callbacks(session, who),
                )

        return await self._call(sid, run)

    async def on_preview_call(self, sid: str, data: Any) -> dict[str, Any]:
        """``{attempt_id}``: the call is placed after the commit, by the campaign's channel."""

        async def run(who: Principal) -> dict[str, Any]:
            attempt_id = decode(data, p.AttemptIn).attempt_id
            async with self.services.db.transaction() as session:
                order = await preview.do_preview_call(session, who, attempt_id)
            unplaced = await preview.place_orders(self.services.db, self.services.adapters, [order])
            if order.attempt_id in unplaced:  # the target is back in the list, nothing lost
                raise Conflict("the call could not be placed: {reason}", reason=unplaced[order.attempt_id])
            return _ok(attempt_id=order.attempt_id)

        return await self._call(sid, run)

    async def on_preview_skip(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            attempt_id = decode(data, p.AttemptIn).attempt_id
            async with self.services.db.transaction() as session:
                target = await preview.do_preview_skip(session, who, attempt_id)
                return _ok(target_state=target.state)

        return await self._call(sid, run)

    async def on_preview_reschedule(self, sid: str, data: Any) -> dict[str, Any]:
        """``{attempt_id, at}``: the card comes back at ``at`` (ISO with a zone)."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.RescheduleIn)
            at = _picked_time(req.at, "at")
            if at is None:
                raise InvalidInput("pick the time to call back", field="at")
            async with self.services.db.transaction() as session:
                target = await preview.do_preview_reschedule(session, who, req.attempt_id, at)
                return _ok(target_state=target.state, next_due_at=at.isoformat())

        return await self._call(sid, run)

    # --- calls (the voice adapter's ``CallControl``) ---------------------------------------

    async def on_call_hold(self, sid: str, data: Any) -> dict[str, Any]:
        """``{conversation_id, hold}``: the core records the hold, then the PBX plays music.

        The PBX acts inside the core's transaction: when it refuses, the hold is rolled back
        and the operator gets the PBX's reason (the same for hang-up and transfers)."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.HoldIn)
            voice = call_control(self.services)
            async with self.services.db.transaction() as session:
                conv = await conversations.check_hold(session, who, req.conversation_id, req.hold)
                await _pbx(voice.hold(conv.id, req.hold))
            return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    async def on_call_hangup(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            conv_id = decode(data, p.ConversationIn).conversation_id
            voice = call_control(self.services)
            async with self.services.db.transaction() as session:
                conv = await conversations.check_end(session, who, conv_id)
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
            req = decode(data, p.CallTransferIn)
            voice = call_control(self.services)
            conv_id = req.conversation_id
            to_user = req.to_user_id
            to_queue = req.to_queue_id
            to_scenario = req.to_scenario or None
            to_ext = (req.to_extension or "")[:32] or None
            attended = req.attended
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

    async def on_softphone(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The caller's own phone endpoint and, for the browser one, the SIP credentials Omni
        issues for it (``omni.domain.softphone``): asked again at every (re)connect, so an admin's
        change of endpoint or a rotated key reaches the window without a reload."""

        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                user = await session.get(m.User, who.id)
                if user is None:
                    raise NotAuthenticated("log in first")
                return _ok(**softphone.credentials(user, self.services.settings))

        return await self._call(sid, run)

    async def on_click_to_call(self, sid: str, data: Any) -> dict[str, Any]:
        """``{number, queue_id}``: the operator's phone rings first, then the customer's."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.ClickToCallIn)
            voice = call_control(self.services)
            queue_id = req.queue_id
            async with self.services.db.transaction() as session:
                queues = await auth.visible_queue_ids(session, who)
            if queues is not None and queue_id not in queues:
                raise PermissionDenied("you are not in this queue")
            conv_id = await _pbx(voice.originate(who.id, req.number[:32], queue_id))
            return _ok(conversation_id=conv_id)

        return await self._call(sid, run)


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


def _picked_time(value: Any, field: str) -> datetime | None:
    """A time the operator picked (ISO with a zone, the browser sends UTC), or none; whether
    it may be in the past is the domain's to say."""
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("pick a valid date and time", field=field) from None
    if when.tzinfo is None:
        raise InvalidInput("the time needs a time zone", field=field)
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


def _until(value: str | None) -> datetime | None:
    """A snooze's wake-up time: ISO 8601 (the domain checks the zone and the range)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("{field} must be a date and time", field="until") from None
