"""One place in line across channels (omni/domain/place.py): the exact order of offers across
a mixed queue when customers change channel, same-customer affinity, blending that protects
chats, and why each offer was made. On SQLite (the PostgreSQL fast path makes the same offers
with the same ``why``: tests/domain/test_routing_pg.py compares both paths' events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import place
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import InvalidInput
from omni.domain.routing import do_route_pending
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite


@pytest_asyncio.fixture
async def lite(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


async def _inbound(
    svc: Services, inbox_id: int, who: str, *, medium: str = "chat", kind: str = "external", **kw: Any
) -> int:
    async with svc.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=inbox_id, identity_kind=kind, identity_value=who, body="hi", medium=medium, **kw
            ),
        )
        return res.conversation.id


async def _offers(svc: Services, since: int = 0) -> list[tuple[int, int, dict[str, Any]]]:
    """``(conversation, operator, why)`` of every ``conversation.offered`` after event ``since``."""
    async with svc.db.transaction() as s:
        rows = await s.scalars(
            select(m.Event)
            .where(m.Event.type == "conversation.offered", m.Event.id > since)
            .order_by(m.Event.id)
        )
        return [(int(e.conversation_id or 0), int(e.user_id or 0), e.payload["why"]) for e in rows]


async def _serve_one(svc: Services, user: m.User, code_id: int) -> int:
    """Route once; ``user`` accepts the one pending offer and closes it. Its conversation."""
    await do_route_pending(svc.db)
    async with svc.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.user_id == user.id, m.Offer.state == "pending"))
        assert offer is not None, "nothing was offered"
        await c.check_accept_offer(s, f.who(user), offer.id)
        await c.check_close(s, f.who(user), offer.conversation_id, code_id)
        return offer.conversation_id


async def test_call_me_keeps_the_place_in_a_mixed_queue(lite: Services) -> None:
    """Four chats wait, the third asks "call me", then a caller rings: the operator (one
    contact at a time) is offered them in the order they came, the callback in its own turn
    (not before the second chat, not after the fourth), as the same conversation."""
    async with lite.db.transaction() as s:
        op = await f.user(s, "op", capacity=3, chat_weight=3, voice_weight=3, sip_extension="201")
        q = await f.queue(s, "sales", [op], strategy=m.Strategy.LINEAR)
        chat = await f.inbox(s, q, "widget")
        voice = await f.inbox(s, q, "voice", config={"caller_id": "+74950000000"})
        code = await f.result_code(s)
        code_id = code.id
    w1, w2, w3, w4 = [await _inbound(lite, chat.id, f"v{i}") for i in range(1, 5)]
    async with lite.db.transaction() as s:
        before = await s.get_one(m.Conversation, w3)
        first, priority = before.first_enqueued_at, before.priority
        asked = await place.check_request_callback(s, w3, number="+7 916 123-45-67", via="widget")
        assert asked.id == w3
    v5 = await _inbound(
        lite, voice.id, "+79160000005", medium="voice", kind="phone", variables={"linkedid": "L5"}
    )
    async with lite.db.transaction() as s:
        after = await s.get_one(m.Conversation, w3)
        assert (after.first_enqueued_at, after.priority, after.medium) == (first, priority, "voice")
        assert after.variables["place"]["number"] == "+79161234567"
        told = await s.scalar(
            select(m.Message.body).where(m.Message.conversation_id == w3, m.Message.direction == "out")
        )
        assert told is not None and "+79161234567" in told
        await f.set_status(s, op)
    served = [await _serve_one(lite, op, code_id) for _ in range(5)]
    assert served == [w1, w2, w3, w4, v5]
    assert [(cid, why["rule"]) for cid, _, why in await _offers(lite)] == [
        (w1, "turn"),
        (w2, "turn"),
        (w3, "callback"),
        (w4, "turn"),
        (v5, "turn"),
    ]
    async with lite.db.transaction() as s:
        assert await s.scalar(select(m.Conversation.id).where(m.Conversation.id > v5)) is None  # none new


async def test_call_me_needs_a_number_and_a_voice_line(lite: Services) -> None:
    async with lite.db.transaction() as s:
        q = await f.queue(s, "novoice", [])
        chat = await f.inbox(s, q, "widget")
    conv_id = await _inbound(lite, chat.id, "visitor")
    async with lite.db.transaction() as s:
        with pytest.raises(InvalidInput, match="phone number"):
            await place.check_request_callback(s, conv_id, number="", via="widget")
        with pytest.raises(InvalidInput, match="no voice line"):
            await place.check_request_callback(s, conv_id, number="+79161234567", via="widget")
        conv = await s.get_one(m.Conversation, conv_id)
        assert conv.medium == "chat" and not place.is_callback(conv.variables)


async def test_second_simultaneous_call_from_the_same_number_is_its_own_conversation(lite: Services) -> None:
    """Regression: the second call joined the first call's conversation (one place in line,
    one operator, one recording for two calls)."""
    async with lite.db.transaction() as s:
        q = await f.queue(s, "calls", [])
        voice = await f.inbox(s, q, "voice")
    first = await _inbound(
        lite, voice.id, "+79160000001", medium="voice", kind="phone", variables={"linkedid": "A"}
    )
    second = await _inbound(
        lite, voice.id, "+79160000001", medium="voice", kind="phone", variables={"linkedid": "B"}
    )
    assert second != first
    # The first call's digits (no call id of their own) still reach the caller's conversation.
    again = await _inbound(lite, voice.id, "+79160000001", medium="voice", kind="phone")
    assert again == second
    async with lite.db.transaction() as s:
        statuses = (await s.scalars(select(m.Conversation.status).order_by(m.Conversation.id))).all()
    assert statuses == ["queued", "queued"]


async def test_affinity_offers_the_customers_operator_first_then_the_strategy(lite: Services) -> None:
    """Anna handles Ivan's chat; Ivan writes on another channel: Anna alone is offered it for
    the queue's affinity time, though Boris has been idle longer; then the strategy (Boris)."""
    async with lite.db.transaction() as s:
        anna = await f.user(s, "anna")
        boris = await f.user(s, "boris")
        q = await f.queue(s, "support", [anna, boris], strategy=m.Strategy.LONGEST_IDLE, affinity_seconds=30)
        web = await f.inbox(s, q, "widget")
        tg = await f.inbox(s, q, "telegram")
        await f.set_status(s, anna)
    first = await _inbound(lite, web.id, "+79160000009", kind="phone")
    await do_route_pending(lite.db)
    async with lite.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == first))
        assert offer is not None and offer.user_id == anna.id
        await c.check_accept_offer(s, f.who(anna), offer.id)
        await f.set_status(s, boris)
        p = await s.get_one(m.OperatorPresence, boris.id)
        p.idle_since = datetime.now(UTC) - timedelta(hours=1)
    mark = len(await _offers(lite))
    second = await _inbound(lite, tg.id, "+79160000009", kind="phone")  # the same person
    await do_route_pending(lite.db)
    offers = (await _offers(lite))[mark:]
    assert [(cid, uid, why["rule"]) for cid, uid, why in offers] == [(second, anna.id, "affinity")]
    assert offers[0][2]["conversation_id"] == first
    # Anna doesn't take it: after the affinity time the strategy decides (Boris, idle longest).
    await run_due_deadlines(lite.db, now=datetime.now(UTC) + timedelta(seconds=31))
    await do_route_pending(lite.db)
    offers = (await _offers(lite))[mark:]
    assert [(cid, uid, why["rule"]) for cid, uid, why in offers] == [
        (second, anna.id, "affinity"),
        (second, boris.id, "turn"),
    ]
    async with lite.db.transaction() as s:
        notes = (
            await s.scalars(
                select(m.Message.body).where(
                    m.Message.conversation_id == second, m.Message.direction == "note"
                )
            )
        ).all()
    assert any(f"conversation #{first}" in n for n in notes)


