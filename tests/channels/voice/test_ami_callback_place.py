"""Keep the place, change the channel, on the phone: a caller waiting in line presses the
inbox's callback key during the position announcement (FastAGI ``announce``), hangs up, and is
called back in their turn — after the caller ahead of them, before the caller behind — as the
same conversation. The real app (PostgreSQL, Redis, routing, relay) against the loopback AMI
emulator and the emulated FastAGI channel; the operator over Socket.IO."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import World, actions, make_world, until, voice_of
from tests.conftest import LiveServer

emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator


async def _conversation_of(w: World, linkedid: str) -> int:
    async def found() -> int | None:
        async with w.server.services.db.transaction() as s:
            row = await s.scalar(select(m.Call).where(m.Call.linkedid == linkedid))
            return row.conversation_id if row else None

    return int(await until(found))


def _offers(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [
        (int(e["data"]["id"]), str(e["data"]["why"]["rule"]))
        for e in events
        if e["type"] == "conversation.offered"
    ]


async def test_caller_presses_the_key_and_is_called_back_in_their_turn(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "pause")  # nobody free yet
            inbox = await s.get_one(m.Inbox, w.inbox_id)
            inbox.config = {**inbox.config, "callback_key": "1"}
        first = emulator.incoming_call("+79161240001", inbox=w.inbox_id)
        c1 = await _conversation_of(w, first.uniqueid)
        second = emulator.incoming_call("+79161240002", inbox=w.inbox_id)
        c2 = await _conversation_of(w, second.uniqueid)
        third = emulator.incoming_call("+79161240003", inbox=w.inbox_id)
        c3 = await _conversation_of(w, third.uniqueid)

        # The second caller hears their place and presses 1 during it.
        voice = voice_of(server)
        agi = EmulatedCall(
            "127.0.0.1",
            voice.agi.port,
            script="announce",
            args=[str(c2)],
            uniqueid=second.uniqueid,
            linkedid=second.uniqueid,
            callerid="+79161240002",
            barge={"queue-thereare": "1"},
        )
        await agi.run()
        assert agi.variables["OMNI_RESULT"] == "callback"
        assert agi.played[-1] == "queue-callback" and agi.agi_hung_up
        emulator.hangup(second.uniqueid)  # Asterisk ends the channel after the AGI's hang-up

        async def hung_up_kept() -> bool:
            return (await w.call_row(c2)).hangup_cause == "callback"

        await until(hung_up_kept)
        conv = await w.conv(c2)
        assert conv.status == "queued" and conv.variables["place"]["number"] == "+79161240002"
        async with server.services.db.transaction() as s:
            assert await s.scalar(select(m.Callback).where(m.Callback.conversation_id == c2)) is None

        emulator.phones[w.ext["op"]] = "answer"
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]))

        # 1st: the caller ahead, on the phone as usual.
        await op.wait_for("conversation.accepted", id=c1)
        await until(lambda: first.bridge)
        emulator.hangup(first.uniqueid)
        await op.wait_for("conversation.wrap_up", id=c1)
        assert (await op.call("close", {"conversation_id": c1, "result_code_id": w.code_id}))["ok"]

        # 2nd: the callback, in its turn: offered in the window (no phone rings for nobody on
        # the line); accepted, the operator's phone rings, then the customer's number.
        offer = await op.wait_for("conversation.offered", id=c2)
        originates = len(actions(emulator, "Originate"))
        assert offer["data"]["why"]["rule"] == "callback"
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        await until(lambda: len(actions(emulator, "Originate")) > originates)
        dial = actions(emulator, "Originate")[-1]
        assert (dial["Context"], dial["Exten"]) == ("omni-outbound", "+79161240002")
        assert dial["Channel"] == f"PJSIP/{w.ext['op']}"

        async def connected() -> bool:
            row = await w.call_row(c2)
            return row.answered_at is not None and row.ended_at is None

        await until(connected)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None
        emulator.hangup(leg.uniqueid)
        await op.wait_for("conversation.wrap_up", id=c2)
        assert (await op.call("close", {"conversation_id": c2, "result_code_id": w.code_id}))["ok"]

        # 3rd: the caller behind.
        await op.wait_for("conversation.offered", id=c3)
        assert _offers(op.events) == [(c1, "turn"), (c2, "callback"), (c3, "turn")]
        row = await w.call_row(c2)
        assert row.direction == "out" and row.ended_at is not None
        async with server.services.db.transaction() as s:
            ids = (
                await s.scalars(select(m.Conversation.id).where(m.Conversation.queue_id == w.queue_id))
            ).all()
        assert sorted(ids) == [c1, c2, c3]  # no conversation was made for the callback
