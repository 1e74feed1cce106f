"""A supervisor's force-end changed the database first (``wrap_up``, closed by the supervisor)
and then hung up without reading Asterisk's answer: when Asterisk refused, the operator's window
said the call was over while the customer was still talking to them. Now Asterisk is asked
first, a refusal reaches the supervisor as an error and the conversation stays as it was; only
a channel Asterisk no longer has (its hang-up was missed) is ended in the core alone."""

from __future__ import annotations

from sqlalchemy import select

from omni.db import models as m
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import (  # the app + emulator of the calls tests
    World,
    emulator,
    fresh_emulator,
    make_world,
    offered_to,
    server,
    until,
)
from tests.conftest import LiveServer

__all__ = ["emulator", "fresh_emulator", "server"]


async def _talking(w: World, emulator: AmiEmulator, number: str) -> tuple[int, str]:
    emulator.phones[w.ext["op"]] = "answer"
    caller = emulator.incoming_call(number, inbox=w.inbox_id)
    offer = await offered_to(w.clients["op"])
    conv_id = int(offer["data"]["id"])
    await w.clients["op"].wait_for("conversation.accepted", id=conv_id)
    leg = emulator.agent_leg(w.ext["op"])
    assert leg is not None
    await until(lambda: caller.bridge and caller.bridge == leg.bridge)
    return conv_id, caller.uniqueid


async def test_force_end_refused_by_asterisk_is_reported_and_the_call_goes_on(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op", "sup"], connect=["op", "sup"]) as w:
        conv_id, caller = await _talking(w, emulator, "+79161239301")
        emulator.refuse["hangup"] = "Permission denied"
        ack = await w.clients["sup"].call("call_force_end", {"conversation_id": conv_id})
        assert not ack["ok"] and ack["error"] == "conflict", ack
        assert "could not end the call" in ack["detail"] and "Permission denied" in ack["detail"]
        conv = await w.conv(conv_id)
        assert conv.status == "active" and conv.closed_by is None and conv.wrap_up_at is None
        assert caller in emulator.channels  # the customer still talks to the operator
        assert not [e for e in w.clients["op"].events if e["type"] == "conversation.wrap_up"]

        emulator.refuse.clear()  # the supervisor tries again and Asterisk obeys
        ack = await w.clients["sup"].call("call_force_end", {"conversation_id": conv_id})
        assert ack["ok"], ack
        await w.clients["op"].wait_for("conversation.wrap_up", id=conv_id)
        await until(lambda: caller not in emulator.channels)
        assert (await w.conv(conv_id)).closed_by == "supervisor"


async def test_force_end_of_a_call_whose_channel_is_already_gone_ends_it_in_omni(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op", "sup"], connect=["op", "sup"]) as w:
        conv_id, caller = await _talking(w, emulator, "+79161239302")
        emulator.vanish(caller)  # its Hangup never reached Omni: the window still shows the call
        ack = await w.clients["sup"].call("call_force_end", {"conversation_id": conv_id})
        assert ack["ok"], ack
        await w.clients["op"].wait_for("conversation.wrap_up", id=conv_id)
        assert (await w.conv(conv_id)).closed_by == "supervisor"
        leg = (await w.call_row(conv_id)).agent_uniqueid
        await until(lambda: leg not in emulator.channels)  # the operator's phone is released

        async def call_ended() -> bool:
            async with server.services.db.transaction() as s:
                ended = await s.scalar(select(m.Call.ended_at).where(m.Call.conversation_id == conv_id))
            return ended is not None

        await until(call_ended)