async def test_an_operator_on_a_call_has_chats_told_and_rerouted_at_their_place(lite: Services) -> None:
    """Anna holds two chats and takes a call (``chats_block_calls`` off): both customers are
    told; one customer writes and waits past the threshold: that chat goes back in line with
    its first place and is offered to Boris; the other (nothing unanswered) stays with Anna."""
    async with lite.db.transaction() as s:
        anna = await f.user(s, "anna", sip_extension="201")
        boris = await f.user(s, "boris")
        q = await f.queue(
            s, "mix", [anna], chats_block_calls=False, blend_notice=True, blend_reoffer_seconds=60
        )
        web = await f.inbox(s, q, "widget")
        voice = await f.inbox(s, q, "voice")
        await f.set_status(s, anna)
    chats = []
    for who in ("olga", "petr"):
        cid = await _inbound(lite, web.id, who)
        await do_route_pending(lite.db)
        async with lite.db.transaction() as s:
            offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == cid))
            assert offer is not None
            await c.check_accept_offer(s, f.who(anna), offer.id)
            await c.check_send_message(s, f.who(anna), cid, "Hello!")
        chats.append(cid)
    olga, petr = chats
    call = await _inbound(
        lite, voice.id, "+79160000003", medium="voice", kind="phone", variables={"linkedid": "C"}
    )
    await do_route_pending(lite.db)
    async with lite.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == call))
        assert offer is not None and offer.user_id == anna.id
        await c.check_accept_offer(s, f.who(anna), offer.id)
        told = (
            await s.scalars(
                select(m.Message.conversation_id).where(
                    m.Message.direction == "out", m.Message.author_user_id.is_(None)
                )
            )
        ).all()
        assert sorted(told) == [olga, petr]
        first_place = (await s.get_one(m.Conversation, olga)).first_enqueued_at
        q_row = await s.get_one(m.Queue, q.id)
        s.add(m.QueueMember(queue_id=q_row.id, user_id=boris.id, position=1, penalty=0))
        await f.set_status(s, boris)
    await _inbound(lite, web.id, "olga")  # Olga writes; Anna is on the phone
    mark = len(await _offers(lite))
    # Not yet past the threshold since Olga wrote: nothing moves.
    await run_due_deadlines(lite.db, now=datetime.now(UTC) + timedelta(seconds=30))
    async with lite.db.transaction() as s:
        assert (await s.get_one(m.Conversation, olga)).assigned_user_id == anna.id
    await run_due_deadlines(lite.db, now=datetime.now(UTC) + timedelta(seconds=120))
    await do_route_pending(lite.db)
    offers = (await _offers(lite))[mark:]
    assert [(cid, uid, why["rule"]) for cid, uid, why in offers] == [(olga, boris.id, "reoffered")]
    async with lite.db.transaction() as s:
        moved = await s.get_one(m.Conversation, olga)
        assert moved.first_enqueued_at == first_place
        assert (await s.get_one(m.Conversation, petr)).assigned_user_id == anna.id
        types = (
            await s.scalars(select(m.Event.type).where(m.Event.conversation_id == olga).order_by(m.Event.id))
        ).all()
    assert "conversation.reoffered" in types


