"""The contacts workspace in real Chromium, in Russian (issue 16): search by an identity, the
card with identities, an edit with an error next to its field, merging two contacts (a wrong
number refused next to its input), the blacklist with a reason, the export with progress, and
erasing the contact's personal data."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import anyio
from playwright.async_api import Browser, expect
from sqlalchemy import select, update

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.conversations import InboundMessage
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page


async def test_admin_searches_edits_merges_blacklists_exports_and_erases_a_contact(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        boss.language = "ru"
        q = await f.queue(s, "Q")
        ib = await f.inbox(s, q)
        ids = {}
        for kind, value, name in (("telegram", "700100", "Анна"), ("external", "anna-site", "")):
            res = await c.do_ingest_inbound(
                s, InboundMessage(inbox_id=ib.id, identity_kind=kind, identity_value=value, contact_name=name)
            )
            ids[value] = res.conversation.contact_id
        # Handled and closed: a contact with an open conversation is not erased.
        await s.execute(
            update(m.Conversation).values(status=m.ConversationStatus.CLOSED, closed_at=datetime.now(UTC))
        )
    anna, site = ids["700100"], ids["anna-site"]
    context, page = await staff_page(browser, live_server.url, "boss", locale="ru-RU")
    try:
        await page.goto("/admin")
        await page.click(".admin-nav a[data-section=contacts]")
        await page.fill("input[data-search]", "700100")  # a Telegram chat id finds its contact
        await page.click(".admin-search button")
        rows = page.locator("table[data-table=contacts] tbody tr")
        await expect(rows).to_have_count(1)
        await rows.first.locator("a").nth(1).click()
        await expect(page.locator("[data-heading]")).to_have_text("Анна")
        await expect(page.locator("[data-identities]")).to_contain_text("700100")

        await page.fill("#f-email", "не почта")
        await page.click(".admin-form button.primary")
        await expect(page.locator('.field-error[data-field="email"]')).to_be_visible()
        await expect(page.locator("#f-email")).to_have_class("invalid")
        await page.fill("#f-email", "anna@example.com")
        await page.fill("#f-tags", "vip")
        await page.click(".admin-form button.primary")
        await expect(page.locator(".notice")).to_have_text("Сохранено.")

        await page.fill("#f-other_id", str(anna))  # herself: refused next to the input
        await page.click("button[data-action=merge]")
        await expect(page.locator('.field-error[data-field="other_id"]')).to_have_text(
            "контакт нельзя объединить с самим собой"
        )
        await page.fill("#f-other_id", str(site))
        await page.click("button[data-action=merge]")
        await expect(page.locator(".notice")).to_have_text("Сохранено.")
        await expect(page.locator("[data-identities]")).to_contain_text("anna-site")

        await page.fill("#f-reason", "оскорбления")
        await page.click("button[data-action=blacklist]")
        await expect(page.locator('[data-blacklisted="1"]')).to_contain_text("оскорбления")
        await page.screenshot(path=screenshot_path("admin-contact-card.png"), full_page=True)

        await page.goto("/admin/contacts?blacklisted=1")
        await expect(page.locator("table[data-table=contacts] tbody tr")).to_have_count(1)
        await page.fill("input[data-search]", "Анна")
        await page.click(".admin-search button")
        await page.click("a[data-link='1']")  # the export: the reports page, the search kept
        async with page.expect_download() as download_info:
            await page.get_by_test_id("export-csv").click()
        download = await download_info.value
        await expect(page.get_by_test_id("export-box")).to_have_attribute("data-state", "done")
        target = anyio.Path(tmp_path / "contacts.csv")
        await download.save_as(str(target))
        table = list(csv.reader((await target.read_text(encoding="utf-8-sig")).splitlines()))
        assert table[0][:2] == ["№ контакта", "Имя"]
        assert [r[:2] for r in table[1:]] == [[str(anna), "Анна"]]
        assert "telegram:700100" in table[1][4] and "external:anna-site" in table[1][4]

        await page.goto(f"/admin/contacts/{anna}")
        await page.click("button[data-action=erase]")
        await expect(page.locator("[data-erased]")).to_contain_text("Персональные данные удалены.")
    finally:
        await context.close()

    async with live_server.services.db.transaction() as s:
        contact = await s.get_one(m.Contact, anna)
        assert contact.erased_at is not None and contact.blacklisted and not contact.name
        assert await s.get(m.Contact, site) is None
        actions = set(await s.scalars(select(m.AuditLog.action).where(m.AuditLog.object_type == "contact")))
        assert {"contact.update", "contact.merge", "contact.blacklist"} <= actions
