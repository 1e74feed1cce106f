# ruff: noqa: E501  (scenario documents read best one node per line)
"""A call leaves its operator for the IVR, and a call nobody answers overflows: the real app
(PostgreSQL, Redis, routing engine, relay, FastAGI) against the loopback AMI emulator, with an
emulated FastAGI channel standing in for Asterisk's ``AGI()`` on the same call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bots import service
from channels.voice.agi import prompt_path
from omni.db import models as m
from omni.domain import automated
from omni.domain.auth import Principal
from omni.domain.engine import run_due_deadlines
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import actions, make_world, offered_to, until, voice_of
from tests.conftest import LiveServer

# The voice module's app (voice on, against the AMI emulator, FastAGI on), one per module.
emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator


def _menu(queue_id: int) -> dict[str, Any]:
    return {
        "name": "Back to the line",
        "start": "menu",
        "nodes": [
            {"id": "menu", "type": "menu",
             "content": {"text": "Press 1 to talk to us again", "prompt": "omni/transfer-menu.wav"},
             "options": [{"id": "again", "label": "Again", "dtmf": "1"}], "retries": 0, "timeout_seconds": 3,
             "ports": {"opt:again": "line", "on_max_retries": "line"}},
            {"id": "line", "type": "handoff", "queue_id": queue_id, "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "bye", "type": "close", "result_code": ""},
        ],
    }  # fmt: skip


def _count(events: list[dict[str, Any]], type_: str, conv_id: int) -> int:
    return sum(1 for e in events if e["type"] == type_ and e["data"].get("id") == conv_id)


async def test_operator_transfers_a_call_to_the_ivr_and_the_ivr_hands_it_back(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    voice = voice_of(server)
    assert voice.agi is not None
    async with make_world(server, ["op"], wrap_up_seconds=60) as w:
        key = f"ivr{w.queue_id}"
        async with server.services.db.transaction() as s:
            admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
            assert admin is not None
            row = await service.create(s, Principal.of(admin), key, "Back to the line", _menu(w.queue_id))
            await service.publish(s, Principal.of(admin), row.id)
            await service.create(s, Principal.of(admin), f"draft{w.queue_id}", "Draft", _menu(w.queue_id))
            token = (await s.get_one(m.Inbox, w.inbox_id)).public_token
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "answer"
        caller = emulator.incoming_call("+79161230011", "Olga", inbox=w.inbox_id)
        offer = await offered_to(op)
        conv_id = int(offer["data"]["id"])
        await op.wait_for("conversation.accepted", id=conv_id)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None
        view = await op.call("open", {"conversation_id": conv_id})
        assert {"key": key, "name": "Back to the line"} in view["bot_scenarios"]
        async with server.services.db.transaction() as s:
            # Said before the transfer (e.g. a notice): not the new scenario's, never replayed.
            await automated.do_send_automated(s, conv_id, "This call may be recorded")

        # Refused before anything moves: attended to an IVR, an unpublished scenario.
        ack = await op.call(
            "call_transfer", {"conversation_id": conv_id, "to_scenario": key, "attended": True}
        )
        assert not ack["ok"] and ack["error"] == "invalid" and ack["field"] == "attended"
        assert "no one to talk to" in ack["detail"]
        ack = await op.call(
            "call_transfer", {"conversation_id": conv_id, "to_scenario": f"draft{w.queue_id}"}
        )
        assert not ack["ok"] and ack["field"] == "scenario"
        assert actions(emulator, "Redirect") == [] and (await w.conv(conv_id)).status == "active"

        ack = await op.call("call_transfer", {"conversation_id": conv_id, "to_scenario": key})
        assert ack["ok"], ack
        assert ack["conversation"]["status"] == "bot"
        redirect = actions(emulator, "Redirect")[-1]
        assert (redirect["Channel"], redirect["Context"], redirect["Exten"]) == (caller.name, "omni-ivr", "s")
        await until(lambda: leg.uniqueid not in emulator.channels)  # the operator's leg is hung up
        assert caller.uniqueid in emulator.channels and caller.context == "omni-ivr"
        await op.wait_for("conversation.wrap_up", id=conv_id)  # the handling ended, as on a transfer
        await op.wait_for("conversation.handed_to_bot", id=conv_id)
        conv = await w.conv(conv_id)
        assert conv.status == "bot" and conv.wrap_up_at is not None
        async with server.services.db.transaction() as s:
            bot = await s.get_one(m.BotSession, conv_id)
            assert bot.scenario_id == row.id and bot.status == "running"
            presence = await s.get_one(m.OperatorPresence, w.ops["op"])
            assert presence.effective_code not in ("talking", "ringing")  # the operator is free

        # Asterisk runs AGI(ivr) on the same caller channel: the same conversation goes on.
        voice.agi.tts_app = "Festival"  # so a replayed text would be heard
        try:
            agi = EmulatedCall(
                "127.0.0.1",
                voice.agi.port,
                args=[token],
                uniqueid=caller.uniqueid,
                linkedid=caller.uniqueid,
                callerid="+79161230011",
                calleridname="Olga",
                keys=["1"],
            )
            await agi.run()
        finally:
            voice.agi.tts_app = ""
        assert agi.variables["OMNI_CONVERSATION"] == str(conv_id)
        assert agi.played == [prompt_path(voice.agi.prompts_dir, "omni/transfer-menu.wav")]
        assert agi.variables["OMNI_RESULT"] == "queued" and agi.variables["OMNI_QUEUE"] == str(w.queue_id)
        assert not agi.agi_hung_up  # the dialplan goes on to omni-wait

        # Back in the line: offered again, the phone answers, the caller is bridged to it.
        await until(lambda: _count(op.events, "conversation.accepted", conv_id) == 2)
        await until(lambda: emulator.agent_leg(w.ext["op"]))
        again = emulator.agent_leg(w.ext["op"])
        assert again is not None and again.uniqueid != leg.uniqueid
        await until(lambda: caller.bridge and caller.bridge == again.bridge)
        emulator.hangup(caller.uniqueid)
        await until(lambda: _count(op.events, "conversation.wrap_up", conv_id) == 2)

        async with server.services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            n_convs = await s.scalar(
                select(func.count())
                .select_from(m.Conversation)
                .where(m.Conversation.contact_id == conv.contact_id)
            )
            n_calls = await s.scalar(
                select(func.count()).select_from(m.Call).where(m.Call.linkedid == caller.uniqueid)
            )
            n_in = await s.scalar(
                select(func.count()).select_from(m.Message).where(m.Message.external_id == caller.uniqueid)
            )
            dtmf = await s.scalar(
                select(m.Message.body).where(
                    m.Message.conversation_id == conv_id, m.Message.direction == "in", m.Message.body == "1"
                )
            )
            call = await s.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
        assert n_convs == 1 and n_calls == 1 and n_in == 1 and dtmf == "1"
        assert conv.status == "wrap_up" and conv.assigned_user_id == w.ops["op"]
        assert call is not None and call.ended_at is not None and call.agent_uniqueid == again.uniqueid


async def test_transfer_refusals_name_the_reason(server: LiveServer, emulator: AmiEmulator) -> None:
    async with make_world(server, ["op", "other"]) as w:
        for name in ("op", "other"):
            emulator.phones[w.ext[name]] = "answer"
        emulator.incoming_call("+79161230012", inbox=w.inbox_id)
        offer = await offered_to(w.clients["op"])
        conv_id = int(offer["data"]["id"])
        await w.clients["op"].wait_for("conversation.accepted", id=conv_id)
        op = w.clients["op"]
        ack = await op.call(
            "call_transfer", {"conversation_id": conv_id, "to_queue_id": w.queue_id, "attended": True}
        )
        assert not ack["ok"] and ack["field"] == "attended" and "no one to talk to" in ack["detail"]
        ack = await op.call(
            "call_transfer", {"conversation_id": conv_id, "to_queue_id": w.queue_id, "to_scenario": "x"}
        )
        assert not ack["ok"] and ack["error"] == "invalid"
        ack = await w.clients["other"].call("call_transfer", {"conversation_id": conv_id, "to_scenario": "x"})
        assert not ack["ok"] and ack["error"] == "forbidden"
        assert actions(emulator, "Redirect") == [] and (await w.conv(conv_id)).status == "active"


# --- nobody answers within the queue's timeout ---------------------------------------------


async def _waiting_conversation(server: LiveServer, linkedid: str) -> int:
    async def found() -> int | None:
        async with server.services.db.transaction() as s:
            row = await s.scalar(select(m.Call).where(m.Call.linkedid == linkedid))
            return row.conversation_id if row else None

    conv_id: int = await until(found)
    return conv_id


async def _time_passes(server: LiveServer, seconds: int) -> None:
    """Fire the deadlines that would be due ``seconds`` from now (no waiting for real)."""
    await run_due_deadlines(server.services.db, now=datetime.now(UTC) + timedelta(seconds=seconds))


async def test_unanswered_call_is_missed_sent_to_overflow_with_a_callback(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(
        server, ["op"], connect=[], queue_timeout_seconds=30, overflow_action="voicemail"
    ) as w:
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "pause")  # nobody takes calls
        caller = emulator.incoming_call("+79161230013", inbox=w.inbox_id)
        conv_id = await _waiting_conversation(server, caller.uniqueid)
        await _time_passes(server, 10)  # well within the queue's timeout: still waiting
        assert (await w.conv(conv_id)).status == "queued"

        await _time_passes(server, 31)
        conv = await w.conv(conv_id)
        assert conv.status == "missed" and conv.closed_by == "timeout"
        redirect = await until(lambda: actions(emulator, "Redirect"))
        assert (redirect[-1]["Channel"], redirect[-1]["Context"]) == (caller.name, "omni-overflow")
        await until(lambda: caller.context == "omni-overflow")
        emulator.hangup(caller.uniqueid)  # omni-overflow plays vm-nobodyavail and hangs up

        async def ended() -> bool:
            return (await w.call_row(conv_id)).ended_at is not None

        await until(ended)
        async with server.services.db.transaction() as s:
            callbacks = (
                await s.scalars(select(m.Callback).where(m.Callback.conversation_id == conv_id))
            ).all()
            kinds = list(await s.scalars(select(m.Event.type).where(m.Event.conversation_id == conv_id)))
        assert [(c.reason, c.state) for c in callbacks] == [("missed", "open")]
        assert "conversation.missed" in kinds and "conversation.abandoned" not in kinds
        assert (await w.conv(conv_id)).status == "missed"  # the hang-up after overflow changes nothing


async def test_unanswered_call_overflows_to_the_next_queue_and_is_answered_there(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with (
        make_world(server, ["first"], connect=[], queue_timeout_seconds=30, overflow_action="queue") as w,
        make_world(server, ["second"], queue_timeout_seconds=300) as spill,
    ):
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["first"]), "pause")
            (await s.get_one(m.Queue, w.queue_id)).overflow_queue_id = spill.queue_id
        emulator.phones[spill.ext["second"]] = "answer"
        caller = emulator.incoming_call("+79161230014", inbox=w.inbox_id)
        conv_id = await _waiting_conversation(server, caller.uniqueid)
        queued = await w.conv(conv_id)
        assert queued.status == "queued" and queued.queue_id == w.queue_id

        await _time_passes(server, 31)
        second = spill.clients["second"]
        await second.wait_for("conversation.accepted", id=conv_id)
        leg = emulator.agent_leg(spill.ext["second"])
        assert leg is not None
        await until(lambda: caller.bridge and caller.bridge == leg.bridge)
        conv = await w.conv(conv_id)
        assert conv.status == "active" and conv.queue_id == spill.queue_id
        assert conv.first_enqueued_at == queued.first_enqueued_at  # the caller kept their place
        assert not actions(emulator, "Redirect")  # never sent to omni-overflow
        async with server.services.db.transaction() as s:
            overflowed = await s.scalar(
                select(m.Event).where(
                    m.Event.conversation_id == conv_id, m.Event.type == "conversation.overflowed"
                )
            )
            assert await s.scalar(select(m.Callback).where(m.Callback.conversation_id == conv_id)) is None
        assert overflowed is not None and overflowed.payload["to_queue_id"] == spill.queue_id
        emulator.hangup(caller.uniqueid)
        await second.wait_for("conversation.wrap_up", id=conv_id)
