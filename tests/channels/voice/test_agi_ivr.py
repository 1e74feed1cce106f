# ruff: noqa: E501  (scenario documents read best one node per line)
"""The IVR over FastAGI: an emulated Asterisk channel (real AGI wire protocol over TCP) calls
the FastAGI server, which runs a published bot scenario on a real PostgreSQL conversation and
hands the call back to the dialplan queued, closed or refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select, text

from bots import engine as e
from bots import runner, service
from channels.voice.agi import AgiServer, app_arg, caller_identity, quote
from omni.db import models as m
from omni.domain import conversations
from omni.domain.auth import Principal
from omni.services import Services
from tests import factories as f
from tests.channels.voice.agi_client import EmulatedCall, parse_args
from tests.helpers import until


def _doc(sales: int, support: int) -> dict[str, Any]:
    return {
        "name": "Phone menu",
        "start": "menu",
        "variables": [{"name": "topic"}],
        "nodes": [
            {"id": "menu", "type": "menu",
             "content": {"text": "Sales or support?", "channels": {"voice": "Press 1 for sales, 2 for support, 3 for opening hours"}, "prompt": "omni/menu.wav"},
             "options": [{"id": "sales", "label": "Sales", "dtmf": "1"}, {"id": "support", "label": "Support", "dtmf": "2"},
                         {"id": "hours", "label": "Opening hours", "dtmf": "3"}],
             "retries": 1, "timeout_seconds": 3,
             "retry_message": {"text": "Sorry, I did not get that. Press 1 or 2.", "prompt": "omni/retry"},
             "ports": {"opt:sales": "to_sales", "opt:support": "topic_support", "opt:hours": "hours", "on_max_retries": "to_sales"}},
            {"id": "topic_support", "type": "set", "assign": [{"variable": "topic", "value": "support"}], "ports": {"next": "to_support"}},
            {"id": "to_support", "type": "handoff", "queue_id": support, "priority": 5, "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "to_sales", "type": "handoff", "queue_id": sales, "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "hours", "type": "message", "content": {"text": "We are open from 9 to 6, Monday to Friday"}, "ports": {"next": "bye"}},
            {"id": "bye", "type": "close", "result_code": "", "message": {"text": "Goodbye, thank you for calling"}},
        ],
    }  # fmt: skip


@dataclass
class Ctx:
    services: Services
    agi: AgiServer
    token: str
    inbox_id: int
    sales: int
    support: int
    who: Principal
    scenario_id: int

    def call(self, uniqueid: str, keys: list[str | None], **kw: Any) -> EmulatedCall:
        return EmulatedCall(
            "127.0.0.1", self.agi.port, args=kw.pop("args", [self.token]), uniqueid=uniqueid, keys=keys, **kw
        )


@pytest_asyncio.fixture
async def ctx(services: Services) -> AsyncIterator[Ctx]:
    runner.install(services.db)
    async with services.db.transaction() as s:
        admin = await f.user(s, "boss", role=m.Role.ADMIN)
        op = await f.user(s, "op")
        sales = await f.queue(s, "sales", [op])
        support = await f.queue(s, "support", [op])
        ib = await f.inbox(s, sales, channel="voice")
        ib.config = {"scenario": "phone"}
        await f.set_status(s, op, "available")
        who = Principal.of(admin)
        row = await service.create(s, who, "phone", "Phone menu", _doc(sales.id, support.id))
        await service.publish(s, who, row.id)
        values = (ib.public_token, ib.id, sales.id, support.id, row.id)
    agi = AgiServer(services, "127.0.0.1", 0, prompts_dir="/var/lib/omni/prompts")
    await agi.start()
    try:
        yield Ctx(services, agi, values[0], values[1], values[2], values[3], who, values[4])
    finally:
        await agi.stop()


async def _conversation(ctx: Ctx, conv_id: int) -> tuple[m.Conversation, list[m.Message], m.BotSession]:
    async with ctx.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        msgs = (
            await s.scalars(
                select(m.Message).where(m.Message.conversation_id == conv_id).order_by(m.Message.id)
            )
        ).all()
        bot = await s.get_one(m.BotSession, conv_id)
        return conv, list(msgs), bot


async def test_dtmf_choice_queues_the_call_in_the_chosen_queue_with_the_variables(ctx: Ctx) -> None:
    call = ctx.call("1700000000.11", ["2"])
    await call.run()
    assert call.answered
    assert call.played == ["/var/lib/omni/prompts/omni/menu"], "the prompt file, extension dropped"
    assert call.sent("STREAM FILE")[0][1] == "0123456789*#", "the caller may press during the prompt"
    assert call.sent("WAIT FOR DIGIT") == [["3000"]], "the menu's own timeout"
    assert call.variables["OMNI_RESULT"] == "queued"
    assert call.variables["OMNI_QUEUE"] == str(ctx.support)
    assert call.variables["OMNI_INBOX_ID"] == str(ctx.inbox_id)
    assert not call.agi_hung_up, "a queued call goes on in the dialplan (the holding context)"
    conv, msgs, bot = await _conversation(ctx, int(call.variables["OMNI_CONVERSATION"]))
    assert conv.status == m.ConversationStatus.QUEUED and conv.medium == m.Medium.VOICE
    assert conv.queue_id == ctx.support and conv.priority == 5
    assert conv.variables["topic"] == "support"
    assert bot.status == "handed_off"
    inbound = [x for x in msgs if x.direction == "in"]
    assert inbound[0].external_id == "1700000000.11"
    assert inbound[1].body == "2" and inbound[1].attachments == [{"kind": "dtmf", "digits": "2"}]
    prompt = next(x for x in msgs if x.direction == "out")
    assert prompt.body == "Press 1 for sales, 2 for support, 3 for opening hours", "the voice variant"
    assert {"kind": "prompt", "file": "omni/menu.wav"} in prompt.attachments
    assert prompt.delivery == "delivered", "played on the call"
    async with ctx.services.db.transaction() as s:
        contact = await s.get_one(m.Contact, conv.contact_id)
        assert contact.phone == "+15551230001" and contact.name == "Ann"


async def test_pressing_during_the_prompt_skips_the_wait(ctx: Ctx) -> None:
    call = ctx.call("1700000000.12", [], barge={"/var/lib/omni/prompts/omni/menu": "1"})
    await call.run()
    assert call.sent("WAIT FOR DIGIT") == []
    assert call.variables["OMNI_RESULT"] == "queued" and call.variables["OMNI_QUEUE"] == str(ctx.sales)


async def test_no_input_retries_then_takes_on_max_retries(ctx: Ctx) -> None:
    call = ctx.call("1700000000.13", [None, None])
    await call.run()
    assert call.played == ["/var/lib/omni/prompts/omni/menu", "/var/lib/omni/prompts/omni/retry"]
    assert call.variables["OMNI_RESULT"] == "queued" and call.variables["OMNI_QUEUE"] == str(ctx.sales)
    conv, msgs, bot = await _conversation(ctx, int(call.variables["OMNI_CONVERSATION"]))
    assert conv.queue_id == ctx.sales and bot.status == "handed_off"
    assert [x.direction for x in msgs] == ["in", "out", "out"], "no-input is no customer message"
    async with ctx.services.db.transaction() as s:
        stats = await service.node_stats(s, ctx.who, ctx.scenario_id)
    assert stats["menu"]["no_input"] == 2 and stats["menu"]["ports"] == {"on_max_retries": 1}


async def test_closing_path_speaks_through_tts_and_hangs_up(ctx: Ctx) -> None:
    ctx.agi.tts_app = "Festival"
    call = ctx.call("1700000000.14", ["3"])
    await call.run()
    assert call.played[1:] == ["tts:Festival:We are open from 9 to 6\\, Monday to Friday",
                               "tts:Festival:Goodbye\\, thank you for calling"]  # fmt: skip
    assert call.variables["OMNI_RESULT"] == "closed"
    assert call.agi_hung_up and call.sent("HANGUP") == [[]]
    conv, _, bot = await _conversation(ctx, int(call.variables["OMNI_CONVERSATION"]))
    assert conv.status == m.ConversationStatus.CLOSED
    assert bot.status == "closed"


async def test_without_tts_a_text_only_message_is_skipped_and_logged(ctx: Ctx, caplog: Any) -> None:
    call = ctx.call("1700000000.15", ["3"])
    await call.run()
    assert call.played == ["/var/lib/omni/prompts/omni/menu"] and call.sent("EXEC") == []
    assert "no prompt file and no TTS" in caplog.text
    assert call.variables["OMNI_RESULT"] == "closed"


async def test_missing_prompt_file_is_logged_and_the_menu_still_listens(ctx: Ctx, caplog: Any) -> None:
    call = ctx.call("1700000000.23", ["1"], missing_files={"/var/lib/omni/prompts/omni/menu"})
    await call.run()
    assert "could not be played" in caplog.text and "Traceback" not in caplog.text
    assert call.variables["OMNI_RESULT"] == "queued" and call.variables["OMNI_QUEUE"] == str(ctx.sales)


async def test_caller_hanging_up_at_the_menu_ends_the_session_quietly(ctx: Ctx, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="channels.voice.agi")
    call = ctx.call("1700000000.16", [])  # hangs up instead of pressing
    await call.run()
    assert call.hung_up and "OMNI_RESULT" not in call.variables
    assert "ended by the channel" in caplog.text and "Traceback" not in caplog.text
    conv, _, bot = await _conversation(ctx, int(call.variables["OMNI_CONVERSATION"]))
    assert conv.status == m.ConversationStatus.BOT and bot.status == "running", (
        "the AMI side ends it on Hangup"
    )
    async with ctx.services.db.transaction() as s:
        due = await s.scalar(select(m.Deadline.due_at).where(
            m.Deadline.kind == runner.BOT_TIMER, m.Deadline.ref_id == conv.id, m.Deadline.done.is_(False)))  # fmt: skip
    assert due is not None and due > datetime.now(UTC) + timedelta(seconds=10), (
        "the IVR owns the no-input clock: the persisted timer is only a late fallback"
    )


async def test_anonymous_call_the_ami_side_ingested_first_plays_the_stored_prompt_once(ctx: Ctx) -> None:
    # The AMI side saw the call first (OmniEnqueue): external id = Linkedid, anonymous identity.
    async with ctx.services.db.transaction() as s:
        first = await conversations.do_ingest_inbound(s, conversations.InboundMessage(
            inbox_id=ctx.inbox_id, identity_kind="external", identity_value="anonymous:1700000000.17",
            external_id="1700000000.17", medium=m.Medium.VOICE, body="Incoming call from an unknown number"))  # fmt: skip
    call = ctx.call("1700000000.18", ["2"], linkedid="1700000000.17", callerid="", calleridname="")
    await call.run()
    assert call.variables["OMNI_CONVERSATION"] == str(first.conversation.id)
    assert call.played == ["/var/lib/omni/prompts/omni/menu"]
    assert call.variables["OMNI_RESULT"] == "queued", "the digit reached that same conversation"
    # The same call back in the IVR (e.g. the dialplan runs it again): nothing is replayed.
    again = ctx.call(
        "1700000000.18",
        [],
        linkedid="1700000000.17",
        variables={"OMNI_PLAYED": call.variables["OMNI_PLAYED"]},
    )
    await again.run()
    assert again.played == [] and again.variables["OMNI_RESULT"] == "queued"
    async with ctx.services.db.transaction() as s:
        count = await s.scalar(select(func.count()).select_from(m.Conversation))
    assert count == 1


async def test_bad_inbox_token_is_refused_cleanly(ctx: Ctx, caplog: Any) -> None:
    call = ctx.call("1700000000.19", ["2"], args=["no-such-inbox"])
    await call.run()
    assert call.variables == {"OMNI_RESULT": "error"} and not call.answered
    assert "unknown or inactive voice inbox" in caplog.text
    async with ctx.services.db.transaction() as s:
        assert await s.scalar(select(m.Message).where(m.Message.external_id == "1700000000.19")) is None
    lost = EmulatedCall("127.0.0.1", ctx.agi.port, script="nope", args=[ctx.token])
    await lost.run()
    assert lost.variables == {"OMNI_RESULT": "error"}


async def test_announce_says_the_place_in_line_and_ends_when_no_longer_waiting(ctx: Ctx) -> None:
    ids = []
    for n in (21, 22):
        call = ctx.call(f"1700000000.{n}", ["2"], callerid=f"+1555123{n:04d}")
        await call.run()
        ids.append(call.variables["OMNI_CONVERSATION"])
    first = EmulatedCall("127.0.0.1", ctx.agi.port, script="announce", args=[ids[0]])
    await first.run()
    assert first.played == ["queue-youarenext", "queue-thankyou"] and first.variables["OMNI_POSITION"] == "1"
    second = EmulatedCall("127.0.0.1", ctx.agi.port, script="announce", args=[ids[1]])
    await second.run()
    assert second.variables["OMNI_RESULT"] == "queued" and second.variables["OMNI_POSITION"] == "2"
    assert second.played == ["queue-thereare", "say:1", "queue-callswaiting", "queue-thankyou"]
    # A call that reached the line without the IVR variable is found by its Linkedid.
    by_call = EmulatedCall("127.0.0.1", ctx.agi.port, script="announce", args=[""], uniqueid="1700000000.22")
    await by_call.run()
    assert by_call.variables["OMNI_CONVERSATION"] == ids[1] and by_call.variables["OMNI_POSITION"] == "2"
    async with ctx.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, int(ids[0]))
        await conversations.do_customer_left(s, conv.id)
    gone = EmulatedCall("127.0.0.1", ctx.agi.port, script="announce", args=[ids[0]])
    await gone.run()
    assert gone.variables["OMNI_RESULT"] == "abandoned" and gone.played == []


async def test_caller_hears_music_while_the_bot_waits_for_an_http_answer(ctx: Ctx) -> None:
    async def crm(_: e.CallHttp) -> e.HttpResult:
        # The CRM takes its time: it answers only once the caller has been waiting with music on.
        await until(lambda: call.sent("SET MUSIC") and call.sent("WAIT FOR DIGIT"), 30, what="the music")
        return e.HttpResult(status=200, body={"customer": {"tier": "gold"}})

    lookup = {
        "name": "Lookup", "start": "crm", "variables": [{"name": "tier"}],
        "nodes": [
            {"id": "crm", "type": "http", "url": "https://crm.example/lookup?phone={{contact.phone}}",
             "response_map": {"tier": "customer.tier"}, "ports": {"next": "hello", "on_error": "to_sales"}},
            {"id": "hello", "type": "message", "content": {"text": "Hello {{tier}} customer", "prompt": "omni/hello"}, "ports": {"next": "to_sales"}},
            {"id": "to_sales", "type": "handoff", "queue_id": ctx.sales, "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "bye", "type": "close", "result_code": ""},
        ],
    }  # fmt: skip
    runner.install(ctx.services.db, http=crm)
    async with ctx.services.db.transaction() as s:
        row = await service.create(s, ctx.who, "lookup", "Lookup", lookup)
        await service.publish(s, ctx.who, row.id)
        ib = await s.get_one(m.Inbox, ctx.inbox_id)
        ib.config = {"scenario": "lookup"}
    call = ctx.call("1700000000.20", [])
    await call.run()
    music = call.sent("SET MUSIC")  # on while the bot is busy (maybe more than once), off before speaking
    assert music[0] == ["on"] and music[-1] == ["off"] and ["on"] not in music[1::2]
    assert len(call.sent("WAIT FOR DIGIT")) >= 1
    assert call.played == ["/var/lib/omni/prompts/omni/hello"]
    assert call.variables["OMNI_RESULT"] == "queued"
    conv, _, _ = await _conversation(ctx, int(call.variables["OMNI_CONVERSATION"]))
    assert conv.variables["tier"] == "gold" and conv.queue_id == ctx.sales


async def test_ivr_does_not_give_up_when_the_bot_moves_on_between_its_reads_of_one_turn(ctx: Ctx) -> None:
    """CI flake "conversation N is with the bot but no bot runs; IVR gives up": a turn read the
    conversation (still ``bot``), then the bot's step committed (hand-off: conversation
    ``queued``, bot session ``handed_off``), then the turn read the bot session. The commit is
    put exactly there: the test locks ``bot_sessions``, waits until the IVR's read blocks on
    it, and the bot's safety deadline for the lost HTTP call fires in that same transaction."""
    answer = asyncio.Event()

    async def crm(call: e.CallHttp) -> e.HttpResult:
        await answer.wait()  # never answers in time: the lost-call deadline decides
        return e.HttpResult(status=200, body={"customer": {"tier": "gold"}})

    lookup = {
        "name": "Lookup", "start": "crm", "variables": [{"name": "tier"}],
        "nodes": [
            {"id": "crm", "type": "http", "url": "https://crm.example/lookup",
             "response_map": {"tier": "customer.tier"}, "ports": {"next": "to_sales", "on_error": "to_sales"}},
            {"id": "to_sales", "type": "handoff", "queue_id": ctx.sales, "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "bye", "type": "close", "result_code": ""},
        ],
    }  # fmt: skip
    bots = runner.install(ctx.services.db, http=crm)
    async with ctx.services.db.transaction() as s:
        row = await service.create(s, ctx.who, "lookup", "Lookup", lookup)
        await service.publish(s, ctx.who, row.id)
        ib = await s.get_one(m.Inbox, ctx.inbox_id)
        ib.config = {"scenario": "lookup"}
    call = ctx.call("1700000000.21", [])
    running = asyncio.create_task(call.run(timeout=60))
    try:
        async with asyncio.timeout(30):
            await until(lambda: call.music, 30, what="the IVR's music (the bot is busy with its HTTP step)")
            async with ctx.services.db.transaction() as s:
                await s.execute(text("LOCK TABLE bot_sessions IN ACCESS EXCLUSIVE MODE"))
                blocked = text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'bot_sessions'::regclass"
                )

                async def waiting() -> bool:  # the IVR read the conversation and now waits to read its bot
                    async with ctx.services.db.transaction() as probe:
                        return bool(await probe.scalar(blocked))

                await until(waiting, 30, what="the IVR to wait for the bot_sessions lock", every=0.01)
                lost = await s.scalar(select(m.Deadline).where(m.Deadline.kind == runner.BOT_HTTP_LOST))
                assert lost is not None
                lost.done = True
                await bots.on_deadline(s, lost)
            await running
    finally:
        answer.set()
        await bots.drain()
        if not running.done():
            running.cancel()
    assert call.variables["OMNI_RESULT"] == "queued", "the IVR must not give up on a bot that just handed off"
    conv, _, bot = await _conversation(ctx, int(call.variables["OMNI_CONVERSATION"]))
    assert conv.status == m.ConversationStatus.QUEUED and bot.status == "handed_off"


