"""Calls end to end: panoramisk against the loopback AMI emulator, the real app under uvicorn
(PostgreSQL, Redis, the routing engine and the outbox relay running), operators and
supervisors over Socket.IO."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import socketio
from sqlalchemy import func, select

from channels.voice import VoiceChannel
from omni.db import models as m
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.conftest import (
    LiveServer,
    _asyncpg_url,
    create_test_database,
    drop_test_database,
    free_port,
    make_settings,
)
from tests.helpers import until
from tests.test_realtime import OperatorClient, token_for

_n = itertools.count(1)


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[AmiEmulator]:
    emu = AmiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture(scope="module")
async def server(pg_template: str, emulator: AmiEmulator, tmp_path_factory: Any) -> AsyncIterator[LiveServer]:
    """One app for the module; every test seeds its own operators, queue and voice line."""
    name = await create_test_database(pg_template)
    settings = make_settings(_asyncpg_url(name), data_dir=tmp_path_factory.mktemp("voice"))
    v = settings.voice
    v.enabled = True
    v.ami_port = emulator.port
    v.ami_secret = emulator.secret
    v.reconnect_min_seconds = 0.05
    v.reconnect_max_seconds = 0.4
    v.recordings_dir = tmp_path_factory.mktemp("recordings")
    v.agi_port = 0  # the app starts FastAGI too; any free port
    settings.routing.tick_seconds = 0.1
    srv = LiveServer(settings)
    await srv.start()
    try:
        await until(lambda: voice_of(srv).ami.ready)
        async with srv.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
            await f.result_code(s)
        yield srv
    finally:
        await srv.stop()
        await drop_test_database(name)


@pytest.fixture(autouse=True)
def fresh_emulator(emulator: AmiEmulator) -> None:
    emulator.reset()


def voice_of(server: LiveServer) -> VoiceChannel:
    adapter = server.services.adapters.get("voice")
    assert isinstance(adapter, VoiceChannel)
    return adapter


@dataclass
class World:
    server: LiveServer
    queue_id: int
    inbox_id: int
    ops: dict[str, int]
    ext: dict[str, str]
    code_id: int
    clients: dict[str, OperatorClient]

    async def conv(self, conv_id: int) -> m.Conversation:
        async with self.server.services.db.transaction() as s:
            row = await s.get(m.Conversation, conv_id)
            assert row is not None
            return row

    async def call_row(self, conv_id: int) -> m.Call:
        async with self.server.services.db.transaction() as s:
            row = await s.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
            assert row is not None
            return row


@asynccontextmanager
async def make_world(
    server: LiveServer, names: list[str], *, connect: list[str] | None = None, **queue_kw: Any
) -> AsyncIterator[World]:
    n = next(_n)
    ops: dict[str, int] = {}
    ext: dict[str, str] = {}
    async with server.services.db.transaction() as s:
        users = []
        for i, name in enumerate(names):
            role = m.Role.SUPERVISOR if name.startswith("sup") else m.Role.OPERATOR
            u = await f.user(s, f"{name}{n}", role, sip_extension=f"{n}{i:02d}")
            users.append(u)
            ops[name], ext[name] = u.id, f"{n}{i:02d}"
        members = [u for u in users if u.role == m.Role.OPERATOR]
        queue_kw.setdefault("operator_timeout_seconds", 5)
        queue_kw.setdefault("strategy", m.Strategy.LINEAR)
        q = await f.queue(s, f"voice{n}", members, **queue_kw)
        for u in users:
            if u.role == m.Role.SUPERVISOR:
                s.add(m.SupervisorScope(supervisor_id=u.id, queue_id=q.id))
        ib = await f.inbox(s, q, channel="voice", name=f"line{n}")
        ib.config = {"did": f"49500{n}", "caller_id": "+74950000000"}
        code = await f.result_code(s)
        ids = (q.id, ib.id, code.id)
    clients: dict[str, OperatorClient] = {}
    for name in connect if connect is not None else [x for x in names if not x.startswith("sup")]:
        ns = "/supervisor" if name.startswith("sup") else "/operator"
        client = OperatorClient(server.url, await token_for(server, f"{name}{n}"), namespace=ns)
        await client.connect()
        clients[name] = client
    world = World(server, ids[0], ids[1], ops, ext, ids[2], clients)
    try:
        yield world
    finally:
        for client in clients.values():
            await client.sio.disconnect()


def actions(emu: AmiEmulator, name: str) -> list[dict[str, Any]]:
    return [a for a in emu.actions if str(a.get("Action", "")).lower() == name.lower()]


def originated(emu: AmiEmulator, w: World) -> list[dict[str, Any]]:
    """The Originates that rang this world's phones: the emulator is shared by the module, and
    a call another test left behind may ring its own operators meanwhile."""
    phones = {f"PJSIP/{ext}" for ext in w.ext.values()}
    return [a for a in actions(emu, "Originate") if a.get("Channel") in phones]


async def offered_to(client: OperatorClient, timeout: float = 10) -> dict[str, Any]:
    evt = await client.wait_for("conversation.offered", timeout=timeout)
    return evt


# --- the whole inbound call ------------------------------------------------------------------


async def test_inbound_call_queued_offered_answered_held_hung_up_wrapped_up(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"], wrap_up_seconds=60) as w:
        op = w.clients["op"]
        caller = emulator.incoming_call("+79161234567", "Ivan", inbox=w.inbox_id)
        offer = await offered_to(op)
        conv_id = int(offer["data"]["id"])
        assert offer["data"]["medium"] == "voice"
        ring = await until(lambda: emulator.ringing(w.ext["op"]))
        originate = actions(emulator, "Originate")[-1]
        assert originate["Channel"] == f"PJSIP/{w.ext['op']}"
        assert originate["ChannelId"] == f"omni-o{offer['data']['offer_id']}" == ring.uniqueid
        assert originate["Timeout"] == "10000"  # the queue's 5 s + grace: the core's deadline stops it
        assert originate["Context"] == "omni-agent"
        assert "Ivan" in originate["CallerID"] and "+79161234567" in originate["CallerID"]

        emulator.answer(w.ext["op"])
        await op.wait_for("conversation.accepted", id=conv_id)
        bridge = await until(lambda: actions(emulator, "Bridge"))
        assert bridge[-1]["Channel1"] == caller.name and bridge[-1]["Channel2"] == ring.name
        await until(lambda: caller.bridge and caller.bridge == ring.bridge)
        record = await until(lambda: actions(emulator, "MixMonitor"))
        assert record[-1]["Channel"] == caller.name

        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": True})
        assert ack["ok"], ack
        assert actions(emulator, "Redirect")[-1]["Context"] == "omni-hold"
        await until(lambda: not caller.bridge)
        await asyncio.sleep(1.2)  # the caller listens to hold music for a while
        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": False})
        assert ack["ok"], ack
        await until(lambda: caller.bridge and caller.bridge == ring.bridge)

        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)
        await until(lambda: ring.uniqueid not in emulator.channels)  # the operator leg is released
        ack = await op.call("close", {"conversation_id": conv_id, "result_code_id": w.code_id})
        assert ack["ok"], ack

        conv = await w.conv(conv_id)
        call = await w.call_row(conv_id)
        assert conv.status == "closed" and conv.closed_by == "customer"
        assert conv.assigned_user_id == w.ops["op"]
        assert conv.first_enqueued_at and conv.offered_at and conv.accepted_at and conv.wrap_up_at
        assert conv.first_enqueued_at <= conv.offered_at <= conv.accepted_at <= conv.wrap_up_at
        assert conv.hold_seconds >= 1  # whole seconds; a loaded machine may stretch the 1.2 s
        # The phone rang inside the offer's span: it starts ringing after the offer is made and
        # the answer is seen before the offer is accepted (3 decimals stored).
        ring_s = (conv.accepted_at - conv.offered_at).total_seconds()
        assert 0 < call.ring_seconds <= ring_s + 0.001
        assert call.answered_at is not None and call.ended_at is not None
        connected = (call.ended_at - call.answered_at).total_seconds()
        assert call.talk_seconds == pytest.approx(connected - conv.hold_seconds, abs=0.01)
        assert 0 < call.talk_seconds < connected
        assert call.caller_uniqueid == caller.uniqueid == call.linkedid
        assert call.agent_uniqueid == ring.uniqueid and call.agent_user_id == w.ops["op"]
        assert call.recording_path.endswith(f"/{conv_id}-{caller.uniqueid}.wav")
        assert emulator.recordings[caller.uniqueid] == call.recording_path


async def test_ring_no_answer_moves_to_the_next_operator(server: LiveServer, emulator: AmiEmulator) -> None:
    async with make_world(server, ["first", "second"], operator_timeout_seconds=1) as w:
        emulator.phones[w.ext["first"]] = "no_answer"
        caller = emulator.incoming_call("+79161230001", inbox=w.inbox_id)
        first = await offered_to(w.clients["first"])
        conv_id = int(first["data"]["id"])
        first_ring = f"omni-o{first['data']['offer_id']}"
        await w.clients["first"].wait_for("conversation.offer_timeout", id=conv_id)
        second = await until(lambda: own_offer(w, "second"))  # its socket sees the first's offer too
        await until(lambda: emulator.ringing(w.ext["second"]))
        assert emulator.ringing(w.ext["first"]) is None  # the first phone stopped ringing
        # Omni hung it up itself (its deadline, not the phone's own ring timeout), before ringing
        # the second operator.
        hangups = [a["Channel"] for a in actions(emulator, "Hangup")]
        assert first_ring in hangups
        originates = [a["ChannelId"] for a in originated(emulator, w)]
        assert originates == [first_ring, f"omni-o{second['data']['offer_id']}"]
        async with server.services.db.transaction() as s:
            by_conv = select(m.Offer).where(m.Offer.conversation_id == conv_id)
            expired, moved_on = (await s.scalars(by_conv.order_by(m.Offer.id))).all()
        # The first offer ran to its deadline (no early "busy" decline), and only then the next.
        assert (expired.user_id, expired.state) == (w.ops["first"], "timeout")
        assert expired.responded_at is not None and expired.responded_at >= expired.expires_at
        assert (moved_on.user_id, moved_on.state) == (w.ops["second"], "pending")
        assert moved_on.created_at >= expired.responded_at
        # The first operator's unanswered ring is on the call before anyone answers.
        first_only = (await until(lambda: ring_counted(w, conv_id))).ring_seconds
        emulator.answer(w.ext["second"])
        await w.clients["second"].wait_for("conversation.accepted", id=conv_id)
        emulator.hangup(caller.uniqueid)
        await w.clients["second"].wait_for("conversation.wrap_up", id=conv_id)
        call = await w.call_row(conv_id)
        assert call.agent_user_id == w.ops["second"]
        assert call.ring_seconds > first_only  # and the second's ring adds to it


def own_offer(w: World, name: str) -> dict[str, Any] | None:
    events = w.clients[name].events
    uid = w.ops[name]
    return next((e for e in events if e["type"] == "conversation.offered" and e.get("user_id") == uid), None)


async def ring_counted(w: World, conv_id: int) -> m.Call | None:
    call = await w.call_row(conv_id)
    return call if call.ring_seconds > 0 else None


async def test_busy_phone_moves_on_at_once(server: LiveServer, emulator: AmiEmulator) -> None:
    async with make_world(server, ["busy", "free"], operator_timeout_seconds=30) as w:
        emulator.phones[w.ext["busy"]] = "busy"
        emulator.phones[w.ext["free"]] = "answer"
        emulator.incoming_call("+79161230002", inbox=w.inbox_id)
        evt = await w.clients["busy"].wait_for("conversation.offer_declined")
        conv_id = int(evt["data"]["id"])
        await w.clients["free"].wait_for("conversation.accepted", id=conv_id, timeout=5)


async def test_caller_abandons_while_waiting(server: LiveServer, emulator: AmiEmulator) -> None:
    async with make_world(server, ["op"], connect=[]) as w:
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get(m.User, w.ops["op"]), "pause")  # nobody takes calls
        caller = emulator.incoming_call("+79161230003", inbox=w.inbox_id)

        async def conv_id() -> int | None:
            async with server.services.db.transaction() as s:
                row = await s.scalar(select(m.Call).where(m.Call.linkedid == caller.uniqueid))
                return row.conversation_id if row else None

        cid = await until(conv_id)
        await asyncio.sleep(0.3)  # the caller waits a little before giving up
        emulator.hangup(caller.uniqueid)

        async def abandoned() -> bool:
            return (await w.conv(cid)).status == "abandoned"

        await until(abandoned)
        async with server.services.db.transaction() as s:
            ev = await s.scalar(
                select(m.Event).where(
                    m.Event.conversation_id == cid, m.Event.type == "conversation.abandoned"
                )
            )
            cb = await s.scalar(select(m.Callback).where(m.Callback.conversation_id == cid))
            created = await s.scalar(
                select(m.Event).where(m.Event.conversation_id == cid, m.Event.type == "callback.created")
            )
        assert ev is not None and ev.payload["wait_seconds"] >= 0.3
        assert cb is not None and cb.reason == "abandoned" and cb.state == "open"
        # The outbox keeps the order they happened in: abandoned, then its callback.
        assert created is not None and created.payload["id"] == cb.id and created.id > ev.id


async def test_a_caller_naming_a_chat_inbox_or_a_switched_off_line_still_reaches_a_voice_line(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    """The ingest reads the inbox the dialplan names and refuses one of another channel or
    switched off before writing anything; the call then goes, in the same transaction, to the
    voice line ``calls.voice_inbox`` picks (the first active one), as when the inbox was
    looked up before the ingest."""
    async with make_world(server, ["op"], connect=[]) as w:
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get(m.User, w.ops["op"]), "pause")
            queue = await s.get(m.Queue, w.queue_id)
            assert queue is not None
            chat = await f.inbox(s, queue, channel="telegram", name=f"chat{w.inbox_id}")
            old = await f.inbox(s, queue, channel="voice", name=f"old{w.inbox_id}")
            old.active = False
        async with server.services.db.transaction() as s:
            line = await s.scalar(
                select(m.Inbox.id)
                .where(m.Inbox.channel == "voice", m.Inbox.active.is_(True))
                .order_by(m.Inbox.id)
                .limit(1)
            )
        callers = []
        for n, wrong in enumerate((chat.id, old.id)):
            caller = emulator.incoming_call(f"+7916123001{n}", inbox=wrong)
            callers.append(caller)

            async def stored(uniqueid: str = caller.uniqueid) -> m.Call | None:
                async with server.services.db.transaction() as s:
                    return await s.scalar(select(m.Call).where(m.Call.linkedid == uniqueid))

            row = await until(stored)
            conv = await w.conv(row.conversation_id)
            assert (row.inbox_id, conv.inbox_id, conv.channel, conv.medium) == (line, line, "voice", "voice")
            # Waiting for an operator, or already offered one: the line is another world's,
            # whose operator an earlier test may have left available.
            assert conv.status in {"queued", "offered"}
        async with server.services.db.transaction() as s:
            strays = await s.scalar(
                select(func.count())
                .select_from(m.Conversation)
                .where(m.Conversation.inbox_id.in_([chat.id, old.id]))
            )
        assert strays == 0
        # They wait on another world's line (the first active one): left there, they would ring
        # its operators in the tests that follow on this module's shared Asterisk.
        for caller in callers:
            emulator.hangup(caller.uniqueid)

            async def gone(uniqueid: str = caller.uniqueid) -> bool:
                async with server.services.db.transaction() as s:
                    row = await s.scalar(select(m.Call).where(m.Call.linkedid == uniqueid))
                    return row is not None and row.ended_at is not None

            await until(gone)


async def test_chat_does_not_block_a_call_but_a_call_blocks_chats(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"], chats_block_calls=False) as w:
        op = w.clients["op"]
        async with server.services.db.transaction() as s:
            user = await s.get(m.User, w.ops["op"])
            assert user is not None
            user.capacity, user.chat_weight, user.voice_weight = 4, 1, 3
            chat_inbox = await f.inbox(
                s, await s.get(m.Queue, w.queue_id), channel="api", name=f"chat{w.queue_id}"
            )
            chat_inbox_id = chat_inbox.id
        admin = await token_for(server, "admin")
        from tests.test_realtime import post_inbound

        chat1 = await post_inbound(server, admin, chat_inbox_id, f"c1-{w.queue_id}")
        offer = await op.wait_for("conversation.offered", id=chat1)
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        # A chat in progress, and the call still fits (1 + 3 <= 4 with chats_block_calls off).
        emulator.phones[w.ext["op"]] = "answer"
        caller = emulator.incoming_call("+79161230004", inbox=w.inbox_id)
        call_offer = await op.wait_for("conversation.offered", medium="voice")
        call_id = int(call_offer["data"]["id"])
        await op.wait_for("conversation.accepted", id=call_id)
        # While talking, a new chat waits: the call takes the whole operator.
        chat2 = await post_inbound(server, admin, chat_inbox_id, f"c2-{w.queue_id}")
        await server.services.engine.run_once()  # a routing pass that has seen chat2 (the sentinel)
        assert (await w.conv(chat2)).status == "queued"
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=call_id)
        assert (await op.call("close", {"conversation_id": call_id, "result_code_id": w.code_id}))["ok"]
        await op.wait_for("conversation.offered", id=chat2)


async def test_ami_drop_mid_call_resyncs_without_duplicates(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    voice = voice_of(server)
    async with make_world(server, ["op", "op2"]) as w:
        emulator.phones[w.ext["op"]] = "answer"
        emulator.phones[w.ext["op2"]] = "answer"
        talking = emulator.incoming_call("+79161230005", inbox=w.inbox_id)
        offer = await offered_to(w.clients["op"])
        talk_id = int(offer["data"]["id"])
        await w.clients["op"].wait_for("conversation.accepted", id=talk_id)
        logins = emulator.logins

        emulator.drop()
        await until(lambda: not voice.ami.ready)
        # While the link is down: a second caller arrives and ... (events are lost).
        arrived = emulator.incoming_call("+79161230006", inbox=w.inbox_id)
        await until(lambda: emulator.logins > logins and voice.ami.ready)
        # The caller who arrived during the outage was enqueued by the resync and offered.
        offer2 = await offered_to(w.clients["op2"])
        arrived_id = int(offer2["data"]["id"])
        await w.clients["op2"].wait_for("conversation.accepted", id=arrived_id)
        # The first call kept going; a hang-up during another outage is noticed by the resync.
        logins = emulator.logins
        emulator.drop()
        await until(lambda: not voice.ami.ready)
        emulator.hangup(talking.uniqueid)
        await until(lambda: emulator.logins > logins and voice.ami.ready)
        await w.clients["op"].wait_for("conversation.wrap_up", id=talk_id)
        emulator.hangup(arrived.uniqueid)
        await w.clients["op2"].wait_for("conversation.wrap_up", id=arrived_id)
        async with server.services.db.transaction() as s:
            for uid in (talking.uniqueid, arrived.uniqueid):
                n_calls = await s.scalar(
                    select(func.count()).select_from(m.Call).where(m.Call.linkedid == uid)
                )
                n_msgs = await s.scalar(
                    select(func.count()).select_from(m.Message).where(m.Message.external_id == uid)
                )
                assert n_calls == 1 and n_msgs == 1
            accepted = await s.scalar(
                select(func.count())
                .select_from(m.Event)
                .where(m.Event.conversation_id == talk_id, m.Event.type == "conversation.accepted")
            )
        assert accepted == 1
        assert (await w.call_row(talk_id)).hangup_cause == "gone"


async def test_click_to_call_rings_operator_then_customer(server: LiveServer, emulator: AmiEmulator) -> None:
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "answer"
        ack = await op.call("click_to_call", {"number": "8 916 123-00-07", "queue_id": w.queue_id})
        assert ack["ok"], ack
        conv_id = ack["conversation_id"]
        originate = await until(lambda: originated(emulator, w))
        assert originate[-1]["Channel"] == f"PJSIP/{w.ext['op']}"
        assert originate[-1]["Context"] == "omni-outbound"
        assert originate[-1]["Exten"] == "+79161230007"
        assert originate[-1]["CallerID"] == "+74950000000"
        conv = await w.conv(conv_id)
        assert conv.status == "active" and conv.assigned_user_id == w.ops["op"] and conv.medium == "voice"

        async def connected() -> bool:
            return (await w.call_row(conv_id)).answered_at is not None

        await until(connected)
        agent = emulator.agent_leg(w.ext["op"])
        assert agent is not None and agent.bridge
        emulator.hangup(agent.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)
        call = await w.call_row(conv_id)
        assert call.direction == "out" and call.ended_at is not None

        other = await token_for(server, "admin")  # an admin may call from any queue; a bad number is refused
        assert other
        bad = await op.call("click_to_call", {"number": "abc", "queue_id": w.queue_id})
        assert not bad["ok"] and bad["error"] == "invalid"


async def test_blind_and_attended_transfer(server: LiveServer, emulator: AmiEmulator) -> None:
    async with make_world(server, ["a", "b", "c"]) as w:
        for name in ("a", "b", "c"):
            emulator.phones[w.ext[name]] = "answer"
        caller = emulator.incoming_call("+79161230008", inbox=w.inbox_id)
        offer = await offered_to(w.clients["a"])
        conv_id = int(offer["data"]["id"])
        await w.clients["a"].wait_for("conversation.accepted", id=conv_id)
        a_leg = emulator.agent_leg(w.ext["a"])
        assert a_leg is not None

        # Blind: A sends the caller to B; the caller hears hold music until B picks up.
        ack = await w.clients["a"].call(
            "call_transfer", {"conversation_id": conv_id, "to_user_id": w.ops["b"]}
        )
        assert ack["ok"], ack
        assert actions(emulator, "Redirect")[-1]["Context"] == "omni-wait"
        await w.clients["b"].wait_for("conversation.accepted", id=conv_id, assigned_user_id=w.ops["b"])
        await until(lambda: a_leg.uniqueid not in emulator.channels)
        b_leg = emulator.agent_leg(w.ext["b"])
        assert b_leg is not None
        await until(lambda: caller.bridge and caller.bridge == b_leg.bridge)

        # Attended: B consults C, then hangs up; C keeps the caller.
        ack = await w.clients["b"].call(
            "call_transfer", {"conversation_id": conv_id, "to_user_id": w.ops["c"], "attended": True}
        )
        assert ack["ok"], ack
        atxfer = actions(emulator, "Atxfer")[-1]
        assert atxfer["Channel"] == b_leg.name and atxfer["Exten"] == w.ext["c"]
        await until(lambda: emulator.agent_leg(w.ext["c"]))
        emulator.hangup(b_leg.uniqueid)  # B hangs up: the transfer completes
        await w.clients["c"].wait_for("conversation.accepted", id=conv_id, assigned_user_id=w.ops["c"])
        conv = await w.conv(conv_id)
        assert conv.status == "active" and conv.assigned_user_id == w.ops["c"]
        rung = [a.get("Channel") for a in originated(emulator, w)]
        assert rung == [f"PJSIP/{w.ext['a']}", f"PJSIP/{w.ext['b']}"], (
            f"A and B were rung; C was reached by Atxfer, not rung: {rung}"
        )
        emulator.hangup(caller.uniqueid)
        await w.clients["c"].wait_for("conversation.wrap_up", id=conv_id)
        assert (await w.call_row(conv_id)).agent_user_id == w.ops["c"]


async def test_supervisor_listens_with_chanspy_and_an_operator_cannot(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op", "sup"], connect=["op", "sup"]) as w:
        emulator.phones[w.ext["op"]] = "answer"
        caller = emulator.incoming_call("+79161230009", inbox=w.inbox_id)
        offer = await offered_to(w.clients["op"])
        conv_id = int(offer["data"]["id"])
        await w.clients["op"].wait_for("conversation.accepted", id=conv_id)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None

        # An operator can't open the supervisor namespace at all.
        intruder = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await intruder.connect(
                server.url,
                namespaces=["/supervisor"],
                auth={"token": w.clients["op"].token},
                transports=["websocket"],
                wait_timeout=5,
            )
        assert not [a for a in actions(emulator, "Originate") if a.get("Application") == "ChanSpy"]

        sup = w.clients["sup"]
        ack = await sup.call("call_spy", {"conversation_id": conv_id, "mode": "listen"})
        assert ack["ok"], ack
        spy = [a for a in actions(emulator, "Originate") if a.get("Application") == "ChanSpy"][-1]
        assert spy["Channel"] == f"PJSIP/{w.ext['sup']}"
        channel, options = spy["Data"].split(",")
        assert channel == leg.name and "q" in options and "w" not in options and "B" not in options
        ack = await sup.call("call_spy", {"conversation_id": conv_id, "mode": "whisper"})
        assert ack["ok"] and "w" in actions(emulator, "Originate")[-1]["Data"].split(",")[1]
        ack = await sup.call("call_spy", {"conversation_id": conv_id, "mode": "barge"})
        assert ack["ok"] and "B" in actions(emulator, "Originate")[-1]["Data"].split(",")[1]
        bad = await sup.call("call_spy", {"conversation_id": conv_id, "mode": "shout"})
        assert not bad["ok"] and bad["error"] == "invalid"

        ack = await sup.call("call_force_end", {"conversation_id": conv_id})
        assert ack["ok"], ack
        await w.clients["op"].wait_for("conversation.wrap_up", id=conv_id)
        await until(lambda: caller.uniqueid not in emulator.channels)
        assert (await w.conv(conv_id)).closed_by == "supervisor"
