"""Voice channel: Asterisk calls in the unified queue, over AMI (panoramisk).

* ``events`` normalises AMI events into ``CallEvent`` (pure functions);
* ``state.CallRegistry`` owns live call state and decides what must happen (effects);
* ``ami.AmiLink`` is the connection (login, backoff, resync hook);
* ``control`` builds the AMI actions;
* ``VoiceChannel`` (here) performs effects in the core and on Asterisk, reacts to committed
  core events (offers) and implements ``omni.channels.CallControl``.

How caller and operator are connected (``docs/voice.md``): the caller waits with music on
hold in ``wait_context``; when the router offers the call to an operator the adapter
originates that operator's phone (``ChannelId`` = ``omni-o<offer id>``) into
``agent_context`` with the queue's ring timeout; when the phone answers the offer is
accepted in the core and the two channels are joined with the AMI ``Bridge`` action.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.voice import control
from channels.voice.ami import AmiLink
from channels.voice.events import (
    CallEvent,
    ChannelSnapshot,
    Kind,
    ami_event_to_call_event,
    snapshot_from_core_show,
)
from channels.voice.state import SPY, Call, CallRegistry, Effect, Ring
from omni.channels import (
    ATTENDED_NEEDS_OPERATOR,
    ChannelNotReady,
    ChannelSetup,
    DeliveryReceipt,
    OutboundMessage,
)
from omni.db import models as m
from omni.domain import conversations, outgoing
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from omni.domain.events import DomainEvent
from omni.i18n import Label
from omni.services import Services

if TYPE_CHECKING:
    from channels.voice.agi import AgiServer

log = logging.getLogger(__name__)

KIND = "voice"
S = m.ConversationStatus
OFFER_ENDED = ("conversation.offer_timeout", "conversation.offer_declined", "conversation.offer_cancelled")
WAITING = (S.QUEUED, S.OFFERED)

__all__ = ["KIND", "VoiceChannel", "setup"]


class VoiceChannel:
    """The voice adapter. One per node; with several nodes enable it on one (the AMI owner)."""

    kind: ClassVar[str] = KIND

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.voice
        self.registry = CallRegistry(self.settings.wait_context)
        self.ami = AmiLink(self.settings, self._on_ami, self._resync)
        self.ami.on_state = self._link_state
        self._events: asyncio.Queue[tuple[CallEvent, datetime, float]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._enqueued_at: dict[int, float] = {}
        self.connect_latencies: deque[float] = deque(maxlen=100_000)
        """Seconds from a caller's ``OmniEnqueue`` arriving to the operator's Originate being sent."""
        self.applied = 0
        """AMI events applied (normalised, state updated, effects persisted)."""
        self.prompt_sink: Any = None
        """Set by the FastAGI side to speak bot messages to a caller (``send``)."""
        self.agi: AgiServer | None = None
        """The FastAGI server (IVR), attached by the composition root; started and stopped
        with the adapter so an install with voice on always answers Asterisk's ``AGI()``."""

    # --- ChannelAdapter -----------------------------------------------------------------

    async def start(self) -> None:
        if self.agi is not None:
            await self.agi.start()
        self._worker = asyncio.create_task(self._run(), name="voice-events")
        # Nothing can ring before the first login: calls wait in line until the link is up.
        self._link_state(False, "connecting to Asterisk")
        await self.ami.start()

    async def stop(self) -> None:
        await self.ami.stop()
        if self.agi is not None:
            await self.agi.stop()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    def _link_state(self, up: bool, reason: str) -> None:
        """The AMI link is what lets a phone ring: while it is down (or resynchronising) the
        router keeps voice conversations in line and withdraws their ringing offers without
        penalty; it offers them again as soon as this reports the link back."""
        why = f"the AMI link to Asterisk is down ({reason})" if reason else "the AMI link to Asterisk is down"
        self.services.adapters.set_available(KIND, up, "" if up else why)

    def readiness(self) -> str:
        """For ``/readyz``: ``"ok"`` while the AMI link is logged in, else why it is down."""
        return self.ami.readiness()

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        """A call has no text channel; bot prompts go to the IVR (FastAGI) when it is plugged in."""
        if self.prompt_sink is not None:
            receipt: DeliveryReceipt = await self.prompt_sink(msg)
            return receipt
        return DeliveryReceipt("failed", error="a phone call can't show text")

    # --- AMI events -----------------------------------------------------------------------

    def _on_ami(self, message: Mapping[str, Any]) -> None:
        ev = ami_event_to_call_event(message)
        if ev is not None:
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

    async def _run(self) -> None:
        while True:
            ev, now, t0 = await self._events.get()
            try:
                await self.apply(ev, now, t0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("voice: applying %s for %s failed", ev.kind, ev.uniqueid)
            finally:
                self._events.task_done()

    async def apply(self, ev: CallEvent, now: datetime, t0: float | None = None) -> None:
        """Apply one normalised event: state update, then its effects (core + Asterisk)."""
        for effect in self.registry.apply(ev, now):
            await self._perform(effect, now, t0)
        self.applied += 1

    async def drain(self) -> None:
        """Wait until every received event has been applied (tests, benchmarks)."""
        await self._events.join()

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
                    await self._save_call(call)
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

    async def _inbox_for(self, session: AsyncSession, hint: str) -> m.Inbox:
        if hint.isdigit():
            inbox = await session.get(m.Inbox, int(hint))
            if inbox is not None and inbox.channel == KIND and inbox.active:
                return inbox
        inboxes = (
            await session.scalars(
                select(m.Inbox).where(m.Inbox.channel == KIND, m.Inbox.active.is_(True)).order_by(m.Inbox.id)
            )
        ).all()
        for inbox in inboxes:
            if hint and str((inbox.config or {}).get("did", "")) == hint:
                return inbox
        if not inboxes:
            raise NotFound("no active voice inbox")
        return inboxes[0]

    async def _enqueue(self, call: Call, t0: float | None) -> None:
        async with self.services.db.transaction() as session:
            inbox = await self._inbox_for(session, call.inbox)
            number = call.caller_number
            try:
                from omni.domain.contacts import normalise_phone

                identity = ("phone", normalise_phone(number))
            except InvalidInput:
                identity = ("external", f"anonymous:{call.linkedid}")
            result = await conversations.ingest_inbound(
                session,
                InboundMessage(
                    inbox_id=inbox.id,
                    identity_kind=identity[0],
                    identity_value=identity[1],
                    contact_phone=identity[1] if identity[0] == "phone" else None,
                    contact_name=call.caller_name,
                    external_id=call.linkedid,
                    medium=m.Medium.VOICE,
                    body=f"Incoming call from {number or 'an unknown number'}",
                    variables={"linkedid": call.linkedid},
                ),
            )
            conv = result.conversation
            self.registry.bind(call, conv.id)
            await self._save_call(call, session=session, inbox_id=inbox.id)
            status = conv.status
        if t0 is not None:
            self._enqueued_at[conv.id] = t0
        if status not in m.OPEN_STATUSES:
            await self._quietly(control.hangup(call.caller_channel, 21))  # e.g. blacklisted

    async def _save_call(
        self, call: Call, *, session: AsyncSession | None = None, inbox_id: int | None = None, **extra: Any
    ) -> None:
        if call.conversation_id is None:
            return
        if session is None:
            async with self.services.db.transaction() as own:
                await self._save_call(call, session=own, inbox_id=inbox_id, **extra)
            return
        row = await session.scalar(select(m.Call).where(m.Call.conversation_id == call.conversation_id))
        if row is None:
            row = m.Call(
                conversation_id=call.conversation_id,
                inbox_id=inbox_id,
                direction=call.direction,
                linkedid=call.linkedid,
                created_at=datetime.now(UTC),
            )
            session.add(row)
        row.caller_uniqueid = call.caller_uniqueid
        row.caller_channel = call.caller_channel
        row.caller_number = call.caller_number[:64]
        if call.agent_uniqueid:
            row.agent_uniqueid = call.agent_uniqueid
            row.agent_channel = call.agent_channel
        if call.agent_user_id is not None:
            row.agent_user_id = call.agent_user_id
        row.ring_seconds = round(call.ring_seconds, 3)
        row.answered_at = call.answered_at
        if call.recording_path:
            row.recording_path = call.recording_path
        for key, value in extra.items():
            setattr(row, key, value)
        await session.flush()

    async def _answered(self, call: Call, eff: Effect) -> None:
        assert eff.offer_id is not None
        accepted = False
        async with self.services.db.transaction() as session:
            offer = await session.scalar(select(m.Offer).where(m.Offer.id == eff.offer_id).with_for_update())
            conv = await session.scalar(
                select(m.Conversation).where(m.Conversation.id == call.conversation_id).with_for_update()
            )
            if offer is not None and conv is not None and offer.state == "pending":
                await conversations.do_accept_offer(session, conv, offer)
                accepted = True
            elif conv is not None and offer is not None and offer.state == "accepted":
                accepted = True  # replayed after a resync
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
            offer = await session.scalar(select(m.Offer).where(m.Offer.id == eff.offer_id))
            user = await session.get(m.User, eff.user_id) if eff.user_id else None
            early = offer is not None and (offer.expires_at - datetime.now(UTC)).total_seconds() > 1.0
            if offer is not None and offer.state == "pending" and user is not None and early:
                # Busy or unreachable before the core's timeout: move on to the next operator now.
                await conversations.check_decline_offer(session, Principal.of(user), offer.id)
            await self._save_call(call, session=session)

    async def _ended(self, call: Call, eff: Effect, now: datetime) -> None:
        async with self.services.db.transaction() as session:
            conv = await session.scalar(
                select(m.Conversation).where(m.Conversation.id == call.conversation_id).with_for_update()
            )
            if conv is not None:
                if eff.kind == "caller_left":
                    await conversations.do_customer_left(session, conv.id)
                elif conv.status in (S.ACTIVE, S.ON_HOLD):
                    await conversations.do_end(session, conv, by="operator")
                talk = 0.0
                if call.answered_at is not None:
                    talk = max(0.0, (now - call.answered_at).total_seconds() - conv.hold_seconds)
                await self._save_call(
                    call,
                    session=session,
                    ended_at=now,
                    talk_seconds=round(talk, 3),
                    hangup_cause=eff.cause[:32],
                )
        self.registry.forget(call)
        if call.conversation_id is not None:
            self._enqueued_at.pop(call.conversation_id, None)
        others = [call.agent_uniqueid, call.caller_uniqueid, *(r.uniqueid for r in call.rings.values())]
        for uid in others:
            if uid:
                await self._quietly(control.hangup(uid))

    async def _phone_hold(self, call: Call, on: bool) -> None:
        async with self.services.db.transaction() as session:
            conv = await session.get(m.Conversation, call.conversation_id)
            user = (
                await session.get(m.User, conv.assigned_user_id) if conv and conv.assigned_user_id else None
            )
            if conv is None or user is None or (conv.status == S.ON_HOLD) == on:
                return
            await conversations.check_hold(session, Principal.of(user), conv.id, on)

    async def _attended_done(self, call: Call) -> None:
        target = call.attended_to_user_id
        async with self.services.db.transaction() as session:
            conv = await session.get(m.Conversation, call.conversation_id)
            user = (
                await session.get(m.User, conv.assigned_user_id) if conv and conv.assigned_user_id else None
            )
            if conv is None or user is None or target is None:
                return
            await conversations.check_transfer(session, Principal.of(user), conv.id, to_user_id=target)
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
            if event.payload.get("channel") != KIND or event.conversation_id is None:
                continue
            try:
                if event.type == "conversation.offered":
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
            row = await session.scalar(select(m.Call).where(m.Call.conversation_id == conversation_id))
        if row is None or row.ended_at is not None:
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
            user = await session.get(m.User, user_id)
            if user is None:
                return
            if call.attended_to_user_id == user_id:
                # The target already talks to the caller (attended transfer): accept at once.
                call.attended_to_user_id = None
                offer = await session.scalar(select(m.Offer).where(m.Offer.id == offer_id).with_for_update())
                conv = await session.get(m.Conversation, event.conversation_id, with_for_update=True)
                if offer is not None and conv is not None and offer.state == "pending":
                    await conversations.do_accept_offer(session, conv, offer)
                return
            if not user.sip_extension:
                log.warning("voice: operator %s has no SIP extension; declining the offer", user.username)
                await conversations.check_decline_offer(session, Principal.of(user), offer_id)
                return
            extension = user.sip_extension
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
            conv = await session.get(m.Conversation, conversation_id)
            if conv is None or conv.status not in WAITING:
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
                conv = await session.scalar(
                    select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update()
                )
                if conv is None or conv.status not in WAITING:
                    continue
                log.warning(
                    "voice: conversation %s waits for a call Asterisk doesn't have (linkedid %r, %s); "
                    "marked abandoned",
                    conv_id,
                    (conv.variables or {}).get("linkedid"),
                    when,
                )
                await conversations.do_customer_left(session, conv_id)
                row = await session.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
                if row is not None and row.ended_at is None:
                    row.ended_at = now
                    row.hangup_cause = "gone"
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

    # --- resync ----------------------------------------------------------------------------

    async def _resync(self) -> None:
        """After every login: reload open calls from the database, list live channels, and
        reconcile (hang-ups missed while disconnected end their conversations; callers who
        arrived meanwhile are enqueued, idempotently on the Linkedid)."""
        async with self.services.db.transaction() as session:
            rows = (await session.scalars(select(m.Call).where(m.Call.ended_at.is_(None)))).all()
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
            waiting = (
                await session.execute(
                    select(m.Conversation.id, m.Conversation.variables).where(
                        m.Conversation.channel == KIND,
                        m.Conversation.status.in_(WAITING),
                        m.Conversation.created_at < listed_at,
                    )
                )
            ).all()
        ghosts = [
            conv_id
            for conv_id, variables in waiting
            if self.registry.for_conversation(conv_id) is None
            and str((variables or {}).get("linkedid") or "") not in alive
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
            pending = set(
                await session.scalars(
                    select(m.Offer.id).where(
                        m.Offer.id.in_([ring.offer_id for _, ring in rings]), m.Offer.state == "pending"
                    )
                )
            )
        for call, ring in rings:
            if ring.offer_id in pending or ring.answered:
                continue
            call.rings.pop(ring.offer_id, None)
            self.registry.legs.pop(ring.uniqueid, None)
            await self._quietly(control.hangup(ring.uniqueid))

    # --- CallControl ---------------------------------------------------------------------

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
                target = await session.get(m.User, to_user_id)
                if target is None or not target.sip_extension:
                    raise InvalidInput("that operator has no phone extension", field="to_user_id")
                extension = target.sip_extension
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
            user = await session.get(m.User, user_id)
            if user is None or not user.sip_extension:
                raise InvalidInput("you have no phone extension in your profile", field="sip_extension")
            inbox = await session.scalar(
                select(m.Inbox)
                .where(m.Inbox.channel == KIND, m.Inbox.queue_id == queue_id, m.Inbox.active.is_(True))
                .order_by(m.Inbox.id)
                .limit(1)
            )
            if inbox is None:
                raise InvalidInput("this queue has no voice line to call from", field="queue_id")
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
            extension = user.sip_extension
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
            user = await session.get(m.User, supervisor_user_id)
            if user is None or not user.sip_extension:
                raise InvalidInput("you have no phone extension in your profile", field="sip_extension")
            extension = user.sip_extension
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
            conv = await session.scalar(
                select(m.Conversation).where(m.Conversation.id == conversation_id).with_for_update()
            )
            if conv is not None and conv.status in (S.ACTIVE, S.ON_HOLD):
                await conversations.do_end(session, conv, by="supervisor")
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


def setup(services: Services, sio: object = None) -> ChannelSetup | None:
    """Voice's entry point (``omni.channels.SetupChannel``); ``None`` unless
    ``OMNI_VOICE_ENABLED`` is on. The FastAGI server (the IVR) runs beside the AMI link,
    started and stopped with the adapter, and bot prompts on a call go to its sessions."""
    from channels.voice.agi import AgiServer  # the IVR pulls in the bot runner: only when voice is on

    if not services.settings.voice.enabled:
        return None
    channel = VoiceChannel(services)
    agi = AgiServer.from_settings(services, tts_app=services.settings.voice.tts_app)
    channel.prompt_sink = agi.prompt_sink
    channel.agi = agi
    return ChannelSetup(adapter=channel, post_commit_sinks=[channel.on_events])
