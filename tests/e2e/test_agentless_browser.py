"""An agentless notification campaign in real Chromium, against the AMI and FastAGI emulators.

A supervisor uploads the menu's recorded prompt on the prompts page (a WAV made with sox), builds
the notification in the builder (a personal message with variables, a menu 1 confirm / 2 repeat /
0 operator that plays the picked prompt, a record node), publishes it, starts the campaign in
the live view; the real scheduler places the calls, the emulated customers answer, hear the
message (the TTS application's text, then the prompt's converted sound) and press digits —
one confirms and leaves a voice reply, one hangs up at the menu — and the supervisor sees each
contact's result and the reply.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from channels.voice import VoiceChannel
from omni.db import models as m
from omni.db.models.outbound import Outcome
from tests import factories as f
from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import actions, until
from tests.conftest import LiveServer
from tests.e2e.conftest import running, screenshot_path, staff_page, voice_settings
from tests.e2e.test_prompts_browser import open_prompt_folder, pick_prompt, upload_prompt
from tests.media.audio import tone

TIMEOUT = 15_000
CONFIRMS, HANGS_UP = "+79165557001", "+79165557002"
ALWAYS = {str(d): [["00:00", "24:00"]] for d in range(1, 8)}


@pytest.fixture
async def server(pg_url: str, tmp_path: Path, emulator: AmiEmulator) -> AsyncIterator[LiveServer]:
    settings = voice_settings(pg_url, tmp_path, emulator)
    v = settings.voice
    v.tts_app = "Festival"
    v.replies_dir = tmp_path / "replies"
    settings.routing.outbound_seconds = 0.2
    async with running(settings) as srv:
        yield srv


def voice_of(server: LiveServer) -> VoiceChannel:
    adapter = server.services.adapters.get("voice")
    assert isinstance(adapter, VoiceChannel)
    return adapter


async def _node(page: Page, node: str) -> None:
    await page.locator(f'[data-node="{node}"] rect.box').click(position={"x": 30, "y": 56})
    await expect(page.get_by_test_id("node-form")).to_have_attribute("data-node", node)


async def _port(page: Page, node: str, port: str, target: str) -> None:
    await _node(page, node)
    await page.get_by_test_id(f"port-{port}").select_option(target)
    edge = page.locator(f'[data-testid=edge][data-from="{node}"][data-port="{port}"]')
    await expect(edge).to_have_attribute("data-to", target)


async def build_notification(page: Page, menu_prompt: tuple[str, str, str] | None = None) -> None:
    """The supervisor's builder session: the starter scenario turned into a debt reminder;
    ``menu_prompt`` = (folder, name, preview src) of an uploaded prompt the menu plays."""
    await page.goto("/supervisor/bots")
    await page.get_by_test_id("new-key").fill("debt_reminder")
    await page.get_by_test_id("new-name").fill("Debt reminder")
    await page.get_by_test_id("create").click()
    await page.wait_for_url("**/supervisor/bots/*")
    for name in ("name", "debt"):
        await page.get_by_test_id("new-variable").fill(name)
        await page.get_by_test_id("new-variable").press("Enter")
        await expect(page.locator(f'[data-testid=variable][data-name="{name}"]')).to_have_count(1)
    await _node(page, "start")
    await page.get_by_test_id("content-text").fill("Hello {{name}}, you owe {{debt}} roubles.")

    await page.get_by_test_id("palette-menu").click()
    await expect(page.get_by_test_id("node-form")).to_have_attribute("data-node", "menu1")
    await page.get_by_test_id("content-text").fill(
        "Press 1 to confirm, 2 to hear it again, 0 for an operator."
    )
    await page.get_by_test_id("option-add").click()
    await page.get_by_test_id("option-add").click()
    await expect(page.get_by_test_id("option")).to_have_count(3)
    for i, (oid, label, digit) in enumerate(
        (("confirm", "Confirm", "1"), ("repeat", "Repeat", "2"), ("operator", "Operator", "0"))
    ):
        option = page.get_by_test_id("option").nth(i)
        await option.get_by_test_id("option-id").fill(oid)
        await option.get_by_test_id("option-label").fill(label)
        await option.get_by_test_id("option-dtmf").fill(digit)
    await page.get_by_test_id("timeout").fill("5")
    if menu_prompt is not None:
        await pick_prompt(page, *menu_prompt)

    await page.get_by_test_id("palette-record").click()
    await expect(page.get_by_test_id("node-form")).to_have_attribute("data-node", "record1")
    await page.get_by_test_id("content-text").fill("After the tone, tell us when you will pay.")
    await page.get_by_test_id("max-seconds").fill("30")
    await expect(page.locator('[data-testid=variable][data-name="recording"]')).to_have_count(1)

    await _port(page, "start", "next", "menu1")
    await _port(page, "menu1", "opt:confirm", "record1")
    await _port(page, "menu1", "opt:repeat", "start")
    await _port(page, "menu1", "opt:operator", "agent")
    await _port(page, "menu1", "on_max_retries", "bye")
    await _port(page, "record1", "next", "bye")
    await _port(page, "record1", "on_no_input", "bye")

    # A test run on voice: the message with the preset variable, 1, then the reply.
    await page.get_by_test_id("tab-test").click()
    await page.locator(".bld-sim-settings summary").click()
    await page.get_by_test_id("sim-variables").fill('{"name": "Test", "debt": "5"}')
    await page.get_by_test_id("sim-channel").select_option("voice")
    await page.get_by_test_id("sim-start").click()
    bot = page.get_by_test_id("sim-bot")
    await expect(bot.first).to_have_text("Hello Test, you owe 5 roubles.")
    await page.get_by_test_id("dtmf-1").click()
    await page.get_by_test_id("sim-record").click()
    await expect(page.get_by_test_id("sim-path")).to_have_text("Path: start → menu1 → record1 → bye")

    await page.get_by_test_id("publish").click()
    await expect(page.get_by_test_id("active-revision")).to_have_text(
        "published: revision 1", timeout=TIMEOUT
    )


async def _campaign(server: LiveServer) -> int:
    async with server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        q = await f.queue(s, "notify", [])
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=q.id))
        line = await f.inbox(s, q, channel="voice", name="line")
        line.config = {"caller_id": "+74950000000"}
        c = m.Campaign(
            name="December debts",
            state="paused",
            channel="voice",
            dial_mode="agentless",
            scenario="debt_reminder",
            queue_id=q.id,
            inbox_id=line.id,
            schedule=ALWAYS,
            timezone="UTC",
            retry_rules={"dropped": [10], "no_answer": [30]},
            max_attempts=3,
            max_concurrency=2,
            ring_seconds=20,
        )
        s.add(c)
        await s.flush()
        for phone, name, debt in ((CONFIRMS, "Ivan Petrov", "1200"), (HANGS_UP, "Olga Smirnova", "800")):
            s.add(
                m.CampaignTarget(
                    campaign_id=c.id, name=name, phone=phone, phones=[phone, phone[:-1] + "9"],
                    fields={"debt": debt}, timezone="UTC", next_due_at=datetime.now(UTC),
                )
            )  # fmt: skip
        return c.id


async def _answer(server: LiveServer, emulator: AmiEmulator, phone: str, **script: Any) -> EmulatedCall:
    """The customer answers (the emulator's default); once Omni redirected the call to the
    agentless context, Asterisk's AGI there is this emulated channel."""

    def redirected() -> str | None:
        leg = emulator.campaign_leg(phone)
        moved = [a for a in actions(emulator, "Redirect") if leg is not None and a["Channel"] == leg.name]
        return leg.uniqueid if leg is not None and moved else None

    leg = await until(redirected, what=f"the call to {phone} redirected")
    agi = voice_of(server).agi
    assert agi is not None
    attempt = leg.removeprefix("omni-a")
    call = EmulatedCall(
        "127.0.0.1", agi.port, script="outbound", args=[attempt], uniqueid=leg, linkedid=leg,
        callerid=phone, calleridname="", **script,
    )  # fmt: skip
    await call.run()
    return call


async def test_a_supervisor_builds_runs_and_reads_an_agentless_notification_campaign(
    server: LiveServer, emulator: AmiEmulator, browser: Browser, tmp_path: Path
) -> None:
    campaign_id = await _campaign(server)
    await until(lambda: voice_of(server).ami.ready)
    context, page = await staff_page(browser, server.url, "sup")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    wav = tmp_path / "menu.wav"
    tone(wav, rate=44100, channels=2, seconds=1)
    try:
        await open_prompt_folder(page, "reminders")
        src = await upload_prompt(page, wav, "Debt menu")
        await build_notification(page, ("reminders", "Debt menu", src))
        async with server.services.db.transaction() as s:
            prompt = await s.scalar(select(m.Prompt))
            assert prompt is not None and prompt.sound
            sound = prompt.sound

        await page.goto("/supervisor")
        row = page.locator(f'[data-testid=campaign-row][data-id="{campaign_id}"]')
        await row.get_by_test_id("campaign-start").click(timeout=TIMEOUT)
        await expect(row).to_have_attribute("data-state", "running", timeout=TIMEOUT)

        confirmed = await _answer(server, emulator, CONFIRMS, keys=["1"], replies=[b"\x11\x22" * 8000])
        heard = [p for p in confirmed.played if p.startswith("tts:")]
        assert heard[0] == r"tts:Festival:Hello Ivan Petrov\, you owe 1200 roubles."
        assert "beep" in confirmed.played and confirmed.variables["OMNI_RESULT"] == "closed"
        # The menu is the prompt's converted sound, played after the personal message, before the beep.
        assert sound in confirmed.played, confirmed.played
        played = confirmed.played
        assert played.index(heard[0]) < played.index(sound) < played.index("beep")
        gone = await _answer(server, emulator, HANGS_UP, keys=[])
        assert next(p for p in gone.played if p.startswith("tts:")).endswith("you owe 800 roubles.")
        assert sound in gone.played, "the customer who hangs up at the menu heard its prompt too"
        for phone in (CONFIRMS, HANGS_UP):
            trunk = emulator.campaign_customer(phone)
            if trunk is not None:
                emulator.hangup(trunk.uniqueid)

        async def closed() -> bool:
            async with server.services.db.transaction() as s:
                rows = (
                    await s.scalars(
                        select(m.CampaignAttempt).where(m.CampaignAttempt.campaign_id == campaign_id)
                    )
                ).all()
            return sorted(str(a.outcome) for a in rows) == sorted([Outcome.ANSWERED, Outcome.DROPPED])

        await until(closed, what="both attempts closed")

        # The supervisor reads each contact's result in the live view and plays the reply.
        await row.get_by_test_id("campaign-results").click()
        contacts = page.get_by_test_id("contact-row")
        await expect(contacts).to_have_count(2, timeout=TIMEOUT)
        ivan = page.locator(f'[data-testid=contact-row][data-phone="{CONFIRMS}"]')
        await expect(ivan.get_by_test_id("contact-state")).to_have_text("done")
        await expect(ivan.get_by_test_id("contact-confirmed")).to_have_text("yes")
        await expect(ivan.get_by_test_id("contact-digits")).to_have_text("1")
        await expect(ivan.get_by_test_id("contact-node")).to_have_text("bye")
        link = ivan.get_by_test_id("contact-recording")
        await expect(link).to_have_attribute("href", re.compile(r"^/api/v1/files/"))
        href = await link.get_attribute("href")
        reply = await page.request.get(href or "")
        assert reply.status == 200 and reply.headers["content-type"].startswith("audio/wav")
        olga = page.locator(f'[data-testid=contact-row][data-phone="{HANGS_UP}"]')
        await expect(olga.get_by_test_id("contact-state")).to_have_text("pending")
        await expect(olga.get_by_test_id("contact-confirmed")).to_have_text("no")
        await expect(olga.get_by_test_id("contact-node")).to_have_text("menu1")
        await page.screenshot(path=screenshot_path("agentless-results.png"), full_page=True)
        assert errors == []
    finally:
        await context.close()
