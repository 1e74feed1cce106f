"""The voice adapter: ``VoiceChannel``, its lifecycle and the AMI event loop.

AMI events are normalised (``events``), queued and applied by one task in arrival order: the
registry (``state``) decides the effects, ``effects`` performs them in the core and on
Asterisk, ``call_control`` implements ``omni.channels.CallControl``. This module ties them to
the link (``ami.AmiLink``) and to the FastAGI server (``agi``) the composition root attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from channels.voice.ami import AmiLink
from channels.voice.call_control import VoiceCallControl
from channels.voice.campaign import Dial, VoiceCampaign, attempt_of
from channels.voice.effects import KIND
from channels.voice.events import CallEvent, ami_event_to_call_event
from channels.voice.state import CallRegistry, Effect
from omni.channels import DeliveryReceipt, OutboundMessage
from omni.domain import calls
from omni.services import Services

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from channels.voice.agi import AgiServer

log = logging.getLogger(__name__)

__all__ = ["VoiceChannel"]

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
    """The voice adapter. One per node; with several nodes enable it on one (the AMI owner).
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

    # --- ChannelAdapter -----------------------------------------------------------------

    async def start(self) -> None:
        if self.agi is not None:
            await self.agi.start()
        self._worker = asyncio.create_task(self._run(), name="voice-events")
        # An operator may have become free: answered predictive calls look again.
        self.services.bus.subscribe("routing", self._operator_may_be_free)
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
