"""A channel that can't reach anyone (the voice adapter's AMI link is down) had its
conversations offered anyway: every call rang out per operator, again and again, while chats of
the same queue waited behind it. The router now keeps such conversations in line and withdraws
their offers without charging the operator; on PostgreSQL, driving the engine by hand."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain.routing import wait_info
from omni.services import Services
from tests import factories as f
from tests.domain.test_lifecycle import conv, go_available, inbound


@pytest.fixture
async def line(services: Services) -> dict[str, int]:
    async with services.db.transaction() as s:
        a = await f.user(s, "alice")
        b = await f.user(s, "bob")
        q = await f.queue(s, "support", [a, b], strategy=m.Strategy.LINEAR, operator_timeout_seconds=20)
        chat = await f.inbox(s, q)
        voice = await f.inbox(s, q, channel="voice")
        return {"a": a.id, "b": b.id, "q": q.id, "chat": chat.id, "voice": voice.id}


async def offers(services: Services, conv_id: int) -> list[tuple[int, str]]:
    async with services.db.transaction() as s:
        rows = await s.execute(
            select(m.Offer.user_id, m.Offer.state)
            .where(m.Offer.conversation_id == conv_id)
            .order_by(m.Offer.id)
        )
        return [(uid, state) for uid, state in rows]


async def test_calls_of_an_unavailable_channel_keep_their_place_and_chats_are_still_routed(
    services: Services, line: dict[str, int]
) -> None:
    woken: list[tuple[str, bool]] = []
    services.adapters.listeners.append(lambda kind, ok: woken.append((kind, ok)))
    services.adapters.set_available("voice", False, "the AMI link to Asterisk is down")
    await go_available(services, line["a"])
    call = await inbound(services, line["voice"], "caller", medium="voice")
    chat = await inbound(services, line["chat"], "chatter")
    await services.engine.run_once()
    assert (await conv(services, chat)).status == "offered"
    assert (await conv(services, call)).status == "queued"
    assert await offers(services, call) == []
    async with services.db.transaction() as s:
        assert (await wait_info(s, await s.get_one(m.Conversation, call))).position == 1

    services.adapters.set_available("voice", True)
    assert woken == [("voice", False), ("voice", True)]  # the router is nudged on the way back
    await go_available(services, line["b"])
    await services.engine.run_once()
    assert await offers(services, call) == [(line["b"], "pending")]


async def test_an_offer_of_a_channel_that_goes_down_is_withdrawn_without_a_missed_offer(
    services: Services, line: dict[str, int]
) -> None:
    await go_available(services, line["a"])
    call = await inbound(services, line["voice"], "caller", medium="voice")
    await services.engine.run_once()
    assert await offers(services, call) == [(line["a"], "pending")]

    services.adapters.set_available("voice", False, "the AMI link to Asterisk is down")
    await services.engine.run_once()
    got = await conv(services, call)
    assert (got.status, got.assigned_user_id) == ("queued", None)
    assert await offers(services, call) == [(line["a"], "cancelled")]  # not "timeout": not missed
    async with services.db.transaction() as s:
        types = list(await s.scalars(select(m.Event.type).where(m.Event.conversation_id == call)))
    assert "conversation.offer_cancelled" in types and "conversation.offer_timeout" not in types

    services.adapters.set_available("voice", True)
    await services.engine.run_once()  # offered again to the same operator: nothing held against them
    assert await offers(services, call) == [(line["a"], "cancelled"), (line["a"], "pending")]
