"""The softphone in the operator window, in real Chromium with fake media devices, against a
real SIP server: Debian's kamailio with its websocket module on loopback, started once for the
module (tests/channels/voice/kamailio.cfg), plus the AMI emulator for Omni's side.

The emulator has no media, so the test plays the PBX's SIP side: when Omni originates the
operator's browser endpoint (``PJSIP/webrtc<id>``), a "PBX" page (JsSIP, fake microphone)
calls that SIP user through kamailio, and when Omni hangs the operator's leg up, it sends the
BYE. What the operator sees and does is the real thing: the window registers with the
credentials Omni issued (kamailio checks them: digest auth), rings in the call panel, answers
with a WebRTC call that connects, mutes, sends DTMF, holds/resumes and transfers through Omni,
places a click-to-call the softphone answers by itself, hangs up; a refused microphone and a
dropped connection (kamailio restarted) are said clearly and the softphone comes back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import softphone
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import actions, until
from tests.conftest import LiveServer, free_port
from tests.e2e.conftest import CHROMIUM, FLAGS, UI_DIST, running, voice_settings

TIMEOUT = 15_000
CALLER = "+79161234567"
DOMAIN = "omni.test"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
MODULES = next(Path("/usr/lib").glob("*/kamailio/modules/websocket.so"), Path("/nonexistent")).parent
CONFIG = Path(__file__).resolve().parents[1] / "channels" / "voice" / "kamailio.cfg"
UI = Path(__file__).resolve().parents[2] / "omni" / "web" / "ui"


class Kamailio:
    """One kamailio on loopback. Passwords are written into its configuration (and into its
    ``creds`` table over JSON-RPC while it runs), so a restart keeps them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.creds: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        lines = [f'\tif ($fU == "{user}") $var(pw) = "{pw}";' for user, pw in self.creds.items()]
        text = CONFIG.read_text().replace("__PORT__", str(self.port)).replace("__DOMAIN__", DOMAIN)
        text = text.replace("__MODULES__", f"{MODULES}/")
        text += "\nroute[CREDS] {\n" + "\n".join(lines or ['\t$var(pw) = "";']) + "\n}\n"
        cfg = self.workdir / "kamailio.cfg"
        cfg.write_text(text)
        rundir = self.workdir / "run"
        rundir.mkdir(exist_ok=True)
        log = (self.workdir / "kamailio.log").open("ab")
        self.proc = subprocess.Popen(  # a fixed binary and our own config
            [KAMAILIO, "-f", str(cfg), "-Y", str(rundir), "-DD", "-E"],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        while True:  # until it listens (or died: then its log says why)
            assert self.proc.poll() is None, (self.workdir / "kamailio.log").read_text()[-2000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def add_user(self, user: str, password: str) -> None:
        self.creds[user] = password
        body = {"jsonrpc": "2.0", "method": "htable.sets", "params": ["creds", user, password], "id": 1}
        req = urllib.request.Request(  # loopback http
            f"http://127.0.0.1:{self.port}/RPC", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert b"error" not in resp.read()


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    if not Path(KAMAILIO).exists() or not MODULES.exists():
        pytest.skip(
            "kamailio is not installed (scripts/test.sh installs kamailio kamailio-websocket-modules)"
        )
    kam = Kamailio(tmp_path_factory.mktemp("kamailio"))
    kam.start()
    try:
        yield kam
    finally:
        kam.stop()


@pytest.fixture(scope="module")
def jssip_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JsSIP as one script for the PBX page, built from the console's own node_modules."""
    esbuild = UI / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.skip("build the console first: cd omni/web/ui && npm ci")
    out = tmp_path_factory.mktemp("pbx") / "jssip.js"
    subprocess.run(
        [
            str(esbuild),
            "node_modules/jssip/lib/JsSIP.js",
            "--bundle",
            "--format=iife",
            "--global-name=JsSIP",
            f"--outfile={out}",
            "--log-level=warning",
        ],
        cwd=UI,
        check=True,
    )
    return out


PBX_PAGE = """<!doctype html><meta charset="utf-8"><title>PBX</title>
<body data-state="idle" data-ice="new"><div id="dtmf"></div><audio id="remote" autoplay></audio>
<script src="/jssip.js"></script>
<script>
const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(%(ws)s)], uri: "sip:pbx@%(domain)s", register: false,
});
let session = null;
window.ring = (target) => {
  document.getElementById("dtmf").textContent = "";
  document.body.dataset.state = "calling";
  document.body.dataset.ice = "new";
  session = ua.call(target, {mediaConstraints: {audio: true, video: false}, pcConfig: {iceServers: []}});
  session.connection.addEventListener("iceconnectionstatechange", () => {
    document.body.dataset.ice = session.connection.iceConnectionState;
  });
  session.connection.addEventListener("track", (e) => {
    document.getElementById("remote").srcObject = e.streams[0];
  });
  session.on("confirmed", () => { document.body.dataset.state = "confirmed"; });
  session.on("ended", () => { document.body.dataset.state = "ended"; });
  session.on("failed", (e) => { document.body.dataset.state = "failed:" + e.cause; });
  session.on("newDTMF", (e) => {
    if (e.originator === "remote") document.getElementById("dtmf").textContent += e.dtmf.tone;
  });
};
window.hangup = () => { if (session && !session.isEnded()) session.terminate(); };
ua.start();
</script>"""


@pytest.fixture(scope="module")
def pbx_origin(kamailio: Kamailio, jssip_bundle: Path) -> Iterator[str]:
    """The PBX page and JsSIP, served on loopback (a page Playwright fulfils has no address
    of its own, and Chromium's local network access checks refuse its WebSocket to loopback)."""
    page = (PBX_PAGE % {"ws": json.dumps(kamailio.ws_url), "domain": DOMAIN}).encode()
    script = jssip_bundle.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = (script, "text/javascript") if self.path == "/jssip.js" else (page, "text/html")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
async def media_browser() -> AsyncIterator[Browser]:
    """Chromium with a fake microphone (a beeping tone); whether a page may use it is each
    context's permission (granted, or refused as a person refusing the prompt would)."""
    pw = await async_playwright().start()
    chromium = await pw.chromium.launch(
        executable_path=CHROMIUM,
        args=[*FLAGS, "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
    )
    try:
        yield chromium
    finally:
        await chromium.close()
        await pw.stop()


@pytest.fixture
async def server(
    pg_url: str, tmp_path: Path, emulator: AmiEmulator, kamailio: Kamailio
) -> AsyncIterator[LiveServer]:
    settings = voice_settings(pg_url, tmp_path, emulator)
    v = settings.voice
    v.webrtc_ws_url = kamailio.ws_url
    v.webrtc_domain = DOMAIN
    async with running(settings) as srv:
        yield srv


async def login(
    browser: Browser, base_url: str, username: str, *, microphone: bool
) -> tuple[BrowserContext, Page]:
    assert (UI_DIST / "operator.js").exists(), (
        "build the console first: cd omni/web/ui && npm ci && npm run build"
    )
    context = await browser.new_context(
        locale="en-US",
        base_url=base_url,
        viewport={"width": 1400, "height": 900},
        permissions=["microphone"] if microphone else [],
    )
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", f.PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("domcontentloaded")
    return context, page


async def pbx_page(browser: Browser, origin: str) -> Page:
    context = await browser.new_context(permissions=["microphone"])
    page = await context.new_page()
    await page.goto(f"{origin}/pbx")
    return page


async def test_an_operator_without_a_desk_phone_answers_holds_transfers_and_dials_in_the_browser(
    server: LiveServer, emulator: AmiEmulator, kamailio: Kamailio, pbx_origin: str, media_browser: Browser
) -> None:
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op")
        op.display_name = "Olga"
        op.phone_endpoint = m.PhoneEndpoint.BROWSER  # no sip_extension: the browser is her phone
        q = await f.queue(s, "phones", [op], operator_timeout_seconds=30, wrap_up_seconds=60)
        sales = await f.queue(s, "sales", [])
        line = await f.inbox(s, q, channel="voice", name="line")
        line.config = {"caller_id": "+74950000000"}
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        sup.phone_endpoint = m.PhoneEndpoint.BROWSER  # the supervisor listens in the browser too
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=q.id))
        await s.flush()
        op_id, inbox_id, sales_id, sup_id = op.id, line.id, sales.id, sup.id
    sip_user = softphone.sip_user(op_id, server.settings.voice)
    sup_sip = softphone.sip_user(sup_id, server.settings.voice)
    kamailio.add_user(sup_sip, softphone.sip_password(server.settings, sup_sip))
    # What `omni softphones` writes for Asterisk, kamailio gets for this test: the same password.
    assert f"password = {softphone.sip_password(server.settings, sip_user)}" in softphone.pjsip_endpoints(
        [op], server.settings
    )
    kamailio.add_user(sip_user, softphone.sip_password(server.settings, sip_user))
    await until(lambda: server.services.adapters.get("voice").ami.ready)  # type: ignore[union-attr]

    # The browser refuses the microphone: the window says so and how to fix it.
    refused_ctx, refused = await login(media_browser, server.url, "op", microphone=False)
    phone = refused.get_by_test_id("softphone")
    await expect(phone.get_by_test_id("softphone-error")).to_have_text(
        "The browser refused the microphone. Allow it (the icon in the address bar),"
        " then press “Check microphone”.",
        timeout=TIMEOUT,
    )
    await refused_ctx.close()

    # With the microphone allowed: registered with the credentials Omni issued (kamailio's
    # digest check passed), nothing typed; the microphone check hears the fake device.
    _, page = await login(media_browser, server.url, "op", microphone=True)
    phone = page.get_by_test_id("softphone")
    status = phone.get_by_test_id("softphone-status")
    await expect(status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    await expect(phone.get_by_test_id("softphone-error")).to_be_hidden()
    await phone.get_by_test_id("softphone-mic-check").click()
    await expect(phone.get_by_test_id("softphone-check")).to_have_attribute(
        "data-result", "works", timeout=TIMEOUT
    )
    await phone.get_by_test_id("softphone-speaker-check").click()
    await expect(phone.get_by_test_id("softphone-check")).to_have_attribute("data-result", "tone")
    pbx = await pbx_page(media_browser, pbx_origin)
    body = pbx.locator("body")

    # A call comes in: Omni rings the operator's browser endpoint, not a desk phone.
    caller = emulator.incoming_call(CALLER, "Ivan", inbox=inbox_id)
    await until(lambda: emulator.ringing(sip_user))
    originate = actions(emulator, "Originate")[-1]
    assert originate["Channel"] == f"PJSIP/{sip_user}"
    await pbx.evaluate("t => window.ring(t)", f"sip:{sip_user}@{DOMAIN}")
    call_panel = page.get_by_test_id("call")
    await expect(status).to_have_attribute("data-state", "ringing", timeout=TIMEOUT)
    await expect(call_panel.get_by_test_id("answer-on-phone")).to_have_count(0)
    await expect(page.get_by_test_id("offer").get_by_test_id("answer-on-phone")).to_contain_text(
        "Answer here, in the call panel"
    )
    await call_panel.get_by_test_id("call-answer").click(timeout=TIMEOUT)
    await expect(body).to_have_attribute("data-state", "confirmed", timeout=TIMEOUT)
    await expect(body).to_have_attribute("data-ice", re.compile("^(connected|completed)$"), timeout=TIMEOUT)
    await expect(status).to_have_attribute("data-state", "in_call")
    emulator.answer(sip_user)  # Asterisk sees the operator's leg answered
    await expect(call_panel.get_by_test_id("call-state")).to_have_attribute(
        "data-state", "talking", timeout=TIMEOUT
    )
    await until(lambda: caller.bridge)

    # Mute is the softphone's own; DTMF goes to the other side of the SIP call.
    mute = phone.get_by_test_id("softphone-mute")
    await mute.click()
    await expect(mute).to_have_attribute("data-muted", "yes")
    await expect(mute).to_have_text("Unmute")
    await mute.click()
    await expect(mute).to_have_attribute("data-muted", "no")
    await phone.get_by_test_id("softphone-key-5").click()
    await phone.get_by_test_id("softphone-key-#").click()
    await expect(pbx.locator("#dtmf")).to_have_text("5#", timeout=TIMEOUT)

    # Hold and resume go through Omni (the core's state stays true).
    await call_panel.get_by_test_id("call-hold").click()
    await until(lambda: [a for a in actions(emulator, "Redirect") if a.get("Context") == "omni-hold"])
    await expect(call_panel.get_by_test_id("call-state")).to_have_attribute(
        "data-state", "on_hold", timeout=TIMEOUT
    )
    bridges = len(actions(emulator, "Bridge"))
    await call_panel.get_by_test_id("call-hold").click()
    await until(lambda: len(actions(emulator, "Bridge")) > bridges)
    await expect(call_panel.get_by_test_id("call-state")).to_have_attribute(
        "data-state", "talking", timeout=TIMEOUT
    )

    # The supervisor's page has the same softphone: registered with her own credentials, she
    # listens in and the spy call Omni places rings her browser, which answers it by itself.
    _, sup_page = await login(media_browser, server.url, "sup", microphone=True)
    sup_phone = sup_page.get_by_test_id("softphone")
    sup_status = sup_phone.get_by_test_id("softphone-status")
    await expect(sup_status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    await sup_page.get_by_test_id("call-listen").click(timeout=TIMEOUT)  # the one live call
    await until(lambda: emulator.ringing(sup_sip))
    spy = [a for a in actions(emulator, "Originate") if a.get("Application") == "ChanSpy"][-1]
    assert spy["Channel"] == f"PJSIP/{sup_sip}"
    spy_pbx = await pbx_page(media_browser, pbx_origin)
    await spy_pbx.evaluate("t => window.ring(t)", f"sip:{sup_sip}@{DOMAIN}")
    await expect(spy_pbx.locator("body")).to_have_attribute("data-state", "confirmed", timeout=TIMEOUT)
    await expect(sup_status).to_have_attribute("data-state", "in_call", timeout=TIMEOUT)
    await spy_pbx.evaluate("() => window.hangup()")
    await expect(sup_status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)

    # A blind transfer to another queue: the caller waits there; Omni hangs the operator's
    # leg up (the PBX's BYE reaches the browser) and the softphone is ready again.
    leg = emulator.agent_leg(sip_user)
    assert leg is not None
    await page.get_by_test_id("transfer-kind").select_option("queue")
    await page.get_by_test_id("transfer-target").select_option(str(sales_id))
    await page.get_by_test_id("transfer-submit").click()
    await until(lambda: [a for a in actions(emulator, "Redirect") if a.get("Context") == "omni-wait"])
    await until(lambda: leg.uniqueid not in emulator.channels)
    await pbx.evaluate("() => window.hangup()")
    await expect(status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    async with server.services.db.transaction() as s:
        conv = await s.scalar(select(m.Conversation).where(m.Conversation.queue_id == sales_id))
        assert conv is not None and conv.status == m.ConversationStatus.QUEUED

    # Click-to-call: Omni rings this browser first, the softphone answers by itself.
    await page.get_by_test_id("dial-number").fill("+79160000001")
    await page.get_by_test_id("dial-call").click()
    await until(lambda: emulator.ringing(sip_user))
    assert actions(emulator, "Originate")[-1]["Channel"] == f"PJSIP/{sip_user}"
    await pbx.evaluate("t => window.ring(t)", f"sip:{sip_user}@{DOMAIN}")
    await expect(body).to_have_attribute("data-state", "confirmed", timeout=TIMEOUT)
    emulator.answer(sip_user)
    await expect(call_panel.get_by_test_id("call-state")).to_have_attribute(
        "data-state", "talking", timeout=TIMEOUT
    )

    # Hang up: Omni ends the call, the browser's SIP call ends too.
    await call_panel.get_by_test_id("call-hangup").click()
    await expect(body).to_have_attribute("data-state", "ended", timeout=TIMEOUT)
    await expect(status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    await expect(page.get_by_test_id("wrap-up")).to_be_visible(timeout=TIMEOUT)

    # The SIP server goes away: the operator reads it, and the softphone comes back by itself.
    kamailio.stop()
    await expect(status).to_have_attribute("data-state", "reconnecting", timeout=TIMEOUT)
    await expect(phone.get_by_test_id("softphone-error")).to_have_text(
        "The phone connection was lost. Reconnecting by itself…"
    )
    kamailio.start()
    await expect(status).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    await expect(phone.get_by_test_id("softphone-error")).to_be_hidden()
