"""The per-node background loop: expired deadlines, over-limit statuses, routing passes.

Every node runs one. Work is claimed with row locks, so nodes share it without a leader,
and a node that dies leaves nothing half-done: its deadlines are still in the table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.aio import stop_tasks, wait_set
from omni.db import Database
from omni.db import models as m
from omni.db.unit_of_work import unit_of_work
from omni.domain import conversations, deadlines, inactivity, place, presence, sla, snooze
from omni.domain.outbound import agentless, broadcast, dialing
from omni.domain.routing import Assignment, do_route_pending

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, m.Deadline], Awaitable[None]]


async def _offer(s: AsyncSession, d: m.Deadline) -> None:
    await conversations.do_offer_timeout(s, d.ref_id)


async def _queue(s: AsyncSession, d: m.Deadline) -> None:
    await conversations.do_queue_timeout(s, d.ref_id, d.due_at)


async def _escalation(s: AsyncSession, d: m.Deadline) -> None:
    await conversations.do_escalation(s, d.ref_id, int(d.payload.get("step", 0)))


async def _wrap_up(s: AsyncSession, d: m.Deadline) -> None:
    await conversations.do_wrap_up_expired(s, d.ref_id)


async def _offline(s: AsyncSession, d: m.Deadline) -> None:
    await presence.do_offline_deadline(s, d.ref_id)


async def _affinity(s: AsyncSession, d: m.Deadline) -> None:
    await place.do_affinity_expired(s, d.ref_id)


async def _blend_reoffer(s: AsyncSession, d: m.Deadline) -> None:
    await place.do_blend_reoffer(s, d)


async def _broadcast_escalation(s: AsyncSession, d: m.Deadline) -> None:
    await broadcast.do_escalate(s, d)


async def _broadcast_send_guard(s: AsyncSession, d: m.Deadline) -> None:
    await broadcast.do_send_guard(s, d)


HANDLERS: dict[str, Handler] = {
    deadlines.OFFER_TIMEOUT: _offer,
    deadlines.QUEUE_TIMEOUT: _queue,
    deadlines.ESCALATION: _escalation,
    deadlines.WRAP_UP: _wrap_up,
    deadlines.PRESENCE_OFFLINE: _offline,
    inactivity.IDLE_CLOSE: inactivity.do_idle_deadline,
    place.AFFINITY: _affinity,
    place.BLEND_REOFFER: _blend_reoffer,
    dialing.RING_DEADLINE: dialing.do_ring_deadline,
    agentless.CALL_GUARD: agentless.do_call_guard,
    broadcast.ESCALATION: _broadcast_escalation,
    broadcast.SEND_GUARD: _broadcast_send_guard,
    sla.SLA_BREACH: sla.do_breach,
    snooze.SNOOZE_WAKE: snooze.do_snooze_deadline,
}


async def run_due_deadlines(db: Database, *, now: datetime | None = None, limit: int = 500) -> int:
    """Fire every expired deadline once, each in its own transaction.

    A handler may schedule a deadline that is already due (a second escalation step after a
    long pause); those fire in the same call, in a few bounded rounds.
    """
    now = now or datetime.now(UTC)
    fired = 0
    for _ in range(5):
        async with db.transaction() as session:
            ids = list(
                await session.scalars(
                    select(m.Deadline.id)
                    .where(m.Deadline.done.is_(False), m.Deadline.due_at <= now)
                    .order_by(m.Deadline.due_at, m.Deadline.id)
                    .limit(limit)
                )
            )
        if not ids:
            break
        for deadline_id in ids:
            fired += await _fire(db, deadline_id)
    return fired


async def _fire(db: Database, deadline_id: int) -> int:
    async with db.transaction() as session:
        row = await session.scalar(
            select(m.Deadline)
            .where(m.Deadline.id == deadline_id, m.Deadline.done.is_(False))
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return 0
        row.done = True
        # Plug-ins (the bot runner) add kinds of their own through Database.plugins.
        handler = HANDLERS.get(row.kind) or unit_of_work(session).deadline_handlers.get(row.kind)
        if handler is None:
            log.error("deadline %s has unknown kind %r; dropped", row.id, row.kind)
            return 0
        await handler(session, row)
        return 1


@dataclass
class RoutingEngine:
    """Runs deadlines and routing on a tick, and at once when nudged after a commit."""

    db: Database
    tick_seconds: float = 0.5
    on_assigned: Callable[[list[Assignment]], None] | None = None
    node_id: str = "node"
    heartbeat_seconds: float = 10.0
    node_ttl_seconds: float = 45.0
    offline_grace_seconds: float = 10.0
    paused_channels: Callable[[], Collection[str]] = tuple
    """Channel kinds that can't take offers now (``AdapterRegistry.unavailable``): their
    conversations wait in line and their pending offers are withdrawn without penalty."""
    _last_beat: float = 0.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def nudge(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="routing-engine")

    async def stop(self) -> None:
        if self._task:
            await stop_tasks(self._task)
            self._task = None

    async def run_once(self) -> list[Assignment]:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_beat >= self.heartbeat_seconds:
            self._last_beat = loop_time
            now = datetime.now(UTC)
            async with self.db.transaction() as session:
                await presence.do_heartbeat_node(session, self.node_id, now)
                await presence.do_reap_dead_nodes(
                    session, now, ttl_seconds=self.node_ttl_seconds, grace_seconds=self.offline_grace_seconds
                )
        await run_due_deadlines(self.db)
        async with self.db.transaction() as session:
            await presence.do_flag_over_limit(session, datetime.now(UTC))
        paused = set(self.paused_channels())
        if paused:
            # Offers made just before the channel went down (or by a pass that raced the
            # report) would only ring out: back in line, on every pass until it is back.
            async with self.db.transaction() as session:
                await conversations.do_withdraw_offers(session, paused)
        assigned = await do_route_pending(
            self.db, paused_channels=paused, still_paused=lambda: self.paused_channels()
        )
        if assigned and self.on_assigned:
            self.on_assigned(assigned)
        return assigned

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing pass failed; retrying on the next tick")
            await wait_set(self._wake, self.tick_seconds)
