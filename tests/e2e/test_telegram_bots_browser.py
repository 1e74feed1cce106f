"""The Telegram bots admin form in real Chromium against the loopback Bot API emulator: a wrong
token is refused next to its field, a right one connects the bot, an edit switches it to
polling with a satisfaction question, and deleting it stops the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from channels.telegram import TelegramChannel
from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests.channels.telegram.emulator import BotApiEmulator
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import screenshot_path, staff_page


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    emu = BotApiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, emulator: BotApiEmulator) -> Settings:
    """The app's Telegram channel speaks to the emulator (the live server takes these)."""
    out = make_settings(pg_url, data_dir=tmp_path)
    out.telegram.api_base_url = emulator.url
    out.telegram.poll_timeout_seconds = 1
    return out


async def test_admin_connects_edits_and_removes_a_telegram_bot_through_the_form(
    browser: Browser, live_server: LiveServer, emulator: BotApiEmulator
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
        await f.queue(s, "Shop")
    token = emulator.add_bot("shop_bot")
    channel = live_server.services.adapters.get("telegram")
    assert isinstance(channel, TelegramChannel)
    context, page = await staff_page(browser, live_server.url, "boss")
    try:
        await page.goto("/admin")
        await page.click(".admin-index a[data-section=telegram-bots]")
        await page.click("a[data-action=new]")
        await page.fill("#f-name", "Shop bot")
        await page.fill("#f-token", "123:not-a-bot-telegram-knows")
        await page.select_option("#f-queue_id", label="Shop")
        await page.fill("#f-queue_message", "You are number {position} in line.")
        await page.click("button.primary")
        await expect(page.locator('.field-error[data-field="token"]')).to_contain_text(
            "Telegram refused the bot token"
        )
        await expect(page.locator("#f-queue_message")).to_have_value("You are number {position} in line.")

        await page.fill("#f-token", token)
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await expect(page.locator("#f-bot_username")).to_have_value("@shop_bot")
        await expect(page.locator("#f-token")).to_have_value("")  # never shown again
        async with live_server.services.db.transaction() as s:
            inbox = await s.scalar(select(m.Inbox).where(m.Inbox.name == "Shop bot"))
            assert inbox is not None and inbox.channel == "telegram"
            assert "shop_bot" not in inbox.secret_encrypted and token not in str(inbox.config)
        assert channel.bots[inbox.id].mode == "webhook"

        await page.select_option("#f-mode", "polling")
        await page.fill("#f-csat_labels", "👎\n👍")
        await page.click("button.primary")
        await expect(page.locator('.field-error[data-field="csat_question"]')).to_have_text(
            "the answer labels need a question"
        )
        await page.fill("#f-csat_question", "Did we help?")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await page.screenshot(path=screenshot_path("admin-telegram-bot-form.png"), full_page=True)
        assert channel.bots[inbox.id].mode == "polling"  # restarted at once

        await page.click("h1 a")
        row = page.locator("table tr", has_text="Shop bot")
        await expect(row).to_contain_text("@shop_bot")
        await expect(row).to_contain_text("Polling")
        await expect(row).to_contain_text("Shop")
        await row.locator("a").click()
        await page.click("button[data-action=delete]")
        await expect(page.locator("table tr", has_text="Shop bot")).to_have_count(0)
        assert inbox.id not in channel.bots
    finally:
        await context.close()
    async with live_server.services.db.transaction() as s:
        assert await s.get(m.Inbox, inbox.id) is None
