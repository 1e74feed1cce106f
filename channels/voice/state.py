"""The one owner of live call state, keyed by the caller's ``Linkedid`` (and every leg's
``Uniqueid``).

``CallRegistry.apply(event, now)`` is synchronous and does no I/O: it updates the calls and
returns *effects* — what the core or Asterisk must be told (enqueue this caller, the operator
answered, the caller hung up...). The adapter (``channels.voice.VoiceChannel``) performs the
effects in database transactions and AMI actions. Keeping the decisions here makes every
transition testable on plain events and keeps the adapter a thin executor.

The database (``calls`` + ``conversations``) is the durable truth; this registry is rebuilt
from it and from ``CoreShowChannels`` after a restart or an AMI reconnect (``resync``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from channels.voice.events import CallEvent, ChannelSnapshot, Kind

__all__ = ["Call", "CallRegistry", "Effect", "Ring"]

CALLER = "caller"
AGENT = "agent"
RING = "ring"
CONSULT = "consult"
SPY = "spy"
CUSTOMER = "customer"
"""The dialled customer of an outgoing call: the party the operator leg's ``Dial`` reached
(``DialBegin`` from the agent leg). Like an inbound caller it is the call's ``caller_*`` leg,
so hold, recording and hang-up act on the customer whichever side started the call."""


@dataclass(slots=True)
class Ring:
    """An operator's phone ringing for one offer (an originated leg with a known id)."""

    offer_id: int
    user_id: int
    uniqueid: str
    started_at: datetime
    channel: str = ""
    answered: bool = False


@dataclass(slots=True)
class Call:
    linkedid: str
    direction: str = "in"
    conversation_id: int | None = None
    inbox: str = ""
    caller_uniqueid: str = ""
    caller_channel: str = ""
    caller_number: str = ""
    caller_name: str = ""
    agent_uniqueid: str = ""
    agent_channel: str = ""
    agent_user_id: int | None = None
    rings: dict[int, Ring] = field(default_factory=dict)
    ring_seconds: float = 0.0
    answered_at: datetime | None = None
    bridged: bool = False
    enqueued: bool = False
    ended: bool = False
    attended_to_user_id: int | None = None
    consult_uniqueid: str = ""
    recording_path: str = ""


@dataclass(frozen=True, slots=True)
class Effect:
    """Something the adapter must do because of an event.

    kinds: ``enqueue`` (create/queue the conversation), ``answered`` (an operator picked up:
    accept the offer, bridge, record), ``ring_failed`` (stopped ringing unanswered),
    ``connected`` (click-to-call customer answered), ``caller_left``, ``agent_left``,
    ``phone_hold`` / ``phone_unhold`` (hold pressed on the operator's phone),
    ``attended_done`` (an attended transfer completed to ``user_id``).
    """

    kind: str
    call: Call
    offer_id: int | None = None
    user_id: int | None = None
    cause: str = ""


