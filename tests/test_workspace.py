"""The operator window's services: manual take, canned replies, the card, the blacklist,
cross-channel history, and scope (another group's operator gets nothing, socket or REST)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import workspace as ws
from omni.domain.conversations import InboundMessage
from omni.domain.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from omni.services import Services
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT, capture_events, until
from tests.test_realtime import OperatorClient, token_for


async def inbound(services: Services, inbox_id: int, who: str, body: str = "hello", **kw: Any) -> int:
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value=who, body=body, **kw),
        )
        return res.conversation.id


async def as_user(services: Services, username: str) -> Any:
    async with services.db.transaction() as s:
        u = await s.scalar(select(m.User).where(m.User.username == username))
        assert u is not None
        return f.who(u)


@pytest.fixture
async def world(services: Services) -> dict[str, int]:
    """Group A: queue ``web`` (op, op2) with widget + telegram inboxes; group B: queue ``b`` (other)."""
    async with services.db.transaction() as s:
        op = await f.user(s, "op", capacity=1)
        op2 = await f.user(s, "op2")
        other = await f.user(s, "other")
        q = await f.queue(s, "web", [op, op2])
        qb = await f.queue(s, "b", [other])
        manual_off = await f.queue(s, "no-pick", [op, op2], manual_pick=False)
        ids = {
            "op": op.id,
            "op2": op2.id,
            "other": other.id,
            "q": q.id,
            "qb": qb.id,
            "widget": (await f.inbox(s, q, channel="widget")).id,
            "telegram": (await f.inbox(s, q, channel="telegram")).id,
            "inbox_b": (await f.inbox(s, qb, channel="widget", name="b-widget")).id,
            "no_pick": (await f.inbox(s, manual_off, name="no-pick")).id,
        }
        for u in (op, op2, other):
            await f.set_status(s, u)
    return ids


async def take(services: Services, username: str, conv_id: int) -> m.Conversation:
    who = await as_user(services, username)
    async with services.db.transaction() as s:
        return await ws.check_take(s, who, conv_id)


async def test_manual_take_respects_manual_pick_status_and_capacity(
    services: Services, world: dict[str, int]
) -> None:
    no_pick = await inbound(services, world["no_pick"], "c1")
    with pytest.raises(PermissionDenied, match="does not allow taking"):
        await take(services, "op", no_pick)

    first = await inbound(services, world["widget"], "c2")
    second = await inbound(services, world["widget"], "c3")
    taken = await take(services, "op", first)
    assert taken.status == m.ConversationStatus.ACTIVE and taken.assigned_user_id == world["op"]
    with pytest.raises(Conflict, match="no longer waiting"):
        await take(services, "op2", first)
    # op has capacity 1 and holds a chat now.
    with pytest.raises(Conflict, match="no free capacity"):
        await take(services, "op", second)
    async with services.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, world["op2"]), "pause")
    with pytest.raises(Conflict, match="does not take chats") as exc:
        await take(services, "op2", second)
    assert exc.value.field == "status"
    async with services.db.transaction() as s:
        events = list(
            await s.scalars(select(m.Event.type).where(m.Event.conversation_id == first).order_by(m.Event.id))
        )
    assert "conversation.accepted" in events


async def test_two_operators_taking_at_once_assign_once(services: Services, world: dict[str, int]) -> None:
    op, op2 = await as_user(services, "op"), await as_user(services, "op2")
    for n in range(5):
        conv_id = await inbound(services, world["widget"], f"race-{n}")

        async def attempt(who: Any, cid: int = conv_id) -> str:
            try:
                async with services.db.transaction() as s:
                    await ws.check_take(s, who, cid)
                return "ok"
            except Conflict:
                return "conflict"

        results = await asyncio.gather(attempt(op), attempt(op2))
        assert sorted(results) == ["conflict", "ok"], results
        async with services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            accepted = await s.scalar(
                select(func.count()).where(m.Offer.conversation_id == conv_id, m.Offer.state == "accepted")
            )
        assert accepted == 1
        assert conv.assigned_user_id in (world["op"], world["op2"])
        # Free both again for the next round.
        async with services.db.transaction() as s:
            await c.do_close(s, await s.get_one(m.Conversation, conv_id), None)


async def test_take_while_the_router_holds_the_row_waits_instead_of_saying_someone_else_takes_it(
    services: Services, world: dict[str, int]
) -> None:
    """The router's pass locks each waiting conversation for a moment, even one nobody may be
    offered (a skill no one online has). Take used ``SKIP LOCKED`` and so told the operator
    "another operator is taking this conversation right now" when nobody was: a click on Take
    right after closing a chat (which starts a routing pass) failed now and then."""
    conv_id = await inbound(services, world["widget"], "locked-by-router")
    op = await as_user(services, "op")

    async def waiting_for_a_lock() -> bool:
        async with services.db.transaction() as s:
            query = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return bool(await s.scalar(text(query)))

    async with services.db.engine.connect() as router:  # the router's pass, mid-way
        await router.execute(text("SELECT id FROM conversations WHERE id = :id FOR UPDATE"), {"id": conv_id})
        taking = asyncio.create_task(take(services, "op", conv_id))
        await until(waiting_for_a_lock, what="Take waiting for the router's row lock")
        await router.commit()
    taken = await taking
    assert (taken.status, taken.assigned_user_id) == (m.ConversationStatus.ACTIVE, op.id)


async def test_two_sockets_of_a_new_operator_connecting_at_once_share_one_presence_row(
    services: Services,
) -> None:
    """Both connects of an operator with no presence row yet (two tabs, or a reload right after
    log-in) looked for the row, missed it and inserted it: the second failed on the primary key
    and its socket got no answers. Here the second waits for the first and reads its row."""
    from omni.domain.presence import get_presence

    async with services.db.transaction() as s:
        user_id = (await f.user(s, "twin-tabs")).id

    async def waiting_for_a_lock() -> bool:
        async with services.db.transaction() as s:
            query = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return bool(await s.scalar(text(query)))

    async def second() -> tuple[int, int]:
        async with services.db.transaction() as s:
            row = await get_presence(s, user_id)
            return row.user_id, row.status_id

    async with services.db.transaction() as first:
        mine = await get_presence(first, user_id)  # inserted, not committed yet
        racing = asyncio.create_task(second())
        await until(waiting_for_a_lock, what="the second connect waiting for the first one's row")
    assert await racing == (user_id, mine.status_id)
    async with services.db.transaction() as s:
        rows = await s.scalar(select(func.count()).where(m.OperatorPresence.user_id == user_id))
        assert rows == 1


async def test_canned_replies_scope_and_placeholders(services: Services, world: dict[str, int]) -> None:
    conv_id = await inbound(services, world["widget"], "ann", contact_name="Ann")
    async with services.db.transaction() as s:
        s.add_all(
            [
                m.CannedReply(
                    shortcut="hi", title="Hello", body="Hello {{contact.name}}, {{operator.name}} here."
                ),
                m.CannedReply(
                    queue_id=world["q"], shortcut="q", title="Queue", body="{{queue.name}} {{x.y}}"
                ),
                m.CannedReply(queue_id=world["qb"], shortcut="b", title="Other queue", body="no"),
                m.CannedReply(owner_user_id=world["op2"], shortcut="p2", title="Not mine", body="no"),
            ]
        )
    op = await as_user(services, "op")
    async with services.db.transaction() as s:
        mine = await ws.check_save_personal_canned(
            s, op, shortcut="/bye", title="", body="Bye {{contact.email}}!"
        )
        with pytest.raises(InvalidInput) as bad:
            await ws.check_save_personal_canned(s, op, shortcut="two words", title="", body="x")
        assert bad.value.field == "shortcut"
    async with services.db.transaction() as s:
        replies = {r["shortcut"]: r for r in await ws.canned_replies(s, op, conv_id)}
    assert set(replies) == {"hi", "q", "bye"}
    assert replies["hi"]["text"] == "Hello Ann, op here."
    assert replies["q"]["text"] == "web {{x.y}}", "unknown placeholders stay as typed"
    assert replies["bye"]["text"] == "Bye !" and replies["bye"]["scope"] == "personal"
    assert ws.render_placeholders("{{ contact.name }}", {"contact.name": "A"}) == "A"
    other = await as_user(services, "other")
    async with services.db.transaction() as s:
        with pytest.raises(NotFound):
            await ws.check_delete_personal_canned(s, other, mine["id"])
        with pytest.raises(NotFound):
            await ws.canned_replies(s, other, conv_id)
    async with services.db.transaction() as s:
        await ws.check_delete_personal_canned(s, op, mine["id"])
        assert await s.get(m.CannedReply, mine["id"]) is None


async def test_card_update_validates_each_kind_and_names_the_field(
    services: Services, world: dict[str, int]
) -> None:
    conv_id = await inbound(services, world["widget"], "card")
    async with services.db.transaction() as s:
        s.add_all(
            [
                m.CardField(key="contract", label="Contract", kind="text", required=True, position=1),
                m.CardField(
                    queue_id=world["q"], key="work_email", label="Work email", kind="email", position=2
                ),
                m.CardField(queue_id=world["q"], key="seats", label="Seats", kind="number", position=3),
                m.CardField(queue_id=world["q"], key="plan", label="Plan", kind="select", options=["a", "b"]),
                m.CardField(queue_id=world["q"], key="since", label="Since", kind="date"),
                m.CardField(queue_id=world["q"], key="vip", label="VIP", kind="checkbox"),
                m.CardField(queue_id=world["q"], key="crm_id", label="CRM id", kind="text", editable=False),
                m.CardField(queue_id=world["qb"], key="secret", label="B only", kind="text"),
            ]
        )
    op = await as_user(services, "op")

    async def update(values: dict[str, Any]) -> dict[str, Any]:
        async with services.db.transaction() as s:
            return await ws.check_update_card(s, op, conv_id, values)

    cases: list[tuple[dict[str, Any], type[DomainError], str]] = [
        ({"work_email": "not-an-email"}, InvalidInput, "work_email"),
        ({"seats": "many"}, InvalidInput, "seats"),
        ({"plan": "c"}, InvalidInput, "plan"),
        ({"since": "31.12.2024"}, InvalidInput, "since"),
        ({"contract": ""}, InvalidInput, "contract"),
        ({"crm_id": "1"}, PermissionDenied, "crm_id"),
        ({"secret": "x"}, InvalidInput, "secret"),
        ({"phone": "12"}, InvalidInput, "phone"),
    ]
    for values, error, field in cases:
        with pytest.raises(error) as exc:
            await update(values)
        assert exc.value.field == field, (values, exc.value.message)
    card = await update(
        {
            "name": "Ann",
            "phone": "+7 495 123-45-67",
            "work_email": "ann@example.com",
            "seats": "12",
            "plan": "b",
            "since": "2024-02-29",
            "vip": True,
            "contract": "C-1",
        }
    )
    values = {fld["key"]: fld["value"] for fld in card["fields"]}
    assert values == {
        "contract": "C-1",
        "work_email": "ann@example.com",
        "seats": 12,
        "plan": "b",
        "since": "2024-02-29",
        "vip": True,
        "crm_id": None,
    }
    assert card["contact"]["phone"] == "+74951234567"
    assert card["contact"]["timezone"] == "Europe/Moscow"
    assert card["contact"]["utc_offset_seconds"] == 3 * 3600 and card["contact"]["local_time"]
    async with services.db.transaction() as s:
        logged = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "contact.update"))
    assert logged is not None and logged.user_id == world["op"]
    assert "ann@example.com" not in str(logged.input), "the audit log names fields, not values"


async def test_blacklist_sets_the_flag_and_is_audited(services: Services, world: dict[str, int]) -> None:
    conv_id = await inbound(services, world["widget"], "spammer")
    op = await as_user(services, "op")
    async with services.db.transaction() as s:
        contact = await ws.check_set_blacklisted(s, op, conv_id, reason="abuse")
        contact_id = contact.id
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Contact, contact_id)).blacklisted
        row = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "contact.blacklist"))
        assert row is not None and row.object_id == str(contact_id) and row.input["reason"] == "abuse"
        with pytest.raises(PermissionDenied):
            await ws.check_set_blacklisted(s, op, conv_id, blacklisted=False)


async def test_history_shows_other_channels_and_hides_other_groups(
    services: Services, world: dict[str, int]
) -> None:
    chat = await inbound(services, world["widget"], "same-person", body="from the site")
    tg = await inbound(services, world["telegram"], "same-person", body="from telegram")
    elsewhere = await inbound(services, world["inbox_b"], "same-person", body="group B only")
    op = await as_user(services, "op")
    async with services.db.transaction() as s:
        history = await ws.contact_history(s, op, chat)
    assert [h["id"] for h in history["conversations"]] == [tg]
    assert history["conversations"][0]["channel"] == "telegram"
    assert [msg["body"] for msg in history["conversations"][0]["messages"]] == ["from telegram"]
    assert history["hidden"] == 1
    other = await as_user(services, "other")
    async with services.db.transaction() as s:
        theirs = await ws.contact_history(s, other, elsewhere)
        assert theirs["conversations"] == [] and theirs["hidden"] == 2
        with pytest.raises(NotFound):
            await ws.contact_history(s, other, chat)


# --- over the socket and REST, on the real server -----------------------------------------


@pytest.fixture
async def live(live_server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        q = await f.queue(
            s, "web", [op], script='<p>Greet</p><script>alert(1)</script><img src=x onerror="x()">'
        )
        await f.queue(s, "b", [other])
        ib = await f.inbox(s, q)
        await f.set_status(s, op, "pause")  # nothing is offered: the conversation waits in line
        ids: dict[str, Any] = {"inbox": ib.id, "op": op.id}
    ids["op_token"] = await token_for(live_server, "op")
    ids["other_token"] = await token_for(live_server, "other")
    yield ids


async def test_another_groups_operator_gets_nothing_socket_or_rest(
    live_server: LiveServer, live: dict[str, Any]
) -> None:
    conv_id = await inbound(live_server.services, live["inbox"], "cust", body="<b>hi</b>")
    op = OperatorClient(live_server.url, live["op_token"])
    other = OperatorClient(live_server.url, live["other_token"])
    await op.connect()
    await other.connect()
    try:
        attempts: list[tuple[str, dict[str, Any]]] = [
            ("open", {"conversation_id": conv_id}),
            ("history", {"conversation_id": conv_id}),
            ("take", {"conversation_id": conv_id}),
            ("canned", {"conversation_id": conv_id}),
            ("card_update", {"conversation_id": conv_id, "values": {"name": "x"}}),
            ("blacklist", {"conversation_id": conv_id}),
            ("transfer", {"conversation_id": conv_id, "to_queue_id": 1}),
        ]
        for event, data in attempts:
            ack = await other.call(event, data)
            assert ack["ok"] is False and ack["error"] == "not_found", (event, ack)
        snap = await other.call("snapshot", {})
        assert conv_id not in {w["id"] for w in snap["waiting"]}
        async with httpx.AsyncClient(
            base_url=live_server.url,
            headers={"Authorization": f"Bearer {live['other_token']}"},
            timeout=HTTP_TIMEOUT,
        ) as http:
            assert (await http.get(f"/api/v1/conversations/{conv_id}")).status_code == 404
            listed = (await http.get("/api/v1/conversations/")).json()
            assert conv_id not in {row["id"] for row in listed}

        # The queue's own operator: sees it waiting, opens it, takes it once their status allows.
        snap = await op.call("snapshot", {})
        waiting = {w["id"]: w for w in snap["waiting"]}
        assert waiting[conv_id]["position"] == 1 and waiting[conv_id]["manual_pick"] is True
        view = await op.call("open", {"conversation_id": conv_id})
        assert view["ok"] and [msg["body"] for msg in view["messages"]] == ["<b>hi</b>"]
        assert view["script"] == "<p>Greet</p>", "the script is sanitised when served"
        refused = await op.call("take", {"conversation_id": conv_id})
        assert refused["ok"] is False and refused["field"] == "status"
        assert (await op.call("set_status", {"status": "available"}))["ok"]
        # Available now, so the router may offer it before the take: either way it ends up ours.
        taken = await op.call("take", {"conversation_id": conv_id})
        if not taken["ok"]:
            offer = await op.wait_for("conversation.offered", id=conv_id)
            assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        snap = await op.call("snapshot", {})
        assert [cv["id"] for cv in snap["conversations"]] == [conv_id]
        assert snap["conversations"][0]["status"] == "active"
        note = await op.call("send", {"conversation_id": conv_id, "body": "vip", "private": True})
        assert note["ok"] and note["message"]["direction"] == "note"
        scheduled = await op.call(
            "schedule_callback",
            {"conversation_id": conv_id, "due_at": "2999-01-01T10:00:00Z", "note": "call"},
        )
        assert scheduled["ok"] and scheduled["callback"]["due_at"].startswith("2999-01-01T10:00")
        past = await op.call(
            "schedule_callback", {"conversation_id": conv_id, "due_at": "2000-01-01T00:00:00Z"}
        )
        assert past["ok"] is False and past["field"] == "due_at"
        cbs = await op.call("callbacks", {})
        assert [cb["id"] for cb in cbs["callbacks"]] == [scheduled["callback"]["id"]]
    finally:
        await op.sio.disconnect()
        await other.sio.disconnect()


async def test_a_channel_that_goes_down_during_a_routing_pass_gets_no_offer_from_it(
    services: Services, world: dict[str, int]
) -> None:
    """A pass read the paused channels once, at its start: when the AMI link dropped during
    the pass and an operator became available meanwhile, the pass still offered them the call
    (seen in CI: a voice offer while the link was down)."""
    from omni.domain.routing import do_route_pending

    conv_id = await inbound(services, world["widget"], "link-drops")
    assert await do_route_pending(services.db, still_paused=lambda: {"widget"}) == []
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Conversation, conv_id)).status == m.ConversationStatus.QUEUED
        assert await s.scalar(select(func.count()).where(m.Offer.conversation_id == conv_id)) == 0
    (assigned,) = await do_route_pending(services.db, still_paused=lambda: set())
    assert assigned.conversation_id == conv_id


async def test_double_accept_is_not_an_error_for_the_operator_who_accepted(
    services: Services, world: dict[str, int]
) -> None:
    """Issue 10 #18: a double click on Accept showed "offer N is already accepted"."""
    from omni.domain.routing import do_route_pending

    conv_id = await inbound(services, world["widget"], "double")
    await do_route_pending(services.db)
    async with services.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == conv_id))
        assert offer is not None and offer.state == "pending"
        offer_id, offered_to = offer.id, offer.user_id
    username = "op" if offered_to == world["op"] else "op2"
    who = await as_user(services, username)
    accepting_events = capture_events(services.db, conversation_id=conv_id)
    async with accepting_events as accepting, services.db.transaction() as s:
        first = await c.check_accept_offer(s, who, offer_id)
    assert [e.type for e in accepting].count("conversation.accepted") == 1
    # The second accept changes nothing.
    async with capture_events(services.db, expected=0), services.db.transaction() as s:
        again = await c.check_accept_offer(s, who, offer_id)
    assert (again.id, again.status, again.assigned_user_id) == (first.id, "active", offered_to)
    # Anyone else still gets the conflict; and an offer that was declined stays refused.
    other = await as_user(services, "op2" if username == "op" else "op")
    async with services.db.transaction() as s:
        with pytest.raises(NotFound):
            await c.check_accept_offer(s, other, offer_id)


async def test_waiting_panel_says_take_does_not_fit_at_full_capacity(
    services: Services, world: dict[str, int]
) -> None:
    """Issue 10 #18: Take stayed clickable at full capacity (op has capacity 1)."""
    first = await inbound(services, world["widget"], "cap1")
    second = await inbound(services, world["widget"], "cap2")
    who = await as_user(services, "op")
    async with services.db.transaction() as s:
        before = {item["id"]: item["fits"] for item in await ws.waiting_panel(s, who)}
    assert before == {first: True, second: True}
    await take(services, "op", first)
    async with services.db.transaction() as s:
        after = {item["id"]: item["fits"] for item in await ws.waiting_panel(s, who)}
    assert after == {second: False}
    with pytest.raises(Conflict, match="no free capacity"):
        await take(services, "op", second)
