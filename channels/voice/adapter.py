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
from channels.voice.campaign import Dial, VoiceCampaign
from channels.voice.effects import KIND
from channels.voice.events import CallEvent, ami_event_to_call_event
from channels.voice.state import CallRegistry
from omni.channels import DeliveryReceipt, OutboundMessage
from omni.services import Services

if TYPE_CHECKING:
    from channels.voice.agi import AgiServer

log = logging.getLogger(__name__)

__all__ = ["VoiceChannel"]


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
        """Apply one normalised event: a campaign call's attempt first (its answer registers
        the call), then the registry's state update and its effects (core + Asterisk)."""
        await self._campaign_event(ev, now)
        for effect in self.registry.apply(ev, now):
            await self._perform(effect, now, t0)
        self.applied += 1

    async def drain(self) -> None:
        """Wait until every received event has been applied (tests, benchmarks)."""
        await self._events.join()
