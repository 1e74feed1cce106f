"""Services usable outside HTTP: one place builds the database, bus, relay and router.

``Services`` is what the Litestar app, Socket.IO handlers, channel adapters, Celery tasks
and tests share, so they all take the same code path.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from omni.bus import Bus, LocalBus, RedisBus
from omni.channels import AdapterRegistry, OutboundDispatcher
from omni.db import Database
from omni.db.unit_of_work import UnitOfWork
from omni.domain import sla, transcript
from omni.domain.engine import RoutingEngine
from omni.domain.events import OutboxRelay
from omni.lease import Leases
from omni.ratelimit import Limits, LoginGuard
from omni.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    bus: Bus
    relay: OutboxRelay
    engine: RoutingEngine
    adapters: AdapterRegistry = field(default_factory=AdapterRegistry)
    node_id: str = "node"
    """Identifies this process's sockets in ``operator_connections``."""
    run_background: bool = True
    logins: LoginGuard = field(default_factory=LoginGuard)
    """Failed-login throttle shared by the login form and ``POST /api/v1/auth/login``."""
    limits: Limits = field(default_factory=Limits)
    """Where cluster-wide rate limits count (Redis when configured)."""
    leases: Leases | None = None
    """This node's leases (``omni.lease``): what exactly one node of several may run (the AMI
    link, each polling bot). Built by ``build_services``; ``None`` only for hand-built services."""
    started: bool = field(default=False, init=False)

    async def start(self) -> None:
        await self.bus.start()
        if self.leases is not None:
            await self.leases.start()
        await self.adapters.start()
        if self.run_background:
            await self.relay.start()
            await self.engine.start()
        self.started = True

    async def stop(self) -> None:
        await self.engine.stop()
        await self.relay.stop()
        await self.adapters.stop()
        if self.leases is not None:
            await self.leases.stop()  # after the adapters let go: the locks free at once
        await self.bus.stop()
        await self.limits.close()
        await self.db.dispose()
        self.started = False


def build_services(settings: Settings, *, run_background: bool = True) -> Services:
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    bus: Bus = LocalBus() if settings.embedded else RedisBus(settings.redis_url, settings.redis_prefix)
    relay = OutboxRelay(db)
    node_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    engine = RoutingEngine(
        db,
        tick_seconds=settings.routing.tick_seconds,
        node_id=node_id,
        heartbeat_seconds=settings.routing.node_heartbeat_seconds,
        node_ttl_seconds=settings.routing.node_ttl_seconds,
        offline_grace_seconds=settings.routing.offline_grace_seconds,
    )
    bus.subscribe("outbox", lambda _data: relay.nudge())
    bus.subscribe("routing", lambda _data: engine.nudge())

    def after_commit(uow: UnitOfWork) -> None:
        # Hints only: the relay and router re-read the database, so a lost nudge costs latency.
        if uow.events_written:
            bus.publish("outbox", {})
        if uow.routing_needed:
            bus.publish("routing", {})

    db.after_commit_hooks.append(after_commit)
    adapters = AdapterRegistry()
    # A channel that can't reach anyone keeps its conversations in line; when it comes back
    # the router runs at once instead of on its next tick.
    engine.paused_channels = adapters.unavailable
    adapters.listeners.append(lambda _kind, _available: engine.nudge())
    relay.post_commit_sinks.append(OutboundDispatcher(db, adapters))
    relay.tx_sinks.append(sla.sla_sink())  # chat reply clocks move with the committed events
    db.plugins.add_deadline_handler(transcript.TRANSCRIPT_MAIL, transcript.handler(settings.smtp))
    limits = Limits(settings.redis_url, settings.redis_prefix)
    return Services(
        settings,
        db,
        bus,
        relay,
        engine,
        adapters=adapters,
        node_id=node_id,
        run_background=run_background,
        logins=LoginGuard(limits),
        limits=limits,
        leases=Leases(
            settings.effective_database_url, node=node_id, check_seconds=settings.lease_check_seconds
        ),
    )


@asynccontextmanager
async def provide_services(settings: Settings, *, run_background: bool = True) -> AsyncIterator[Services]:
    services = build_services(settings, run_background=run_background)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()