async def test_a_customer_an_operator_handles_skips_the_ivr_when_the_queue_says_so(lite: Services) -> None:
    """The phone line runs a menu; Ivan, whose chat Anna is handling, calls: with
    ``affinity_skip_ivr`` he goes straight into line (offered to Anna first), a stranger gets
    the menu."""
    from bots import runner, service

    menu = {
        "name": "Menu",
        "start": "menu",
        "nodes": [
            {"id": "menu", "type": "menu", "content": {"text": "Press 1"},
             "options": [{"id": "one", "label": "One", "dtmf": "1"}], "retries": 0, "timeout_seconds": 3,
             "ports": {"opt:one": "line", "on_max_retries": "line"}},
            {"id": "line", "type": "handoff", "queue_id": 0,
             "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "bye", "type": "close", "result_code": ""},
        ],
    }  # fmt: skip
    runner.install(lite.db)
    async with lite.db.transaction() as s:
        anna = await f.user(s, "anna")
        admin = await f.user(s, "admin", m.Role.ADMIN)
        q = await f.queue(
            s, "line", [anna], affinity_seconds=20, affinity_skip_ivr=True, chats_block_calls=False
        )
        web = await f.inbox(s, q, "widget")
        menu["nodes"][1]["queue_id"] = q.id  # type: ignore[index]  # the literal above
        row = await service.create(s, f.who(admin), "menu", "Menu", menu)
        await service.publish(s, f.who(admin), row.id)
        voice = await f.inbox(s, q, "voice", config={"scenario": "menu"})
        await f.set_status(s, anna)
    chat = await _inbound(lite, web.id, "+79160000011", kind="phone")
    await do_route_pending(lite.db)
    async with lite.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == chat))
        assert offer is not None
        await c.check_accept_offer(s, f.who(anna), offer.id)
    known = await _inbound(
        lite, voice.id, "+79160000011", medium="voice", kind="phone", variables={"linkedid": "K"}
    )
    stranger = await _inbound(
        lite, voice.id, "+79160000012", medium="voice", kind="phone", variables={"linkedid": "S"}
    )
    async with lite.db.transaction() as s:
        ivan = await s.get_one(m.Conversation, known)
        assert ivan.status == "queued" and ivan.preferred_user_id == anna.id
        assert await s.get(m.BotSession, known) is None
        assert (await s.get_one(m.Conversation, stranger)).status == "bot"


