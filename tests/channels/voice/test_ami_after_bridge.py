"""What callers and operators hear when a bridge made by AMI ``Bridge`` ends: Asterisk sends
the channel left behind on in the sample dialplan (the emulator follows
``docker/asterisk/extensions.conf`` there, see ``ami_emulator.py``)."""

from __future__ import annotations

from typing import Any

from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import (  # the app + emulator of the calls tests
    actions,
    emulator,
    fresh_emulator,
    make_world,
    offered_to,
    server,
    until,
)
from tests.conftest import LiveServer

__all__ = ["emulator", "fresh_emulator", "server"]


def heard(emu: AmiEmulator, uniqueid: str, since: int) -> list[str]:
    return [name for name, uid in emu.history[since:] if uid == uniqueid]


async def _talking(server: LiveServer, emu: AmiEmulator, w: Any, number: str) -> tuple[Any, Any, int]:
    caller = emu.incoming_call(number, inbox=w.inbox_id)
    offer = await offered_to(w.clients["op"])
    conv_id = int(offer["data"]["id"])
    ring = await until(lambda: emu.ringing(w.ext["op"]))
    emu.answer(w.ext["op"])
    await w.clients["op"].wait_for("conversation.accepted", id=conv_id)
    await until(lambda: caller.bridge and caller.bridge == ring.bridge)
    return caller, ring, conv_id


async def test_operator_hanging_up_hangs_the_caller_up_without_hold_music(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    """The caller was answered during the position announcement; when the operator hung up,
    Asterisk sent the caller on in omni-wait and it heard music until Omni's Hangup came."""
    async with make_world(server, ["op"]) as w:
        caller, ring, conv_id = await _talking(server, emulator, w, "+79161239001")
        mark = len(emulator.history)
        emulator.hangup(ring.uniqueid)  # the operator hangs up
        await w.clients["op"].wait_for("conversation.wrap_up", id=conv_id)
        await until(lambda: caller.uniqueid not in emulator.channels)
        assert "MusicOnHoldStart" not in heard(emulator, caller.uniqueid, mark)
        assert heard(emulator, caller.uniqueid, mark)[-1] == "Hangup"
        assert not [a for a in actions(emulator, "Redirect") if a["Channel"] == caller.name]


async def test_hold_keeps_the_operator_leg_and_resume_reconnects(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    """Hold redirected the caller out of the bridge; the operator's leg fell through Wait() to
    Hangup(), the call went to wrap-up and Resume was refused ("it is wrap_up")."""
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        caller, ring, conv_id = await _talking(server, emulator, w, "+79161239002")
        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": True})
        assert ack["ok"], ack
        # Omni moves both legs out (Redirect with ExtraChannel: the operator leg to omni-agent);
        # either way the operator's leg must still be there, waiting, not hung up.
        await until(lambda: not caller.bridge and not ring.bridge)
        assert ring.uniqueid in emulator.channels, "the operator's leg waits for the caller to come back"
        assert (await w.conv(conv_id)).status == "on_hold"
        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": False})
        assert ack["ok"], ack
        await until(lambda: caller.bridge and caller.bridge == ring.bridge)
        assert (await w.conv(conv_id)).status == "active"

        # Resumed from omni-hold, then the operator hangs up: no music before the hang-up.
        mark = len(emulator.history)
        emulator.hangup(ring.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)
        await until(lambda: caller.uniqueid not in emulator.channels)
        assert "MusicOnHoldStart" not in heard(emulator, caller.uniqueid, mark)
