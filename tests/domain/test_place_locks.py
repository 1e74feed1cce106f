"""A callback keeps its place while its row is busy for a moment (PostgreSQL: the locks are
real row locks there; SQLite serialises transactions and never skips a row).

The router's pass locks each waiting conversation with ``SKIP LOCKED``. A conversation another
transaction held at that moment (the customer writing while waiting, a callback being asked
for, an offer or a call row being written for it) was skipped, and the free operator was
offered the conversation *behind* it: in the "call me" journey the chat enqueued after the
callback was offered first now and then. Each test holds the lock in a transaction of its
own while the test drives the routing passes by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text, update

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import place, routing
from omni.domain.routing import do_route_pending
from omni.services import Services
from tests import factories as f


async def _world(svc: Services) -> dict[str, Any]:
    """Queue ``web`` with Olga (one contact at a time) and a voice line; a widget chat that
    asked "call me", then a chat behind it; Olga free."""
    async with svc.db.transaction() as s:
        olga = await f.user(s, "olga", capacity=3, chat_weight=3, voice_weight=3, sip_extension="101")
        q = await f.queue(s, "web", [olga], strategy=m.Strategy.LINEAR)
        widget = await f.inbox(s, q, "widget")
        await f.inbox(s, q, "voice", config={"caller_id": "+74950000000"})
        await f.set_status(s, olga, "pause")
        ids = {"olga": olga.id, "widget": widget.id}
    ids["callback"] = await _inbound(svc, ids["widget"], "visitor")
    async with svc.db.transaction() as s:
        await place.check_request_callback(s, ids["callback"], number="+79167000001", via="widget")
    ids["behind"] = await _inbound(svc, ids["widget"], "behind")
    async with svc.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, ids["olga"]))
    return ids


async def _inbound(svc: Services, inbox_id: int, who: str, session: Any = None) -> int:
    msg = c.InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value=who, body="hi")
    if session is not None:
        return (await c.do_ingest_inbound(session, msg)).conversation.id
    async with svc.db.transaction() as s:
        return (await c.do_ingest_inbound(s, msg)).conversation.id


async def _set_status(svc: Services, conv_id: int, status: str, user_id: int | None = None) -> None:
    """The conversation's row as another action leaves it (a chat being handled, then closed)."""
    values: dict[str, Any] = {"status": status}
    if user_id is not None:
        values["assigned_user_id"] = user_id
    async with svc.db.transaction() as s:
        await s.execute(update(m.Conversation).where(m.Conversation.id == conv_id).values(**values))


async def _offered(svc: Services) -> list[tuple[int, int]]:
    async with svc.db.transaction() as s:
        rows = await s.execute(select(m.Offer.conversation_id, m.Offer.user_id).order_by(m.Offer.id))
        return [(int(cid), int(uid)) for cid, uid in rows.all()]


async def test_customer_writing_as_the_router_passes_does_not_give_the_callbacks_operator_to_the_chat_behind(
    services: Services,
) -> None:
    """The callback's customer writes again just as the pass reaches them (their message
    locks the conversation): Olga must not be offered the chat behind; the next pass offers
    her the callback, in its turn."""
    w = await _world(services)
    async with services.db.transaction() as writing:
        await _inbound(services, w["widget"], "visitor", session=writing)  # holds the callback's row
        await do_route_pending(services.db)
        assert await _offered(services) == [], "the chat behind took the callback's operator"
    await do_route_pending(services.db)
    assert await _offered(services) == [(w["callback"], w["olga"])]


async def test_a_row_written_for_the_callback_does_not_make_the_router_skip_it(services: Services) -> None:
    """A row that only refers to the waiting conversation (a note, a message, an offer, a call
    row) holds ``KEY SHARE`` on it until its transaction ends; the router's lock must not
    conflict with that: the callback is offered in this very pass."""
    w = await _world(services)
    async with services.db.transaction() as writing:
        writing.add(
            m.Message(
                conversation_id=w["callback"],
                inbox_id=w["widget"],
                direction="note",
                body="a note being written",
                attachments=[],
                delivery="stored",
                created_at=datetime.now(UTC),
            )
        )
        await writing.flush()
        await do_route_pending(services.db)
        assert await _offered(services) == [(w["callback"], w["olga"])]


