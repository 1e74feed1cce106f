"""Calls through the real app after the AMI link was lost behind a proxy: every offer logged
"the AMI link to Asterisk is down", no phone rang and callers waited until Omni was
restarted. Now the link comes back on its own and the next caller's operator is rung."""

from __future__ import annotations

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

__all__ = ["emulator", "fresh_emulator", "server"]


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
