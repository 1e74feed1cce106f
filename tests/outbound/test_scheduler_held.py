"""The scheduler loop's held connection (``omni.db.HeldConnection``): its passes skip the pool's
checkout and ping, and nothing of a pass may depend on that connection surviving. And the
caller-ID pool read by the claim statement itself (PostgreSQL): the same numbers as a read of
its own, shared when another node holds them all.

Real PostgreSQL; a lost connection is the server closing it (``pg_terminate_backend``, what a
restart does to every client), a broken pass is a real statement error or a cancellation.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from omni.db import HeldConnection
from omni.db import models as m
from omni.db.models.outbound import Outcome, TargetState
from omni.domain.outbound.scheduler import tick
from omni.services import Services
from tests.helpers import until
from tests.outbound.test_scheduler import NOON_MSK, _opened_on_the_record, _world


async def _backend_pid(held: HeldConnection) -> int:
    async with held.transaction() as s:
        return int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)


async def _in_transaction(services: Services, pid: int) -> str | None:
    """The server's view of backend ``pid``: its state, ``None`` once it is gone."""
    async with services.db.transaction() as s:
        state = await s.scalar(text("SELECT state FROM pg_stat_activity WHERE pid = :p"), {"p": pid})
        return None if state is None else str(state)


async def test_a_pass_after_the_held_connection_was_lost_runs_again_and_opens_its_attempts(
    services: Services,
) -> None:
    """A PostgreSQL restart between two passes closes the held connection; with no ping before
    a pass, the next one meets the loss at its first statement and must run again on a fresh
    connection at once, not fail (the loop would wait a whole poll interval)."""
    w = await _world(services, operators=1)
    first, second = await w.targets("+7 495 000-00-01", "+7 495 000-00-02")
    held = HeldConnection(services.db)
    try:
        assert await tick(services, NOON_MSK, held=held) == 1
        pid = await _backend_pid(held)
        async with services.db.transaction() as s:
            assert await s.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid}) is True
        await w.close(w.adapter.orders[0].attempt_id, Outcome.BUSY, NOON_MSK)
        assert await tick(services, NOON_MSK + timedelta(minutes=1), held=held) == 1
        assert [o.target_id for o in w.adapter.orders] == [first, second]
        assert (await w.target(second)).state == TargetState.IN_PROGRESS
        assert await _backend_pid(held) != pid
        async with services.db.transaction() as s:
            started = await s.scalar(
                select(m.Event.payload)
                .where(m.Event.type == "campaign.attempt_started")
                .order_by(m.Event.id.desc())
            )
        assert started is not None and started["target_id"] == second
    finally:
        await held.close()


async def test_a_failed_transaction_never_leaves_the_held_connection_inside_one(services: Services) -> None:
    """Last session's eager-BEGIN change let a connection go back with its server transaction
    open: every later transaction became a savepoint that never committed. A held connection
    whose transaction failed or was cancelled is dropped; the next one commits for real."""
    held = HeldConnection(services.db)
    try:
        pid = await _backend_pid(held)
        with pytest.raises(Exception, match="division by zero"):
            async with held.transaction() as s:
                s.add(m.DncEntry(campaign_id=None, number="+70000000000"))
                await s.flush()
                await s.execute(text("SELECT 1 / 0"))
        assert await _in_transaction(services, pid) is None  # closed, not idle in transaction
        async with services.db.transaction() as s:
            assert await s.scalar(select(m.DncEntry.id)) is None

        pid = await _backend_pid(held)
        started = asyncio.Event()

        async def slow() -> None:
            async with held.transaction() as s:
                await s.execute(text("SELECT 1"))
                started.set()
                await s.execute(text("SELECT pg_sleep(60)"))

        task = asyncio.create_task(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        w = await _world(services, operators=1)
        (target,) = await w.targets("+7 495 000-00-01")
        assert await tick(services, NOON_MSK, held=held) == 1
        assert await _backend_pid(held) != pid
        assert (await w.target(target)).state == TargetState.IN_PROGRESS  # seen by another connection
    finally:
        await held.close()


async def test_attempts_opened_on_the_held_connection_are_on_the_record(services: Services) -> None:
    """The loop's passes write the same rows and events as a pooled ``tick``."""
    await _opened_on_the_record(services, held=True)


async def test_a_caller_pool_another_node_holds_is_shared_not_left_empty(services: Services) -> None:
    """The claim locks the pool's numbers no other node holds; when another node holds them
    all, it reads them unlocked and shares them (the stamp then waits for that node), never an
    attempt without a caller ID."""
    w = await _world(services, operators=1)
    await w.targets("+7 495 000-00-01")
    async with services.db.transaction() as s:
        s.add(m.CampaignCallerId(campaign_id=w.campaign_id, number="+74950001111", region="RU"))

    async def waiting_for_a_lock() -> bool:
        async with services.db.transaction() as s:
            waiting = await s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            return bool(waiting)

    async with services.db.engine.connect() as other:
        await other.execute(text("SELECT id FROM campaign_caller_ids FOR UPDATE"))
        passing = asyncio.create_task(tick(services, NOON_MSK))
        await until(waiting_for_a_lock, what="the pass's stamp waiting for the other node")
        await other.commit()
    assert await passing == 1
    assert [o.caller_id for o in w.adapter.orders] == ["+74950001111"]
