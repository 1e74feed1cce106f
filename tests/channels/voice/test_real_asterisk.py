"""Optional: a whole inbound call through a real Asterisk (the emulators' model checked against it).

Skipped unless ``OMNI_TEST_ASTERISK_AMI=host:port`` names an Asterisk running the samples of
``docker/asterisk/`` (``omni`` manager user, ``command`` and ``originate`` rights) whose
``OMNI_AGI`` global points at ``OMNI_TEST_ASTERISK_AGI`` (``host:port`` this test's FastAGI
server listens on, default ``127.0.0.1:4599``); ``OMNI_TEST_ASTERISK_SECRET`` is the manager
secret (default the sample's ``CHANGE-ME``). Local channels stand in for the trunk and the
operator's phone: the test adds ``[omni-test-phones]`` (answer, wait) at run time and sets the
inbox's public token to the sample ``from-trunk`` block's.

The call: ``from-trunk`` → ``omni-ivr`` (FastAGI ``ivr``: the conversation is created and queued)
→ ``omni-wait`` (``OmniEnqueue`` on AMI, the ``announce`` AGI) → the router offers it, the adapter
rings the operator (``Originate`` into ``omni-agent``), the phone answers, the core accepts and
the adapter bridges; the caller hangs up → wrap-up and the call row closed with its talk time.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from omni.db import models as m
from tests import factories as f
from tests.channels.voice.test_ami_calls import make_world, until, voice_of
from tests.conftest import LiveServer, _asyncpg_url, create_test_database, drop_test_database, make_settings

AMI = os.environ.get("OMNI_TEST_ASTERISK_AMI", "")
AGI = os.environ.get("OMNI_TEST_ASTERISK_AGI", "127.0.0.1:4599")
SECRET = os.environ.get("OMNI_TEST_ASTERISK_SECRET", "CHANGE-ME")
TRUNK_TOKEN = "CHANGE-ME-voice-inbox-token"
"""The inbox token of the sample ``from-trunk`` block (number 4951000000)."""

pytestmark = pytest.mark.skipif(not AMI, reason="OMNI_TEST_ASTERISK_AMI names no real Asterisk")

_n = itertools.count(1)


@pytest.fixture(scope="module")
async def server(pg_template: str, tmp_path_factory: Any) -> AsyncIterator[LiveServer]:
    name = await create_test_database(pg_template)
    settings = make_settings(_asyncpg_url(name), data_dir=tmp_path_factory.mktemp("voice"))
    v = settings.voice
    v.enabled = True
    v.ami_host, _, port = AMI.rpartition(":")
    v.ami_port = int(port)
    v.ami_secret = SECRET
    v.agi_host, _, agi_port = AGI.rpartition(":")
    v.agi_port = int(agi_port)
    v.endpoint_template = "Local/{extension}@omni-test-phones/n"
    v.recordings_dir = tmp_path_factory.mktemp("recordings")
    settings.routing.tick_seconds = 0.1
    srv = LiveServer(settings)
    await srv.start()
    try:
        await until(lambda: voice_of(srv).ami.ready, timeout=20)
        for line in ("_X.,1,Answer()", "_X.,2,Wait(600)"):
            await command(srv, f"dialplan add extension {line} into omni-test-phones replace")
        async with srv.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
        yield srv
    finally:
        await srv.stop()
        await drop_test_database(name)


async def command(server: LiveServer, cli: str) -> Any:
    return await voice_of(server).ami.send({"Action": "Command", "Command": cli})


async def live_linkedids(server: LiveServer) -> set[str]:
    return {snap.linkedid for snap in await voice_of(server)._live_channels()}


async def test_inbound_call_through_the_ivr_answered_bridged_and_hung_up(server: LiveServer) -> None:
    async with make_world(server, ["op"], wrap_up_seconds=60) as w:
        async with server.services.db.transaction() as s:
            inbox = await s.get(m.Inbox, w.inbox_id)
            assert inbox is not None
            inbox.public_token = TRUNK_TOKEN
        voice = voice_of(server)
        linkedid = f"rt-c{next(_n)}-{w.inbox_id}"
        response = await voice.ami.send(
            {
                "Action": "Originate",
                "Channel": "Local/4951000000@from-trunk/n",
                "Application": "Wait",
                "Data": "600",
                "CallerID": '"Ivan" <+79161234567>',
                "ChannelId": linkedid,
                "OtherChannelId": f"{linkedid}b",
                "Async": "true",
            }
        )
        assert str(_last(response).get("Response", "")).lower() == "success", response
        op = w.clients["op"]
        offer = await op.wait_for("conversation.offered", timeout=20)
        conv_id = int(offer["data"]["id"])
        assert offer["data"]["medium"] == "voice"
        await op.wait_for("conversation.accepted", timeout=20, id=conv_id)  # the Local "phone" answered
        call = await until(lambda: voice.registry.for_conversation(conv_id), timeout=10)
        await until(lambda: call.bridged, timeout=10)
        row = await until(lambda: _answered(w, conv_id), timeout=10)
        assert row.linkedid == linkedid and row.agent_user_id == w.ops["op"]
        assert row.agent_uniqueid == f"omni-o{offer['data']['offer_id']}"
        assert row.recording_path.endswith(f"/{conv_id}-{linkedid}.wav")
        conv = await w.conv(conv_id)
        assert conv.status == "active" and (conv.variables or {}).get("linkedid") == linkedid
        # The IVR told the dialplan which conversation this is, on the caller's channel.
        got = await voice.ami.send(
            {"Action": "Getvar", "Channel": row.caller_channel, "Variable": "OMNI_CONVERSATION"}
        )
        assert str(_last(got).get("Value")) == str(conv_id), got

        await voice.ami.send({"Action": "Hangup", "Channel": row.caller_channel})
        await op.wait_for("conversation.wrap_up", timeout=20, id=conv_id)
        ended = await until(lambda: _ended(w, conv_id), timeout=10)
        assert ended.talk_seconds > 0 and ended.hangup_cause
        # Both calls' channels are gone: the caller's, and the operator's leg the adapter hung up.
        await until(lambda: _gone(server, {linkedid, row.agent_uniqueid}), timeout=20)


def _last(response: Any) -> Any:
    """An action's answer (panoramisk gives a list for an Async Originate or an event list)."""
    return response[-1] if isinstance(response, list) else response


