"""Admin sections in real Chromium, one journey each: skills with levels (in Russian), business
hours with holidays and escalation steps, voice lines. Create → error next to the field → fix →
the list shows it → delete (where a row can be deleted)."""

from __future__ import annotations

from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page


async def test_admin_gives_operators_and_queues_a_skill_level_in_russian(
    browser: Browser, live_server: LiveServer
) -> None:
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        boss.language = "ru"
        olga = await f.user(s, "olga")
        olga.display_name = "Ольга"
        queue = await f.queue(s, "Продажи", [olga])
    context, page = await staff_page(browser, live_server.url, "boss", locale="ru-RU")
    try:
        await page.goto("/admin")
        await page.click(".admin-index a[data-section=skills]")
        await expect(page.locator("main h1")).to_contain_text("Навыки")
        await page.click("a[data-action=new]")
        await page.fill("#f-name", "Английский")
        await page.fill(f"#f-user_{olga.id}", "11")
        await page.fill(f"#f-queue_{queue.id}", "3")
        await page.click("button.primary")

        error = page.locator(f'.field-error[data-field="user_{olga.id}"]')
        await expect(error).to_have_text("Ольга: уровень: не больше 10")
        await expect(page.locator(f"#f-user_{olga.id}")).to_have_class("invalid")
        await expect(page.locator("#f-name")).to_have_value("Английский")
        await page.screenshot(path=screenshot_path("admin-skill-form-ru.png"), full_page=True)

        await page.fill(f"#f-user_{olga.id}", "7")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Сохранено.")
        await expect(page.locator(f"#f-user_{olga.id}")).to_have_value("7")

        await page.click("h1 a")  # back to the list
        row = page.locator("table tr", has_text="Английский")
        await expect(row.locator("td").nth(1)).to_have_text("1")
        await expect(row.locator("td").nth(2)).to_have_text("1")
        async with live_server.services.db.transaction() as s:
            level = await s.scalar(select(m.UserSkill.level).where(m.UserSkill.user_id == olga.id))
            need = await s.scalar(select(m.QueueSkill.min_level).where(m.QueueSkill.queue_id == queue.id))
        assert (level, need) == (7, 3)

        await row.locator("a").click()
        await page.click("button[data-action=delete]")
        await expect(page.locator(".notice")).to_be_visible()
        await expect(page.locator("table tr", has_text="Английский")).to_have_count(0)
    finally:
        await context.close()


async def test_admin_sets_business_hours_holidays_and_escalation_steps_as_forms(
    browser: Browser, live_server: LiveServer
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
        sales = await f.queue(s, "Sales")
        spill = await f.queue(s, "Overflow")
    context, page = await staff_page(browser, live_server.url, "boss")
    try:
        await page.goto("/admin/hours")
        await page.click("table a:text-is('Sales')")
        # A queue without hours is open around the clock: every day shows 00:00-24:00.
        await expect(page.locator("#f-day_6")).to_have_value("00:00-24:00")
        for day in range(2, 7):
            await page.fill(f"#f-day_{day}", "")  # closed from Wednesday on
        await page.select_option("#f-timezone", "Europe/Moscow")
        await page.fill("#f-day_0", "09:00-18:00")
        await page.fill("#f-day_1", "18:00-09:00")
        await page.fill("#f-holidays", "2026-12-31 New Year's Eve\nsoon")
        await page.click("button.primary")
        await expect(page.locator('.field-error[data-field="day_1"]')).to_have_text(
            "18:00-09:00: the start must come before the end"
        )
        await expect(page.locator('.field-error[data-field="holidays"]')).to_contain_text("got 'soon'")
        await expect(page.locator("#f-day_0")).to_have_value("09:00-18:00")

        await page.fill("#f-day_1", "09:00-13:00, 14:00-18:00")
        await page.fill("#f-holidays", "2026-12-31 New Year's Eve")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await page.click("h1 a")
        row = page.locator("table tr", has_text="Sales")
        await expect(row).to_contain_text("Monday 09:00-18:00; Tuesday 09:00-13:00, 14:00-18:00")
        await expect(row.locator("td").nth(3)).to_have_text("1")

        await page.goto("/admin/escalation")
        await page.click("table a:text-is('Sales')")
        await page.fill("#f-after_0", "60")
        await page.fill("#f-relax_0", "1")
        await page.fill("#f-after_1", "30")
        await page.select_option("#f-add_1", label="Overflow")
        await page.click("button.primary")
        await expect(page.locator('.field-error[data-field="after_1"]')).to_have_text(
            "Step 2: after, s must not be less than the step before"
        )
        await page.fill("#f-after_1", "120")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await page.screenshot(path=screenshot_path("admin-escalation-form.png"), full_page=True)
        await page.click("h1 a")
        await expect(page.locator("table tr", has_text="Sales")).to_contain_text(
            "after 60 s: skill levels −1; after 120 s: also queue Overflow"
        )
    finally:
        await context.close()
    async with live_server.services.db.transaction() as s:
        queue = await s.get_one(m.Queue, sales.id)
        assert queue.escalation == [
            {"after_seconds": 60, "relax_levels": 1},
            {"after_seconds": 120, "relax_levels": 0, "add_queue_id": spill.id},
        ]
        assert queue.business_hours == {
            "timezone": "Europe/Moscow",
            "days": {"0": [["09:00", "18:00"]], "1": [["09:00", "13:00"], ["14:00", "18:00"]]},
            "holidays": [{"date": "2026-12-31", "name": "New Year's Eve"}],
        }


async def test_admin_connects_a_voice_number_to_a_queue_with_a_caller_id(
    browser: Browser, live_server: LiveServer
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
        await f.queue(s, "Support")
    context, page = await staff_page(browser, live_server.url, "boss")
    try:
        await page.goto("/admin")
        await page.click(".admin-index a[data-section=voice-lines]")
        await page.click("a[data-action=new]")
        await page.fill("#f-name", "Moscow line")
        await page.fill("#f-did", "+7 495 ABC")
        await page.select_option("#f-queue_id", label="Support")
        await page.fill("#f-caller_id", "+7 495 123-45-67")
        await page.click("button.primary")
        await expect(page.locator('.field-error[data-field="did"]')).to_have_text(
            "Number (DID) must be a phone number: digits with an optional +, like +74951234567"
        )
        await expect(page.locator("#f-caller_id")).to_have_value("+7 495 123-45-67")

        await page.fill("#f-did", "+7 495 100-00-00")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await expect(page.locator("#f-did")).to_have_value("+74951000000")
        await page.click("h1 a")
        row = page.locator("table tr", has_text="Moscow line")
        await expect(row).to_contain_text("+74951000000")
        await expect(row).to_contain_text("Support")
        await expect(row).to_contain_text("+74951234567")
        async with live_server.services.db.transaction() as s:
            inbox = await s.scalar(select(m.Inbox).where(m.Inbox.name == "Moscow line"))
            assert inbox is not None and inbox.channel == "voice"
            assert inbox.config == {"did": "+74951000000", "caller_id": "+74951234567"}

        await row.locator("a").click()
        await page.click("button[data-action=delete]")
        await expect(page.locator("table tr", has_text="Moscow line")).to_have_count(0)
    finally:
        await context.close()
