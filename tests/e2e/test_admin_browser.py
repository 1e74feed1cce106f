"""The admin queue form in real Chromium, in Russian: an error next to its field, then a save."""

from __future__ import annotations

from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page


async def test_admin_creates_a_queue_through_the_form_in_russian(
    browser: Browser, live_server: LiveServer
) -> None:
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        boss.language = "ru"  # pages follow the user's own language
        olga = await f.user(s, "olga")
        olga.display_name = "Ольга"
    context, page = await staff_page(browser, live_server.url, "boss", locale="ru-RU")
    try:
        await page.goto("/admin")
        await expect(page.locator("main h1")).to_have_text("Администрирование")
        await page.click(".admin-index a[data-section=queues]")
        await page.click("a[data-action=new]")

        await page.fill("#f-name", "Продажи")
        await page.select_option("#f-strategy", "round_robin")
        await page.fill("#f-sla_seconds", "0")
        await page.select_option("#f-members", label="Ольга")
        await page.click("button.primary")

        error = page.locator('.field-error[data-field="sla_seconds"]')
        await expect(error).to_have_text("SLA, с: не меньше 1")  # the domain's message, in Russian
        await expect(page.locator("#f-sla_seconds")).to_have_class("invalid")
        await expect(page.locator("#f-name")).to_have_value("Продажи")
        await expect(page.locator("#f-strategy")).to_have_value("round_robin")
        await expect(page.locator(".form-error")).to_have_text("Исправьте отмеченные поля.")
        await page.screenshot(path=screenshot_path("admin-queue-form.png"), full_page=True)

        await page.fill("#f-sla_seconds", "30")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Сохранено.")
        await expect(page.locator("[data-heading]")).to_have_text("Продажи")
    finally:
        await context.close()

    async with live_server.services.db.transaction() as s:
        queue = await s.scalar(select(m.Queue).where(m.Queue.name == "Продажи"))
        assert queue is not None and queue.sla_seconds == 30 and queue.strategy == "round_robin"
        members = list(
            await s.scalars(select(m.QueueMember.user_id).where(m.QueueMember.queue_id == queue.id))
        )
        assert members == [olga.id]


async def test_admin_form_with_two_bad_fields_shows_both_errors_in_russian(
    browser: Browser, live_server: LiveServer
) -> None:
    """Issue 10 item 20: every field's error at once (it used to be the first one only), in the
    user's language (item 19), with enum labels in the selects and the supervisor hint (24)."""
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        boss.language = "ru"
    context, page = await staff_page(browser, live_server.url, "boss", locale="ru-RU")
    try:
        await page.goto("/admin/queues/new")
        await expect(page.locator("#f-strategy option[value=longest_idle]")).to_have_text(
            "Дольше всех свободен"
        )
        await expect(page.locator("[data-visibility]")).to_contain_text("Супервизоры видят новую очередь")
        await page.fill("#f-name", "Очень длинное название " * 6)
        await page.fill("#f-sla_seconds", "0")
        await page.click("button.primary")

        name_error = page.locator('.field-error[data-field="name"]')
        sla_error = page.locator('.field-error[data-field="sla_seconds"]')
        await expect(name_error).to_have_text("Название: не длиннее 128 символов")
        await expect(sla_error).to_have_text("SLA, с: не меньше 1")
        await expect(page.locator("#f-name")).to_have_class("invalid")
        await expect(page.locator("#f-sla_seconds")).to_have_class("invalid")
        await page.screenshot(path=screenshot_path("admin-two-errors-ru.png"), full_page=True)

        await page.fill("#f-name", "Поддержка")
        await page.fill("#f-sla_seconds", "20")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Сохранено.")
        # Saved outside every supervised group: the admin is warned that no supervisor sees it.
        await expect(page.locator('[data-visibility="warning"]')).to_contain_text(
            "Эту очередь не видит ни один супервизор"
        )
    finally:
        await context.close()
