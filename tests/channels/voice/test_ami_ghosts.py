"""Ghost conversations: the IVR (FastAGI) queued a call the AMI side never saw enqueued (the
link was down, or the caller left during an outage). The real app against the loopback AMI
emulator, with an emulated FastAGI channel standing in for Asterisk's ``AGI(ivr)``."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import World, actions, make_world, until, voice_of
from tests.conftest import LiveServer

# The voice module's app (voice on, against the AMI emulator, FastAGI on), one per module.
emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator

_ids = itertools.count(1)


async def _queued_by_the_ivr(server: LiveServer, w: World, number: str, linkedid: str) -> int:
    """Run ``AGI(ivr)`` for a caller of the world's inbox (no scenario: straight to the line)."""
    voice = voice_of(server)
    assert voice.agi is not None
    async with server.services.db.transaction() as s:
        token = (await s.get_one(m.Inbox, w.inbox_id)).public_token
    agi = EmulatedCall(
        "127.0.0.1", voice.agi.port, args=[token], uniqueid=linkedid, linkedid=linkedid, callerid=number
    )
    await agi.run()
    assert agi.variables["OMNI_RESULT"] == "queued", agi.variables
    return int(agi.variables["OMNI_CONVERSATION"])


async def _status(w: World, conv_id: int) -> str:
    return (await w.conv(conv_id)).status


async def test_ghost_queued_by_the_ivr_is_abandoned_at_offer_time_and_the_next_caller_is_answered(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"], operator_timeout_seconds=30) as w:
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "answer"
        # The caller went through the IVR and hung up while Omni's AMI link missed it all.
        ghost = await _queued_by_the_ivr(server, w, "+79161232001", f"1700000100.{next(_ids)}")
        await op.wait_for("conversation.offer_cancelled", id=ghost)  # not a 30 s ring-out
        assert await _status(w, ghost) == "abandoned"
        assert not [
            a for a in actions(emulator, "Originate") if f"OMNI_CONVERSATION={ghost}" in a["Variable"]
        ]
        async with server.services.db.transaction() as s:
            cb = await s.scalar(select(m.Callback).where(m.Callback.conversation_id == ghost))
        assert cb is not None and cb.reason == "abandoned"

        # A real caller behind it reaches the operator.
        caller = emulator.incoming_call("+79161232002", inbox=w.inbox_id)

        async def answered() -> int | None:
            async with server.services.db.transaction() as s:
                row = await s.scalar(select(m.Call).where(m.Call.linkedid == caller.uniqueid))
                return row.conversation_id if row and row.answered_at else None

        real = await until(answered)
        await op.wait_for("conversation.accepted", id=real)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None
        await until(lambda: caller.bridge and caller.bridge == leg.bridge)
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=real)


async def test_caller_queued_by_the_ivr_before_omni_enqueue_arrives_is_still_rung_and_bridged(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"], operator_timeout_seconds=30) as w:
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "answer"
        caller = emulator.ivr_call("+79161232003")  # alive on Asterisk, no OmniEnqueue seen
        conv_id = await _queued_by_the_ivr(server, w, "+79161232003", caller.uniqueid)
        await op.wait_for("conversation.accepted", id=conv_id)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None
        await until(lambda: caller.bridge and caller.bridge == leg.bridge)
        row = await w.call_row(conv_id)
        assert row.caller_channel == caller.name and row.agent_uniqueid == leg.uniqueid
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)


async def test_resync_abandons_ghosts_queued_while_the_link_was_down(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    voice = voice_of(server)
    async with make_world(server, ["op"], connect=[]) as w:
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "pause")  # nothing is offered
        emulator.refuse_login = True  # the link stays down until the callers below are queued
        emulator.drop()
        await until(lambda: not voice.ami.ready)
        # While the link is down: one caller passes the IVR and leaves, another is still in it.
        ghost = await _queued_by_the_ivr(server, w, "+79161232004", f"1700000200.{next(_ids)}")
        alive = emulator.ivr_call("+79161232005")
        waiting = await _queued_by_the_ivr(server, w, "+79161232005", alive.uniqueid)
        logins = emulator.logins
        emulator.refuse_login = False
        await until(lambda: emulator.logins > logins and voice.ami.ready)

        async def ghost_abandoned() -> bool:
            return await _status(w, ghost) == "abandoned"

        await until(ghost_abandoned)
        assert await _status(w, waiting) == "queued"  # its caller is alive: it keeps its place
        async with server.services.db.transaction() as s:
            ev = await s.scalar(
                select(m.Event).where(
                    m.Event.conversation_id == ghost, m.Event.type == "conversation.abandoned"
                )
            )
        assert ev is not None
        emulator.hangup(alive.uniqueid)
