"""Offers are dated when they are made: replaying the offer history must never show an
operator holding more than their capacity, and ASA must not count time the router spent
waiting for the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select, text

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import routing
from omni.domain.conversations import InboundMessage
from omni.services import Services
from tests import factories as f
from tests.helpers import until


async def _inbound(services: Services, inbox_id: int, who: str) -> int:
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s, InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value=who, body="hi")
        )
        return res.conversation.id


async def _blocked_on(services: Services, table: str) -> None:
    """Until a transaction waits for a lock on ``table``."""
    query = text("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = CAST(:t AS regclass)")

    async def blocked() -> bool:
        async with services.db.transaction() as probe:
            return bool(await probe.scalar(query, {"t": table}))

    await until(blocked, 30, what=f"a transaction waiting for a lock on {table}", every=0.01)


def _max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    best = cur = 0
    for _, delta in points:
        cur += delta
        best = max(best, cur)
    return best


async def test_offer_is_dated_after_the_locks_not_when_the_routing_decision_started(
    services: Services,
) -> None:
    """``offered_at`` / ``offers.created_at`` were read from the clock at the start of
    ``do_assign``: a decision that waited for the database (here: a table lock another
    transaction holds, during which the operator is offered another chat and declines it)
    dated its offer before the operator was free, so the history showed two offers at once
    for an operator with capacity 1."""
    async with services.db.transaction() as s:
        op = await f.user(s, "op", capacity=1)
        q = await f.queue(s, "support", [op])
        ib = await f.inbox(s, q)
        await f.set_status(s, op, "available")
    first = await _inbound(services, ib.id, "first")
    second = await _inbound(services, ib.id, "second")

    async def decide(conv_id: int) -> routing.Assignment | None:
        async with services.db.transaction() as s:
            return await routing.do_assign(s, conv_id, routing.RoutePass())

    async with services.db.transaction() as other_node:
        await other_node.execute(text("LOCK TABLE queue_skills IN ACCESS EXCLUSIVE MODE"))
        deciding = asyncio.create_task(decide(second))
        await _blocked_on(services, "queue_skills")  # the decision started and now waits
        offered = await routing.do_assign(other_node, first, routing.RoutePass())
        assert offered is not None and offered.user_ids == (op.id,)
        offer = await other_node.scalar(select(m.Offer).where(m.Offer.conversation_id == first))
        assert offer is not None
        await c.check_decline_offer(other_node, f.who(op), offer.id)
        released = datetime.now(UTC)
    assignment = await deciding
    assert assignment is not None and assignment.user_ids == (op.id,)
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, second)
        offers = (await s.scalars(select(m.Offer).where(m.Offer.user_id == op.id).order_by(m.Offer.id))).all()
    late = next(o for o in offers if o.conversation_id == second)
    assert late.created_at >= released, "the offer is dated when it was made, after the lock was released"
    assert conv.offered_at is not None and conv.offered_at >= released
    end_of_replay = datetime.now(UTC)
    intervals = [(o.created_at, o.responded_at or end_of_replay) for o in offers]
    assert _max_overlap(intervals) <= 1, f"the operator never held more than capacity: {intervals}"
