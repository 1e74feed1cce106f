"""The voice adapter: ``VoiceChannel``, its lifecycle and the AMI event loop.

AMI events are normalised (``events``), queued and applied by one task in arrival order: the
registry (``state``) decides the effects, ``effects`` performs them in the core and on
Asterisk, ``call_control`` implements ``omni.channels.CallControl``. This module ties them to
the link (``ami.AmiLink``) and to the FastAGI server (``agi``) the composition root attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from channels.voice.ami import AmiLink
from channels.voice.call_control import VoiceCallControl
from channels.voice.campaign import Dial, VoiceCampaign, attempt_of
from channels.voice.effects import KIND
from channels.voice.events import CallEvent, ami_event_to_call_event
from channels.voice.state import CallRegistry, Effect
from omni.channels import AttemptOrder, ChannelAuthFailed, ChannelNotReady, DeliveryReceipt, OutboundMessage
from omni.domain import calls
from omni.domain import errors as domain_errors
from omni.domain.events import DomainEvent, events_by_ids
from omni.lease import Lease
from omni.services import Services

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from channels.voice.agi import AgiServer

log = logging.getLogger(__name__)

__all__ = ["LEASE", "VoiceChannel"]

LEASE = "voice:ami"
"""The lease (``omni.lease``) whose holder runs the one AMI link of the cluster."""
LINK_TOPIC = "voice_link"
"""Bus topic: the holder's AMI link state, told on every change and every lease check (no
``:`` in bus topics: ``RedisBus`` takes the topic from the channel name's last segment)."""
EVENTS_TOPIC = "voice_events"
"""Bus topic: ids of committed voice events another node's relay dispatched, for the holder."""
ASK_TOPIC = "voice_ask"
"""Bus topic: a standby node asks the holder to do a call action (``CallControl``, ``place``)."""
ANSWER_TOPIC = "voice_answer"
"""Bus topic: the holder's answer to one ``voice_ask`` (the result, or the error to raise)."""
HOLDER_SILENT_CHECKS = 4
"""A standby hearing nothing from a holder for this many lease checks counts the link as down."""

BATCH_EVENTS = 500
"""At most this many queued events are taken and applied in one go (``_apply_batch``)."""
BATCHED_EFFECTS = frozenset({"enqueue", "caller_left", "agent_left"})
"""Effects whose writes may share a transaction with their neighbours: a call arriving and a
call ending touch that call's own conversation and ``calls`` row only, and nothing they
imply on Asterisk must happen before the commit."""
BATCH_LANES = 4
"""Transactions of one batch that run at the same time (``_write_batch``)."""
BATCH_EFFECTS = 32
"""At most this many effects per transaction: bounds how long their rows stay locked (the
router skips locked conversations) and how much one failure makes redo one by one."""


Pending = tuple[Effect, datetime, float | None]
"""An effect waiting for its batch's transaction: (effect, event time, arrival clock)."""


def _campaign_related(ev: CallEvent) -> bool:
    """Whether ``_campaign_event`` acts on this event (the ids the adapter gave a campaign call)."""
    return bool(
        attempt_of(ev.linkedid) or attempt_of(ev.uniqueid) or attempt_of(ev.extra.get("action_id", ""))
    )


