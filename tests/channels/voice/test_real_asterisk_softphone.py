"""Optional: the operator window's softphone carries a call's audio through a real Asterisk.

Skipped unless ``OMNI_TEST_ASTERISK_AMI=host:port`` names an Asterisk running the samples of
``docker/asterisk/`` on this host (``tests/channels/voice/real_asterisk_config.sh``, as for
``test_real_asterisk.py``, whose conventions and settings this test shares) and built with
``res_srtp`` (libsrtp), ``res_http_websocket`` and ``res_pjsip_transport_websocket``. Also:
``OMNI_TEST_ASTERISK_WSS`` (default ``wss://127.0.0.1:8089/ws``, http.conf's TLS listener; its
self-signed certificate is accepted by the browser context) and ``OMNI_TEST_ASTERISK_CONF``
(default ``/etc/asterisk``): the test writes ``pjsip_omni_operators.conf`` there, what
``omni softphones -o`` writes, and reloads res_pjsip.

The call: a Local "trunk" call into ``from-trunk`` whose far end is ``Echo()`` → Omni's IVR and
queue → Omni originates ``PJSIP/webrtc<id>`` → the operator's Chromium (fake microphone: a beep)
rings in the call panel, the operator presses Answer (DTLS-SRTP, ICE) → Omni bridges the caller.
The browser's own audio goes to Asterisk and comes back through the bridge and the echo: the
page's WebRTC stats show audio bytes sent and received, and Asterisk's ``pjsip show
channelstats`` shows packets both ways on the operator's channel.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import softphone
from tests.channels.voice.test_ami_calls import make_world, until, voice_of
from tests.channels.voice.test_real_asterisk import AGI, AMI, SECRET, TRUNK_TOKEN, _gone, _last, _n, command
from tests.conftest import LiveServer, _asyncpg_url, create_test_database, drop_test_database, make_settings
from tests.e2e.conftest import CHROMIUM, FLAGS, UI_DIST
from tests.factories import PASSWORD

WSS = os.environ.get("OMNI_TEST_ASTERISK_WSS", "wss://127.0.0.1:8089/ws")
CONF = Path(os.environ.get("OMNI_TEST_ASTERISK_CONF", "/etc/asterisk"))
TIMEOUT = 20_000
CHANNELSTATS = re.compile(r"\S+\s+\S+\s+\S+\s+(?P<codec>\w+)\s+(?P<rx>\d+)\s+\d+\s+\d+\s+\S+\s+(?P<tx>\d+)")
"""A row of ``pjsip show channelstats``: bridge, channel, up time, codec, received count, lost,
percent, jitter, transmitted count, …"""

pytestmark = [
    pytest.mark.skipif(not AMI, reason="OMNI_TEST_ASTERISK_AMI names no real Asterisk"),
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and (UI_DIST / "operator.js").exists()),
        reason="needs Debian chromium and the built console (cd omni/web/ui && npm run build)",
    ),
]

PEERS = """
window.__pcs = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Native {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""
"""Keeps the page's peer connections (the softphone's is private) for ``getStats()``."""

STATS = """async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  if (!pc) return null;
  const out = {ice: pc.iceConnectionState, sent: 0, received: 0, packetsReceived: 0, energy: 0};
  const codecs = {};
  const stats = await pc.getStats();
  stats.forEach((s) => { if (s.type === "codec") codecs[s.id] = s.mimeType; });
  stats.forEach((s) => {
    if (s.kind !== "audio") return;
    if (s.type === "outbound-rtp") { out.sent += s.bytesSent; out.codec = codecs[s.codecId]; }
    if (s.type === "inbound-rtp") {
      out.received += s.bytesReceived;
      out.packetsReceived += s.packetsReceived;
      out.energy += s.totalAudioEnergy || 0;
    }
  });
  return out;
}"""


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
    v.webrtc_ws_url = WSS  # the operator's phone is PJSIP/webrtc<id> (the sample's default template)
    v.recordings_dir = tmp_path_factory.mktemp("recordings")
    v.replies_dir = tmp_path_factory.mktemp("replies")
    settings.media.prompts_dir = tmp_path_factory.mktemp("prompts")
    settings.speech.engine = "espeak"
    settings.speech.cache_dir = tmp_path_factory.mktemp("tts")
    settings.routing.tick_seconds = 0.1
    srv = LiveServer(settings)
    srv.settings.public_base_url = srv.url  # the page's origin (the operator socket checks it)
    await srv.start()
    try:
        await until(lambda: voice_of(srv).ami.ready, timeout=20)
        yield srv
    finally:
        await srv.stop()
        await drop_test_database(name)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    pw = await async_playwright().start()
    browser = await pw.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *FLAGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    try:
        yield browser
    finally:
        await browser.close()
        await pw.stop()


async def stats(page: Page) -> dict[str, Any]:
    return await page.evaluate(STATS) or {}


async def test_a_browser_operator_talks_through_asterisk_audio_both_ways(
    server: LiveServer, chromium: Browser
) -> None:
    async with make_world(server, ["op"], connect=[], wrap_up_seconds=60) as w:
        async with server.services.db.transaction() as s:
            op = await s.get_one(m.User, w.ops["op"])
            op.phone_endpoint = m.PhoneEndpoint.BROWSER
            inbox = await s.get_one(m.Inbox, w.inbox_id)
            inbox.public_token = TRUNK_TOKEN
            username = op.username
            endpoints = softphone.pjsip_endpoints([op], server.settings)
        sip_user = softphone.sip_user(w.ops["op"], server.settings.voice)
        operators = CONF / "pjsip_omni_operators.conf"
        operators.write_text(endpoints)  # what `omni softphones -o` writes
        try:
            await command(server, "module reload res_pjsip.so")
            shown = await command(server, f"pjsip show endpoint {sip_user}")
            assert "media_encryption" in str(shown) and "dtls" in str(shown), shown

            context = await chromium.new_context(
                base_url=server.url, ignore_https_errors=True, permissions=["microphone"]
            )
            await context.add_init_script(PEERS)
            page = await context.new_page()
            await page.goto("/login")
            await page.fill("input[name=username]", username)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            phone = page.get_by_test_id("softphone")
            status = phone.get_by_test_id("softphone-status")
            # Registered to Asterisk over wss with the credentials Omni issued.
            await expect(status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
            contacts = await command(server, f"pjsip show aor {sip_user}")
            assert "contact" in str(contacts).lower() and sip_user in str(contacts), contacts

            voice = voice_of(server)
            linkedid = f"rt-sp{next(_n)}-{w.inbox_id}"
            response = await voice.ami.send(
                {
                    "Action": "Originate",
                    "Channel": "Local/4951000000@from-trunk/n",
                    "Application": "Echo",  # the caller returns whatever it hears
                    "CallerID": '"Ivan" <+79161234567>',
                    "ChannelId": linkedid,
                    "OtherChannelId": f"{linkedid}b",
                    "Async": "true",
                }
            )
            assert str(_last(response).get("Response", "")).lower() == "success", response

            call_panel = page.get_by_test_id("call")
            await expect(status).to_have_attribute("data-state", "ringing", timeout=TIMEOUT)
            await call_panel.get_by_test_id("call-answer").click(timeout=TIMEOUT)
            await expect(status).to_have_attribute("data-state", "in_call", timeout=TIMEOUT)
            await expect(call_panel.get_by_test_id("call-state")).to_have_attribute(
                "data-state", "talking", timeout=TIMEOUT
            )
            # Omni accepted and bridged the caller with the operator's leg (PJSIP/webrtc<id>).
            async with server.services.db.transaction() as s:
                conv_id = await s.scalar(
                    select(m.Conversation.id).where(m.Conversation.queue_id == w.queue_id)
                )
            assert conv_id is not None
            call = await until(lambda: voice.registry.for_conversation(conv_id), timeout=10)
            await until(lambda: call.bridged, timeout=10, what="the bridge")
            row = await w.call_row(conv_id)
            assert row.linkedid == linkedid and row.agent_user_id == w.ops["op"]

            # Audio both ways: the beep leaves the browser, comes back through Omni's bridge and
            # the caller's echo (SRTP decrypted and re-encrypted by Asterisk).
            async def flowing() -> dict[str, Any] | None:
                got = await stats(page)
                return got if got.get("sent", 0) > 8000 and got.get("received", 0) > 8000 else None

            got = await until(flowing, timeout=20, what="audio bytes both ways", every=0.5)
            assert got["ice"] in ("connected", "completed"), got
            assert re.fullmatch(r"audio/(opus|PCMU)", str(got.get("codec")), re.I), got
            assert got["energy"] > 0, got  # sound, not silence, came back
            # Asterisk's side of the operator's leg: RTP counted in and out, G.711 or opus.
            rows = await command(server, "pjsip show channelstats")
            lines = [x for x in _last(rows).get("Output", []) if f" {sip_user}-" in x]
            assert lines, rows
            row_stats = CHANNELSTATS.search(lines[0])
            assert row_stats, lines
            assert row_stats["codec"] in ("ulaw", "opus"), lines
            assert int(row_stats["rx"]) > 0 and int(row_stats["tx"]) > 0, lines
            print(f"browser: {got}; asterisk: {lines[0].strip()}")  # for a run with -s

            await expect(status).to_have_attribute("data-state", "in_call")
            await call_panel.get_by_test_id("call-hangup").click()
            await expect(status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
            await expect(page.get_by_test_id("wrap-up")).to_be_visible(timeout=TIMEOUT)
            await until(lambda: _gone(server, {linkedid, row.agent_uniqueid}), timeout=20)  # both legs
            await context.close()
        finally:
            operators.unlink(missing_ok=True)
            await command(server, "module reload res_pjsip.so")
