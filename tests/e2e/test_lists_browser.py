"""An admin imports a call list in real Chromium: uploads a CSV, maps its columns (the preview
follows), starts, watches the progress (pushed over Socket.IO) reach 100 %, downloads the
refused rows; the campaign's lists table then shows the new list. In Russian and English."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import func, select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page

ROWS = 12_000
"""Three batches: the bar moves before it reaches 100 %."""


def _csv() -> bytes:
    lines = ["phone;alt;client;debt"]
    lines += [f"+7 916 {n // 10000:03d}-{n % 10000:04d};;Client {n};{n}" for n in range(ROWS)]
    lines += ["not a number;;Broken;1", "+7 916 000-0001;;Twice;2", ";;;"]
    return ("\r\n".join(lines) + "\r\n").encode("cp1251")


@pytest.mark.parametrize(
    ("locale", "start_label"), [("en-US", "Start the import"), ("ru-RU", "Начать загрузку")]
)
async def test_an_admin_uploads_maps_starts_watches_progress_and_downloads_rejects(
    live_server: LiveServer, browser: Browser, tmp_path: Path, locale: str, start_label: str
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN, language=locale[:2])
        queue = m.Queue(name="Out")
        s.add(queue)
        await s.flush()
        campaign = m.Campaign(name="Debts <b>2026</b>", queue_id=queue.id)
        s.add(campaign)
        await s.flush()
        campaign_id = campaign.id
    source = tmp_path / "debtors.csv"
    await anyio.Path(source).write_bytes(_csv())
    context, page = await staff_page(browser, live_server.url, "admin", locale=locale)
    try:
        await page.goto(f"/campaigns/{campaign_id}/lists")
        await expect(page.locator("h1")).to_contain_text("Debts <b>2026</b>")  # text, not markup
        await page.set_input_files("[data-testid=list-file]", str(source))
        await page.click("[data-testid=upload]")
        mapping = page.locator("[data-testid=mapping]")
        await expect(mapping).to_be_visible()
        await expect(page.locator("[data-testid=map-0]")).to_have_value("phone")
        await expect(page.locator("[data-testid=header-row]")).to_be_checked()
        await page.select_option("[data-testid=map-2]", "name")
        first = page.locator("[data-testid=preview-row]").first
        await expect(first).to_contain_text("+79160000000")
        await expect(first).to_contain_text("Client 0")
        await expect(first).to_contain_text("debt: 0")
        await page.get_by_role("button", name=start_label).click()
        await expect(page.locator("[data-testid=percent]")).to_have_text("100 %", timeout=120_000)
        await expect(page.locator("[data-testid=result]")).to_have_attribute("data-state", "done")
        await expect(page.locator("[data-testid=counts]")).to_contain_text(str(ROWS))
        await page.screenshot(path=screenshot_path(f"lists-import-{locale}.png"), full_page=True)
        async with page.expect_download() as download_info:
            await page.click("[data-testid=rejects]")
        download = await download_info.value
        target = tmp_path / "rejects.csv"
        await download.save_as(target)
        lines = (await anyio.Path(target).read_text(encoding="utf-8-sig")).splitlines()
        assert [line.split(",")[0] for line in lines[1:]] == [str(ROWS + 2), str(ROWS + 3), str(ROWS + 4)]
        assert ("дубликат" if locale == "ru-RU" else "duplicate") in lines[2]
        await expect(page.locator("[data-testid=list-row]")).to_have_count(1)
        await expect(page.locator("[data-testid=list-row]")).to_contain_text("debtors.csv")
        async with live_server.services.db.transaction() as s:
            count = await s.scalar(
                select(func.count())
                .select_from(m.CampaignTarget)
                .where(m.CampaignTarget.campaign_id == campaign_id)
            )
            named = await s.scalar(
                select(m.CampaignTarget.name).where(m.CampaignTarget.phone == "+79160000005")
            )
        assert count == ROWS and named == "Client 5"
    finally:
        await context.close()
