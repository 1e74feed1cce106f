"""Real-browser fixtures: Debian's chromium driven by Playwright, and staff logins."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    WebSocket,
    WebSocketRoute,
    async_playwright,
    expect,
)

from omni.settings import Settings
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.conftest import LiveServer, free_port, make_settings

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
expect.set_options(timeout=15_000)
"""Every ``expect`` without its own timeout waits up to 15 s, not Playwright's 5: a page on a
loaded 2-core CI machine (three workers, each with a server and a Chromium) can take longer
than 5 s to render a report, and that is slowness, not a failure. A passing check returns as
soon as it holds, so this costs nothing unless something is really wrong."""
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
UI_DIST = Path(__file__).resolve().parents[2] / "omni" / "web" / "ui" / "dist"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason="Debian chromium is installed by scripts/test.sh")
        for item in items:
            if "tests/e2e/" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
async def _playwright() -> AsyncIterator[Playwright]:
    pw = await async_playwright().start()
    try:
        yield pw
    finally:
        for chromium in _launched:
            await chromium.close()
        await pw.stop()


_launched: list[Browser] = []
"""The test process's one Chromium (see ``browser``)."""


@pytest.fixture
async def browser(_playwright: Playwright) -> AsyncIterator[Browser]:
    """Debian's chromium, driven by Playwright; never a downloaded browser.

    One Chromium per test process (starting one costs a second or more per test), relaunched if
    it went away; each test gets it with no contexts, and whatever contexts the test opened are
    closed after it, so no page of one test (and its sockets) outlives it."""
    if not _launched or not _launched[0].is_connected():
        _launched[:] = [await _playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)]
    chromium = _launched[0]
    try:
        yield chromium
    finally:
        for context in list(chromium.contexts):
            await context.close()


trace_log = logging.getLogger("tests.e2e.browser")


def trace(page: Page, who: str) -> None:
    """What the page said and sent, logged (pytest prints it under a failed test): its console,
    its uncaught errors and its Socket.IO frames, each stamped by the log. A journey that fails
    once in many runs then shows whether a click reached the server and what came back."""

    def frames(ws: WebSocket) -> None:
        ws.on("framesent", lambda f: trace_log.info("%s ws> %.300s", who, f))
        ws.on("framereceived", lambda f: trace_log.info("%s ws< %.300s", who, f))
        ws.on("close", lambda _: trace_log.info("%s ws closed %s", who, ws.url))

    page.on("console", lambda msg: trace_log.info("%s console.%s %s", who, msg.type, msg.text))
    page.on("pageerror", lambda exc: trace_log.warning("%s page error %s", who, exc))
    page.on("websocket", frames)


async def staff_page(
    browser: Browser, base_url: str, username: str, *, locale: str = "en-US", password: str = f.PASSWORD
) -> tuple[BrowserContext, Page]:
    """A fresh browser context logged in through the real login form."""
    assert (UI_DIST / "operator.js").exists(), (
        "build the console first: cd omni/web/ui && npm ci && npm run build"
    )
    context = await browser.new_context(
        locale=locale, base_url=base_url, viewport={"width": 1400, "height": 900}
    )
    page = await context.new_page()
    trace(page, username)
    await page.goto("/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("domcontentloaded")
    return context, page


COUNT_JSON_READS = """
const json = Response.prototype.json;
Response.prototype.json = function () {
  const url = this.url;
  return json.call(this).then((value) => {
    if (url.includes(PART)) window.__jsonReads = (window.__jsonReads || 0) + 1;
    return value;
  });
};
"""


async def count_json_reads(context: BrowserContext, part: str) -> None:
    """Count in ``window.__jsonReads`` the answers from URLs containing ``part`` that the pages
    of ``context`` have read to the end: their own code goes on from there in microtasks, so a
    poll that sees the count sees what the page made of the answer (a sentinel for "a late
    answer arrived and was handled", where nothing on the page changes)."""
    await context.add_init_script(COUNT_JSON_READS.replace("PART", json.dumps(part)))


class OperatorLink:
    """The operator window's Socket.IO link, routed through Playwright (``attach``). Once
    ``armed``, the first ``call`` request the page sends is dropped (``drop``: the page waits
    for an answer that never comes) or its answer is held back until ``release``; everything
    else passes, and what the server says is kept in ``seen``."""

    def __init__(self, call: str, *, drop: bool = False, armed: bool = True) -> None:
        self.call, self.drop, self.armed = call, drop, armed
        self.asked: str | None = None
        self.held: list[tuple[WebSocketRoute, str]] = []
        self.seen: list[str] = []
        self._answer: str | None = None

    async def attach(self, context: BrowserContext, page: Page) -> None:
        await context.route_web_socket(lambda url: "/socket.io/" in url, self._link)
        await page.reload()  # the window's socket, through the route

    def release(self) -> None:
        for ws, message in self.held:
            ws.send(message)

    def _link(self, ws: WebSocketRoute) -> None:
        server_side = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            asked = isinstance(message, str) and re.match(rf'42/operator,(\d+)\["{self.call}"', message)
            if self.armed and self.asked is None and asked:
                self.asked = asked.string
                if self.drop:
                    return
                self._answer = f"43/operator,{asked[1]}["
            server_side.send(message)

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str):
                if self._answer and not self.held and message.startswith(self._answer):
                    self.held.append((ws, message))
                    return
                self.seen.append(message)
            ws.send(message)

        ws.on_message(from_page)
        server_side.on_message(from_server)


def screenshot_path(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)


# --- voice journeys: Omni's side of a PBX is the loopback AMI emulator --------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[AmiEmulator]:
    emu = AmiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


def voice_settings(pg_url: str, tmp_path: Path, emulator: AmiEmulator) -> Settings:
    """A server whose voice adapter talks to ``emulator``, reconnecting and routing quickly."""
    settings = make_settings(pg_url, data_dir=tmp_path / "data")
    v = settings.voice
    v.enabled = True
    v.ami_port = emulator.port
    v.ami_secret = emulator.secret
    v.reconnect_min_seconds = 0.05
    v.agi_port = 0
    v.recordings_dir = tmp_path / "recordings"
    v.recordings_dir.mkdir(exist_ok=True)
    settings.routing.tick_seconds = 0.1
    return settings


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[LiveServer]:
    """The server, started and stopped; the staff sockets are same-origin only, so the page's
    origin is this server's."""
    srv = LiveServer(settings)
    srv.settings.public_base_url = srv.url
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
