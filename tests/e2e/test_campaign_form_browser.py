"""The admin campaign form in real Chromium, in Russian: the weekday window editor, a bad
window shown next to its field, the retry rules and pool saved, then the campaign started."""

from __future__ import annotations

from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page


async def test_admin_creates_and_starts_a_campaign_in_russian(
    browser: Browser, live_server: LiveServer
) -> None:
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        boss.language = "ru"
        olga = await f.user(s, "olga")
        queue = await f.queue(s, "Взыскание", [olga])
        trunk = await f.inbox(s, queue, "voice", "Транк")
        queue_id, trunk_id = queue.id, trunk.id
    context, page = await staff_page(browser, live_server.url, "boss", locale="ru-RU")
    try:
        await page.goto("/admin/campaigns")
        await page.click("a[data-action=new]")
        await page.fill("#f-name", "Долги")
        await page.select_option("#f-queue_id", str(queue_id))
        await page.select_option("#f-inbox_id", str(trunk_id))
        await expect(page.locator("#f-dial_mode option[value=progressive]")).to_have_text("прогрессивный")
        await page.fill("#f-schedule-1", "09:00-13:00, 14:00-21:00")
        await page.fill("#f-schedule-2", "с 9 до 5")
        await page.fill("#f-retry_rules-busy", "15;60;1440")
        await page.fill("#f-caller_ids", "+74951234567, RU-MOW")
        await page.click("form.admin-form button.primary")

        error = page.locator('.field-error[data-field="schedule"]')
        await expect(error).to_contain_text("не интервал времени")
        await expect(page.locator("#f-schedule-1")).to_have_value("09:00-13:00, 14:00-21:00")
        await page.screenshot(path=screenshot_path("admin-campaign-form.png"), full_page=True)

        await page.fill("#f-schedule-2", "09:00-17:00")
        await page.click("form.admin-form button.primary")
        await expect(page.locator(".notice")).to_have_text("Сохранено.")
        await expect(page.locator("[data-state]")).to_have_text("черновик")
        await page.click("button[data-action=start]")
        await expect(page.locator("[data-state]")).to_have_text("идёт")
        await expect(page.locator("button[data-action=pause]")).to_be_visible()
    finally:
        await context.close()

    async with live_server.services.db.transaction() as s:
        camp = await s.scalar(select(m.Campaign).where(m.Campaign.name == "Долги"))
        assert camp is not None and camp.state == "running"
        assert camp.schedule["2"] == [["09:00", "17:00"]] and camp.retry_rules["busy"] == [15, 60, 1440]
