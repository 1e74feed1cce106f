"""The channel adapter seam: committed operator replies reach the adapter of their channel,
and its receipt becomes the delivery mark the operator sees."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import select

from omni.channels import ChannelNotReady, DeliveryReceipt, OutboundMessage
from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.conversations import InboundMessage
from omni.domain.routing import route_pending
from omni.services import Services
from tests import factories as f


class LoopbackChannel:
    """Stands in for an outside messenger: records what it was asked to send."""

    kind: ClassVar[str] = "loopback"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.fail_next = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        if self.fail_next:
            self.fail_next = False
            raise ChannelNotReady("network down")
        self.sent.append(msg)
        return DeliveryReceipt("sent", external_id=f"ext-{msg.message_id}")


async def test_reply_is_sent_after_commit_and_marked(services: Services) -> None:
    channel = LoopbackChannel()
    services.adapters.register(channel)
    async with services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "q", [op])
        ib = await f.inbox(s, q, channel="loopback")
        await f.set_status(s, op)
        res = await c.ingest_inbound(
            s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value="x", body="hi")
        )
        conv_id = res.conversation.id
    await route_pending(services.db)
    async with services.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == conv_id))
        assert offer is not None
        await c.check_accept_offer(s, f.who(op), offer.id)
        reply = await c.check_send_message(s, f.who(op), conv_id, "Hello <b>there</b>")
        note = await c.check_send_message(s, f.who(op), conv_id, "internal", private=True)
    assert channel.sent == [], "nothing is sent before the relay sees the commit"
    await services.relay.relay_once()
    assert [(x.message_id, x.body) for x in channel.sent] == [(reply.id, "Hello <b>there</b>")]
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Message, reply.id)).delivery == "sent"
        assert (await s.get_one(m.Message, note.id)).delivery == "stored"
    channel.fail_next = True
    async with services.db.transaction() as s:
        second = await c.check_send_message(s, f.who(op), conv_id, "again")
    await services.relay.relay_once()
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Message, second.id)).delivery == "pending"
