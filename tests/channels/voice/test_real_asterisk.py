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