class CallRegistry:
    """Live calls. Not thread-safe: one task applies events in arrival order."""

    def __init__(self, wait_context: str = "omni-wait") -> None:
        self.wait_context = wait_context
        self.calls: dict[str, Call] = {}
        self.legs: dict[str, tuple[str, str]] = {}
        """Uniqueid → (call linkedid, role)."""
        self.by_conversation: dict[int, str] = {}

    # --- registration (from the adapter's own actions and from the database) -------------

    def add(self, call: Call) -> Call:
        self.calls[call.linkedid] = call
        if call.caller_uniqueid:
            self.legs[call.caller_uniqueid] = (call.linkedid, CALLER if call.direction == "in" else CUSTOMER)
        if call.agent_uniqueid:
            self.legs.setdefault(call.agent_uniqueid, (call.linkedid, AGENT))
        if call.conversation_id is not None:
            self.by_conversation[call.conversation_id] = call.linkedid
        return call

    def bind(self, call: Call, conversation_id: int) -> None:
        call.conversation_id = conversation_id
        self.by_conversation[conversation_id] = call.linkedid

    def expect_ring(self, call: Call, ring: Ring) -> None:
        """An originate to an operator is about to be sent with ``ChannelId = ring.uniqueid``."""
        call.rings[ring.offer_id] = ring
        self.legs[ring.uniqueid] = (call.linkedid, RING)

    def expect_leg(self, call: Call, uniqueid: str, role: str) -> None:
        self.legs[uniqueid] = (call.linkedid, role)

    def for_conversation(self, conversation_id: int) -> Call | None:
        key = self.by_conversation.get(conversation_id)
        return self.calls.get(key) if key else None

    def forget(self, call: Call) -> None:
        self.calls.pop(call.linkedid, None)
        if call.conversation_id is not None:
            self.by_conversation.pop(call.conversation_id, None)
        for uid in [u for u, (lid, _) in self.legs.items() if lid == call.linkedid]:
            del self.legs[uid]

    def ring_of(self, call: Call, offer_id: int) -> Ring | None:
        return call.rings.get(offer_id)

    # --- events ---------------------------------------------------------------------------

    def apply(self, ev: CallEvent, now: datetime) -> list[Effect]:
        leg = self.legs.get(ev.uniqueid)
        if leg is None:
            return self._unknown_leg(ev, now)
        call = self.calls.get(leg[0])
        if call is None:
            return []
        role = leg[1]
        if role == CALLER:
            return self._caller(call, ev, now)
        if role == RING:
            return self._ring(call, ev, now)
        if role == AGENT:
            return self._agent(call, ev, now)
        if role == CUSTOMER:
            return self._customer(call, ev, now)
        if role in (CONSULT, SPY) and ev.kind == Kind.HANGUP:
            del self.legs[ev.uniqueid]
        return []

    def _unknown_leg(self, ev: CallEvent, now: datetime) -> list[Effect]:
        if ev.kind == Kind.ENQUEUE:
            call = self.calls.get(ev.linkedid)
            if call is None:
                call = self.add(
                    Call(
                        linkedid=ev.linkedid,
                        caller_uniqueid=ev.uniqueid,
                        caller_channel=ev.channel,
                        caller_number=ev.caller_number,
                        caller_name=ev.caller_name,
                        inbox=ev.inbox,
                    )
                )
            return self._caller(call, ev, now)
        # Any other channel of a known call (a Local channel's ``;2`` half, the operator phone
        # it dials, a transfer target) is not the customer: only a dial from the agent leg
        # names the customer of an outgoing call (``_agent``).
        return []

    def _caller(self, call: Call, ev: CallEvent, now: datetime) -> list[Effect]:
        if ev.channel:
            call.caller_channel = ev.channel
        match ev.kind:
            case Kind.ENQUEUE:
                call.inbox = ev.inbox or call.inbox
                if call.enqueued:
                    return []
                call.enqueued = True
                return [Effect("enqueue", call)]
            case Kind.BRIDGE_ENTER:
                call.bridged = bool(call.agent_uniqueid)
            case Kind.BRIDGE_LEAVE:
                call.bridged = False
            case Kind.HANGUP:
                return self._end(call, "caller_left", ev.cause, now)
        return []

    def _ring(self, call: Call, ev: CallEvent, now: datetime) -> list[Effect]:
        ring = next((r for r in call.rings.values() if r.uniqueid == ev.uniqueid), None)
        if ring is None:
            return []
        if ev.channel:
            ring.channel = ev.channel
        if ev.kind == Kind.STATE and ev.state == "up" and not ring.answered:
            ring.answered = True
            call.ring_seconds += max(0.0, (now - ring.started_at).total_seconds())
            previous = call.agent_uniqueid
            if previous:
                self.legs[previous] = (call.linkedid, CONSULT)  # a released leg; hung up by the adapter
            call.agent_uniqueid = ring.uniqueid
            call.agent_channel = ring.channel
            call.agent_user_id = ring.user_id
            call.answered_at = call.answered_at or now
            self.legs[ring.uniqueid] = (call.linkedid, AGENT)
            del call.rings[ring.offer_id]
            return [Effect("answered", call, offer_id=ring.offer_id, user_id=ring.user_id)]
        if ev.kind == Kind.HANGUP or (ev.kind == Kind.ORIGINATE_RESPONSE and not ev.success):
            call.ring_seconds += max(0.0, (now - ring.started_at).total_seconds())
            call.rings.pop(ring.offer_id, None)
            self.legs.pop(ev.uniqueid, None)
            return [Effect("ring_failed", call, offer_id=ring.offer_id, user_id=ring.user_id, cause=ev.cause)]
        return []

    def _agent(self, call: Call, ev: CallEvent, now: datetime) -> list[Effect]:
        current = ev.uniqueid == call.agent_uniqueid
        if not current:
            if ev.kind == Kind.HANGUP:
                self.legs.pop(ev.uniqueid, None)
            return []
        if call.direction == "out":
            # Outgoing: the agent leg is the call's first leg (originated by the adapter);
            # the customer is whoever it dials.
            if ev.channel and ev.kind != Kind.ATTENDED_TRANSFER:
                call.agent_channel = ev.channel
            if ev.kind == Kind.DIAL_BEGIN and ev.peer_uniqueid:
                self.legs[ev.peer_uniqueid] = (call.linkedid, CUSTOMER)
                call.caller_uniqueid = ev.peer_uniqueid
                call.caller_channel = ev.peer_channel
                return []
            if ev.kind == Kind.ORIGINATE_RESPONSE and not ev.success:
                return self._end(call, "agent_left", ev.cause, now)  # the operator's phone never answered
        match ev.kind:
            case Kind.BRIDGE_ENTER:
                call.bridged = True
            case Kind.HOLD:
                return [Effect("phone_hold", call)]
            case Kind.UNHOLD:
                return [Effect("phone_unhold", call)]
            case Kind.ATTENDED_TRANSFER if ev.success:
                target = call.attended_to_user_id
                self.legs[ev.uniqueid] = (call.linkedid, CONSULT)
                call.agent_uniqueid = ev.peer_uniqueid
                call.agent_channel = ev.peer_channel
                call.agent_user_id = target
                if ev.peer_uniqueid:
                    self.legs[ev.peer_uniqueid] = (call.linkedid, AGENT)
                return [Effect("attended_done", call, user_id=target)]
            case Kind.HANGUP:
                self.legs.pop(ev.uniqueid, None)
                if call.attended_to_user_id is not None:
                    return []  # the transfer completes with the AttendedTransfer event
                return self._end(call, "agent_left", ev.cause, now)
        return []

    def _customer(self, call: Call, ev: CallEvent, now: datetime) -> list[Effect]:
        if ev.uniqueid != call.caller_uniqueid:
            if ev.kind == Kind.HANGUP:
                self.legs.pop(ev.uniqueid, None)  # an earlier dial attempt
            return []
        if ev.channel:
            call.caller_channel = ev.channel
        if ev.kind == Kind.BRIDGE_ENTER:
            call.bridged = bool(call.agent_uniqueid)
        elif ev.kind == Kind.BRIDGE_LEAVE:
            call.bridged = False
        if ev.kind == Kind.STATE and ev.state == "up" and call.answered_at is None:
            call.answered_at = now
            return [Effect("connected", call)]
        if ev.kind == Kind.HANGUP:
            return self._end(call, "caller_left", ev.cause, now)
        return []

    def _end(self, call: Call, kind: str, cause: str, now: datetime) -> list[Effect]:
        if call.ended:
            return []
        call.ended = True
        for ring in call.rings.values():
            call.ring_seconds += max(0.0, (now - ring.started_at).total_seconds())
        return [Effect(kind, call, cause=cause)]

    # --- resync ---------------------------------------------------------------------------

    def reconcile(self, live: Iterable[ChannelSnapshot], now: datetime) -> list[Effect]:
        """After a reconnect: compare what we hold with what Asterisk says is alive.

        Legs that vanished while the link was down get a synthetic hangup (so a caller who
        hung up is not left queued forever); callers waiting in the wait context that we
        never saw get an ``enqueue`` (idempotent in the core on the Linkedid); an operator
        leg that was answered meanwhile gets its ``answered``.
        """
        alive = {s.uniqueid: s for s in live}
        effects: list[Effect] = []
        for out in self.calls.values():
            # An outgoing call whose dial was missed: the customer is who shares the agent
            # leg's bridge (never another channel of the call, e.g. a Local ``;2`` half).
            agent = alive.get(out.agent_uniqueid)
            if out.direction == "out" and not out.caller_uniqueid and agent is not None and agent.bridge_id:
                peer = next(
                    (
                        s
                        for s in alive.values()
                        if s.bridge_id == agent.bridge_id and s.uniqueid != agent.uniqueid
                    ),
                    None,
                )
                if peer is not None:
                    self.legs[peer.uniqueid] = (out.linkedid, CUSTOMER)
                    out.caller_uniqueid, out.caller_channel = peer.uniqueid, peer.channel
        for uid, (linkedid, _role) in list(self.legs.items()):
            call = self.calls.get(linkedid)
            if call is None:
                continue
            snap = alive.get(uid)
            if snap is None:
                effects += self.apply(CallEvent(Kind.HANGUP, uid, linkedid, cause="gone"), now)
            elif snap.state == "up":
                effects += self.apply(CallEvent(Kind.STATE, uid, linkedid, snap.channel, "up"), now)
        for snap in alive.values():
            if snap.uniqueid in self.legs or snap.context != self.wait_context:
                continue
            if snap.uniqueid != snap.linkedid:
                continue
            effects += self.apply(
                CallEvent(
                    Kind.ENQUEUE,
                    snap.uniqueid,
                    snap.linkedid,
                    snap.channel,
                    snap.state,
                    snap.caller_number,
                    snap.caller_name,
                    snap.context,
                    snap.exten,
                ),
                now,
            )
        return effects
