"""Operator and supervisor call actions of the voice adapter (``omni.channels.CallControl``).

Socket.IO handlers check scope and change the core, then call these *inside the same
transaction*: an AMI action Asterisk refuses becomes a ``Conflict`` naming what failed, so the
core change is rolled back and the operator's ack carries the reason (``docs/voice.md``).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from channels.voice import control
from channels.voice.effects import VoiceEffects
from channels.voice.events import CallEvent, Kind
from channels.voice.state import SPY, Call
from omni.channels import ATTENDED_NEEDS_OPERATOR, ChannelNotReady
from omni.db import models as m
from omni.domain import calls, outgoing, softphone
from omni.domain.errors import Conflict, InvalidInput
from omni.i18n import Label

log = logging.getLogger(__name__)

__all__ = ["VoiceCallControl"]


class VoiceCallControl(VoiceEffects):
    """Hold, hang up, transfer, click-to-call, spy and force-end on a live call."""

    def _live(self, conversation_id: int) -> Call:
        call = self.registry.for_conversation(conversation_id)
        if call is None or call.ended:
            raise Conflict("there is no call in progress for this conversation")
        return call

    async def _act(self, action: dict[str, Any], what: str) -> None:
        # ``what`` is an English phrase with a Russian label in the catalogs (enum.voice_action.*).
        """Send an action the operator waits for. Asterisk's refusal (``Response: Error``, e.g.
        a channel that is gone) becomes a ``Conflict`` naming what failed, so the transport
        answers the operator with it and rolls its core change back."""
        response = await self.ami.send(action)
        last = response[-1] if isinstance(response, list) else response
        if str(last.get("Response", "")).lower() != "success":
            reason = str(last.get("Message", "") or last.get("Response", "") or "no answer")
            log.warning("voice: AMI %s refused: %s", action.get("Action"), reason)
            raise Conflict(
                "the phone system could not {what}: {reason}", what=Label("voice_action", what), reason=reason
            )

    async def hold(self, conversation_id: int, on: bool) -> None:
        """Hold: the customer goes to ``hold_context`` and, in the same ``Redirect``
        (``ExtraChannel``), the operator leg to ``agent_context``, so neither side falls to the
        next priority of the dialplan it was in (an outgoing call's operator leg is in
        ``Dial()``, whose next step hangs up). Resume bridges the two again."""
        call = self._live(conversation_id)
        if not call.agent_channel or not call.caller_channel:
            raise Conflict("the call is not connected to an operator")
        if on:
            action = control.redirect(
                call.caller_channel,
                self.settings.hold_context,
                extra_channel=call.agent_channel,
                extra_context=self.settings.agent_context,
            )
            await self._act(action, "put the call on hold")
        else:
            await self._act(control.bridge(call.caller_channel, call.agent_channel), "resume the call")

    async def hangup(self, conversation_id: int) -> None:
        call = self._live(conversation_id)
        channel = call.caller_channel or call.caller_uniqueid or call.agent_channel or call.agent_uniqueid
        await self._act(control.hangup(channel), "hang up the call")

    async def transfer(
        self,
        conversation_id: int,
        *,
        to_extension: str | None = None,
        to_user_id: int | None = None,
        to_queue_id: int | None = None,
        to_scenario: str | None = None,
        attended: bool = False,
        by_user_id: int | None = None,
    ) -> None:
        """Blind to an operator/queue: the caller goes back to music on hold and the core's
        transfer routes it (the caller was already re-queued by ``check_transfer``). To a bot
        scenario (the IVR): the caller goes to ``ivr_context``, whose FastAGI ``ivr`` route
        continues the same conversation (already handed to the scenario by
        ``check_hand_to_bot``). In both the operator's leg is hung up. Attended to an operator:
        ``Atxfer`` from the operator's phone; the core follows when Asterisk reports
        ``AttendedTransfer``. To a bare extension/number: ``BlindTransfer``."""
        call = self._live(conversation_id)
        if not call.agent_channel:
            raise Conflict("the call is not connected to an operator")
        if attended:
            if to_user_id is None or to_scenario or to_queue_id is not None:
                raise InvalidInput(ATTENDED_NEEDS_OPERATOR, field="attended")
            async with self.services.db.transaction() as session:
                target = await calls.phone_user(session, to_user_id)
                extension = softphone.dial_extension(target, self.settings) if target else None
                if not extension:
                    raise InvalidInput("that operator has no phone extension", field="to_user_id")
            call.attended_to_user_id = to_user_id
            try:
                await self._act(
                    {
                        "Action": "Atxfer",
                        "Channel": call.agent_channel,
                        "Exten": extension,
                        "Context": self.settings.internal_context,
                    },
                    "start the attended transfer",
                )
            except (Conflict, ChannelNotReady):
                call.attended_to_user_id = None
                raise
            return
        if to_extension:
            await self._act(
                {
                    "Action": "BlindTransfer",
                    "Channel": call.agent_channel,
                    "Exten": to_extension,
                    "Context": self.settings.internal_context,
                },
                "transfer the call",
            )
            return
        context = self.settings.ivr_context if to_scenario else self.settings.wait_context
        # The operator leg is released before the Redirect is sent: its events (leaving the
        # bridge, hanging up) must not end the call. A refusal puts everything back.
        released = (call.agent_uniqueid, call.agent_channel, call.agent_user_id)
        self.registry.legs[released[0]] = (call.linkedid, "consult")
        call.agent_uniqueid = call.agent_channel = ""
        call.agent_user_id = None
        try:
            await self._act(control.redirect(call.caller_channel, context), "transfer the call")
        except (Conflict, ChannelNotReady):
            call.agent_uniqueid, call.agent_channel, call.agent_user_id = released
            self.registry.legs[released[0]] = (call.linkedid, "agent")
            raise
        await self._quietly(control.hangup(released[0]))

    async def originate(self, user_id: int, number: str, queue_id: int) -> int:
        """Click-to-call through the core's outgoing action (``do_start_outgoing``: assigned to
        the operator at once, no bot, no routing, capacity and status respected). The call's
        first leg is the operator's phone (the agent leg); the customer is who it dials."""
        from omni.domain.contacts import normalise_phone

        e164 = normalise_phone(number)
        uniqueid = f"omni-c{uuid.uuid4().hex[:12]}"
        if not self.ami.ready:
            raise ChannelNotReady("the AMI link to Asterisk is down")
        async with self.services.db.transaction() as session:
            user = await calls.phone_user(session, user_id)
            extension = softphone.dial_extension(user, self.settings) if user else None
            if not extension:
                raise InvalidInput("you have no phone extension in your profile", field="sip_extension")
            inbox = await calls.outgoing_voice_inbox(session, queue_id)
            caller_id = str((inbox.config or {}).get("caller_id") or "")
            conv = await outgoing.do_start_outgoing(
                session,
                user_id,
                outgoing.OutgoingContact(
                    inbox_id=inbox.id,
                    identity_kind="phone",
                    identity_value=e164,
                    contact_phone=e164,
                    external_id=uniqueid,
                    medium=m.Medium.VOICE,
                    note=f"Outgoing call to {e164}",
                    variables={"linkedid": uniqueid},
                ),
            )
            call = Call(
                linkedid=uniqueid,
                direction="out",
                conversation_id=conv.id,
                caller_number=e164,
                agent_uniqueid=uniqueid,
                agent_user_id=user_id,
            )
            await self._save_call(call, session=session, inbox_id=inbox.id)
            conv_id = conv.id
        self.registry.add(call)
        action = control.click_to_call(self.settings, extension, uniqueid, e164, caller_id, conv_id)
        try:
            self.ami.fire(action, self._originate_failed(uniqueid))
        except ChannelNotReady as exc:
            # The link dropped since the check: the call never started, so it ends at once.
            ev = CallEvent(Kind.ORIGINATE_RESPONSE, uniqueid, success=False, cause=str(exc))
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))
        return conv_id

    async def spy(self, supervisor_user_id: int, conversation_id: int, mode: str) -> None:
        call = self._live(conversation_id)
        spied = call.agent_channel  # the operator's leg, in and out
        if not spied:
            raise Conflict("the call is not connected to an operator yet")
        async with self.services.db.transaction() as session:
            user = await calls.phone_user(session, supervisor_user_id)
            extension = softphone.dial_extension(user, self.settings) if user else None
            if not extension:
                raise InvalidInput("you have no phone extension in your profile", field="sip_extension")
        uniqueid = f"omni-s{uuid.uuid4().hex[:12]}"
        action = control.chanspy(self.settings, extension, spied, mode, uniqueid)
        self.registry.expect_leg(call, uniqueid, SPY)
        self.ami.fire(action)  # answered when the supervisor's phone is picked up

    async def force_end(self, conversation_id: int, by_user_id: int | None = None) -> None:
        """A supervisor ends the call: the core ends the conversation (``by="supervisor"``) and,
        in the same transaction, Asterisk is asked to hang the customer up. A refusal rolls the
        core back and reaches the supervisor as a ``Conflict`` with Asterisk's reason (the call
        goes on); a link that is down raises ``ChannelNotReady`` the same way. Only a channel
        Asterisk no longer has (its hang-up was missed) lets the core end without it."""
        call = await self._call_for(conversation_id)
        if call is None or call.ended:
            raise Conflict("there is no call in progress for this conversation")
        channel = call.caller_channel or call.caller_uniqueid or call.agent_channel or call.agent_uniqueid
        async with self.services.db.transaction() as session:
            await calls.do_force_end(session, conversation_id)
            try:
                await self._act(control.hangup(channel), "end the call")
            except Conflict:
                if await self._still_there(channel):
                    raise
                log.info("voice: conversation %s: channel %s was already gone", conversation_id, channel)
        if call.agent_uniqueid and channel not in (call.agent_channel, call.agent_uniqueid):
            await self._quietly(control.hangup(call.agent_uniqueid))

    async def _still_there(self, channel: str) -> bool:
        """Whether Asterisk still lists a channel (by name or Uniqueid)."""
        return any(channel in (snap.channel, snap.uniqueid) for snap in await self._live_channels())
