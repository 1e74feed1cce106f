# ruff: noqa: E501  (dialplan lines and scenario documents read best one per line)
"""Optional: a whole inbound call through a real Asterisk (the emulators' model checked against it).

Skipped unless ``OMNI_TEST_ASTERISK_AMI=host:port`` names an Asterisk running the samples of
``docker/asterisk/`` (``omni`` manager user, ``command`` and ``originate`` rights) whose
``OMNI_AGI`` global points at ``OMNI_TEST_ASTERISK_AGI`` (``host:port`` this test's FastAGI
server listens on, default ``127.0.0.1:4599``); ``OMNI_TEST_ASTERISK_SECRET`` is the manager
secret (default the sample's ``CHANGE-ME``). Local channels stand in for the trunk and the
operator's phone: the test adds ``[omni-test-phones]`` (answer, wait) at run time and sets the
inbox's public token to the sample ``from-trunk`` block's.

Prompts, text to speech (espeak-ng) and voice replies use directories of this host that
Asterisk (running on it) reads and writes at the same paths. Campaign calls dial through a
Local "trunk" (``[omni-test-out]`` → ``[omni-test-trunk]``, added at run time) whose numbers
play the customer: answer, listen (``WaitForNoise`` / ``WaitForSilence``), press keys
(``SendDTMF``) and speak (``Playback`` of a core sound into ``RECORD FILE``).
``tests/channels/voice/real_asterisk_config.sh`` installs the samples for this test.

The call: ``from-trunk`` → ``omni-ivr`` (FastAGI ``ivr``: the conversation is created and queued)
→ ``omni-wait`` (``OmniEnqueue`` on AMI, the ``announce`` AGI) → the router offers it, the adapter
rings the operator (``Originate`` into ``omni-agent``), the phone answers, the core accepts and
the adapter bridges; the caller hangs up → wrap-up and the call row closed with its talk time.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from omni.db import models as m
from tests import factories as f
from tests.channels.voice.test_agentless import _order as agentless_order
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
    # Prompts, rendered speech and voice replies: directories this process and Asterisk (same
    # host) both reach at the same path, as production needs (docs/voice.md, shared directories).
    v.replies_dir = tmp_path_factory.mktemp("replies")
    settings.media.prompts_dir = tmp_path_factory.mktemp("prompts")
    settings.speech.engine = "espeak"
    settings.speech.cache_dir = tmp_path_factory.mktemp("tts")
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


# --- agentless notifications, prompts and text to speech (docs/dialer.md) -------------------

PLAY_CONTEXT = (
    # Plays ${SOUND} (as the sample's omni-drop / omni-machine do) and reports PLAYBACKSTATUS:
    # FAILED is what Asterisk says for a file it cannot find ("File ... does not exist").
    "s,1,Answer() into omni-test-play",
    "s,2,Playback(${SOUND}) into omni-test-play",
    "s,3,UserEvent(OmniTestPlayed,Sound: ${SOUND},Status: ${PLAYBACKSTATUS}) into omni-test-play",
    "s,4,Hangup() into omni-test-play",
)
CONFIRM_NUMBER = "+79161230031"
REPEAT_NUMBER = "+79161230032"
HEARD = "UserEvent(OmniTestHeard,Number: ${EXTEN},Status: ${WAITSTATUS})"
CUSTOMERS = (
    # The customer who confirms: listens to the message and the menu prompt to the end (1 s of
    # silence: the IVR waits for a digit), presses 1, then says nothing when asked for a reply.
    f"{CONFIRM_NUMBER},1,Answer() into omni-test-trunk",
    f"{CONFIRM_NUMBER},2,WaitForNoise(300,1,30) into omni-test-trunk",
    f"{CONFIRM_NUMBER},3,{HEARD} into omni-test-trunk",
    f"{CONFIRM_NUMBER},4,WaitForSilence(1000,1,60) into omni-test-trunk",
    f"{CONFIRM_NUMBER},5,SendDTMF(1) into omni-test-trunk",
    f"{CONFIRM_NUMBER},6,Wait(120) into omni-test-trunk",
    # The customer who asks to hear it again (2), then confirms (1) and records a reply: after
    # "Leave a message" and the beep, one second of silence, then "hello world".
    f"{REPEAT_NUMBER},1,Answer() into omni-test-trunk",
    f"{REPEAT_NUMBER},2,WaitForNoise(300,1,30) into omni-test-trunk",
    f"{REPEAT_NUMBER},3,{HEARD} into omni-test-trunk",
    f"{REPEAT_NUMBER},4,WaitForSilence(1000,1,60) into omni-test-trunk",
    f"{REPEAT_NUMBER},5,SendDTMF(2) into omni-test-trunk",
    f"{REPEAT_NUMBER},6,WaitForNoise(300,1,30) into omni-test-trunk",
    f"{REPEAT_NUMBER},7,{HEARD} into omni-test-trunk",
    f"{REPEAT_NUMBER},8,WaitForSilence(1000,1,60) into omni-test-trunk",
    f"{REPEAT_NUMBER},9,SendDTMF(1) into omni-test-trunk",
    f"{REPEAT_NUMBER},10,WaitForNoise(300,1,30) into omni-test-trunk",
    f"{REPEAT_NUMBER},11,WaitForSilence(1000,1,30) into omni-test-trunk",
    f"{REPEAT_NUMBER},12,Playback(hello-world) into omni-test-trunk",
    f"{REPEAT_NUMBER},13,Wait(120) into omni-test-trunk",
)


async def add_extensions(server: LiveServer, lines: tuple[str, ...]) -> None:
    """``dialplan add extension`` for ``"<exten>,<priority>,<app> into <context>"`` lines; the
    extension is quoted (the CLI splits its arguments at spaces: an application argument with a
    space is otherwise cut there and the priority silently not added)."""
    for line in lines:
        ext, _, context = line.rpartition(" into ")
        await command(server, f'dialplan add extension "{ext}" into {context} replace')
        shown = await command(server, f"dialplan show {context}")
        text = " ".join(
            str(v) for r in (shown if isinstance(shown, list) else [shown]) for v in dict(r).values()
        )
        app = ext.split(",", 2)[2]
        assert app.split("(", 1)[0] in text, (line, shown)


class _Events:
    """UserEvents of the test's own dialplan, read on a second AMI connection (the test is the
    outside world here: the app's link is not the test's to hook into)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.manager: Any = None

    async def __aenter__(self) -> _Events:
        from panoramisk import Manager

        host, _, port = AMI.rpartition(":")
        self.manager = Manager(host=host, port=int(port), username="omni", secret=SECRET, ping_delay=0)
        self.manager.register_event("UserEvent", self._on)
        await self.manager.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.manager.close()

    def _on(self, _manager: Any, message: Any) -> None:
        self.seen.append({str(k): str(v) for k, v in dict(message).items()})

    def named(self, name: str, **match: str) -> list[dict[str, str]]:
        return [
            e
            for e in self.seen
            if e.get("UserEvent") == name and all(e.get(k) == v for k, v in match.items())
        ]


