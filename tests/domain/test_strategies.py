"""Every routing strategy picks the operator a contact-center engineer expects."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as conv_actions
from omni.domain.capacity import Load
from omni.domain.conversations import InboundMessage
from omni.domain.routing import Candidate, Operator, do_route_pending, order_candidates
from omni.services import Services
from tests import factories as f

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def cand(
    uid: int,
    *,
    idle: int = 0,
    position: int = 0,
    load: int = 0,
    skill: int = 0,
    handled: int = 0,
    penalty: int = 0,
) -> Candidate:
    op = Operator(
        id=uid,
        capacity=3,
        chat_weight=1,
        voice_weight=3,
        handles_chat=True,
        handles_voice=True,
        idle_since=T0 + timedelta(seconds=idle),
    )
    return Candidate(
        user=op,
        load=Load(chats=load),
        position=position,
        penalty=penalty,
        skill_score=skill,
        handled_today=handled,
    )


def ids(cands: list[Candidate]) -> list[int]:
    return [c.id for c in cands]


def test_longest_idle_first() -> None:
    cs = [cand(1, idle=30), cand(2, idle=10), cand(3, idle=20)]
    assert ids(order_candidates(m.Strategy.LONGEST_IDLE, cs)) == [2, 3, 1]


def test_round_robin_continues_after_last_answerer() -> None:
    cs = [cand(1, position=0), cand(2, position=1), cand(3, position=2)]
    assert ids(order_candidates(m.Strategy.ROUND_ROBIN, cs, last_user_id=2)) == [3, 1, 2]
    assert ids(order_candidates(m.Strategy.ROUND_ROBIN, cs, last_user_id=3)) == [1, 2, 3]
    assert ids(order_candidates(m.Strategy.ROUND_ROBIN, cs, last_user_id=None)) == [1, 2, 3]


def test_fewest_handled_today() -> None:
    cs = [cand(1, handled=5), cand(2, handled=1), cand(3, handled=3)]
    assert ids(order_candidates(m.Strategy.FEWEST_HANDLED, cs)) == [2, 3, 1]


def test_linear_follows_list_order() -> None:
    cs = [cand(1, position=2), cand(2, position=0), cand(3, position=1)]
    assert ids(order_candidates(m.Strategy.LINEAR, cs)) == [2, 3, 1]


def test_random_uses_every_operator() -> None:
    cs = [cand(1), cand(2), cand(3)]
    firsts = {order_candidates(m.Strategy.RANDOM, cs, rng=random.Random(seed))[0].id for seed in range(40)}
    assert firsts == {1, 2, 3}


def test_least_loaded_prefers_most_remaining_capacity() -> None:
    cs = [cand(1, load=2), cand(2, load=0), cand(3, load=1)]
    assert ids(order_candidates(m.Strategy.LEAST_LOADED, cs)) == [2, 3, 1]


def test_skill_level_highest_then_penalty() -> None:
    cs = [cand(1, skill=3, penalty=1), cand(2, skill=5), cand(3, skill=3, penalty=0)]
    assert ids(order_candidates(m.Strategy.SKILL_LEVEL, cs)) == [2, 3, 1]


def test_ring_all_offers_everyone() -> None:
    cs = [cand(3), cand(1), cand(2)]
    assert ids(order_candidates(m.Strategy.RING_ALL, cs)) == [1, 2, 3]


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown routing strategy"):
        order_candidates("telepathy", [cand(1)])


async def _inbound(services: Services, inbox_id: int, who: str, medium: str = "chat") -> int:
    async with services.db.transaction() as s:
        res = await conv_actions.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox_id, identity_kind="external", identity_value=who, body="hi", medium=medium
            ),
        )
        return res.conversation.id


async def _offered_to(services: Services, conv_id: int) -> list[int]:
    async with services.db.transaction() as s:
        return sorted(
            (
                await s.scalars(
                    select(m.Offer.user_id).where(
                        m.Offer.conversation_id == conv_id, m.Offer.state == "pending"
                    )
                )
            ).all()
        )


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (m.Strategy.LINEAR, ["b"]),  # list order: b was added first
        (m.Strategy.LONGEST_IDLE, ["c"]),  # c has been idle longest
        (m.Strategy.RING_ALL, ["a", "b", "c"]),
        (m.Strategy.SKILL_LEVEL, ["a"]),  # a has the highest level
        (m.Strategy.LEAST_LOADED, ["a"]),  # b and c hold a chat each already
        (m.Strategy.FEWEST_HANDLED, ["a"]),
    ],
)
async def test_strategy_end_to_end_on_postgres(
    services: Services, strategy: str, expected: list[str]
) -> None:
    async with services.db.transaction() as s:
        a, b, c = [await f.user(s, n) for n in "abc"]
        ops = {"a": a, "b": b, "c": c}
        skill = m.Skill(name="english")
        s.add(skill)
        await s.flush()
        for u, lvl in ((a, 5), (b, 2), (c, 3)):
            s.add(m.UserSkill(user_id=u.id, skill_id=skill.id, level=lvl))
        q = await f.queue(s, "q", [b, c, a], strategy=strategy)
        s.add(m.QueueSkill(queue_id=q.id, skill_id=skill.id, min_level=1))
        other = await f.queue(s, "busy", [b, c], strategy=m.Strategy.ROUND_ROBIN)
        ib = await f.inbox(s, q)
        ib_busy = await f.inbox(s, other)
        for u in (a, b, c):
            await f.set_status(s, u)
        ids_ = {n: u.id for n, u in ops.items()}
    async with services.db.transaction() as s:
        for n, secs in (("a", 100), ("b", 50), ("c", 0)):
            p = await s.get(m.OperatorPresence, ids_[n])
            assert p is not None
            p.idle_since = datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=secs)
    if strategy in (m.Strategy.LEAST_LOADED, m.Strategy.FEWEST_HANDLED):
        # b and c each get (and accept) one chat from the other queue first.
        for who in ("x1", "x2"):
            cid = await _inbound(services, ib_busy.id, who)
            await do_route_pending(services.db)
            async with services.db.transaction() as s:
                offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == cid))
                assert offer is not None
                await conv_actions.check_accept_offer(
                    s, f.who(await s.get_one(m.User, offer.user_id)), offer.id
                )
        async with services.db.transaction() as s:
            busy = set(
                (
                    await s.scalars(
                        select(m.Conversation.assigned_user_id).where(m.Conversation.status == "active")
                    )
                ).all()
            )
        assert busy == {ids_["b"], ids_["c"]}
        if strategy == m.Strategy.FEWEST_HANDLED:
            async with services.db.transaction() as s:
                # handled today counts per queue: move those chats to q's accounting.
                for conv in (
                    await s.scalars(select(m.Conversation).where(m.Conversation.status == "active"))
                ).all():
                    conv.queue_id = ib.queue_id
                    conv.status = "closed"
    conv_id = await _inbound(services, ib.id, "customer")
    await do_route_pending(services.db)
    names = {v: k for k, v in ids_.items()}
    assert [names[u] for u in await _offered_to(services, conv_id)] == expected


async def test_round_robin_rotates_after_each_answer(services: Services) -> None:
    async with services.db.transaction() as s:
        ops = [await f.user(s, f"rr{i}") for i in range(3)]
        q = await f.queue(s, "rr", ops, strategy=m.Strategy.ROUND_ROBIN)
        ib = await f.inbox(s, q)
        for u in ops:
            await f.set_status(s, u)
    got: list[int] = []
    for i in range(4):
        cid = await _inbound(services, ib.id, f"c{i}")
        await do_route_pending(services.db)
        async with services.db.transaction() as s:
            offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == cid))
            assert offer is not None
            got.append(offer.user_id)
            conv = await conv_actions.check_accept_offer(
                s, f.who(await s.get_one(m.User, offer.user_id)), offer.id
            )
            await conv_actions.check_close(
                s, f.who(await s.get_one(m.User, offer.user_id)), conv.id, (await f.result_code(s)).id
            )
    assert got == [ops[0].id, ops[1].id, ops[2].id, ops[0].id]
