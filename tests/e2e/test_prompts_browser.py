"""The prompt manager and the staff file area in real Chromium: a supervisor makes a folder,
uploads a prompt into it, previews it (the ``<audio>`` source answers 200 with ``audio/wav``),
picks it in a voice scenario's node in the builder and publishes; an operator opens the staff
files from the menu, downloads the file open to everyone and never sees the restricted one."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Dialog, Page, Route, expect
from sqlalchemy import select

from bots import service as scenarios
from omni.db import models as m
from omni.domain import staff_files
from omni.domain.auth import Principal
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import count_json_reads, screenshot_path, staff_page
from tests.media.audio import tone

VOICE_DOC = {
    "name": "Voice greeting",
    "start": "hi",
    "nodes": [
        {"id": "hi", "type": "message", "content": {"text": "Hello"}, "ports": {"next": "bye"}},
        {"id": "bye", "type": "close", "result_code": "done"},
    ],
}


def _text(path: Path) -> str:
    return path.read_text()


async def open_prompt_folder(page: Page, folder: str) -> None:
    """From the supervisor's live view to the prompts page, in a new folder ``folder``."""
    await page.goto("/supervisor")
    await page.locator('nav a[data-nav="prompts"]').click()
    await page.wait_for_url("**/supervisor/prompts")

    async def answer(dialog: Dialog) -> None:
        await dialog.accept(folder)

    page.once("dialog", answer)
    await page.get_by_test_id("new-folder").click()
    await expect(page.get_by_test_id("current-folder")).to_have_text(f"/{folder}")
    await expect(page.locator(f'[data-testid=folder][data-folder="{folder}"]')).to_have_class("current")


async def upload_prompt(page: Page, wav: Path, name: str) -> str:
    """Upload ``wav`` as the only prompt of the current folder; its preview's ``src``."""
    await page.get_by_test_id("upload-file").set_input_files(str(wav))
    await page.get_by_test_id("upload-name").fill(name)
    await page.get_by_test_id("upload").click()
    row = page.get_by_test_id("prompt")
    await expect(row).to_have_count(1)
    await expect(row.locator("td.name")).to_have_text(name)
    await expect(page.get_by_test_id("upload-error")).to_have_text("")
    src = await page.get_by_test_id("prompt-audio").get_attribute("src")
    assert src is not None
    return src


async def pick_prompt(page: Page, folder: str, name: str, src: str) -> None:
    """In the builder's open node form: pick prompt ``name`` of ``folder``; the preview plays ``src``."""
    picker = page.get_by_test_id("content-prompt")
    await expect(picker.locator("optgroup")).to_have_attribute("label", folder)
    await picker.select_option(label=name)
    await expect(page.get_by_test_id("content-prompt-audio")).to_have_attribute("src", src)