async def test_an_operator_held_for_a_moment_is_not_offered_the_chat_behind_the_callback(
    services: Services,
) -> None:
    """Olga's presence row is locked (her status being saved) when the pass decides the
    callback, and free again a moment later, when it reaches the chat behind: that chat must
    not get her first."""
    w = await _world(services)
    async with services.db.engine.connect() as other:
        await other.execute(
            text("SELECT user_id FROM operator_presence WHERE user_id = :u FOR UPDATE"), {"u": w["olga"]}
        )
        released = False

        async def release_after_the_callback(conv_id: int) -> None:
            nonlocal released
            if conv_id != w["callback"] and not released:
                released = True
                await other.rollback()

        # The pass as ``do_route_pending`` runs it, with the lock released between the two
        # conversations: the interleaving that made the chat behind jump the line.
        rp = routing.RoutePass()
        async with services.db.transaction() as s:
            line = await routing.waiting_line(s)
        assert [row[0] for row in line] == [w["callback"], w["behind"]]
        for row in line:
            await release_after_the_callback(row[0])
            async with services.db.transaction() as s:
                await routing.do_assign(s, row[0], rp)
        assert released
        assert await _offered(services) == [], "the chat behind took the callback's operator"
    await do_route_pending(services.db)
    assert await _offered(services) == [(w["callback"], w["olga"])]


@pytest.mark.parametrize("orm_only", [False, True], ids=["postgres-path", "orm-path"])
async def test_an_operator_freed_while_the_pass_runs_is_not_offered_the_chat_behind_the_callback(
    services: Services, orm_only: bool
) -> None:
    """Olga is still on a chat when the pass decides the callback (no room for a call) and
    closes it before the pass reaches the chat behind: the chat behind used to get her (the
    "call me" journey offered the third customer before the callback). The pass that her close
    asks for offers her the callback, in its turn."""
    w = await _world(services)
    chat = await _inbound(services, w["widget"], "earlier")
    await _set_status(services, chat, m.ConversationStatus.ACTIVE, w["olga"])
    rp = routing.RoutePass(orm_only=orm_only)
    async with services.db.transaction() as s:
        line = await routing.waiting_line(s)
    assert [row[0] for row in line] == [w["callback"], w["behind"]]
    async with services.db.transaction() as s:
        assert await routing.do_assign(s, w["callback"], rp) is None  # a call needs all of Olga
    await _set_status(services, chat, m.ConversationStatus.CLOSED)
    async with services.db.transaction() as s:
        assert await routing.do_assign(s, w["behind"], rp) is None
    assert await _offered(services) == [], "the chat behind took the callback's operator"
    await do_route_pending(services.db)
    assert await _offered(services) == [(w["callback"], w["olga"])]


async def test_a_chat_still_fits_beside_a_call_that_does_not(services: Services) -> None:
    """The hold is for operators freed during the pass only: with room for one more chat but not
    for a call, Olga is offered the chat behind the callback in the same pass (blending)."""
    w = await _world(services)
    chat = await _inbound(services, w["widget"], "earlier")
    async with services.db.transaction() as s:
        olga = await s.get_one(m.User, w["olga"])
        olga.capacity, olga.chat_weight = 3, 1
        await s.execute(
            update(m.Conversation)
            .where(m.Conversation.id == chat)
            .values(status=m.ConversationStatus.ACTIVE, assigned_user_id=w["olga"])
        )
    await do_route_pending(services.db)
    assert await _offered(services) == [(w["behind"], w["olga"])]


async def test_an_operator_freed_during_the_pass_takes_the_next_when_the_one_ahead_was_served(
    services: Services,
) -> None:
    """The hold is for a conversation that went to nobody: when the one ahead went to a
    colleague, an operator freed meanwhile is offered the next one in the same pass."""
    async with services.db.transaction() as s:
        olga = await f.user(s, "olga", capacity=1, chat_weight=1)
        boris = await f.user(s, "boris", capacity=1, chat_weight=1)
        q = await f.queue(s, "web", [olga, boris], strategy=m.Strategy.LINEAR)
        inbox = await f.inbox(s, q, "widget")
        await f.set_status(s, olga)
        await f.set_status(s, boris)
        ids = {"olga": olga.id, "boris": boris.id, "inbox": inbox.id}
    busy = await _inbound(services, ids["inbox"], "earlier")
    await _set_status(services, busy, m.ConversationStatus.ACTIVE, ids["olga"])
    ahead = await _inbound(services, ids["inbox"], "ahead")
    behind = await _inbound(services, ids["inbox"], "behind")
    rp = routing.RoutePass()
    async with services.db.transaction() as s:
        served = await routing.do_assign(s, ahead, rp)  # Olga is full: Boris gets it
    assert served is not None and served.user_ids == (ids["boris"],)
    await _set_status(services, busy, m.ConversationStatus.CLOSED)
    async with services.db.transaction() as s:
        nxt = await routing.do_assign(s, behind, rp)
    assert nxt is not None and nxt.user_ids == (ids["olga"],)
