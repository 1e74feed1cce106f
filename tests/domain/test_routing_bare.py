"""A routing pass decides each conversation in a bare transaction on PostgreSQL (no ORM
session unless the decision needs one: ``HeldConnection.bare``). What a session's transaction
guaranteed still holds: the offer is committed with its events, the relay and routing nudges
come after the commit and never for a decision that rolled back, and an auto-accept queue (whose
decision needs ORM objects) commits its accept in the same transaction."""

from __future__ import annotations

from sqlalchemy import func, select, text

from omni.db import BareTransaction, Database, HeldConnection
from omni.db import models as m
from omni.db.unit_of_work import UnitOfWork
from omni.domain import conversations as c
from omni.domain import routing
from omni.domain.conversations import InboundMessage
from tests import factories as f


async def _setup(db: Database, *, auto_accept: bool, customers: int) -> list[int]:
    async with db.transaction() as s:
        ops = [await f.user(s, f"op{i}", capacity=1) for i in range(2)]
        q = await f.queue(s, "main", ops, strategy=m.Strategy.LONGEST_IDLE, auto_accept=auto_accept)
        ib = await f.inbox(s, q)
        for u in ops:
            await f.set_status(s, u)
        ids = []
        for i in range(customers):
            res = await c.do_ingest_inbound(
                s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value=f"c{i}", body="hi")
            )
            ids.append(res.conversation.id)
        return ids


async def _statuses(db: Database) -> dict[str, int]:
    async with db.transaction() as s:
        rows = (
            await s.execute(select(m.Conversation.status, func.count()).group_by(m.Conversation.status))
        ).all()
    return {str(status): n for status, n in rows}


async def test_a_pass_offers_in_bare_transactions_and_nudges_after_each_commit(pg_url: str) -> None:
    db = Database(pg_url)
    committed: list[UnitOfWork] = []
    db.after_commit_hooks.append(committed.append)
    try:
        await _setup(db, auto_accept=False, customers=3)
        committed.clear()
        done = await routing.do_route_pending(db)
        assert len(done) == 2  # two operators of capacity 1
        assert await _statuses(db) == {"offered": 2, "queued": 1}
        async with db.transaction() as s:
            events = list(await s.scalars(select(m.Event.type).order_by(m.Event.id)))
        assert events[-4:] == ["conversation.offered", "presence.changed"] * 2
        # Each offering decision's unit of work reached the hooks after its commit, with the
        # relay told that events were written.
        assert sum(u.events_written for u in committed) == 2
    finally:
        await db.dispose()


async def test_an_auto_accept_queue_commits_its_accept_in_the_bare_transaction(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        await _setup(db, auto_accept=True, customers=3)
        done = await routing.do_route_pending(db)
        assert [a.auto_accepted for a in done] == [True, True]
        assert await _statuses(db) == {"active": 2, "queued": 1}
        # Nothing was left open on the server: a new pass runs and finds nobody free.
        assert await routing.do_route_pending(db) == []
        async with db.transaction() as s:
            idle = await s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND state = 'idle in transaction'"
                )
            )
        assert not idle
    finally:
        await db.dispose()


async def test_a_failed_bare_decision_rolls_back_and_nudges_nobody(pg_url: str) -> None:
    db = Database(pg_url)
    committed: list[UnitOfWork] = []
    db.after_commit_hooks.append(committed.append)
    try:
        conv_ids = await _setup(db, auto_accept=False, customers=1)
        committed.clear()
        held = HeldConnection(db)
        try:
            try:
                async with held.bare() as tx:
                    assert isinstance(tx, BareTransaction)
                    assert await routing.do_assign(tx, conv_ids[0], routing.RoutePass()) is not None
                    raise RuntimeError("the pass stops here")
            except RuntimeError:
                pass
            assert committed == []
            assert await _statuses(db) == {"queued": 1}
            # The held connection was dropped; the next decision takes a fresh one and offers.
            committed.clear()
            async with held.bare() as tx:
                assert await routing.do_assign(tx, conv_ids[0], routing.RoutePass()) is not None
            assert [u.events_written for u in committed] == [True]
        finally:
            await held.close()
        assert await _statuses(db) == {"offered": 1}
    finally:
        await db.dispose()