async def test_supervisor_uploads_previews_and_picks_a_prompt(
    live_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    async with live_server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        await f.result_code(s, "done")
        scenario = await scenarios.create(s, Principal.of(sup), "voice_hi", "Voice greeting", VOICE_DOC)
        scenario_id = scenario.id
        line = await f.inbox(s, await f.queue(s, "Line", []), channel="voice")
        line.config = {"scenario": "voice_hi"}  # the IVR of a phone line: publish checks voice too
    wav = tmp_path / "welcome.wav"
    tone(wav, rate=44100, channels=2, seconds=1)
    context, page = await staff_page(browser, live_server.url, "sup")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await open_prompt_folder(page, "greetings")

        # A non-audio file first: a clear error next to the form, nothing listed.
        bad = tmp_path / "notes.wav"
        bad.write_text("this is not audio")
        await page.get_by_test_id("upload-file").set_input_files(str(bad))
        await page.get_by_test_id("upload").click()
        await expect(page.get_by_test_id("upload-error")).to_contain_text("is not a WAV or MP3 file")
        await expect(page.get_by_test_id("empty")).to_be_visible()

        src = await upload_prompt(page, wav, "Welcome")
        answer_of: dict[str, Any] = await page.evaluate(
            "async (u) => { const r = await fetch(u); const b = await r.arrayBuffer();"
            " return {status: r.status, type: r.headers.get('content-type'), size: b.byteLength}; }",
            src,
        )
        assert answer_of["status"] == 200 and answer_of["type"] == "audio/wav" and answer_of["size"] > 1000
        duration = await page.get_by_test_id("prompt-audio").evaluate(
            "a => new Promise((ok, fail) => { a.preload = 'auto'; a.onloadedmetadata = () => ok(a.duration);"
            " a.onerror = () => fail(String(a.error && a.error.code)); a.load(); })"
        )
        assert 0.9 <= duration <= 1.1, "Chromium decodes the converted WAV"
        await page.screenshot(path=screenshot_path("prompts.png"), full_page=True)

        # Pick it in the voice scenario's greeting and publish.
        await page.goto(f"/supervisor/bots/{scenario_id}")
        await page.locator('[data-node="hi"] rect.box').click(position={"x": 30, "y": 56})
        await pick_prompt(page, "greetings", "Welcome", src)
        await page.get_by_test_id("publish").click()
        await expect(page.get_by_test_id("active-revision")).to_have_text("published: revision 1")
        assert errors == []
    finally:
        await context.close()
    async with live_server.services.db.transaction() as s:
        prompt = await s.scalar(select(m.Prompt))
        assert prompt is not None and prompt.folder == "greetings"
        row_ = await s.get_one(m.Scenario, scenario_id)
        rev = await s.get_one(m.ScenarioRevision, row_.active_revision_id)
        hi = next(n for n in rev.document["nodes"] if n["id"] == "hi")
        assert hi["content"]["prompt_id"] == prompt.id


async def test_a_late_answer_for_the_folder_left_behind_is_not_listed_in_the_new_one(
    live_server: LiveServer, browser: Browser
) -> None:
    """The page's first read of the root raced the new folder's read: when the root's answer came
    last, the new folder listed the root's items under its own name ("Nothing in this folder
    yet" twice in CI)."""
    async with live_server.services.db.transaction() as s:
        await f.user(s, "sup", m.Role.SUPERVISOR)
    context, page = await staff_page(browser, live_server.url, "sup")
    await count_json_reads(context, "/api/v1/prompts/?folder=")
    held: list[Route] = []
    root_asked = asyncio.Event()

    async def hold(route: Route) -> None:
        if held:  # only the page's first read is held back
            await route.continue_()
            return
        held.append(route)
        root_asked.set()

    await page.route(re.compile(r"/api/v1/prompts/\?folder=$"), hold)
    try:
        await page.goto("/supervisor/prompts")
        await asyncio.wait_for(root_asked.wait(), 15)  # the first listing of the root is on its way

        async def answer(dialog: Dialog) -> None:
            await dialog.accept("greetings")

        page.once("dialog", answer)
        await page.get_by_test_id("new-folder").click()
        await expect(page.get_by_test_id("current-folder")).to_have_text("/greetings")
        await expect(page.get_by_test_id("empty")).to_have_count(1)
        await held[0].continue_()
        await page.wait_for_function("() => window.__jsonReads === 2")  # greetings', then the root's

        await expect(page.get_by_test_id("current-folder")).to_have_text("/greetings")
        await expect(page.get_by_test_id("empty")).to_have_count(1)
        await expect(page.locator('[data-testid=folder][data-folder="greetings"]')).to_have_class("current")
        await expect(page.get_by_test_id("folder")).to_have_count(2)  # the root and greetings, once each
    finally:
        await context.close()


async def test_operator_downloads_an_open_staff_file_and_never_sees_a_restricted_one(
    live_server: LiveServer, browser: Browser
) -> None:
    settings = live_server.settings
    async with live_server.services.db.transaction() as s:
        sup = Principal.of(await f.user(s, "sup", m.Role.SUPERVISOR))
        await f.user(s, "op")
        await staff_files.do_upload_staff_file(
            s, sup, "Скрипты", "Говорите вежливо".encode(), 'Скрипт "продаж" <b>.txt', "text/plain",
            settings=settings,
        )  # fmt: skip
        await staff_files.do_upload_staff_file(
            s,
            sup,
            "Скрипты",
            b"bonus plan",
            "bonuses.txt",
            "text/plain",
            roles=["supervisor"],
            settings=settings,
        )
    context, page = await staff_page(browser, live_server.url, "op")
    try:
        await page.goto("/app")
        await page.locator('nav a[data-nav="files"]').click()
        await page.wait_for_url("**/files")
        await page.locator('[data-testid=folder][data-folder="Скрипты"]').click()
        rows = page.get_by_test_id("file")
        await expect(rows).to_have_count(1)
        await expect(rows.locator("td.name")).to_have_text('Скрипт "продаж" <b>.txt')
        await expect(page.locator("td.name b")).to_have_count(0)  # the name is text, not markup
        await expect(page.get_by_test_id("upload")).to_have_count(0)
        await expect(page.get_by_text("bonuses.txt")).to_have_count(0)
        async with page.expect_download() as info:
            await rows.get_by_test_id("download").click()
        download = await info.value
        assert "продаж" in download.suggested_filename, "Content-Disposition carries the Cyrillic name"
        path = await download.path()
        assert _text(path) == "Говорите вежливо"
        await page.screenshot(path=screenshot_path("staff_files.png"), full_page=True)
    finally:
        await context.close()