async def test_stop_ends_running_sessions_and_half_open_connections(ctx: Ctx) -> None:
    gone_early = await asyncio.open_connection("127.0.0.1", ctx.agi.port)
    gone_early[1].write(b"agi_network: yes\n")  # and hangs up before the blank line
    gone_early[1].close()
    reader, writer = await asyncio.open_connection("127.0.0.1", ctx.agi.port)
    env = EmulatedCall("127.0.0.1", ctx.agi.port, args=[ctx.token], uniqueid="1700000000.30").environment()
    writer.write(("\n".join(env) + "\n\n").encode())
    assert await reader.readline() == b"ANSWER\n"  # ... and Asterisk never answers
    await asyncio.wait_for(ctx.agi.stop(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b"", "the session was closed"
    writer.close()


def test_wire_quoting_round_trips_through_asterisks_argument_parser() -> None:
    text = 'He said "hi", then C:\\path (x) [y]'
    assert parse_args(f"EXEC Festival {quote(app_arg(text))}") == ["EXEC", "Festival", app_arg(text)]
    assert parse_args('STREAM FILE "a b" ""') == ["STREAM", "FILE", "a b", ""]
    assert caller_identity("+7 (912) 345-67-89", "1.1") == ("phone", "+79123456789", "+79123456789")
    assert caller_identity("unknown", "1.2") == ("external", "anonymous:1.2", None)
    assert caller_identity("101", "1.3") == ("external", "anonymous:1.3", None)
