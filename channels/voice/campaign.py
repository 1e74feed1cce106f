"""Campaign calls of the voice adapter: ``omni.channels.PlacesAttempts`` for channel "voice".

``place(order)`` sends an async ``Originate`` to the customer's number (customer first, through
the outbound context as click-to-call dials); what Asterisk then reports about that call —
``DialEnd``, ``Hangup`` causes, ``OriginateResponse``, in whatever order and as often as it
comes — is gathered per attempt here, in the adapter's one event task, before the call
registry sees the event. The attempt's end goes to the core through
``omni.domain.outbound.dialing`` / ``lifecycle.do_close_attempt`` in a transaction of its own.

Answered: the conversation is created for the reserved operator (``do_start_outgoing``, the
card's variables from the order), the operator's phone is originated and, once it answers,
bridged with the customer; from then on it is an ordinary outgoing call of the registry (hold,
transfer, hang-up, recording). The customer leaving before that, or an operator who can't be
reached, is ``dropped``. Events map back to an attempt by ids the adapter chose
(``ChannelId`` ``omni-a<attempt>``, ``ActionID`` ``omni-a<attempt>-…``), so they are understood
after a restart too; the ring deadline (``dialing.RING_DEADLINE``) ends what nobody reports.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.voice import control, outcomes
from channels.voice.effects import KIND, VoiceEffects
from channels.voice.events import CallEvent, Kind
from channels.voice.state import Call
from omni.channels import AttemptOrder, ChannelNotReady
from omni.db import models as m
from omni.db.models.outbound import DialMode, Outcome
from omni.domain import calls, outgoing
from omni.domain.errors import Conflict, DomainError, InvalidInput
from omni.domain.outbound import agentless, dialing

log = logging.getLogger(__name__)

__all__ = ["Dial", "VoiceCampaign", "attempt_of"]

_CUSTOMER = re.compile(r"^omni-a(\d+)")
_OPERATOR = re.compile(r"^omni-p(\d+)")


def attempt_of(ident: str) -> tuple[int, bool] | None:
    """``(attempt id, is the operator's leg)`` for an id the adapter gave a campaign call."""
    if found := _CUSTOMER.match(ident):
        return int(found.group(1)), False
    if found := _OPERATOR.match(ident):
        return int(found.group(1)), True
    return None


class _Closed(Exception):
    """The attempt ended before its call was answered (the ring deadline)."""


@dataclass(slots=True)
class Dial:
    """One placed attempt as the adapter sees it (what Asterisk said so far)."""

    attempt_id: int
    phone: str
    operator_id: int | None
    inbox_id: int | None
    queue_id: int
    ring_seconds: int
    variables: dict[str, Any] = field(default_factory=dict)
    channel: str = ""
    """The customer leg's channel name (``Local/…;1``)."""
    dial_status: str = ""
    hangup_cause: str = ""
    hangup_text: str = ""
    reason: str = ""
    answered_at: datetime | None = None
    conversation_id: int | None = None
    bridged: bool = False
    done: bool = False
    seen: bool = False
    """Asterisk reported the customer leg (``;1``), so its ``Hangup`` will come."""
    responded: bool = False
    """The ``OriginateResponse`` (or its grace after the hang-up) was applied."""
    hung_up_at: datetime | None = None
    """When the unanswered customer leg hung up: the attempt's end time."""
    dial_mode: str = ""

    @property
    def leg(self) -> str:
        return f"omni-a{self.attempt_id}"

    @property
    def agent_leg(self) -> str:
        return f"omni-p{self.attempt_id}"


class VoiceCampaign(VoiceEffects):
    """``PlacesAttempts`` for voice; ``VoiceChannel`` feeds ``_campaign_event`` every event."""

    ORIGINATE_GRACE_SECONDS = 2.0
    """How long after an unanswered customer leg hangs up its ``OriginateResponse`` may take;
    past it the attempt ends with the signals gathered (the response was lost)."""

    _dials: dict[int, Dial]
    _dials_done: set[int]
    """Attempts this node ended: their later events (the rest of an answered call) need no
    database read to be ignored."""

    async def place(self, order: AttemptOrder) -> None:
        """Send the ``Originate`` for one attempt; returns once Asterisk has it queued.

        ``ChannelNotReady`` while the AMI link is down, with nothing stored (the engine refuses
        the attempt and the target is pending again)."""
        if order.operator_id is None and order.dial_mode != DialMode.AGENTLESS:
            raise InvalidInput("a campaign call needs an operator to connect it to", field="operator_id")
        if not self.ami.ready:
            raise ChannelNotReady("the AMI link to Asterisk is down")
        action_id = f"omni-a{order.attempt_id}-{uuid.uuid4().hex[:8]}"
        async with self.services.db.transaction() as session:
            attempt = await dialing.locked_attempt(session, order.attempt_id)
            if attempt is None or attempt.ended_at is not None:
                raise Conflict("attempt {attempt_id} is not open", attempt_id=order.attempt_id)
            if attempt.external_id:  # a second hand-off of one order must not ring twice
                raise Conflict("attempt {attempt_id} was already placed", attempt_id=order.attempt_id)
            inbox = await self._campaign_inbox(session, order)
            started_at = attempt.started_at
            await dialing.do_mark_placed(session, attempt, action_id, ring_seconds=order.ring_seconds)
            context = str((inbox.config or {}).get("outbound_context") or self.settings.outbound_context)
        dial = Dial(
            attempt_id=order.attempt_id,
            phone=order.phone,
            operator_id=order.operator_id,
            inbox_id=inbox.id,
            queue_id=order.queue_id,
            ring_seconds=order.ring_seconds,
            dial_mode=order.dial_mode,
            variables={
                **order.variables,
                "campaign_id": order.campaign_id,
                "target_id": order.target_id,
                "attempt_id": order.attempt_id,
            },
        )
        self._dials[order.attempt_id] = dial
        action = control.campaign_call(
            self.settings,
            number=order.phone,
            context=context,
            caller_id=order.caller_id,
            ring_seconds=order.ring_seconds,
            action_id=action_id,
            uniqueid=dial.leg,
            attempt_id=order.attempt_id,
            campaign_id=order.campaign_id,
        )
        try:
            self.ami.fire(action, self._campaign_responded(dial.leg, action_id))
        except ChannelNotReady:
            self._dials.pop(order.attempt_id, None)
            async with self.services.db.transaction() as session:
                attempt = await dialing.locked_attempt(session, order.attempt_id)
                if attempt is not None and attempt.ended_at is None:
                    await dialing.do_unplace(session, attempt, started_at)
            raise

    async def _campaign_inbox(self, session: Any, order: AttemptOrder) -> m.Inbox:
        inbox = await session.get(m.Inbox, order.inbox_id) if order.inbox_id is not None else None
        if inbox is None or inbox.channel != KIND:
            inbox = await calls.outgoing_voice_inbox(session, order.queue_id)
        assert isinstance(inbox, m.Inbox)
        return inbox

    def _campaign_responded(self, leg: str, action_id: str) -> Any:
        """The ``Originate``'s response: ``Response: Error`` at once, or the
        ``OriginateResponse`` when the call was answered or failed. Queued as an event, so it
        is applied in order with the call's other events."""

        def responded(result: Any) -> None:
            last = result[-1] if isinstance(result, list) else result
            ok = str(last.get("Response", "")).lower() == "success"
            if ok and str(last.get("Event", "")).lower() != "originateresponse":
                return  # only "queued": the OriginateResponse follows (or is lost)
            cause = str(last.get("Reason", "") or ("" if ok else last.get("Message", "") or "0"))
            ev = CallEvent(
                Kind.ORIGINATE_RESPONSE,
                leg,
                leg,
                channel=str(last.get("Channel", "") or ""),
                success=ok,
                cause=cause,
                extra={"action_id": action_id},
            )
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

        return responded

    # --- events ----------------------------------------------------------------------------

    async def _campaign_event(self, ev: CallEvent, now: datetime) -> None:
        """Gather one event of a campaign call; act when it answers, connects or ends."""
        ref = attempt_of(ev.linkedid) or attempt_of(ev.uniqueid) or attempt_of(ev.extra.get("action_id", ""))
        if ref is None:
            return
        attempt_id, operator_leg = ref
        dial = await self._dial_for(attempt_id)
        if dial is None or dial.done:
            return
        try:
            if operator_leg:
                await self._operator_event(dial, ev, now)
            else:
                await self._customer_event(dial, ev, now)
        except (DomainError, ChannelNotReady) as exc:
            log.warning("voice: campaign attempt %s: %s not applied: %s", attempt_id, ev.kind, exc)

    async def _customer_event(self, dial: Dial, ev: CallEvent, now: datetime) -> None:
        own = ev.uniqueid == dial.leg
        if own and ev.channel:
            dial.channel = ev.channel
            dial.seen = True
        match ev.kind:
            case Kind.DIAL_END:
                telling = ev.dial_status not in ("", "ANSWER", "NOANSWER", "CANCEL")
                if telling or not dial.dial_status:
                    dial.dial_status = ev.dial_status if ev.dial_status != "ANSWER" else dial.dial_status
            case Kind.HANGUP:
                cause = str(ev.extra.get("cause", ""))
                if outcomes.specific_cause(cause) and not dial.hangup_cause:
                    dial.hangup_cause, dial.hangup_text = cause, ev.cause
                if own:
                    await self._customer_gone(dial, ev, now)
            case Kind.STATE if own and ev.state == "up":
                await self._customer_answered(dial, now)
            case Kind.ORIGINATE_RESPONSE if ev.success:
                await self._customer_answered(dial, now)
            case Kind.ORIGINATE_RESPONSE if not dial.responded:
                # Its response comes through panoramisk's future callback, so it is applied
                # after the events that arrived with it; the leg's Hangup may precede it.
                dial.responded = True
                dial.reason = ev.cause if not ev.extra.get("grace") else ""
                if dial.hung_up_at is not None or not dial.seen:
                    await self._unanswered(dial, dial.hung_up_at or now)

    async def _customer_gone(self, dial: Dial, ev: CallEvent, now: datetime) -> None:
        if dial.answered_at is None:
            dial.hung_up_at = dial.hung_up_at or now
            if dial.responded:
                await self._unanswered(dial, now)
            else:  # the OriginateResponse follows; if it is lost, end with what we know
                grace = CallEvent(
                    Kind.ORIGINATE_RESPONSE, dial.leg, dial.leg, success=False, extra={"grace": "1"}
                )
                asyncio.get_running_loop().call_later(
                    self.ORIGINATE_GRACE_SECONDS,
                    self._events.put_nowait,
                    (grace, datetime.now(UTC), time.perf_counter()),
                )
        elif not dial.bridged:
            await self._finish(
                dial,
                Outcome.DROPPED,
                f"customer hung up before the operator answered ({ev.cause or 'hang-up'})",
                now,
            )
        # A bridged call's end is the registry's (wrap-up); the attempt ended when bridged.

    async def _unanswered(self, dial: Dial, now: datetime) -> None:
        outcome, cause = outcomes.failure(dial.dial_status, dial.hangup_cause, dial.hangup_text, dial.reason)
        await self._finish(dial, outcome, cause, now)

    async def _finish(self, dial: Dial, outcome: Outcome, cause: str, now: datetime) -> None:
        dial.done = True
        self._dials.pop(dial.attempt_id, None)
        if len(self._dials_done) > 10_000:
            self._dials_done.clear()
        self._dials_done.add(dial.attempt_id)
        async with self.services.db.transaction() as session:
            await dialing.do_end_attempt(
                session,
                dial.attempt_id,
                outcome,
                cause=cause,
                now=now,
                answered_at=dial.answered_at,
            )
        log.info("voice: campaign attempt %s: %s (%s)", dial.attempt_id, outcome, cause)

    async def _customer_answered(self, dial: Dial, now: datetime) -> None:
        """The customer picked up: the operator's conversation (card variables), then the
        operator's phone. Nobody to connect (status, capacity, no extension, the attempt
        already ended by its deadline) hangs the customer up: ``dropped``."""
        if dial.answered_at is not None:
            return
        dial.answered_at = now
        if dial.dial_mode == DialMode.AGENTLESS:
            await self._answered_agentless(dial, now)
            return
        assert dial.operator_id is not None
        try:
            async with self.services.db.transaction() as session:
                attempt = await dialing.locked_attempt(session, dial.attempt_id)
                if attempt is None or attempt.ended_at is not None:
                    raise _Closed  # its ring deadline ended it: nobody waits for this answer
                user = await calls.phone_user(session, dial.operator_id)
                if user is None or not user.sip_extension:
                    raise InvalidInput("the operator has no phone extension", field="sip_extension")
                extension = user.sip_extension
                name = str(dial.variables.get("name") or "")
                # The reservation ends at the answer (capacity stops counting the attempt), so
                # the conversation that takes its place fits the operator's capacity.
                attempt.answered_at = now
                await session.flush()
                conv = await outgoing.do_start_outgoing(
                    session,
                    dial.operator_id,
                    outgoing.OutgoingContact(
                        inbox_id=dial.inbox_id or 0,
                        identity_kind="phone",
                        identity_value=dial.phone,
                        contact_phone=dial.phone,
                        contact_name=name,
                        external_id=dial.leg,
                        medium=m.Medium.VOICE,
                        note=f"Campaign call to {dial.phone}",
                        variables={**dial.variables, "linkedid": dial.leg},
                    ),
                    now=now,
                )
                await dialing.do_attempt_answered(session, attempt, conversation_id=conv.id, now=now)
                call = Call(
                    linkedid=dial.leg,
                    direction="out",
                    conversation_id=conv.id,
                    caller_uniqueid=dial.leg,
                    caller_channel=dial.channel,
                    caller_number=dial.phone,
                    caller_name=name,
                    agent_uniqueid=dial.agent_leg,
                    agent_user_id=dial.operator_id,
                    answered_at=now,
                    enqueued=True,
                )
                await self._save_call(call, session=session, inbox_id=dial.inbox_id)
                dial.conversation_id = conv.id
        except _Closed:
            log.info("voice: campaign attempt %s answered after it ended; hanging up", dial.attempt_id)
            dial.done = True
            self._dials.pop(dial.attempt_id, None)
            self._dials_done.add(dial.attempt_id)
            await self._quietly(control.hangup(dial.channel or dial.leg))
            return
        except DomainError as exc:
            log.warning("voice: campaign attempt %s answered, nobody to connect: %s", dial.attempt_id, exc)
            await self._finish(dial, Outcome.DROPPED, f"operator not available: {exc}", now)
            await self._quietly(control.hangup(dial.channel or dial.leg))
            return
        self.registry.add(call)
        action = control.campaign_agent(
            self.settings,
            extension,
            dial.agent_leg,
            ring_seconds=dial.ring_seconds,
            caller_number=dial.phone,
            caller_name=name,
            conversation_id=conv.id,
            attempt_id=dial.attempt_id,
        )
        try:
            self.ami.fire(action, self._originate_failed(dial.agent_leg))
        except ChannelNotReady as exc:
            ev = CallEvent(Kind.ORIGINATE_RESPONSE, dial.agent_leg, success=False, cause=str(exc))
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

    async def _answered_agentless(self, dial: Dial, now: datetime) -> None:
        """An agentless campaign's customer answered: the conversation and its scenario
        (``agentless.do_start_agentless``), then the customer's channel is redirected to the
        agentless context, whose FastAGI ``outbound`` route plays the scenario and stores the
        result. From then on the call is the registry's like an inbound caller's (a hand-off
        queues it in the unified line, its hang-up ends the conversation) and this attempt's
        end is the IVR's (``agentless.do_store_result``). A scenario that can't start hangs
        the customer up: ``dropped``."""
        name = str(dial.variables.get("name") or "")
        try:
            async with self.services.db.transaction() as session:
                conv_id = await agentless.do_start_agentless(session, dial.attempt_id, now)
                call = Call(
                    linkedid=dial.leg,
                    conversation_id=conv_id,
                    caller_uniqueid=dial.leg,
                    caller_channel=dial.channel,
                    caller_number=dial.phone,
                    caller_name=name,
                    enqueued=True,  # the wait context's OmniEnqueue after a hand-off is this call
                )
                await self._save_call(call, session=session, inbox_id=dial.inbox_id, direction="out")
        except DomainError as exc:
            log.warning(
                "voice: agentless attempt %s answered, scenario not started: %s", dial.attempt_id, exc
            )
            await self._finish(dial, Outcome.DROPPED, f"scenario not started: {exc}", now)
            await self._quietly(control.hangup(dial.channel or dial.leg))
            return
        dial.conversation_id = conv_id
        dial.done = True
        self._dials.pop(dial.attempt_id, None)
        self._dials_done.add(dial.attempt_id)
        self.registry.add(call)
        await self._quietly(control.redirect(dial.channel or dial.leg, self.settings.agentless_context))

    async def _operator_event(self, dial: Dial, ev: CallEvent, now: datetime) -> None:
        """The operator's phone: answered → bridged with the customer, the attempt
        ``answered``; it never answers (busy, unreachable, not picked up) → ``dropped`` (the
        registry then ends the call: the customer is hung up, the conversation wrapped up)."""
        if dial.bridged or dial.answered_at is None or ev.uniqueid != dial.agent_leg:
            return
        if ev.kind == Kind.STATE and ev.state == "up":
            call = self.registry.for_conversation(dial.conversation_id) if dial.conversation_id else None
            if call is None or call.ended:
                return
            dial.bridged = True
            agent = call.agent_channel or ev.channel or dial.agent_leg
            await self._quietly(control.bridge(call.caller_channel or dial.channel or dial.leg, agent))
            if self._record(call):
                await self._save_call(call)
            await self._finish(dial, Outcome.ANSWERED, "connected to the operator", now)
        elif ev.kind == Kind.HANGUP or (ev.kind == Kind.ORIGINATE_RESPONSE and not ev.success):
            why = ev.cause or "no answer"
            await self._finish(dial, Outcome.DROPPED, f"operator unreachable: {why}", now)

    async def _dial_for(self, attempt_id: int) -> Dial | None:
        """The attempt's state, rebuilt from its row when this node did not place it (a
        restart): late events still end it."""
        dial = self._dials.get(attempt_id)
        if dial is not None or attempt_id in self._dials_done:
            return dial
        async with self.services.db.transaction() as session:
            attempt = await session.get(m.CampaignAttempt, attempt_id)
            if attempt is None or attempt.ended_at is not None or not attempt.external_id:
                return None
            if attempt.answered_at is not None:
                return None  # answered before a restart: the registry's resync owns the call
            campaign = await session.get(m.Campaign, attempt.campaign_id)
            assert campaign is not None
            dial = Dial(
                attempt_id=attempt.id,
                phone=attempt.phone,
                operator_id=attempt.operator_id,
                inbox_id=campaign.inbox_id,
                queue_id=campaign.queue_id,
                ring_seconds=campaign.ring_seconds,
                dial_mode=campaign.dial_mode,
                variables={
                    "campaign_id": campaign.id,
                    "target_id": attempt.target_id,
                    "attempt_id": attempt.id,
                },
            )
        self._dials[attempt_id] = dial
        return dial

    # --- resync ----------------------------------------------------------------------------

    async def _resync(self) -> None:
        await super()._resync()
        live = await self._live_channels()
        await self._reconcile_attempts({snap.linkedid for snap in live}, datetime.now(UTC))

    async def _reconcile_attempts(self, live_linkedids: set[str], now: datetime) -> None:
        """After a login (and so after a restart): placed attempts whose call Asterisk no
        longer has and that nobody here follows are ended instead of staying in progress —
        answered ones as ``dropped`` (no operator was connected), unanswered ones past their
        ring deadline as ``no_answer``; the rest are left to their events and deadline."""
        async with self.services.db.transaction() as session:
            rows = [
                (a.id, a.answered_at, a.started_at) for a in await dialing.placed_open_attempts(session, KIND)
            ]
        open_ids = {row[0] for row in rows}
        for attempt_id in [i for i in self._dials if i not in open_ids]:
            self._dials.pop(attempt_id, None)  # ended by its ring deadline; no event came since
        for attempt_id, answered_at, started_at in rows:
            leg = f"omni-a{attempt_id}"
            if attempt_id in self._dials or leg in live_linkedids:
                continue
            if answered_at is not None:
                async with self.services.db.transaction() as session:
                    await dialing.do_end_attempt(
                        session, attempt_id, Outcome.DROPPED, cause="call gone before the operator", now=now
                    )
            elif started_at is not None:
                async with self.services.db.transaction() as session:
                    attempt = await dialing.locked_attempt(session, attempt_id)
                    if attempt is None or attempt.ended_at is not None:
                        continue
                    campaign = await session.get(m.Campaign, attempt.campaign_id)
                    ring = campaign.ring_seconds if campaign is not None else 30
                    if (now - started_at).total_seconds() > ring + dialing.ANSWER_MARGIN_SECONDS:
                        await dialing.do_end_attempt(
                            session,
                            attempt_id,
                            Outcome.NO_ANSWER,
                            cause="call lost while Omni was away",
                            now=now,
                        )
