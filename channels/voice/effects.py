"""What the voice adapter does about calls: effects, committed core events, resync.

``CallRegistry.apply`` decides (pure); this module performs: every effect becomes a core
action (``omni.domain.calls``, ``omni.domain.conversations``) in one transaction and, after it,
the AMI actions it implies. The adapter never writes a row itself. The committed core events
of voice conversations (offers, their end, ``missed``) ring, stop or redirect phones; after
every AMI login the registry is reconciled with the database and Asterisk's channel list.

``VoiceEffects`` is the base of ``VoiceChannel`` (``channels.voice.adapter``), which sets the
attributes declared here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from channels.voice import control
from channels.voice.ami import AmiLink
from channels.voice.events import CallEvent, ChannelSnapshot, Kind, snapshot_from_core_show
from channels.voice.state import Call, CallRegistry, Effect, Ring
from omni.channels import ChannelNotReady
from omni.db import models as m
from omni.domain import calls, conversations, softphone
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.errors import DomainError, InvalidInput, NotFound
from omni.domain.events import DomainEvent
from omni.domain.place import is_callback
from omni.services import Services
from omni.settings import VoiceSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

KIND = calls.VOICE
OFFER_ENDED = ("conversation.offer_timeout", "conversation.offer_declined", "conversation.offer_cancelled")
WAITING = calls.WAITING

__all__ = ["KIND", "OFFER_ENDED", "WAITING", "VoiceEffects"]


class VoiceEffects:
    """Effects, core events and resync of the voice adapter (the attributes are set by
    ``VoiceChannel.__init__``)."""

    services: Services
    settings: VoiceSettings
    registry: CallRegistry
    ami: AmiLink
    _events: asyncio.Queue[tuple[CallEvent, datetime, float]]
    _enqueued_at: dict[int, float]
    connect_latencies: deque[float]

    # --- effects ---------------------------------------------------------------------------

    async def _perform(self, eff: Effect, now: datetime, t0: float | None) -> None:
        call = eff.call
        try:
            match eff.kind:
                case "enqueue":
                    await self._enqueue(call, t0)
                case "answered":
                    await self._answered(call, eff)
                case "ring_failed":
                    await self._ring_failed(call, eff)
                case "connected":
                    self._record(call)
                    async with self.services.db.transaction() as session:
                        await calls.do_call_connected(session, call)
                case "caller_left" | "agent_left":
                    await self._ended(call, eff, now)
                case "phone_hold" | "phone_unhold":
                    await self._phone_hold(call, eff.kind == "phone_hold")
                case "attended_done":
                    await self._attended_done(call)
        except DomainError as exc:
            log.warning("voice: %s on conversation %s not applied: %s", eff.kind, call.conversation_id, exc)
        except ChannelNotReady as exc:
            log.warning("voice: %s on conversation %s: %s", eff.kind, call.conversation_id, exc)

    async def _enqueue(self, call: Call, t0: float | None) -> None:
        async with self.services.db.transaction() as session:
            status = await self._enqueue_in(session, call)
        await self._enqueued(call, t0, status)

    async def _enqueue_in(self, session: AsyncSession, call: Call) -> str:
        """The enqueue's writes in ``session`` (conversation + ``calls`` row); the
        conversation's status after it."""
        number = call.caller_number
        try:
            from omni.domain.contacts import normalise_phone

            identity = ("phone", normalise_phone(number))
        except InvalidInput:
            identity = ("external", f"anonymous:{call.linkedid}")
        message = InboundMessage(
            inbox_id=0,
            identity_kind=identity[0],
            identity_value=identity[1],
            contact_phone=identity[1] if identity[0] == "phone" else None,
            contact_name=call.caller_name,
            external_id=call.linkedid,
            medium=m.Medium.VOICE,
            body=f"Incoming call from {number or 'an unknown number'}",
            variables={"linkedid": call.linkedid},
            channel=KIND,
        )
        result = None
        if call.inbox.isdigit():
            # The inbox the dialplan named is read and checked by the ingest's own look-up;
            # only when it is not an active voice inbox is the line looked for otherwise.
            message.inbox_id = int(call.inbox)
            with contextlib.suppress(NotFound):
                result = await conversations.do_ingest_inbound(session, message)
        if result is None:
            message.inbox_id = (await calls.voice_inbox(session, call.inbox)).id
            result = await conversations.do_ingest_inbound(session, message)
        conv = result.conversation
        self.registry.bind(call, conv.id)
        await self._save_call(call, session=session, inbox_id=message.inbox_id, new=result.created)
        return conv.status

    async def _enqueued(self, call: Call, t0: float | None, status: str) -> None:
        """After the enqueue's commit: latency bookkeeping, and a caller refused at once
        (e.g. blacklisted) is hung up."""
        if t0 is not None and call.conversation_id is not None:
            self._enqueued_at[call.conversation_id] = t0
        if status not in m.OPEN_STATUSES:
            await self._quietly(control.hangup(call.caller_channel, 21))  # e.g. blacklisted

    async def _save_call(
        self,
        call: Call,
        *,
        session: AsyncSession | None = None,
        inbox_id: int | None = None,
        new: bool = False,
        **extra: Any,
    ) -> None:
        """Store the call's row (``calls.do_save_call``), in ``session`` or a transaction of its own."""
        if call.conversation_id is None:
            return
        if session is None:
            async with self.services.db.transaction() as own:
                await self._save_call(call, session=own, inbox_id=inbox_id, new=new, **extra)
            return
        await calls.do_save_call(session, call, inbox_id=inbox_id, new=new, **extra)

    async def _answered(self, call: Call, eff: Effect) -> None:
        assert eff.offer_id is not None
        async with self.services.db.transaction() as session:
            accepted = await calls.do_answer_offer(session, call.conversation_id, eff.offer_id)
            if accepted:
                await self._save_call(call, session=session)
        if not accepted:
            await self._quietly(control.hangup(call.agent_channel or call.agent_uniqueid))
            return
        await self._quietly(control.bridge(call.caller_channel, call.agent_channel or call.agent_uniqueid))
        if self._record(call):
            await self._save_call(call)  # the path is on the call while it is recorded, not at its end
        # An earlier operator still connected (a transfer made without telephony) is released.
        for uid, (linkedid, role) in list(self.registry.legs.items()):
            if linkedid == call.linkedid and role == "consult" and uid != call.agent_uniqueid:
                self.registry.legs.pop(uid, None)
                await self._quietly(control.hangup(uid))

    def _record(self, call: Call) -> bool:
        """Start MixMonitor once per call; True when it was started now (the path is new)."""
        if not self.settings.record_calls or call.recording_path or call.conversation_id is None:
            return False
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        path = f"{self.settings.recordings_dir}/{day}/{call.conversation_id}-{call.linkedid}.wav"
        call.recording_path = path
        with contextlib.suppress(ChannelNotReady):
            self.ami.fire(control.mixmonitor(call.caller_channel or call.caller_uniqueid, path))
        return True

    async def _ring_failed(self, call: Call, eff: Effect) -> None:
        async with self.services.db.transaction() as session:
            await calls.do_decline_unanswered(session, eff.offer_id, eff.user_id)
            await self._save_call(call, session=session)

    async def _ended(self, call: Call, eff: Effect, now: datetime) -> None:
        async with self.services.db.transaction() as session:
            await calls.do_call_ended(
                session, call, caller_left=eff.kind == "caller_left", now=now, cause=eff.cause
            )
        await self._forget_ended(call)

    async def _forget_ended(self, call: Call) -> None:
        """After the end's commit: the call leaves the registry and its other legs hang up."""
        self.registry.forget(call)
        if call.conversation_id is not None:
            self._enqueued_at.pop(call.conversation_id, None)
        others = [call.agent_uniqueid, call.caller_uniqueid, *(r.uniqueid for r in call.rings.values())]
        for uid in others:
            if uid:
                await self._quietly(control.hangup(uid))

    async def _phone_hold(self, call: Call, on: bool) -> None:
        async with self.services.db.transaction() as session:
            await calls.do_phone_hold(session, call.conversation_id, on)

    async def _attended_done(self, call: Call) -> None:
        target = call.attended_to_user_id
        async with self.services.db.transaction() as session:
            if await calls.do_attended_transfer(session, call.conversation_id, target):
                await self._save_call(call, session=session)

    async def _quietly(self, action: dict[str, Any]) -> None:
        """Fire an action whose failure only matters to the log (the channel may be gone)."""
        try:
            self.ami.fire(action)
        except ChannelNotReady as exc:
            log.info("voice: %s not sent: %s", action.get("Action"), exc)

    # --- core events (post-commit relay sink) ---------------------------------------------

    async def on_events(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            callback = is_callback(event.payload.get("variables"))
            if (event.payload.get("channel") != KIND and not callback) or event.conversation_id is None:
                continue
            try:
                if callback and event.type in ("conversation.offered", "conversation.accepted"):
                    # A callback has no caller on the line: its offer rings no phone (the
                    # operator accepts in the window); accepted, the customer is dialled.
                    if event.type == "conversation.accepted":
                        await self._dial_callback(event)
                elif event.type == "conversation.offered":
                    await self._offered(event)
                elif event.type in OFFER_ENDED:
                    await self._stop_ringing(event)
                elif event.type == "conversation.missed":
                    call = await self._call_for(event.conversation_id)
                    if call is not None:
                        await self._quietly(
                            control.redirect(call.caller_channel, self.settings.overflow_context)
                        )
            except (DomainError, ChannelNotReady) as exc:
                log.warning("voice: event %s not acted on: %s", event.id, exc)

    async def _call_for(self, conversation_id: int) -> Call | None:
        call = self.registry.for_conversation(conversation_id)
        if call is not None:
            return call
        async with self.services.db.transaction() as session:
            row = await calls.open_call(session, conversation_id)
        if row is None:
            return None
        return self.registry.add(_call_from_row(row))

    async def _offered(self, event: DomainEvent) -> None:
        assert event.conversation_id is not None
        offer_id = int(event.payload["offer_id"])
        user_id = event.user_id
        if user_id is None:
            return
        call = await self._call_for(event.conversation_id)
        if call is None or call.ended:
            # Queued without a channel we know (the IVR queued it and ``OmniEnqueue`` was lost):
            # find the caller on Asterisk, or end the ghost so the router moves on at once.
            call = await self._adopt(event.conversation_id)
            if call is None:
                return
        async with self.services.db.transaction() as session:
            user = await calls.phone_user(session, user_id)
            if user is None:
                return
            if call.attended_to_user_id == user_id:
                # The target already talks to the caller (attended transfer): accept at once.
                call.attended_to_user_id = None
                await calls.do_answer_offer(session, event.conversation_id, offer_id)
                return
            extension = softphone.dial_extension(user, self.settings)
            if not extension:
                log.warning(
                    "voice: operator %s has no phone to ring (no SIP extension, or the browser endpoint"
                    " without OMNI_VOICE_WEBRTC_WS_URL); declining the offer",
                    user.username,
                )
                await conversations.check_decline_offer(session, Principal.of(user), offer_id)
                return
        uniqueid = f"omni-o{offer_id}"
        ring = Ring(offer_id=offer_id, user_id=user_id, uniqueid=uniqueid, started_at=datetime.now(UTC))
        self.registry.expect_ring(call, ring)
        action = control.originate_agent(
            self.settings,
            extension,
            uniqueid,
            ring_seconds=int(event.payload.get("timeout_seconds") or self.settings.default_ring_seconds),
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            conversation_id=event.conversation_id,
            offer_id=offer_id,
        )

        try:
            self.ami.fire(action, self._originate_failed(uniqueid))
        except ChannelNotReady:
            # Nothing can ring while the link is down: the link has told the core
            # (``_link_state``), whose router withdraws this offer without penalty and keeps
            # the call in line until the link is back; the resync then reconciles the calls.
            call.rings.pop(offer_id, None)
            self.registry.legs.pop(uniqueid, None)
            raise
        t0 = self._enqueued_at.pop(event.conversation_id, None)
        if t0 is not None:
            self.connect_latencies.append(time.perf_counter() - t0)

    def _originate_failed(self, uniqueid: str) -> Any:
        """The response callback of an ``Async`` Originate: a refusal (``Response: Error``, e.g.
        an unknown endpoint) or a failure (``OriginateResponse: Failure``, never answered) is
        fed to the registry as that leg's failure, so an offer is declined at once and a
        click-to-call ends instead of holding the operator forever."""

        def responded(result: Any) -> None:
            last = result[-1] if isinstance(result, list) else result
            if str(last.get("Response", "")).lower() != "success":
                cause = str(last.get("Reason", "") or last.get("Message", ""))
                ev = CallEvent(Kind.ORIGINATE_RESPONSE, uniqueid, success=False, cause=cause)
                self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

        return responded

    async def _live_channels(self) -> list[ChannelSnapshot]:
        listing = await self.ami.send({"Action": "CoreShowChannels"})
        items = listing if isinstance(listing, list) else [listing]
        return [snap for snap in (snapshot_from_core_show(item) for item in items) if snap is not None]

    async def _adopt(self, conversation_id: int) -> Call | None:
        """A waiting voice conversation with no call we know: the caller's channel (by the
        conversation's Linkedid) is registered when Asterisk still has it; otherwise the
        conversation is a ghost and is ended (``_end_ghosts``)."""
        async with self.services.db.transaction() as session:
            conv = await calls.waiting_conversation(session, conversation_id)
            if conv is None:
                return None
            linkedid = str((conv.variables or {}).get("linkedid") or "")
            inbox_id = conv.inbox_id
        known = self.registry.calls.get(linkedid) if linkedid else None
        if known is not None and not known.ended:
            self.registry.bind(known, conversation_id)  # its OmniEnqueue is being applied now
            return known
        live = [s for s in await self._live_channels() if linkedid and s.linkedid == linkedid]
        if not live:
            await self._end_ghosts([conversation_id], "offer")
            return None
        first = next((s for s in live if s.uniqueid == linkedid), live[0])
        call = self.registry.add(
            Call(
                linkedid=linkedid,
                conversation_id=conversation_id,
                caller_uniqueid=first.uniqueid,
                caller_channel=first.channel,
                caller_number=first.caller_number,
                caller_name=first.caller_name,
                enqueued=True,
            )
        )
        await self._save_call(call, inbox_id=inbox_id)
        log.info("voice: conversation %s had no call; found its caller %s", conversation_id, first.channel)
        return call

    async def _end_ghosts(self, conversation_ids: Sequence[int], when: str) -> None:
        """Waiting voice conversations whose caller Asterisk no longer has: the caller left
        while Omni didn't see it, so they are abandoned (callback in the shared list, pending
        offers cancelled) instead of being offered to operators whose phones can't ring."""
        now = datetime.now(UTC)
        for conv_id in conversation_ids:
            async with self.services.db.transaction() as session:
                if not await calls.do_end_ghost(session, conv_id, now=now, when=when):
                    continue
            call = self.registry.for_conversation(conv_id)
            if call is not None:
                self.registry.forget(call)
            self._enqueued_at.pop(conv_id, None)

    async def _stop_ringing(self, event: DomainEvent) -> None:
        assert event.conversation_id is not None
        call = self.registry.for_conversation(event.conversation_id)
        ring = call.rings.get(int(event.payload.get("offer_id", 0))) if call else None
        if ring is not None and not ring.answered:
            await self._quietly(control.hangup(ring.uniqueid))

    async def _dial_callback(self, event: DomainEvent) -> None:
        """The operator accepted a callback (the customer kept their place in line): as a
        click-to-call, the operator's phone rings first and, answered, the dialplan dials the
        customer's number with the queue's caller id; the conversation is the same one."""
        assert event.conversation_id is not None
        place = dict((event.payload.get("variables") or {}).get("place") or {})
        number = str(place.get("number") or "")
        user_id = event.user_id
        if not number or user_id is None:
            return
        uniqueid = f"omni-b{uuid.uuid4().hex[:12]}"
        async with self.services.db.transaction() as session:
            user = await calls.phone_user(session, user_id)
            extension = softphone.dial_extension(user, self.settings) if user else None
            if extension is None:
                log.warning("voice: operator %s has no phone to ring; callback %s not dialled",
                            user_id, event.conversation_id)  # fmt: skip
                return
            inbox = await calls.outgoing_voice_inbox(session, int(event.payload.get("queue_id") or 0))
            caller_id = str((inbox.config or {}).get("caller_id") or "")
            call = Call(
                linkedid=uniqueid,
                direction="out",
                conversation_id=event.conversation_id,
                caller_number=number,
                agent_uniqueid=uniqueid,
                agent_user_id=user_id,
            )
            # One calls row per conversation: the caller's first leg (ended when they hung up
            # to be called back) becomes the callback's.
            await calls.do_save_call(
                session,
                call,
                inbox_id=inbox.id,
                linkedid=uniqueid,
                direction="out",
                ended_at=None,
                hangup_cause="",
            )
            await calls.do_call_changed(session, event.conversation_id, "ringing")
        self.registry.add(call)
        action = control.click_to_call(
            self.settings, extension, uniqueid, number, caller_id, event.conversation_id
        )
        try:
            self.ami.fire(action, self._originate_failed(uniqueid))
        except ChannelNotReady as exc:
            ev = CallEvent(Kind.ORIGINATE_RESPONSE, uniqueid, success=False, cause=str(exc))
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

    # --- resync ----------------------------------------------------------------------------

    async def _resync(self) -> None:
        """After every login: reload open calls from the database, list live channels, and
        reconcile (hang-ups missed while disconnected end their conversations; callers who
        arrived meanwhile are enqueued, idempotently on the Linkedid)."""
        async with self.services.db.transaction() as session:
            rows = await calls.open_calls(session)
        for row in rows:
            if self.registry.for_conversation(row.conversation_id) is None:
                self.registry.add(_call_from_row(row))
        listed_at = datetime.now(UTC)
        live = await self._live_channels()
        now = datetime.now(UTC)
        effects = self.registry.reconcile(live, now)
        log.info(
            "voice: resync: %d live channels, %d calls known, %d effects", len(live), len(rows), len(effects)
        )
        for effect in effects:
            await self._perform(effect, now, None)
        await self._drop_stale_rings()
        # Waiting conversations no live channel belongs to (queued by the IVR while the link
        # was down, the caller gone since): without this they are offered forever.
        alive = {snap.linkedid for snap in live}
        async with self.services.db.transaction() as session:
            waiting = await calls.waiting_voice_conversations(session, listed_at)
        ghosts = [
            conv_id
            for conv_id, linkedid in waiting
            if self.registry.for_conversation(conv_id) is None and linkedid not in alive
        ]
        if ghosts:
            await self._end_ghosts(ghosts, "resync")

    async def _drop_stale_rings(self) -> None:
        """Phones still ringing for offers the core withdrew while the link was down (their
        hang-up could not be sent then) stop ringing, so the next offer rings one phone."""
        rings = [(call, ring) for call in self.registry.calls.values() for ring in call.rings.values()]
        if not rings:
            return
        async with self.services.db.transaction() as session:
            pending = await calls.pending_offers(session, [ring.offer_id for _, ring in rings])
        for call, ring in rings:
            if ring.offer_id in pending or ring.answered:
                continue
            call.rings.pop(ring.offer_id, None)
            self.registry.legs.pop(ring.uniqueid, None)
            await self._quietly(control.hangup(ring.uniqueid))


def _call_from_row(row: m.Call) -> Call:
    return Call(
        linkedid=row.linkedid,
        direction=row.direction,
        conversation_id=row.conversation_id,
        caller_uniqueid=row.caller_uniqueid,
        caller_channel=row.caller_channel,
        caller_number=row.caller_number,
        agent_uniqueid=row.agent_uniqueid,
        agent_channel=row.agent_channel,
        agent_user_id=row.agent_user_id,
        ring_seconds=row.ring_seconds,
        answered_at=row.answered_at,
        enqueued=True,
        recording_path=row.recording_path,
    )
