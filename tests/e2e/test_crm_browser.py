"""The CRM journey in real Chromium: an admin configures the card fetch (a bad template is
refused next to its field, the fixed one is saved and listed), then a customer writes and the
operator who gets the offer sees the CRM's card inside the customer card."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.crm.card_server import CardServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_operator_browser import BORIS, customer_says, desk, server  # noqa: F401

TIMEOUT = 15_000
SECRET = "e2e-card-secret-" + "z" * 16


async def test_admin_sets_the_crm_card_and_the_operator_sees_it_on_the_offer(
    server: LiveServer,  # noqa: F811
    desk: dict[str, Any],  # noqa: F811
    browser: Browser,
) -> None:
    crm = CardServer(
        cards={
            BORIS: {
                "title": "Boris — VIP client",
                "url": "https://crm.example/contacts/42",
                "fields": [{"label": "Manager", "value": "Anna Karenina"}, {"label": "Debt", "value": "0 ₽"}],
            }
        }
    )
    await crm.start()
    admin_ctx, admin = await staff_page(browser, server.url, "admin")
    op_ctx, op = await staff_page(browser, server.url, "olga")
    try:
        await admin.goto("/admin")
        await admin.click(".admin-index a[data-section=crm]")
        await admin.click("a[href='/admin/crm/1']:has-text('Card fetch')")
        await admin.fill("#f-fetch_url", crm.template.replace("{identity}", "{customer}"))
        await admin.fill("#f-fetch_secret", SECRET)
        await admin.click("button.primary")
        error = admin.locator('.field-error[data-field="fetch_url"]')
        await expect(error).to_contain_text("unknown placeholder 'customer'", timeout=TIMEOUT)
        await expect(admin.locator("#f-fetch_url")).to_have_class("invalid")

        await admin.fill("#f-fetch_url", crm.template)
        await admin.fill("#f-fetch_secret", SECRET)
        await admin.click("button.primary")
        await expect(admin.locator(".notice")).to_have_text("Saved.", timeout=TIMEOUT)
        await admin.goto("/admin/crm")
        await expect(admin.locator("main table")).to_contain_text("127.0.0.1")

        await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
        await customer_says(server, desk["inbox"], BORIS, "Hello, it's about my order")
        await op.get_by_test_id("offer-accept").click()
        await expect(op.get_by_test_id("conversation-contact")).to_have_text(BORIS, timeout=TIMEOUT)
        card = op.get_by_test_id("crm-card")
        await expect(card.get_by_test_id("crm-title")).to_have_text("Boris — VIP client", timeout=TIMEOUT)
        await expect(card.get_by_test_id("crm-field")).to_have_text(["Anna Karenina", "0 ₽"])
        await expect(card.get_by_test_id("crm-link")).to_have_attribute(
            "href", "https://crm.example/contacts/42"
        )
        await op.screenshot(path=screenshot_path("crm-card.png"), full_page=True)
        assert crm.hits, "the CRM was asked (on the offer, by the server; tests/crm checks the cache)"
    finally:
        await admin_ctx.close()
        await op_ctx.close()
        await crm.stop()
