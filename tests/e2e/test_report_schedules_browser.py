"""A supervisor schedules a report mailing in real Chromium, in Russian, starting from the
report's filters; the mail arrives on the loopback SMTP server with the workbook attached."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from omni.db import models as m
from omni.domain.reports.schedules import list_schedules
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, make_settings
from tests.e2e.conftest import screenshot_path, staff_page
from tests.reports.test_mailing import REPORT, Smtp, attachment, build_world, sheet_rows

# The fixtures of the mailing tests: the loopback SMTP server and the test-only report.
from tests.reports.test_mailing import probe_reports as probe_reports
from tests.reports.test_mailing import smtp as smtp

pytestmark = pytest.mark.usefixtures("probe_reports")


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, smtp: Smtp) -> Settings:
    return make_settings(pg_url, data_dir=tmp_path, smtp=smtp.settings)


async def test_a_supervisor_schedules_a_mailing_fixes_a_field_and_sends_it_now(
    browser: Browser, live_server: LiveServer, smtp: Smtp
) -> None:
    w = await build_world(live_server.services.db)
    async with live_server.services.db.transaction() as s:
        (await s.get_one(m.User, w.sup.id)).language = "ru"
    context, page = await staff_page(browser, live_server.url, "sup", locale="ru-RU")
    try:
        # The reports page's link: the report and its current filters.
        await page.goto(f"/reports/schedules?report={REPORT}&preset=yesterday&queue={w.qa.id}")
        await expect(page.locator("main h1")).to_have_text("Рассылка отчётов")
        await expect(page.locator("#f-report_key")).to_have_value(REPORT)
        await expect(page.locator("#f-preset")).to_have_value("yesterday")
        await page.select_option("#f-frequency", "weekly")
        await page.fill("#f-send_time", "07:30")
        await page.fill("#f-recipients", "boss@example.com\nне-адрес")
        await page.click("button.primary")

        await expect(page.locator('.field-error[data-field="recipients"]')).to_contain_text("не-адрес")
        await expect(page.locator('.field-error[data-field="weekday"]')).to_contain_text("День недели")
        await expect(page.locator("#f-recipients")).to_have_class("invalid")
        await expect(page.locator("#f-frequency")).to_have_value("weekly")
        await page.screenshot(path=screenshot_path("report-schedule-form.png"), full_page=True)

        await page.fill("#f-recipients", "boss@example.com")
        await page.select_option("#f-weekday", "0")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Сохранено.")
        row = page.locator("tr[data-schedule]")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("Еженедельно, Понедельник, 07:30")
        await row.locator("button[data-action=send]").click()
        await expect(page.locator(".notice")).to_have_text("Отправлено.")
        await page.screenshot(path=screenshot_path("report-schedule-list.png"), full_page=True)
    finally:
        await context.close()

    [msg] = smtp.box.messages
    assert smtp.box.envelopes == [["boss@example.com"]]
    rows = sheet_rows(attachment(msg)[1])
    assert rows[0][:3] == ("Период", "Очередь", "Поступило")  # the schedule's language
    assert rows[1:] == []  # March is not yesterday: no rows
    async with live_server.services.db.transaction() as s:
        [schedule] = await list_schedules(s, f.who(w.sup))
    assert schedule.filters["queue_ids"] == [w.qa.id]
    assert (schedule.frequency, schedule.weekday, schedule.send_time, schedule.language) == (
        "weekly",
        0,
        "07:30",
        "ru",
    )
