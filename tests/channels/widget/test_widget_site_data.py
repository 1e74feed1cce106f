"""``Omni.setUser`` / ``Omni.setCustomAttributes`` over real Socket.IO: what a site says about
its visitor reaches the contact card; bad input is refused whole, naming the problem, and
nothing already stored changes."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from omni.db import models as m
from omni.domain.visitor_profile import MAX_ATTRIBUTES
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import LiveServer


async def _contact(server: LiveServer) -> m.Contact:
    async with server.services.db.transaction() as s:
        contact = await s.scalar(
            select(m.Contact)
            .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Contact.id)
            .where(m.ContactIdentity.kind == "widget")
            .order_by(m.Contact.id)
            .limit(1)
        )
        assert contact is not None
        return contact


async def test_site_data_reached_the_card_and_bad_input_corrupted_nothing(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        ib = await f.inbox(s, await f.queue(s, "web", [await f.user(s, "op")]), channel="widget")
        token = ib.public_token
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=token, lang="en")

    async def call(event: str, data: Any) -> dict[str, Any]:
        ack: dict[str, Any] = await visitor.sio.call(event, data, namespace="/widget", timeout=10)
        return ack

    # Before the first message (the operator's card is filled from the start); both calls at
    # once, as a page makes them on load, used to race to create the contact (IntegrityError,
    # no ack).
    user, attributes = await asyncio.gather(
        call("set_user", {"name": "Ann Lee", "email": "ann@example.com", "phone": "+7 912 345-67-89"}),
        call("set_attributes", {"attributes": {"plan": "gold", "orders": 3, "vip": True}}),
    )
    assert user["ok"] and attributes["ok"], (user, attributes)
    contact = await _contact(live_server)
    assert (contact.name, contact.email, contact.phone) == ("Ann Lee", "ann@example.com", "+79123456789")
    assert contact.custom_fields == {"plan": "gold", "orders": 3, "vip": True}

    refused = {
        "bad e-mail": ("set_user", {"email": "not-an-address"}, "email"),
        "bad phone": ("set_user", {"name": "Eve", "phone": "call me"}, "phone"),
        "unknown user field": ("set_user", {"password": "x"}, "password"),
        "nested value": ("set_attributes", {"attributes": {"cart": {"items": 1}}}, "attributes"),
        "bad key": ("set_attributes", {"attributes": {"has space": 1}}, "attributes"),
        "long value": ("set_attributes", {"attributes": {"note": "x" * 1001}}, "attributes"),
        "too many": (
            "set_attributes",
            {"attributes": {f"k{i}": i for i in range(MAX_ATTRIBUTES)}},
            "attributes",
        ),
        "not an object": ("set_attributes", ["plan"], None),
    }
    for why, (event, data, field) in refused.items():
        ack = await call(event, data)
        assert ack["ok"] is False and ack["detail"], why
        if field:
            assert ack.get("field") == field or field in ack["detail"], (why, ack)
    contact = await _contact(live_server)
    assert (contact.name, contact.email, contact.phone) == ("Ann Lee", "ann@example.com", "+79123456789")
    assert contact.custom_fields == {"plan": "gold", "orders": 3, "vip": True}, "nothing half applied"

    # Scope: another visitor's calls reach only their own contact.
    other = Visitor(live_server.url)
    await other.connect(inbox=token, lang="en")
    assert (await other.sio.call("set_user", {"name": "Mallory"}, namespace="/widget", timeout=10))["ok"]
    assert (await _contact(live_server)).name == "Ann Lee"
    async with live_server.services.db.transaction() as s:
        names = set(await s.scalars(select(m.Contact.name)))
    assert names == {"Ann Lee", "Mallory"}, names
    await other.sio.disconnect()

    # null removes one attribute; the first message lands on the same contact.
    assert (await call("set_attributes", {"attributes": {"vip": None}}))["ok"]
    assert (await visitor.send("hello", "c-1"))["ok"]
    async with live_server.services.db.transaction() as s:
        conv = await s.scalar(select(m.Conversation))
        assert conv is not None
        card = await s.get_one(m.Contact, conv.contact_id)
        assert card.custom_fields == {"plan": "gold", "orders": 3} and card.name == "Ann Lee"
    await visitor.sio.disconnect()
