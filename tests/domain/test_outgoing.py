"""The core action for contacts an operator starts (click-to-call, the outbound dialer), on
PostgreSQL: assigned at once, no bot, no routing, an accepted offer in the history, capacity
and status respected under the router's lock, idempotent on the channel's id."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain.errors import Conflict
from omni.domain.outgoing import OutgoingContact, do_start_outgoing
from omni.domain.routing import do_route_pending
from omni.services import Services
from tests import factories as f
from tests.helpers import capture_events


def _contact(inbox_id: int, number: str, call_id: str) -> OutgoingContact:
    return OutgoingContact(
        inbox_id=inbox_id,
        identity_kind="phone",
        identity_value=number,
        contact_phone=number,
        external_id=call_id,
        note=f"Outgoing call to {number}",
    )


async def test_outgoing_contact_is_assigned_at_once_without_bot_or_routing(services: Services) -> None:
    async with services.db.transaction() as s:
        op = await f.user(s, "out-op", capacity=3, voice_weight=3)
        await f.set_status(s, op)
        q = await f.queue(s, "out", [op])
        inbox = await f.inbox(s, q, channel="voice")
        inbox.config = {"scenario": "ivr"}  # an IVR answers inbound calls on this line
        ids = (op.id, inbox.id)
    async with capture_events(services.db) as captured:
        async with services.db.transaction() as s:
            conv = await do_start_outgoing(s, ids[0], _contact(ids[1], "+79161233001", "c-1"))
            conv_id = conv.id
        await do_route_pending(services.db)
    events = [e.type for e in captured if e.conversation_id == conv_id]
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        offers = (await s.scalars(select(m.Offer).where(m.Offer.conversation_id == conv_id))).all()
        presence = await s.get_one(m.OperatorPresence, ids[0])
        note = await s.scalar(select(m.Message).where(m.Message.conversation_id == conv_id))
        again = await do_start_outgoing(s, ids[0], _contact(ids[1], "+79161233001", "c-1"))
    assert conv.status == "active" and conv.assigned_user_id == ids[0] and conv.medium == "voice"
    assert conv.variables["direction"] == "out" and conv.first_enqueued_at is None
    assert [(o.user_id, o.state) for o in offers] == [(ids[0], "accepted")]
    assert offers[0].created_at == offers[0].responded_at == conv.offered_at == conv.accepted_at
    assert events == ["conversation.created", "message.created", "conversation.accepted"]
    assert presence.effective_code == "talking"
    assert note is not None and note.direction == "note" and note.external_id == "c-1"
    assert again.id == conv_id  # a retried request doesn't start a second contact


async def test_outgoing_contact_respects_status_capacity_and_open_calls(services: Services) -> None:
    async with services.db.transaction() as s:
        op = await f.user(s, "out-op2", capacity=3, voice_weight=3)
        q = await f.queue(s, "out2", [op])
        inbox = await f.inbox(s, q, channel="voice")
        ids = (op.id, inbox.id)
    with pytest.raises(Conflict, match="status"):  # offline: takes no calls
        async with services.db.transaction() as s:
            await do_start_outgoing(s, ids[0], _contact(ids[1], "+79161233002", "c-2"))
    async with services.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, ids[0]))
        await do_start_outgoing(s, ids[0], _contact(ids[1], "+79161233002", "c-3"))
    with pytest.raises(Conflict, match="capacity"):
        async with services.db.transaction() as s:
            await do_start_outgoing(s, ids[0], _contact(ids[1], "+79161233003", "c-4"))
    async with services.db.transaction() as s:
        user = await s.get_one(m.User, ids[0])
        user.capacity = 6
    with pytest.raises(Conflict, match="already has an open voice conversation"):
        async with services.db.transaction() as s:
            await do_start_outgoing(s, ids[0], _contact(ids[1], "+79161233002", "c-5"))
    async with services.db.transaction() as s:
        n = len((await s.scalars(select(m.Conversation).where(m.Conversation.queue_id == q.id))).all())
    assert n == 1
