"""The integration admin in real Chromium, one journey per section (issue 16): a webhook from
its form to a test send, the delivery log (filter, payload, replay) and deletion; an API token
issued, shown once, used and revoked (in Russian); the audit log's filters, errors and paging
as an auditor sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.helpers import HTTP_TIMEOUT
from tests.webhook_receiver import Receiver, check_signature


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    crm = Receiver()
    await crm.start()
    try:
        yield crm
    finally:
        await crm.stop()


async def test_webhook_form_test_send_delivery_log_replay_and_delete(
    browser: Browser, live_server: LiveServer, receiver: Receiver
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
    context, page = await staff_page(browser, live_server.url, "boss")
    try:
        await page.goto("/admin")
        await page.click(".admin-nav a[data-section=webhooks]")
        await page.click("a[data-action=new]")
        await page.fill("#f-name", "CRM")
        await page.fill("#f-url", "ftp://crm.example/hooks")
        await page.fill("#f-event_types", "never.happens")
        await page.click(".admin-form button.primary")
        await expect(page.locator('.field-error[data-field="url"]')).to_have_text(
            "webhook URL must be an absolute http(s) URL"
        )
        await expect(page.locator("#f-name")).to_have_value("CRM")

        await page.fill("#f-url", receiver.url)
        await page.click(".admin-form button.primary")
        secret = (await page.locator("[data-webhook-secret]").text_content() or "").strip()
        assert len(secret) >= 16

        await page.click("button[data-action=test]")
        result = page.locator("[data-test-result]")
        await expect(result).to_have_attribute("data-test-result", "ok")
        await expect(result).to_have_text("The receiver answered HTTP 200.")
        [hit] = receiver.hits
        assert hit.event["type"] == "webhook.test"
        check_signature(secret, hit.headers, hit.body)  # the secret shown is the one that signs
        await expect(page.locator("[data-webhook-secret]")).to_have_count(0)  # shown once only

        await page.fill("#f-name", "CRM main")
        await page.click(".admin-form button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await expect(page.locator("[data-heading]")).to_have_text("CRM main")

        # A delivery that failed for good while the CRM was down.
        async with live_server.services.db.transaction() as s:
            hook = await s.scalar(
                select(m.WebhookSubscription).where(m.WebhookSubscription.name == "CRM main")
            )
            assert hook is not None
            event = m.Event(type="conversation.closed", payload={"result": "sale"}, dispatched=True)
            s.add(event)
            await s.flush()
            failed = m.WebhookDelivery(
                subscription_id=hook.id,
                event_id=event.id,
                state="failed",
                attempts=12,
                last_error="HTTP 503: down",
            )
            s.add(failed)
            await s.flush()
            delivery_id = failed.id

        await page.goto("/admin/webhooks")
        row = page.locator("table[data-table=webhooks] tr", has_text="CRM main")
        await expect(row).to_contain_text("1 failed · 0 pending · 0 delivered")
        await row.get_by_role("link", name="1 failed · 0 pending · 0 delivered").click()
        await page.select_option("#f-state", "succeeded")
        await page.click("form[data-form=filter] button")
        await expect(page.locator("[data-empty]")).to_be_visible()
        await page.select_option("#f-state", "failed")
        await page.click("form[data-form=filter] button")
        line = page.locator(f"tr[data-delivery='{delivery_id}']")
        await expect(line.locator("[data-answer]")).to_contain_text("HTTP 503: down")
        await line.locator("[data-payload] summary").click()
        await expect(line.locator("[data-payload] pre")).to_contain_text('"result": "sale"')
        await page.screenshot(path=screenshot_path("admin-webhook-deliveries.png"), full_page=True)

        await line.locator("button[data-action=replay]").click()
        await expect(page.locator(".notice")).to_have_text(
            f"Delivery {delivery_id} is queued to be sent again."
        )
        await expect(page.locator("#f-state")).to_have_value("failed")  # the filter is kept
        # Pending again, so it left the "failed" view; the Celery worker sends it (the sending
        # itself: tests/test_webhooks.py::test_replay_sends_a_delivered_event_again).
        await expect(line).to_have_count(0)
        await page.select_option("#f-state", "pending")
        await page.click("form[data-form=filter] button")
        await expect(line).to_have_attribute("data-state", "pending")
        async with live_server.services.db.transaction() as s:
            replayed = await s.get_one(m.WebhookDelivery, delivery_id)
            assert (replayed.state, replayed.attempts, replayed.last_error) == ("pending", 0, "")

        await page.goto(f"/admin/webhooks/{hook.id}")
        await page.click("button[data-action=delete]")
        await expect(page.locator(".notice")).to_have_text("Deleted.")
        await expect(page.locator("table[data-table=webhooks]")).to_have_count(0)
    finally:
        await context.close()
    async with live_server.services.db.transaction() as s:
        actions = list(
            await s.scalars(
                select(m.AuditLog.action).where(m.AuditLog.object_type == "webhook").order_by(m.AuditLog.id)
            )
        )
    assert actions == ["webhook.create", "webhook.test", "webhook.update", "webhook.delete"]
    async with live_server.services.db.transaction() as s:
        replays = list(
            await s.scalars(
                select(m.AuditLog.object_id).where(m.AuditLog.action == "webhook_delivery.replay")
            )
        )
    assert replays == [str(delivery_id)]


async def test_api_token_issued_shown_once_used_and_revoked_in_russian(
    browser: Browser, live_server: LiveServer
) -> None:
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        boss.language = "ru"
        bot = await f.user(s, "crm-bot", m.Role.SUPERVISOR)
        bot_id = bot.id
    context, page = await staff_page(browser, live_server.url, "boss", locale="ru-RU")
    try:
        await page.goto("/admin/tokens/new")
        await page.select_option("#f-user_id", label="crm-bot")
        await page.click(".admin-form button.primary")
        await expect(page.locator('.field-error[data-field="name"]')).to_have_text(
            "Название: не может быть пустым"
        )
        await expect(page.locator("#f-user_id")).to_have_value(str(bot_id))

        await page.fill("#f-name", "Синхронизация CRM")
        await page.click(".admin-form button.primary")
        token = (await page.locator("[data-api-token]").text_content() or "").strip()
        assert token.startswith("omni_")
        await expect(page.locator(".card.secret p").first).to_have_text(
            "API-токен (показан один раз; хранится только его хеш):"
        )
        async with httpx.AsyncClient(
            base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
        ) as crm:
            assert (await crm.get("/api/v1/me")).json()["username"] == "crm-bot"

            await page.click("a[href='/admin/tokens']")
            row = page.locator("table[data-table=tokens] tr", has_text="Синхронизация CRM")
            await expect(row).to_contain_text("crm-bot")
            await expect(row).to_contain_text("действует")
            await expect(page.locator("[data-api-token]")).to_have_count(0)
            await row.get_by_role("link", name="Синхронизация CRM").click()
            await page.click("button[data-action=delete]")
            await expect(row).to_contain_text("отозван")
            assert (await crm.get("/api/v1/me")).status_code == 401
    finally:
        await context.close()


async def test_audit_log_viewer_filters_with_errors_next_to_fields_and_pages(
    browser: Browser, live_server: LiveServer
) -> None:
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        await f.user(s, "inspector", m.Role.AUDITOR)
        s.add_all(
            m.AuditLog(
                user_id=boss.id, action="queue.update", object_type="queue", object_id="7", input={"n": i}
            )
            for i in range(55)
        )
        s.add(m.AuditLog(user_id=boss.id, action="user.create", object_type="user", object_id="3", input={}))
    context, page = await staff_page(browser, live_server.url, "inspector")
    try:
        await page.goto("/admin")
        await page.click(".admin-nav a[data-section=audit]")
        await page.fill("#f-since", "2026-13-01")
        await page.fill("#f-until", "2026-11-30")
        await page.click("form[data-form=filter] button.primary")
        await expect(page.locator('.field-error[data-field="since"]')).to_have_text(
            "From must be a date like 2026-11-30"
        )
        await page.fill("#f-since", "2026-12-01")
        await page.click("form[data-form=filter] button.primary")
        await expect(page.locator('.field-error[data-field="until"]')).to_have_text(
            "the end of the range must be after its start"
        )
        await expect(page.locator("#f-since")).to_have_value("2026-12-01")

        await page.fill("#f-since", "")
        await page.fill("#f-until", "")
        await page.select_option("#f-user", label="boss")
        await page.select_option("#f-object_type", "queue")
        await page.click("form[data-form=filter] button.primary")
        rows = page.locator("table[data-table=audit] tbody tr")
        await expect(rows).to_have_count(50)
        await expect(rows.first).to_contain_text("queue.update")
        await page.click("a[data-action=older]")
        await expect(rows).to_have_count(5)
        await expect(page.locator("a[data-action=older]")).to_have_count(0)
        await expect(page.locator("#f-object_type")).to_have_value("queue")
        await rows.last.locator("details summary").click()
        await expect(rows.last.locator("details pre")).to_contain_text('"n": 0')

        await page.click("a[data-action=newest]")
        await page.fill("#f-action", "user.*")
        await page.select_option("#f-object_type", "")
        await page.click("form[data-form=filter] button.primary")
        await expect(rows).to_have_count(1)
        await rows.first.get_by_role("link", name="user #3").click()
        await expect(page.locator("#f-object_id")).to_have_value("3")
        await expect(rows).to_have_count(1)
        await page.screenshot(path=screenshot_path("admin-audit-log.png"), full_page=True)
    finally:
        await context.close()