async def _answered(w: Any, conv_id: int) -> m.Call | None:
    row: m.Call = await w.call_row(conv_id)
    return row if row.answered_at is not None else None


async def _ended(w: Any, conv_id: int) -> m.Call | None:
    row: m.Call = await w.call_row(conv_id)
    return row if row.ended_at is not None else None


async def _gone(server: LiveServer, linkedids: set[str]) -> bool:
    return not linkedids & await live_linkedids(server)


# --- campaign calls (Voice dialing) -----------------------------------------------------------

BUSY_NUMBER = "+79161230017"
ANSWER_NUMBER = "+79161230016"
TEST_TRUNK = (
    # The campaign inbox's outbound context: the sample ``omni-outbound`` with a Local "trunk".
    "_+X.,1,Set(CALLERID(num)=${OMNI_CALLERID}) into omni-test-out",
    "_+X.,2,Dial(Local/${EXTEN}@omni-test-trunk,60) into omni-test-out",
    "_+X.,3,Hangup() into omni-test-out",
    f"{BUSY_NUMBER},1,Busy(5) into omni-test-trunk",
    f"{ANSWER_NUMBER},1,Answer() into omni-test-trunk",
    f"{ANSWER_NUMBER},2,Wait(600) into omni-test-trunk",
)


async def test_campaign_calls_busy_and_answered_through_a_real_asterisk(server: LiveServer) -> None:
    """``place()`` through Asterisk: a busy number ends ``busy`` from its DialEnd; an answered
    one becomes the operator's conversation, is bridged with the operator's (Local) phone and
    ends as an ordinary outgoing call."""
    from omni.channels import AttemptOrder
    from omni.db.models.outbound import Outcome, TargetState
    from omni.domain.outbound.lifecycle import do_open_attempt

    for line in TEST_TRUNK:
        await command(server, f"dialplan add extension {line} replace")
    async with make_world(server, ["op"], wrap_up_seconds=60) as w:
        async with server.services.db.transaction() as s:
            inbox = await s.get_one(m.Inbox, w.inbox_id)
            inbox.config = {**inbox.config, "outbound_context": "omni-test-out"}
            camp = m.Campaign(
                name=f"rt-camp-{w.queue_id}",
                state="running",
                channel="voice",
                dial_mode="progressive",
                queue_id=w.queue_id,
                inbox_id=w.inbox_id,
                retry_rules={"busy": [15]},
                ring_seconds=20,
            )
            s.add(camp)
            await s.flush()
            orders = []
            for phone in (BUSY_NUMBER, ANSWER_NUMBER):
                t = m.CampaignTarget(campaign_id=camp.id, name="Ivan", phone=phone, phones=[phone])
                s.add(t)
                await s.flush()
                a = await do_open_attempt(s, t, caller_id="+74950001111", operator_id=w.ops["op"])
                orders.append(
                    AttemptOrder(
                        attempt_id=a.id,
                        campaign_id=camp.id,
                        target_id=t.id,
                        channel="voice",
                        dial_mode="progressive",
                        phone=phone,
                        caller_id="+74950001111",
                        inbox_id=w.inbox_id,
                        queue_id=w.queue_id,
                        operator_id=w.ops["op"],
                        ring_seconds=20,
                        variables={"name": "Ivan"},
                    )
                )
        voice = voice_of(server)

        async def ended(attempt_id: int) -> m.CampaignAttempt | None:
            async with server.services.db.transaction() as s:
                row = await s.get_one(m.CampaignAttempt, attempt_id)
                return row if row.ended_at is not None else None

        await voice.place(orders[0])
        busy = await until(lambda: ended(orders[0].attempt_id), timeout=20)
        assert busy.outcome == Outcome.BUSY and busy.cause.startswith("BUSY"), busy.cause

        await voice.place(orders[1])
        answered = await until(lambda: ended(orders[1].attempt_id), timeout=20)
        assert answered.outcome == Outcome.ANSWERED, answered.cause
        assert answered.conversation_id is not None
        conv = await w.conv(answered.conversation_id)
        assert conv.assigned_user_id == w.ops["op"] and conv.variables["attempt_id"] == orders[1].attempt_id
        call = await until(lambda: voice.registry.for_conversation(answered.conversation_id), timeout=10)
        await until(lambda: call.bridged, timeout=10)
        async with server.services.db.transaction() as s:
            target = await s.get_one(m.CampaignTarget, orders[1].target_id)
            assert target.state == TargetState.IN_PROGRESS

        await voice.ami.send({"Action": "Hangup", "Channel": call.caller_channel})
        await w.clients["op"].wait_for("conversation.wrap_up", timeout=20, id=answered.conversation_id)
        await until(lambda: _gone(server, {f"omni-a{orders[1].attempt_id}"}), timeout=20)