class VoiceChannel(VoiceCallControl, VoiceCampaign):
    """The voice adapter. One per node, on every node; only the holder of the ``voice:ami``
    lease connects to Asterisk (every AMI session gets every event, so two would apply each
    twice), the others stand by and take over within seconds when it dies, resynchronising the
    calls from the database and ``CoreShowChannels``. The FastAGI server runs on every node.
    It places campaign calls too (``omni.channels.PlacesAttempts``, ``channels.voice.campaign``)."""

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
        self._dials: dict[int, Dial] = {}
        """Campaign calls placed and not ended yet, by attempt id."""
        self._dials_done: set[int] = set()
        self._waiting: set[int] = set()
        """Answered predictive calls looking for a free operator (``channels.voice.campaign``)."""
        self.connect_latencies: deque[float] = deque(maxlen=100_000)
        """Seconds from a caller's ``OmniEnqueue`` arriving to the operator's Originate being sent."""
        self.applied = 0
        """AMI events applied (normalised, state updated, effects persisted)."""
        self.batches = 0
        """Transactions that wrote several events' effects at once (``_write_batch``)."""
        self.prompt_sink: Any = None
        """Set by the FastAGI side to speak bot messages to a caller (``send``)."""
        self.agi: AgiServer | None = None
        """The FastAGI server (IVR), attached by the composition root; started and stopped
        with the adapter so an install with voice on always answers Asterisk's ``AGI()``."""
        self.lease: Lease | None = None
        """``voice:ami`` on this node (``None`` without a lease manager: always the owner)."""
        self._holder_heard = 0.0
        self._beacon: asyncio.Task[None] | None = None
        self._forwarded_tasks: set[asyncio.Task[None]] = set()
        self._asked: dict[str, asyncio.Future[dict[str, Any]]] = {}
        """This node's requests to the holder awaiting an answer, by request id."""

    # --- ChannelAdapter -----------------------------------------------------------------

    async def start(self) -> None:
        if self.agi is not None:
            await self.agi.start()  # every node: AGI sessions are per call (docs/voice.md)
        self._worker = asyncio.create_task(self._run(), name="voice-events")
        # An operator may have become free: answered predictive calls look again.
        self.services.bus.subscribe("routing", self._operator_may_be_free)
        leases = self.services.leases
        if leases is None:
            # Nothing can ring before the first login: calls wait in line until the link is up.
            self._link_state(False, "connecting to Asterisk")
            await self.ami.start()
            return
        # Until this node owns the link or hears from the node that does, calls wait in line.
        self.services.adapters.set_available(KIND, False, "the AMI link to Asterisk is down (starting)")
        self.services.bus.subscribe(LINK_TOPIC, self._holder_said)
        self.services.bus.subscribe(EVENTS_TOPIC, self._forwarded)
        self.services.bus.subscribe(ASK_TOPIC, self._asked_by_standby)
        self.services.bus.subscribe(ANSWER_TOPIC, self._answered_by_holder)
        self.lease = leases.lease(LEASE, on_acquired=self._own_link, on_lost=self._disown_link)
        self._holder_heard = time.monotonic()
        await self.lease.start()
        self._beacon = asyncio.create_task(self._beacon_forever(leases.check_seconds), name="voice-beacon")

    async def stop(self) -> None:
        if self._beacon is not None:
            self._beacon.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beacon
            self._beacon = None
        if self.lease is not None:
            await self.lease.stop()  # stops the link (``_disown_link``), then frees the lease
            self.lease = None
        else:
            await self.ami.stop()
        if self.agi is not None:
            await self.agi.stop()
        for task in list(self._forwarded_tasks):
            task.cancel()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    def _link_state(self, up: bool, reason: str) -> None:
        """The AMI link is what lets a phone ring: while it is down (or resynchronising) the
        router keeps voice conversations in line and withdraws their ringing offers without
        penalty; it offers them again as soon as this reports the link back. The holder tells
        the standby nodes too, whose routers must do the same."""
        why = f"the AMI link to Asterisk is down ({reason})" if reason else "the AMI link to Asterisk is down"
        self.services.adapters.set_available(KIND, up, "" if up else why)
        if self.owner:
            self.services.bus.publish(
                LINK_TOPIC, {"node": self.services.node_id, "up": up, "why": "" if up else why}
            )

    @property
    def owner(self) -> bool:
        """Whether this node runs the AMI link (holds ``voice:ami``, or has no lease manager)."""
        return self.lease is None or self.lease.held

    def readiness(self) -> str:
        """For ``/readyz``: ``"ok"`` while the AMI link is logged in, else why it is down; a
        standby node is ready (``standby …``): it serves everything but the link."""
        if not self.owner:
            return "standby: another node holds the AMI link (lease voice:ami)"
        return self.ami.readiness()

    # --- ownership of the AMI link (lease ``voice:ami``) -----------------------------------

    async def _own_link(self) -> None:
        """This node took the lease: forget what it knew as a standby (or as an earlier owner)
        and connect; the login's resync (``_resync``) rebuilds the calls from the database and
        from ``CoreShowChannels``, so calls in progress carry on where the last owner left them."""
        log.info("voice: this node (%s) now runs the AMI link", self.services.node_id)
        self.registry = CallRegistry(self.settings.wait_context)
        self._enqueued_at.clear()
        self._link_state(False, "connecting to Asterisk")
        await self.ami.start()

    async def _disown_link(self) -> None:
        """The lease is gone (PostgreSQL lost, or stopping): hang up on Asterisk at once, so
        the next owner's session is the only one applying events."""
        log.info("voice: this node (%s) no longer runs the AMI link", self.services.node_id)
        await self.ami.stop()
        self._holder_heard = time.monotonic()
        self.services.adapters.set_available(KIND, False, "the AMI link is moving to another node")

    def _holder_said(self, data: dict[str, Any]) -> None:
        """A standby's router follows the holder's link: voice is offered only while it is up."""
        if self.owner or data.get("node") == self.services.node_id:
            return
        self._holder_heard = time.monotonic()
        self.services.adapters.set_available(KIND, bool(data.get("up")), str(data.get("why") or ""))

    async def _beacon_forever(self, every: float) -> None:
        """The holder repeats its link state each lease check (a standby that started later,
        or missed a message, learns it); a standby that hears nothing for a while (the holder
        died and nobody has taken over yet) keeps voice conversations in line."""
        while True:
            await asyncio.sleep(every)
            if self.owner:
                up = self.ami.ready
                self.services.bus.publish(
                    LINK_TOPIC,
                    {"node": self.services.node_id, "up": up, "why": "" if up else self.ami.readiness()},
                )
            elif time.monotonic() - self._holder_heard > every * HOLDER_SILENT_CHECKS:
                self.services.adapters.set_available(
                    KIND, False, "no node runs the AMI link to Asterisk (lease voice:ami is free)"
                )

    async def relay_sink(self, events: Sequence[DomainEvent]) -> None:
        """The relay's post-commit sink: any node's relay may dispatch a batch, but only the
        link's holder can act on Asterisk, so a standby hands the voice events' ids to it."""
        if self.owner:
            await self.on_events(events)
            return
        ids = [e.id for e in events if e.payload.get("channel") == KIND and e.conversation_id is not None]
        if ids:
            self.services.bus.publish(EVENTS_TOPIC, {"ids": ids, "node": self.services.node_id})

    def _forwarded(self, data: dict[str, Any]) -> None:
        if not self.owner or data.get("node") == self.services.node_id:
            return
        task = asyncio.get_running_loop().create_task(self._act_on_forwarded([int(i) for i in data["ids"]]))
        self._forwarded_tasks.add(task)
        task.add_done_callback(self._forwarded_tasks.discard)

    async def _act_on_forwarded(self, ids: list[int]) -> None:
        try:
            async with self.services.db.transaction() as session:
                events = await events_by_ids(session, ids)
            await self.on_events(events)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("voice: events %s forwarded by another node failed", ids)

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        """A call has no text channel; bot prompts go to the IVR (FastAGI) when it is plugged in."""
        if self.prompt_sink is not None:
            receipt: DeliveryReceipt = await self.prompt_sink(msg)
            return receipt
        return DeliveryReceipt("failed", error="a phone call can't show text")

    # --- call actions on a standby node: done by the holder ------------------------------
    # An operator's socket (hold, hang up, transfer, click-to-call, listen) and the campaign
    # scheduler run on any node; only the holder has the AMI link and the live call state, so a
    # standby asks it over the bus and waits for its answer: the same result or the same
    # refusal (``Conflict`` with Asterisk's reason, ``InvalidInput``, ``ChannelNotReady``) as
    # on the holder itself, inside the caller's transaction. Nobody answering in time (the
    # holder just died, Redis is down) is ``ChannelNotReady``: "the phone system is not reachable".

    async def hold(self, conversation_id: int, on: bool) -> None:
        if self.owner:
            return await super().hold(conversation_id, on)
        await self._ask("hold", conversation_id=conversation_id, on=on)

    async def hangup(self, conversation_id: int) -> None:
        if self.owner:
            return await super().hangup(conversation_id)
        await self._ask("hangup", conversation_id=conversation_id)

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
        kwargs: dict[str, Any] = dict(
            to_extension=to_extension,
            to_user_id=to_user_id,
            to_queue_id=to_queue_id,
            to_scenario=to_scenario,
            attended=attended,
            by_user_id=by_user_id,
        )
        if self.owner:
            return await super().transfer(conversation_id, **kwargs)
        await self._ask("transfer", conversation_id=conversation_id, **kwargs)

    async def originate(self, user_id: int, number: str, queue_id: int) -> int:
        if self.owner:
            return await super().originate(user_id, number, queue_id)
        return int(await self._ask("originate", user_id=user_id, number=number, queue_id=queue_id))

    async def spy(self, supervisor_user_id: int, conversation_id: int, mode: str) -> None:
        if self.owner:
            return await super().spy(supervisor_user_id, conversation_id, mode)
        await self._ask(
            "spy", supervisor_user_id=supervisor_user_id, conversation_id=conversation_id, mode=mode
        )

    async def force_end(self, conversation_id: int, by_user_id: int | None = None) -> None:
        if self.owner:
            return await super().force_end(conversation_id, by_user_id)
        await self._ask("force_end", conversation_id=conversation_id, by_user_id=by_user_id)

    async def place(self, order: AttemptOrder) -> None:
        if self.owner:
            return await super().place(order)
        await self._ask("place", order=dataclasses.asdict(order))

    async def _ask(self, method: str, **kwargs: Any) -> Any:
        request = uuid.uuid4().hex
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._asked[request] = answer
        try:
            self.services.bus.publish(
                ASK_TOPIC, {"id": request, "node": self.services.node_id, "method": method, "kwargs": kwargs}
            )
            try:
                reply = await asyncio.wait_for(answer, timeout=self.settings.action_timeout_seconds + 2)
            except TimeoutError:
                raise ChannelNotReady("the node running the AMI link did not answer") from None
        finally:
            self._asked.pop(request, None)
        error = reply.get("error")
        if error is None:
            return reply.get("result")
        raise _rebuilt(error)

    def _answered_by_holder(self, data: dict[str, Any]) -> None:
        answer = self._asked.get(str(data.get("id")))
        if answer is not None and not answer.done():
            answer.set_result(data)

    def _asked_by_standby(self, data: dict[str, Any]) -> None:
        if not self.owner or data.get("node") == self.services.node_id:
            return
        task = asyncio.get_running_loop().create_task(self._do_asked(data))
        self._forwarded_tasks.add(task)
        task.add_done_callback(self._forwarded_tasks.discard)

    async def _do_asked(self, data: dict[str, Any]) -> None:
        method, kwargs = str(data["method"]), dict(data.get("kwargs") or {})
        reply: dict[str, Any] = {"id": data["id"]}
        try:
            if method == "place":
                await super().place(AttemptOrder(**kwargs["order"]))
                reply["result"] = None
            elif method in ("hold", "hangup", "transfer", "originate", "spy", "force_end"):
                reply["result"] = await getattr(super(), method)(**kwargs)
            else:
                raise ChannelNotReady(f"unknown call action {method!r}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, domain_errors.DomainError | ChannelNotReady | ChannelAuthFailed):
                log.exception("voice: %s asked by node %s failed", method, data.get("node"))
            reply["error"] = _described(exc)
        self.services.bus.publish(ANSWER_TOPIC, reply)

    # --- AMI events -----------------------------------------------------------------------

    def _on_ami(self, message: Mapping[str, Any]) -> None:
        ev = ami_event_to_call_event(message)
        if ev is not None:
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

    async def _run(self) -> None:
        while True:
            batch = [await self._events.get()]
            while len(batch) < BATCH_EVENTS and not self._events.empty():
                batch.append(self._events.get_nowait())
            try:
                await self._apply_batch(batch)
            finally:
                for _ in batch:
                    self._events.task_done()

    async def _apply_batch(self, batch: list[tuple[CallEvent, datetime, float]]) -> None:
        """Apply queued events in arrival order, as ``apply`` does one by one, except that the
        frequent effects (``enqueue``, ``caller_left``/``agent_left``) of consecutive events are
        written in one transaction (``_write_batch``). Any other effect, and any campaign
        call's event, first writes what is pending, so every effect still sees the ones before
        it committed. A batch holds only what had already arrived: an idle link applies each
        event at once, as before."""
        pending: list[Pending] = []
        for ev, now, t0 in batch:
            try:
                if _campaign_related(ev):
                    await self._write_batch(pending)
                await self._campaign_event(ev, now)
                for effect in self.registry.apply(ev, now):
                    if effect.kind in BATCHED_EFFECTS:
                        pending.append((effect, now, t0))
                        if len(pending) >= BATCH_EFFECTS:
                            await self._write_batch(pending)
                    else:
                        await self._write_batch(pending)
                        await self._perform(effect, now, t0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("voice: applying %s for %s failed", ev.kind, ev.uniqueid)
            self.applied += 1
        try:
            await self._write_batch(pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("voice: applying a batch of %d effects failed", len(pending))

    async def _write_batch(self, pending: list[Pending]) -> None:
        """Perform ``pending`` effects in a few transactions, then what follows each commit
        (AMI hang-ups, forgetting ended calls) in arrival order.

        The effects are dealt to at most ``BATCH_LANES`` lanes by call (``Linkedid``): a
        call's effects stay in one lane in arrival order, and the lanes' transactions run at
        the same time on their own connections, so one waits for PostgreSQL while another
        works. If a lane's transaction fails in any way (a ``DomainError`` of one effect, a
        conflict with another lane, a lost connection), nothing of it was committed and each
        of its effects is performed again in a transaction of its own, exactly as one
        arriving alone would be, so one bad call never costs the others their writes."""
        if not pending:
            return
        effects = list(pending)
        pending.clear()
        if len(effects) == 1:
            await self._perform(*effects[0])
            return
        lane_of: dict[str, int] = {}
        count = min(BATCH_LANES, len({eff.call.linkedid for eff, _, _ in effects}))
        lanes: list[list[Pending]] = [[] for _ in range(count)]
        for item in effects:
            lanes[lane_of.setdefault(item[0].call.linkedid, len(lane_of) % count)].append(item)
        outcomes = await asyncio.gather(*(self._write_lane(lane) for lane in lanes))
        failed = {i for i, (ok, _) in enumerate(outcomes) if not ok}
        statuses: dict[int, str | None] = {}
        for ok, written in outcomes:
            if ok:
                statuses.update(written)
        for item in effects:
            eff, now, t0 = item
            if lane_of[eff.call.linkedid] in failed:
                try:
                    await self._perform(eff, now, t0)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("voice: %s for call %s failed", eff.kind, eff.call.linkedid)
            elif eff.kind == "enqueue":
                status = statuses[id(eff)]
                assert status is not None
                await self._enqueued(eff.call, t0, status)
            else:
                await self._forget_ended(eff.call)

    async def _write_lane(self, lane: list[Pending]) -> tuple[bool, dict[int, str | None]]:
        """One lane's effects in one transaction: ``(committed, {id(effect): status})``."""
        written: dict[int, str | None] = {}
        try:
            async with self.services.db.transaction() as session:
                for eff, now, _t0 in lane:
                    written[id(eff)] = await self._write_effect(session, eff, now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("voice: %d effects rolled back together (%r); one transaction each", len(lane), exc)
            for eff, _, _ in lane:
                if eff.kind == "enqueue" and eff.call.conversation_id is not None:
                    # The conversation id came from the rolled-back transaction.
                    self.registry.by_conversation.pop(eff.call.conversation_id, None)
                    eff.call.conversation_id = None
            return False, {}
        self.batches += 1
        return True, written

    async def _write_effect(self, session: AsyncSession, eff: Effect, now: datetime) -> str | None:
        """One batched effect's writes in the batch's transaction (``_enqueue``/``_ended``
        without what follows their commit)."""
        if eff.kind == "enqueue":
            return await self._enqueue_in(session, eff.call)
        await calls.do_call_ended(
            session, eff.call, caller_left=eff.kind == "caller_left", now=now, cause=eff.cause
        )
        return None

    async def apply(self, ev: CallEvent, now: datetime, t0: float | None = None) -> None:
        """Apply one normalised event: a campaign call's attempt first (its answer registers
        the call), then the registry's state update and its effects (core + Asterisk)."""
        await self._campaign_event(ev, now)
        for effect in self.registry.apply(ev, now):
            await self._perform(effect, now, t0)
        self.applied += 1

    async def drain(self) -> None:
        """Wait until every received event has been applied (tests, benchmarks)."""
        await self._events.join()


def _described(exc: Exception) -> dict[str, Any]:
    """An exception as JSON, for the node that asked (``_rebuilt``)."""
    if isinstance(exc, domain_errors.DomainError):
        params = {
            k: v if isinstance(v, int | float | bool) or v is None else str(v) for k, v in exc.params.items()
        }
        return {
            "kind": type(exc).__name__,
            "template": str(exc.template),
            "params": params,
            "field": exc.field,
        }
    kind = type(exc).__name__ if isinstance(exc, ChannelNotReady | ChannelAuthFailed) else "ChannelNotReady"
    return {"kind": kind, "message": str(exc) or type(exc).__name__}


def _rebuilt(error: dict[str, Any]) -> Exception:
    """The holder's refusal, raised again on the node that asked: same class, same template
    (so it is translated for the operator as if it happened here)."""
    kind = str(error.get("kind"))
    if kind == "ChannelAuthFailed":
        return ChannelAuthFailed(str(error.get("message")))
    cls = getattr(domain_errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, domain_errors.DomainError):
        return cls(str(error.get("template")), field=error.get("field"), **dict(error.get("params") or {}))
    return ChannelNotReady(str(error.get("message") or "the node running the AMI link failed"))
