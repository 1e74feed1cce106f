"""Calls through the real app after the AMI link was lost behind a proxy: every offer logged
"the AMI link to Asterisk is down", no phone rang and callers waited until Omni was
restarted. Now the link comes back on its own and the next caller's operator is rung.

While the link is down no phone can ring: calls were offered anyway (8–20 s of ringing out per
operator, again and again) while chats in the same queue waited behind them. Now the adapter
reports the link to the core, which keeps calls in line (chats are still routed), withdraws an
offer that was ringing without charging the operator, and offers the call when the link is back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain.routing import wait_info
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import (  # the app + emulator of the calls tests
    actions,
    emulator,
    fresh_emulator,
    make_world,
    offered_to,
    server,
    until,
    voice_of,
)
from tests.conftest import LiveServer
from tests.test_realtime import post_inbound, token_for

__all__ = ["emulator", "fresh_emulator", "server"]


@pytest.fixture(autouse=True)
async def asterisk_back(emulator: AmiEmulator) -> AsyncIterator[None]:
    """A test that failed while Asterisk was stopped must not leave it down for the next one."""
    yield
    if not emulator.listening:
        await emulator.start()


async def test_phones_ring_again_after_asterisk_came_back_behind_a_proxy(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    voice = voice_of(server)
    async with make_world(server, ["op"]) as w:
        await emulator.accept_then_close()  # Asterisk stops; its published port still accepts
        await until(lambda: not voice.ami.ready)
        seen = emulator.closed_at_accept
        await until(lambda: emulator.closed_at_accept >= seen + 3)
        await emulator.start()  # Asterisk is back (the model kept its state meanwhile)
        await until(lambda: voice.ami.ready)

        caller = emulator.incoming_call("+79161239101", inbox=w.inbox_id)
        offer = await offered_to(w.clients["op"])
        ring = await until(lambda: emulator.ringing(w.ext["op"]))
        assert actions(emulator, "Originate")[-1]["ChannelId"] == f"omni-o{offer['data']['offer_id']}"
        emulator.answer(w.ext["op"])
        await until(lambda: caller.bridge and caller.bridge == ring.bridge)
        emulator.hangup(caller.uniqueid)
        await w.clients["op"].wait_for("conversation.wrap_up", id=int(offer["data"]["id"]))


def _voice_offers(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "conversation.offered" and e["data"]["medium"] == "voice"]


async def test_calls_wait_in_line_while_the_ami_link_is_down_and_chats_are_still_routed(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    voice = voice_of(server)
    async with make_world(server, ["op"], chats_block_calls=False) as w:
        op = w.clients["op"]
        async with server.services.db.transaction() as s:
            user = await s.get_one(m.User, w.ops["op"])
            user.capacity, user.chat_weight, user.voice_weight = 4, 1, 3  # a chat and a call fit
            await f.set_status(s, user, "pause")  # the caller waits in line first
            chat_inbox = await f.inbox(s, await s.get_one(m.Queue, w.queue_id), channel="api")
            chat_inbox_id = chat_inbox.id
        caller = emulator.incoming_call("+79161239201", inbox=w.inbox_id)

        async def call_conv() -> int | None:
            async with server.services.db.transaction() as s:
                row = await s.scalar(select(m.Call).where(m.Call.linkedid == caller.uniqueid))
                return row.conversation_id if row else None

        call_id = await until(call_conv)
        await emulator.stop()  # Asterisk goes away; the caller's channel lives on in its model
        await until(lambda: not voice.ami.connected.is_set())  # the link reported down
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "available")
        chat_id = await post_inbound(server, await token_for(server, "admin"), chat_inbox_id, f"c{call_id}")
        chat_offer = await op.wait_for("conversation.offered", id=chat_id)
        # The call is first in line, so it would have been offered before the chat.
        assert _voice_offers(op.events) == []
        assert actions(emulator, "Originate") == []
        conv = await w.conv(call_id)
        assert conv.status == "queued"
        async with server.services.db.transaction() as s:
            info = await wait_info(s, await s.get_one(m.Conversation, call_id))
        assert info.position == 1  # the caller kept their place
        assert (await op.call("accept", {"offer_id": chat_offer["data"]["offer_id"]}))["ok"]

        await emulator.start()  # Asterisk is back: the waiting caller is offered and bridged
        offer = await op.wait_for("conversation.offered", id=call_id)
        ring = await until(lambda: emulator.ringing(w.ext["op"]))
        assert ring.uniqueid == f"omni-o{offer['data']['offer_id']}"
        emulator.answer(w.ext["op"])
        await op.wait_for("conversation.accepted", id=call_id)
        await until(lambda: caller.bridge and caller.bridge == ring.bridge)
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=call_id)


async def test_an_offer_ringing_when_the_ami_link_drops_is_withdrawn_without_a_missed_offer(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    voice = voice_of(server)
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        caller = emulator.incoming_call("+79161239202", inbox=w.inbox_id)
        first = await offered_to(op)
        conv_id, first_offer = int(first["data"]["id"]), int(first["data"]["offer_id"])
        stale = await until(lambda: emulator.ringing(w.ext["op"]))
        await emulator.stop()
        await until(lambda: not voice.ami.ready)
        await op.wait_for("conversation.offer_cancelled", offer_id=first_offer)
        assert (await w.conv(conv_id)).status == "queued"

        await emulator.start()

        def offered_again() -> dict[str, Any] | None:
            later = [e for e in _voice_offers(op.events) if e["data"]["offer_id"] != first_offer]
            return later[-1] if later else None

        again = await until(offered_again)
        assert stale.uniqueid not in emulator.channels  # the phone stopped ringing for the old offer
        ring = await until(lambda: emulator.ringing(w.ext["op"]))
        assert ring.uniqueid == f"omni-o{again['data']['offer_id']}"
        emulator.answer(w.ext["op"])
        await op.wait_for("conversation.accepted", id=conv_id)
        await until(lambda: caller.bridge and caller.bridge == ring.bridge)
        async with server.services.db.transaction() as s:
            states = list(
                await s.scalars(
                    select(m.Offer.state).where(m.Offer.conversation_id == conv_id).order_by(m.Offer.id)
                )
            )
        assert states == ["cancelled", "accepted"]  # no missed ("timeout") offer for the operator
        assert not [
            e for e in op.events if e["type"] in ("conversation.offer_timeout", "conversation.offer_declined")
        ]
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)
