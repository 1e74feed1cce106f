"""Conversation lifecycle, capacity, timers and the shared callback list, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import presence
from omni.domain.conversations import InboundMessage
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import Conflict, InvalidInput
from omni.domain.routing import do_route_pending, wait_info
from omni.services import Services
from tests import factories as f
from tests.helpers import capture_events


async def inbound(services: Services, inbox_id: int, who: str, medium: str = "chat", **kw: object) -> int:
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox_id,
                identity_kind="external",
                identity_value=who,
                body=str(kw.pop("body", "hello")),
                medium=medium,
                **kw,
            ),  # type: ignore[arg-type]
        )
        return res.conversation.id


async def conv(services: Services, conv_id: int) -> m.Conversation:
    async with services.db.transaction() as s:
        return await s.get_one(m.Conversation, conv_id)


async def pending_offer(services: Services, conv_id: int) -> m.Offer | None:
    async with services.db.transaction() as s:
        return await s.scalar(
            select(m.Offer).where(m.Offer.conversation_id == conv_id, m.Offer.state == "pending")
        )


async def accept(services: Services, conv_id: int) -> m.Conversation:
    offer = await pending_offer(services, conv_id)
    assert offer is not None, "expected a pending offer"
    async with services.db.transaction() as s:
        u = await s.get_one(m.User, offer.user_id)
        return await c.check_accept_offer(s, f.who(u), offer.id)


async def later(services: Services, seconds: float) -> None:
    """Fire the deadlines that would be due ``seconds`` from now, then route."""
    await run_due_deadlines(services.db, now=datetime.now(UTC) + timedelta(seconds=seconds))
    await do_route_pending(services.db)


@pytest.fixture
async def setup(services: Services) -> dict[str, int]:
    async with services.db.transaction() as s:
        a = await f.user(s, "alice")
        b = await f.user(s, "bob")
        code = await f.result_code(s, "resolved")
        q = await f.queue(
            s,
            "support",
            [a, b],
            strategy=m.Strategy.LINEAR,
            default_result_code_id=code.id,
            operator_timeout_seconds=20,
            queue_timeout_seconds=120,
            wrap_up_seconds=30,
        )
        ib = await f.inbox(s, q)
        voice_ib = await f.inbox(s, q, channel="voice")
        return {"a": a.id, "b": b.id, "q": q.id, "inbox": ib.id, "voice": voice_ib.id, "code": code.id}


async def go_available(services: Services, *user_ids: int, code: str = "available") -> None:
    async with services.db.transaction() as s:
        for uid in user_ids:
            await presence.do_set_status(s, uid, await presence.status_by_code(s, code))


async def test_chat_is_offered_accepted_ended_and_closed(services: Services, setup: dict[str, int]) -> None:
    await go_available(services, setup["a"])
    cid = await inbound(services, setup["inbox"], "cust")
    assert (await conv(services, cid)).status == "queued"
    await do_route_pending(services.db)
    assert (await conv(services, cid)).status == "offered"
    await accept(services, cid)
    got = await conv(services, cid)
    assert (got.status, got.assigned_user_id) == ("active", setup["a"])
    async with services.db.transaction() as s:
        alice = f.who(await s.get_one(m.User, setup["a"]))
        await c.check_send_message(s, alice, cid, "Hi, how can I help?")
        await c.check_end(s, alice, cid)
    assert (await conv(services, cid)).status == "wrap_up"
    async with services.db.transaction() as s:
        await c.check_close(s, alice, cid, setup["code"])
    closed = await conv(services, cid)
    assert (closed.status, closed.result_code_id, closed.closed_by) == ("closed", setup["code"], "operator")
    async with services.db.transaction() as s:
        types = list(
            await s.scalars(select(m.Event.type).where(m.Event.conversation_id == cid).order_by(m.Event.id))
        )
        history = list(
            await s.scalars(
                select(m.StatusHistory.status_code)
                .where(m.StatusHistory.user_id == setup["a"])
                .order_by(m.StatusHistory.id)
            )
        )
    assert types == [
        "conversation.created",
        "conversation.queued",
        "message.created",
        "conversation.offered",
        "conversation.accepted",
        "message.created",
        "conversation.wrap_up",
        "conversation.closed",
    ]
    # Time accounting saw every phase of the operator's work.
    assert history == ["available", "ringing", "talking", "wrap_up", "available"]


async def test_call_takes_whole_operator_and_blocks_chats(services: Services, setup: dict[str, int]) -> None:
    await go_available(services, setup["a"])
    call = await inbound(services, setup["voice"], "caller", medium="voice")
    await do_route_pending(services.db)
    await accept(services, call)
    chat = await inbound(services, setup["inbox"], "writer")
    await do_route_pending(services.db)
    assert (await conv(services, chat)).status == "queued", "a call in progress must block new chats"


async def test_chats_fill_capacity_then_block_calls_unless_queue_allows(
    services: Services, setup: dict[str, int]
) -> None:
    await go_available(services, setup["a"])
    for i in range(3):
        cid = await inbound(services, setup["inbox"], f"w{i}")
        await do_route_pending(services.db)
        await accept(services, cid)
    fourth = await inbound(services, setup["inbox"], "w3")
    call = await inbound(services, setup["voice"], "caller", medium="voice")
    await do_route_pending(services.db)
    assert (await conv(services, fourth)).status == "queued", "capacity is 3 chats"
    assert (await conv(services, call)).status == "queued", "chats in progress block a call by default"
    async with services.db.transaction() as s:
        q = await s.get_one(m.Queue, setup["q"])
        q.chats_block_calls = False
    await do_route_pending(services.db)
    assert (await conv(services, call)).status == "offered", "queue lets calls through chats"
    assert (await conv(services, fourth)).status == "queued"


async def test_status_flags_decide_who_receives_what(services: Services, setup: dict[str, int]) -> None:
    async with services.db.transaction() as s:
        s.add(
            m.OperatorStatus(
                code="chat_only",
                name="Chats only",
                kind="available",
                receives_chats=True,
                receives_voice=False,
                productive=True,
                selectable=True,
                is_system=False,
            )
        )
    await go_available(services, setup["a"], code="chat_only")
    await go_available(services, setup["b"], code="pause")
    call = await inbound(services, setup["voice"], "caller", medium="voice")
    chat = await inbound(services, setup["inbox"], "writer")
    await do_route_pending(services.db)
    assert (await conv(services, call)).status == "queued"
    got = await conv(services, chat)
    assert (got.status, got.assigned_user_id) == ("offered", setup["a"])


async def test_offer_timeout_moves_to_next_operator(services: Services, setup: dict[str, int]) -> None:
    await go_available(services, setup["a"], setup["b"])
    cid = await inbound(services, setup["inbox"], "cust")
    await do_route_pending(services.db)
    assert (await conv(services, cid)).assigned_user_id == setup["a"]
    await later(services, 10)
    assert (await conv(services, cid)).assigned_user_id == setup["a"], "not yet expired"
    await later(services, 21)
    got = await conv(services, cid)
    assert (got.status, got.assigned_user_id) == ("offered", setup["b"])
    async with services.db.transaction() as s:
        states = dict(
            (
                await s.execute(select(m.Offer.user_id, m.Offer.state).where(m.Offer.conversation_id == cid))
            ).all()
        )
    assert states == {setup["a"]: "timeout", setup["b"]: "pending"}


async def test_declined_offer_goes_to_next_and_accepting_expired_offer_fails(
    services: Services, setup: dict[str, int]
) -> None:
    await go_available(services, setup["a"], setup["b"])
    cid = await inbound(services, setup["inbox"], "cust")
    await do_route_pending(services.db)
    offer = await pending_offer(services, cid)
    assert offer is not None
    async with services.db.transaction() as s:
        await c.check_decline_offer(s, f.who(await s.get_one(m.User, setup["a"])), offer.id)
    await do_route_pending(services.db)
    assert (await conv(services, cid)).assigned_user_id == setup["b"]
    with pytest.raises(Conflict, match="already declined"):
        async with services.db.transaction() as s:
            await c.check_accept_offer(s, f.who(await s.get_one(m.User, setup["a"])), offer.id)


async def test_queue_timeout_overflows_to_target_queue(services: Services, setup: dict[str, int]) -> None:
    async with services.db.transaction() as s:
        carol = await f.user(s, "carol")
        overflow = await f.queue(s, "overflow", [carol])
        q = await s.get_one(m.Queue, setup["q"])
        q.overflow_action = "queue"
        q.overflow_queue_id = overflow.id
    cid = await inbound(services, setup["inbox"], "cust")
    await later(services, 60)
    assert (await conv(services, cid)).queue_id == setup["q"]
    await later(services, 121)
    got = await conv(services, cid)
    assert (got.status, got.queue_id) == ("queued", overflow.id)
    await go_available(services, carol.id)
    await do_route_pending(services.db)
    assert (await conv(services, cid)).assigned_user_id == carol.id


async def test_queue_timeout_without_target_is_missed_with_callback(
    services: Services, setup: dict[str, int]
) -> None:
    cid = await inbound(services, setup["inbox"], "cust")
    await later(services, 121)
    got = await conv(services, cid)
    assert (got.status, got.closed_by) == ("missed", "timeout")
    async with services.db.transaction() as s:
        cb = await s.scalar(select(m.Callback).where(m.Callback.conversation_id == cid))
    assert cb is not None and (cb.reason, cb.state) == ("missed", "open")


async def test_wrap_up_expiry_applies_default_result_code(services: Services, setup: dict[str, int]) -> None:
    await go_available(services, setup["a"])
    cid = await inbound(services, setup["inbox"], "cust")
    await do_route_pending(services.db)
    await accept(services, cid)
    async with services.db.transaction() as s:
        await c.check_end(s, f.who(await s.get_one(m.User, setup["a"])), cid)
    await later(services, 10)
    assert (await conv(services, cid)).status == "wrap_up"
    await later(services, 31)
    got = await conv(services, cid)
    assert (got.status, got.result_code_id) == ("closed", setup["code"])


async def test_escalation_widens_skill_and_adds_queue_keeping_place(
    services: Services, setup: dict[str, int]
) -> None:
    async with services.db.transaction() as s:
        skill = m.Skill(name="german")
        s.add(skill)
        await s.flush()
        junior = await f.user(s, "junior")
        helper = await f.user(s, "helper")
        s.add(m.UserSkill(user_id=junior.id, skill_id=skill.id, level=1))
        helpers = await f.queue(s, "helpers", [helper])
        q = await f.queue(
            s,
            "german",
            [junior],
            escalation=[
                {"after_seconds": 30, "relax_levels": 2},
                {"after_seconds": 60, "add_queue_id": helpers.id},
            ],
        )
        s.add(m.QueueSkill(queue_id=q.id, skill_id=skill.id, min_level=3))
        ib = await f.inbox(s, q)
    await go_available(services, helper.id)
    cid = await inbound(services, ib.id, "cust")
    first = (await conv(services, cid)).first_enqueued_at
    await do_route_pending(services.db)
    assert (await conv(services, cid)).status == "queued", (
        "junior lacks the level; helper is not in the queue"
    )
    await later(services, 61)  # both steps are due; they apply in order
    got = await conv(services, cid)
    assert (got.skill_relax, got.extra_queue_ids, got.first_enqueued_at) == (2, [helpers.id], first)
    assert (got.status, got.assigned_user_id) == ("offered", helper.id)


async def test_abandoned_goes_to_shared_callback_list_claimed_once(
    services: Services, setup: dict[str, int]
) -> None:
    cid = await inbound(services, setup["inbox"], "cust")
    async with services.db.transaction() as s:
        await c.do_customer_left(s, cid)
    assert (await conv(services, cid)).status == "abandoned"
    async with services.db.transaction() as s:
        alice = f.who(await s.get_one(m.User, setup["a"]))
        bob = f.who(await s.get_one(m.User, setup["b"]))
        [cb] = await c.list_callbacks(s, alice)
        assert [x.id for x in await c.list_callbacks(s, bob)] == [cb.id]
        await c.check_claim_callback(s, alice, cb.id)
    async with services.db.transaction() as s:
        assert await c.list_callbacks(s, bob) == []
    with pytest.raises(Conflict, match="already been taken"):
        async with services.db.transaction() as s:
            await c.check_claim_callback(s, bob, cb.id)


async def test_duplicate_inbound_is_stored_once_and_closed_chat_reopens(
    services: Services, setup: dict[str, int]
) -> None:
    first = await inbound(services, setup["inbox"], "cust", external_id="tg-1")
    again = await inbound(services, setup["inbox"], "cust", external_id="tg-1")
    assert first == again
    async with services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Message)) == 1
    await go_available(services, setup["a"])
    await do_route_pending(services.db)
    await accept(services, first)
    async with services.db.transaction() as s:
        await c.check_close(s, f.who(await s.get_one(m.User, setup["a"])), first, setup["code"])
    back = await inbound(services, setup["inbox"], "cust", body="one more thing")
    assert back == first
    got = await conv(services, first)
    assert got.status in ("queued", "offered")


async def test_bad_result_code_is_refused_and_nothing_changes(
    services: Services, setup: dict[str, int]
) -> None:
    await go_available(services, setup["a"])
    cid = await inbound(services, setup["inbox"], "cust")
    await do_route_pending(services.db)
    await accept(services, cid)
    async with services.db.transaction() as s:
        other = await f.result_code(s, "other")
        s.add(m.QueueResultCode(queue_id=setup["q"], result_code_id=setup["code"]))
    with pytest.raises(InvalidInput, match="not allowed in this queue"):
        async with services.db.transaction() as s:
            await c.check_close(s, f.who(await s.get_one(m.User, setup["a"])), cid, other.id)
    assert (await conv(services, cid)).status == "active"


async def test_transfer_to_named_operator_offers_only_them(services: Services, setup: dict[str, int]) -> None:
    await go_available(services, setup["a"], setup["b"])
    cid = await inbound(services, setup["inbox"], "cust")
    await do_route_pending(services.db)
    await accept(services, cid)
    async with services.db.transaction() as s:
        await c.check_transfer(
            s, f.who(await s.get_one(m.User, setup["a"])), cid, to_user_id=setup["b"], note="VIP"
        )
    await do_route_pending(services.db)
    got = await conv(services, cid)
    assert (got.status, got.assigned_user_id) == ("offered", setup["b"])
    async with services.db.transaction() as s:
        note = await s.scalar(
            select(m.Message).where(m.Message.conversation_id == cid, m.Message.direction == "note")
        )
    assert note is not None and note.body == "VIP"


async def test_rolled_back_change_emits_no_event(services: Services, setup: dict[str, int]) -> None:
    async with capture_events(services.db, expected=0):
        with pytest.raises(RuntimeError):
            async with services.db.transaction() as s:
                await c.do_ingest_inbound(
                    s,
                    InboundMessage(
                        inbox_id=setup["inbox"], identity_kind="external", identity_value="x", body="hi"
                    ),
                )
                raise RuntimeError("boom")
    async with services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Conversation)) == 0


async def test_position_and_estimated_wait(services: Services, setup: dict[str, int]) -> None:
    await go_available(services, setup["a"])
    # One handled chat of 120 s gives the queue an average handle time.
    cid = await inbound(services, setup["inbox"], "first")
    await do_route_pending(services.db)
    await accept(services, cid)
    async with services.db.transaction() as s:
        await c.check_close(s, f.who(await s.get_one(m.User, setup["a"])), cid, setup["code"])
        row = await s.get_one(m.Conversation, cid)
        row.wrap_up_at = row.accepted_at + timedelta(seconds=120)  # type: ignore[operator]
        await presence.do_set_status(s, setup["a"], await presence.status_by_code(s, "pause"))
    waiting = [await inbound(services, setup["inbox"], f"w{i}") for i in range(4)]
    async with services.db.transaction() as s:
        await presence.do_set_status(s, setup["a"], await presence.status_by_code(s, "available"))
        infos = [await wait_info(s, await s.get_one(m.Conversation, w)) for w in waiting]
    assert [i.position for i in infos] == [1, 2, 3, 4]
    # alice alone holds 3 chats at once: positions 1-3 wait one round, 4 waits two.
    assert [i.estimated_wait_seconds for i in infos] == [120, 120, 120, 240]


async def test_over_limit_status_is_flagged(services: Services, setup: dict[str, int]) -> None:
    async with services.db.transaction() as s:
        s.add(
            m.OperatorStatus(
                code="lunch",
                name="Lunch",
                kind="pause",
                max_duration_seconds=60,
                selectable=True,
                is_system=False,
            )
        )
    await go_available(services, setup["a"], code="lunch")
    over_limit = capture_events(services.db, expected=["presence.over_limit"])
    async with over_limit as events, services.db.transaction() as s:
        assert await presence.do_flag_over_limit(s, datetime.now(UTC) + timedelta(seconds=30)) == 0
        assert await presence.do_flag_over_limit(s, datetime.now(UTC) + timedelta(seconds=61)) == 1
    assert events[0].user_id == setup["a"]


async def test_operator_cannot_pick_system_status_and_supervisor_needs_reason(
    services: Services, setup: dict[str, int]
) -> None:
    async with services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        with pytest.raises(InvalidInput, match="set by the system"):
            await presence.check_set_status(s, setup["a"], m.Role.OPERATOR, setup["a"], "talking")
        with pytest.raises(InvalidInput, match="reason"):
            await presence.check_set_status(
                s, sup.id, m.Role.SUPERVISOR, setup["a"], "pause", "", supervised={setup["a"]}
            )


async def test_closed_queue_sends_customer_to_overflow_at_once(
    services: Services, setup: dict[str, int]
) -> None:
    now = datetime.now(UTC)
    # Open only on a day that is not today: closed right now.
    other_day = str((now.weekday() + 3) % 7)
    async with services.db.transaction() as s:
        night = await f.queue(s, "night", [await f.user(s, "owl")])
        q = await s.get_one(m.Queue, setup["q"])
        q.business_hours = {"timezone": "UTC", "days": {other_day: [["00:00", "23:59"]]}}
        q.overflow_action = "queue"
        q.overflow_queue_id = night.id
        night.business_hours = {"timezone": "UTC", "days": {other_day: [["00:00", "23:59"]]}}
        night.overflow_action = "offline_form"
    async with capture_events(services.db) as events:
        cid = await inbound(services, setup["inbox"], "late")
    got = await conv(services, cid)
    assert (got.status, got.queue_id, got.closed_by) == ("missed", night.id, "system")
    missed = next((e for e in events if e.type == "conversation.missed"), None)
    async with services.db.transaction() as s:
        cb = await s.scalar(select(m.Callback).where(m.Callback.conversation_id == cid))
    assert (
        missed is not None
        and missed.payload["action"] == "offline_form"
        and missed.payload["reason"] == "closed"
    )
    assert cb is not None and cb.state == "open"


async def test_operator_goes_offline_after_grace_unless_back(
    services: Services, setup: dict[str, int]
) -> None:
    async with services.db.transaction() as s:
        p = await presence.do_connect(s, setup["a"], "sid-1", "node-a")
    async with services.db.transaction() as s:
        p = await presence.get_presence(s, setup["a"])
        assert (await s.get_one(m.OperatorStatus, p.status_id)).code == "available"
        await presence.do_disconnect(s, setup["a"], "sid-1", grace_seconds=10)
    async with services.db.transaction() as s:
        await presence.do_connect(s, setup["a"], "sid-2", "node-a")  # a page reload within the grace period
    await later(services, 11)
    async with services.db.transaction() as s:
        p = await presence.get_presence(s, setup["a"])
        assert (await s.get_one(m.OperatorStatus, p.status_id)).code == "available"
        await presence.do_disconnect(s, setup["a"], "sid-2", grace_seconds=10)
    await later(services, 11)
    async with services.db.transaction() as s:
        p = await presence.get_presence(s, setup["a"])
        assert (await s.get_one(m.OperatorStatus, p.status_id)).code == "offline"


async def test_sockets_of_a_dead_node_are_reaped_and_operator_goes_offline(
    services: Services, setup: dict[str, int]
) -> None:
    async with services.db.transaction() as s:
        await presence.do_connect(s, setup["a"], "on-dead-node", "node-dead")
        await presence.do_connect(s, setup["b"], "on-live-node", "node-live")
    now = datetime.now(UTC) + timedelta(seconds=60)
    async with services.db.transaction() as s:
        await presence.do_heartbeat_node(s, "node-live", now)
        reaped = await presence.do_reap_dead_nodes(s, now, ttl_seconds=45, grace_seconds=10)
    assert reaped == 1
    await later(services, 11)
    async with services.db.transaction() as s:
        codes = {
            uid: (await s.get_one(m.OperatorStatus, (await presence.get_presence(s, uid)).status_id)).code
            for uid in (setup["a"], setup["b"])
        }
    assert codes == {setup["a"]: "offline", setup["b"]: "available"}


async def test_a_blacklisted_contact_is_stored_but_never_routed(
    services: Services, setup: dict[str, int]
) -> None:
    await go_available(services, setup["a"])
    first = await inbound(services, setup["inbox"], "spammer", body="first")
    async with services.db.transaction() as s:
        contact = await s.get_one(m.Contact, (await s.get_one(m.Conversation, first)).contact_id)
        contact.blacklisted = True
        await c.do_customer_left(s, first)
    blocked = await inbound(services, setup["inbox"], "spammer", body="buy now")
    assert blocked != first, "a blacklisted contact does not reopen the old conversation"
    await do_route_pending(services.db)
    row = await conv(services, blocked)
    assert row.status == m.ConversationStatus.CLOSED and row.closed_by == "blacklist"
    assert await pending_offer(services, blocked) is None
    async with services.db.transaction() as s:
        bodies = list(await s.scalars(select(m.Message.body).where(m.Message.conversation_id == blocked)))
        kinds = list(await s.scalars(select(m.Event.type).where(m.Event.conversation_id == blocked)))
    assert bodies == ["buy now"], "the message is kept for the record"
    assert "conversation.blocked" in kinds and "conversation.queued" not in kinds


async def test_declining_while_the_engine_fires_the_offer_timeout_does_not_deadlock(
    services: Services, setup: dict[str, int]
) -> None:
    """The engine locks the deadline row and then the offer; a decline locks the offer and then
    cancels the deadline. The decline must skip the row being fired, not wait for it."""
    await go_available(services, setup["a"], setup["b"])
    cid = await inbound(services, setup["inbox"], "cust")
    await do_route_pending(services.db)
    offer = await pending_offer(services, cid)
    assert offer is not None
    async with services.db.transaction() as firing:  # the engine picked the timer up...
        timer = await firing.scalar(
            select(m.Deadline)
            .where(m.Deadline.kind == "offer_timeout", m.Deadline.ref_id == offer.id)
            .with_for_update()
        )
        assert timer is not None
        async with services.db.transaction() as s:  # ...while the operator declines
            u = await s.get_one(m.User, offer.user_id)
            declined = await asyncio.wait_for(c.check_decline_offer(s, f.who(u), offer.id), 10)
        assert declined.status == "queued"
        timer.done = True
        await c.do_offer_timeout(firing, offer.id)  # the engine's handler: nothing left to do
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Offer, offer.id)).state == "declined"
