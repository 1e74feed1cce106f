"""Keep the place, change the channel, on the phone: a caller waiting in line presses the
inbox's callback key during the position announcement (FastAGI ``announce``), hangs up, and is
called back in their turn — after the caller ahead of them, before the caller behind — as the
same conversation. The real app (PostgreSQL, Redis, routing, relay) against the loopback AMI
emulator and the emulated FastAGI channel; the operator over Socket.IO."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from channels.telegram import TelegramChannel
from channels.telegram.bots import create_bot
from omni.db import models as m
from tests import factories as f
from tests.channels.telegram.emulator import BotApiEmulator
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import World, actions, make_world, until, voice_of
from tests.conftest import LiveServer, free_port

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


@pytest.fixture(scope="module")
async def bot_api(server: LiveServer) -> AsyncIterator[BotApiEmulator]:
    """The Telegram Bot API emulator, for this module's app: its bots poll it."""
    emu = BotApiEmulator(free_port())
    await emu.start()
    tg = server.settings.telegram
    tg.api_base_url = emu.url
    tg.poll_timeout_seconds = 1
    tg.retry_backoff_seconds = 0.1
    try:
        yield emu
    finally:
        await emu.close()


async def test_caller_presses_the_telegram_key_and_goes_on_in_telegram_in_their_turn(
    server: LiveServer, emulator: AmiEmulator, bot_api: BotApiEmulator
) -> None:
    """The IVR's ``telegram_key``: a caller Omni knows on Telegram presses it while waiting,
    hears that the conversation goes on in Telegram and is hung up; the same conversation keeps
    its place, its customer is told in Telegram, and the operator's reply reaches them there."""
    chat_id = 7_700_001
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "pause")  # nobody free yet
            inbox = await s.get_one(m.Inbox, w.inbox_id)
            inbox.config = {**inbox.config, "telegram_key": "2"}
            boss = await f.user(s, f"tgadmin{w.queue_id}", m.Role.ADMIN)
            # Omni knows the caller on Telegram (they shared their phone with the bot once).
            known = m.Contact(name="Anna", phone="+79161250002")
            s.add(known)
            await s.flush()
            s.add_all(
                [
                    m.ContactIdentity(contact_id=known.id, kind="phone", value="+79161250002"),
                    m.ContactIdentity(contact_id=known.id, kind="telegram", value=str(chat_id)),
                ]
            )
        token = bot_api.add_bot(f"omni_line{w.queue_id}_bot")
        channel = server.services.adapters.get("telegram")
        assert isinstance(channel, TelegramChannel)
        tg = await create_bot(
            channel, f.who(boss), {"name": "tg", "token": token, "queue_id": w.queue_id, "mode": "polling"}
        )
        assert tg["running"]

        first = emulator.incoming_call("+79161250001", inbox=w.inbox_id)
        c1 = await _conversation_of(w, first.uniqueid)
        second = emulator.incoming_call("+79161250002", inbox=w.inbox_id)
        c2 = await _conversation_of(w, second.uniqueid)
        third = emulator.incoming_call("+79161250003", inbox=w.inbox_id)
        c3 = await _conversation_of(w, third.uniqueid)
        before = await w.conv(c2)
        assert before.contact_id == known.id

        # The second caller presses 2 while hearing their place.
        agi = EmulatedCall(
            "127.0.0.1",
            voice_of(server).agi.port,
            script="announce",
            args=[str(c2)],
            uniqueid=second.uniqueid,
            linkedid=second.uniqueid,
            callerid="+79161250002",
            barge={"queue-thereare": "2"},
        )
        await agi.run()
        assert agi.variables["OMNI_RESULT"] == "telegram"
        assert agi.played[-1] == "queue-telegram" and agi.agi_hung_up  # told, then hung up
        emulator.hangup(second.uniqueid)

        def told(text: str) -> bool:
            return any(text in str(c.params.get("text", "")) for c in bot_api.sent(chat_id))

        await until(lambda: told("You keep your place in line; an operator will write to you here."))

        async def kept() -> bool:
            return (await w.call_row(c2)).hangup_cause == "callback"

        await until(kept)  # the caller hanging up is no abandon
        moved = await w.conv(c2)
        assert (moved.status, moved.channel, moved.medium) == ("queued", "telegram", "chat")
        assert moved.inbox_id == tg["inbox_id"]
        assert (moved.first_enqueued_at, moved.priority) == (before.first_enqueued_at, before.priority)

        emulator.phones[w.ext["op"]] = "answer"
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]))

        # 1st: the caller ahead, on the phone.
        await op.wait_for("conversation.accepted", id=c1)
        await until(lambda: first.bridge)
        emulator.hangup(first.uniqueid)
        await op.wait_for("conversation.wrap_up", id=c1)
        assert (await op.call("close", {"conversation_id": c1, "result_code_id": w.code_id}))["ok"]

        # 2nd: the same conversation, now a Telegram chat, in its turn; the reply reaches them.
        offer = await op.wait_for("conversation.offered", id=c2)
        assert offer["data"]["channel"] == "telegram"
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        sent = await op.call("send", {"conversation_id": c2, "body": "Hello Anna, how can I help?"})
        assert sent["ok"], sent
        await until(lambda: told("Hello Anna, how can I help?"))
        assert (await op.call("close", {"conversation_id": c2, "result_code_id": w.code_id}))["ok"]

        # 3rd: the caller behind.
        await op.wait_for("conversation.offered", id=c3)
        assert _offers(op.events) == [(c1, "turn"), (c2, "turn"), (c3, "turn")]
        async with server.services.db.transaction() as s:
            (await s.get_one(m.Inbox, tg["inbox_id"])).active = False