# --- AMD and predictive drops (docs/dialer.md, "Drops, AMD and the voice adapter") -----------

MACHINE_NUMBER = "+79161230021"
HUMAN_NUMBER = "+79161230022"
AMD_TRUNK = (
    # A "machine": a greeting longer than AMD's 1.5 s (LONGGREETING), then silence.
    f"{MACHINE_NUMBER},1,Answer() into omni-test-trunk",
    f"{MACHINE_NUMBER},2,Playback(vm-intro) into omni-test-trunk",
    f"{MACHINE_NUMBER},3,Playback(silence/10) into omni-test-trunk",
    # A "person": "hello world", then silence (HUMAN after 800 ms of it), then waits.
    f"{HUMAN_NUMBER},1,Answer() into omni-test-trunk",
    f"{HUMAN_NUMBER},2,Playback(hello-world) into omni-test-trunk",
    f"{HUMAN_NUMBER},3,Playback(silence/5) into omni-test-trunk",
    f"{HUMAN_NUMBER},4,Wait(600) into omni-test-trunk",
)


async def test_amd_machine_message_predictive_claim_and_drop_through_a_real_asterisk(
    server: LiveServer,
) -> None:
    """The sample ``omni-amd`` / ``omni-machine`` / ``omni-drop`` contexts with the real
    ``AMD()``: a machine greeting ends ``machine`` after the message (the channel hangs up by
    itself after ``WaitForSilence`` and ``Playback``); a person on a predictive call takes the
    free operator and is bridged; with the operator paused the next person hears the drop prompt
    and the call ends ``dropped``. Needs app_amd (amd.conf), app_waitforsilence, func_cut,
    func_module and the English core sounds (vm-intro, hello-world, silence/*)."""
    from omni.channels import AttemptOrder
    from omni.db.models.outbound import Outcome
    from omni.domain.outbound.lifecycle import do_open_attempt

    for line in (*TEST_TRUNK, *AMD_TRUNK):
        await command(server, f"dialplan add extension {line} replace")
    async with make_world(server, ["op"], wrap_up_seconds=60) as w:

        async def order(mode: str, phone: str, **kw: Any) -> AttemptOrder:
            async with server.services.db.transaction() as s:
                inbox = await s.get_one(m.Inbox, w.inbox_id)
                inbox.config = {**inbox.config, "outbound_context": "omni-test-out"}
                prompt = m.Prompt(folder="rt", name=f"p{next(_n)}", sound="tt-monkeys")
                s.add(prompt)
                await s.flush()
                camp = m.Campaign(
                    name=f"rt-amd-{w.queue_id}-{next(_n)}",
                    state="running",
                    channel="voice",
                    dial_mode=mode,
                    queue_id=w.queue_id,
                    inbox_id=w.inbox_id,
                    retry_rules={"machine": [60], "dropped": [10]},
                    ring_seconds=20,
                    amd_enabled=True,
                    machine_action="message",
                    machine_prompt_id=prompt.id,
                    drop_prompt_id=prompt.id,
                    **kw,
                )
                s.add(camp)
                await s.flush()
                t = m.CampaignTarget(campaign_id=camp.id, name="Ivan", phone=phone, phones=[phone])
                s.add(t)
                await s.flush()
                op = w.ops["op"] if mode == "progressive" else None
                a = await do_open_attempt(s, t, caller_id="+74950001111", operator_id=op)
                return AttemptOrder(
                    attempt_id=a.id,
                    campaign_id=camp.id,
                    target_id=t.id,
                    channel="voice",
                    dial_mode=mode,
                    phone=phone,
                    caller_id="+74950001111",
                    inbox_id=w.inbox_id,
                    queue_id=w.queue_id,
                    operator_id=op,
                    ring_seconds=20,
                    variables={"name": "Ivan"},
                )

        async def ended(attempt_id: int) -> m.CampaignAttempt | None:
            async with server.services.db.transaction() as s:
                row = await s.get_one(m.CampaignAttempt, attempt_id)
                return row if row.ended_at is not None else None

        voice = voice_of(server)
        machine = await order("progressive", MACHINE_NUMBER)
        await voice.place(machine)
        row = await until(lambda: ended(machine.attempt_id), timeout=30)
        assert (row.outcome, row.amd) == (Outcome.MACHINE, "MACHINE"), row.cause
        assert row.cause.startswith("answering machine: LONGGREETING") and row.cause.endswith("message left")
        await until(lambda: _gone(server, {f"omni-a{machine.attempt_id}"}), timeout=30)

        human = await order("predictive", HUMAN_NUMBER, drop_seconds=30)
        await voice.place(human)
        row = await until(lambda: ended(human.attempt_id), timeout=30)
        assert (row.outcome, row.amd, row.operator_id) == (Outcome.ANSWERED, "HUMAN", w.ops["op"]), row.cause
        call = await until(lambda: voice.registry.for_conversation(row.conversation_id), timeout=10)
        await until(lambda: call.bridged, timeout=10)
        await voice.ami.send({"Action": "Hangup", "Channel": call.caller_channel})
        await w.clients["op"].wait_for("conversation.wrap_up", timeout=20, id=row.conversation_id)

        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "pause")
        dropped = await order("predictive", HUMAN_NUMBER, drop_seconds=1)
        await voice.place(dropped)
        row = await until(lambda: ended(dropped.attempt_id), timeout=30)
        assert (row.outcome, row.cause, row.amd) == (Outcome.DROPPED, "no operator free within 1 s", "HUMAN")
        await until(lambda: _gone(server, {f"omni-a{dropped.attempt_id}"}), timeout=30)