async def _play(server: LiveServer, events: _Events, sound: str) -> str:
    """``Playback(sound)`` on a real channel; Asterisk's ``PLAYBACKSTATUS`` afterwards."""
    response = await voice_of(server).ami.send(
        {
            "Action": "Originate",
            "Channel": "Local/s@omni-test-play/n",
            "Application": "Wait",
            "Data": "30",
            "Variable": f"SOUND={sound}",
            "Async": "true",
        }
    )
    assert str(_last(response).get("Response", "")).lower() == "success", response
    found = await until(lambda: events.named("OmniTestPlayed", Sound=sound), timeout=30)
    return found[0]["Status"]


async def test_uploaded_prompt_and_rendered_speech_play_on_a_real_channel(
    server: LiveServer, tmp_path: Any
) -> None:
    """A prompt uploaded through ``omni.domain.prompts`` (MP3 → 8 kHz WAV in
    ``OMNI_MEDIA_PROMPTS_DIR``) and a text rendered by espeak-ng (``OMNI_TTS_CACHE_DIR``) are
    played by ``Playback()`` as their ``sound``: ``PLAYBACKSTATUS=SUCCESS``; a sound that is not
    there is ``FAILED`` (what a wrong shared path looks like from Asterisk)."""
    from omni.domain import prompts, speech
    from omni.domain.auth import Principal
    from tests.media.audio import tone

    await add_extensions(server, PLAY_CONTEXT)
    async with server.services.db.transaction() as s:
        admin = await f.user(s, f"rt-boss-{next(_n)}", m.Role.ADMIN)
        prompt = await prompts.do_upload_prompt(
            s, Principal.of(admin), "rt", f"tone-{next(_n)}", tone(tmp_path / "t.mp3"), "t.mp3", "audio/mpeg",
            settings=server.settings,
        )  # fmt: skip
        said = await speech.render(s, server.settings, "Ваш долг 1 500,50 ₽ до 01.12.2026, 21 день", "ru")
    assert prompt.sound.startswith(str(server.settings.media.prompts_dir))
    async with _Events() as events:
        assert await _play(server, events, prompt.sound) == "SUCCESS"
        assert await _play(server, events, said) == "SUCCESS"
        assert await _play(server, events, prompt.sound + "-missing") == "FAILED"