async def test_a_caller_continues_in_telegram_keeping_the_place(lite: Services) -> None:
    """A caller Omni knows in Telegram presses the IVR's key: the same conversation goes on in
    their Telegram chat with its first place; their next Telegram message joins it. A caller
    unknown in Telegram is refused (and keeps waiting on the line)."""
    async with lite.db.transaction() as s:
        q = await f.queue(s, "line", [])
        tg = await f.inbox(s, q, "telegram")
        voice = await f.inbox(s, q, "voice")
    earlier = await _inbound(lite, tg.id, "555", kind="telegram")
    async with lite.db.transaction() as s:
        old = await s.get_one(m.Conversation, earlier)
        old.status, old.closed_at = "closed", datetime.now(UTC) - timedelta(days=2)
        s.add(m.ContactIdentity(contact_id=old.contact_id, kind="phone", value="+79160000021"))
    call = await _inbound(
        lite, voice.id, "+79160000021", medium="voice", kind="phone", variables={"linkedid": "T"}
    )
    stranger = await _inbound(
        lite, voice.id, "+79160000022", medium="voice", kind="phone", variables={"linkedid": "U"}
    )
    async with lite.db.transaction() as s:
        first = (await s.get_one(m.Conversation, call)).first_enqueued_at
        moved = await place.check_continue_in_telegram(s, call, via="ivr")
        assert (moved.channel, moved.inbox_id, moved.medium) == ("telegram", tg.id, "chat")
        told = await s.scalar(
            select(m.Message.body).where(m.Message.conversation_id == call, m.Message.direction == "out")
        )
        assert told == "You keep your place in line; an operator will write to you here."
        with pytest.raises(InvalidInput, match="Telegram"):
            await place.check_continue_in_telegram(s, stranger, via="ivr")
    again = await _inbound(lite, tg.id, "555", kind="telegram")
    assert again == call
    async with lite.db.transaction() as s:
        conv = await s.get_one(m.Conversation, call)
        assert conv.first_enqueued_at == first and conv.status == "queued"
        assert (await s.get_one(m.Conversation, stranger)).channel == "voice"