async def _agentless_world(server: LiveServer, w: Any) -> tuple[int, int]:
    """An agentless campaign calling through the Local trunk: a personal message (espeak),
    the menu said by an uploaded prompt, a voice reply, goodbye. (campaign id, prompt id)."""
    from sqlalchemy import select

    from bots import service
    from omni.domain import prompts
    from omni.domain.auth import Principal
    from tests.media.audio import tone

    n = next(_n)
    async with server.services.db.transaction() as s:
        admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
        assert admin is not None
        menu = await prompts.do_upload_prompt(
            s, Principal.of(admin), "rt", f"menu-{n}", tone(server.settings.data_dir / f"rt-menu-{n}.wav", seconds=2.0, rate=8000,
                                                           channels=1), "menu.wav", "audio/wav",
            settings=server.settings,
        )  # fmt: skip
        doc = {
            "name": "Debt reminder",
            "start": "hello",
            "variables": [{"name": "name"}, {"name": "debt"}, {"name": "due_date"}, {"name": "recording"}],
            "nodes": [
                {"id": "hello", "type": "message",
                 "content": {"text": "Hello {{name}}, your debt is {{debt:money}} due {{due_date:date}}."},
                 "ports": {"next": "menu"}},
                {"id": "menu", "type": "menu", "content": {"text": "Press 1 to confirm, 2 to repeat.", "prompt_id": menu.id},
                 "retries": 1, "timeout_seconds": 15,
                 "options": [{"id": "confirm", "label": "Confirm", "dtmf": "1"}, {"id": "repeat", "label": "Repeat", "dtmf": "2"},
                             {"id": "operator", "label": "Operator", "dtmf": "0"}],
                 "ports": {"opt:confirm": "reply", "opt:repeat": "hello", "opt:operator": "bye", "on_max_retries": "bye"}},
                {"id": "reply", "type": "record", "content": {"text": "Leave a message after the tone."}, "max_seconds": 20,
                 "silence_seconds": 2, "variable": "recording", "ports": {"next": "bye", "on_no_input": "bye"}},
                {"id": "bye", "type": "close", "message": {"text": "Thank you, goodbye."}},
            ],
        }  # fmt: skip
        key = f"rtnotify{w.queue_id}x{n}"
        row = await service.create(s, Principal.of(admin), key, "Debt reminder", doc)
        await service.publish(s, Principal.of(admin), row.id)
        inbox = await s.get_one(m.Inbox, w.inbox_id)
        inbox.config = {**inbox.config, "outbound_context": "omni-test-out"}
        camp = m.Campaign(
            name=f"rt-notify-{w.queue_id}-{n}",
            state="running",
            channel="voice",
            dial_mode="agentless",
            scenario=key,
            queue_id=w.queue_id,
            inbox_id=w.inbox_id,
            retry_rules={"busy": [15], "no_answer": [30], "dropped": [10]},
            max_attempts=3,
            ring_seconds=20,
        )
        s.add(camp)
        await s.flush()
        return camp.id, menu.id


async def test_agentless_notification_confirm_repeat_and_voice_reply_through_a_real_asterisk(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Two agentless campaign calls through the sample ``omni-agentless`` context and the real
    FastAGI ``outbound`` route: the personal message (espeak-ng, the cache directory Asterisk
    reads) and the menu (an uploaded prompt) are heard by the customer's channel; 1 confirms
    (no reply said: nothing stored); 2 repeats the message, then 1 and a spoken reply: the
    WAV Asterisk recorded into the replies directory is stored, non-empty, 8 kHz mono 16-bit."""
    import wave

    from omni.db.models.outbound import Outcome, TargetState

    await add_extensions(server, (*TEST_TRUNK, *CUSTOMERS, *PLAY_CONTEXT))
    async with make_world(server, ["op"], wrap_up_seconds=60) as w, _Events() as events:
        camp, _ = await _agentless_world(server, w)
        voice = voice_of(server)

        async def ended(attempt_id: int) -> tuple[m.CampaignAttempt, m.CampaignTarget] | None:
            async with server.services.db.transaction() as s:
                a = await s.get_one(m.CampaignAttempt, attempt_id)
                t = await s.get_one(m.CampaignTarget, a.target_id)
                return (a, t) if a.ended_at is not None and t.result else None

        confirm = await agentless_order(w, camp, [CONFIRM_NUMBER])
        await voice.place(confirm)
        a, t = await until(lambda: ended(confirm.attempt_id), timeout=90)
        assert (a.outcome, a.cause) == (Outcome.ANSWERED, "notification played"), a.cause
        assert t.state == TargetState.DONE
        r = t.result
        assert r["completed"] is True and r["confirmed"] is True and r["digits"] == "1", r
        assert r["recording_file_id"] is None and r["node"] == "bye", r
        assert [e["Status"] for e in events.named("OmniTestHeard", Number=CONFIRM_NUMBER)] == ["NOISE"]
        await until(lambda: _gone(server, {f"omni-a{confirm.attempt_id}"}), timeout=30)

        repeat = await agentless_order(w, camp, [REPEAT_NUMBER])
        await voice.place(repeat)
        a, t = await until(lambda: ended(repeat.attempt_id), timeout=120)
        assert (a.outcome, a.cause) == (Outcome.ANSWERED, "notification played"), a.cause
        r = t.result
        assert r["completed"] is True and r["confirmed"] is True and r["digits"] == "1", r
        assert [e["Status"] for e in events.named("OmniTestHeard", Number=REPEAT_NUMBER)] == [
            "NOISE",
            "NOISE",
        ]
        assert r["recording_file_id"], r
        async with server.services.db.transaction() as s:
            stored = await s.get_one(m.StoredFile, r["recording_file_id"])
        path = Path(stored.path)
        assert path.parent == Path(server.settings.voice.replies_dir) and path.suffix == ".wav"
        size = (await anyio.Path(path).stat()).st_size
        assert stored.conversation_id == a.conversation_id and stored.size == size > 44
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() >= 8000 // 2, "at least half a second of the reply"
        # Every prompt and rendered text was found and played (no refusal, nothing missing).
        assert "could not be played" not in caplog.text and "on this node" not in caplog.text
        # Asterisk plays it back (the file is whole, in a format it reads).
        assert await _play(server, events, str(path.with_suffix(""))) == "SUCCESS"
        await until(lambda: _gone(server, {f"omni-a{repeat.attempt_id}"}), timeout=30)
