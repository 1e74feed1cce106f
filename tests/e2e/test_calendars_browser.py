"""Shared holiday calendars in real Chromium (issue 16): the admin creates "Russia 2027" as a
form (an error next to the days first), attaches it to a queue on the business hours form, and
a customer opening the chat on that day gets the after-hours answer; their message waits for a
callback instead of ringing an operator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_widget_browser import server, shop  # noqa: F401 (fixtures)
from tests.helpers import until


async def test_admin_makes_a_calendar_attaches_it_to_a_queue_and_a_chat_that_day_is_after_hours(
    server: LiveServer,  # noqa: F811
    shop: dict[str, Any],  # noqa: F811
    browser: Browser,
) -> None:
    async with server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
        queue = await s.scalar(select(m.Queue).where(m.Queue.name == "web"))
        assert queue is not None and queue.business_hours is None  # open around the clock
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)  # a run across midnight still lands on a day off
    context, page = await staff_page(browser, server.url, "boss")
    try:
        await page.goto("/admin")
        await page.click(".admin-index a[data-section=calendars]")
        await expect(page.locator("main h1")).to_contain_text("Holiday calendars")
        await page.click("a[data-action=new]")
        await page.fill("#f-name", "Russia 2027")
        await page.fill("#f-dates", f"{today} Company day\nsoon")
        await page.fill("#f-yearly", "05-09 Victory Day")
        await page.click("button.primary")
        await expect(page.locator('.field-error[data-field="dates"]')).to_contain_text("got 'soon'")
        await expect(page.locator("#f-name")).to_have_value("Russia 2027")

        await page.fill("#f-dates", f"{today} Company day")
        await page.fill("#f-import_text", f"date,name\n{tomorrow},Bridge day")  # a pasted CSV list
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await expect(page.locator("#f-dates")).to_have_value(f"{today} Company day\n{tomorrow} Bridge day")
        await page.screenshot(path=screenshot_path("admin-calendar-form.png"), full_page=True)
        async with server.services.db.transaction() as s:
            cal = await s.scalar(select(m.HolidayCalendar).where(m.HolidayCalendar.name == "Russia 2027"))
            assert cal is not None
            assert cal.yearly == [{"date": "05-09", "name": "Victory Day"}]

        await page.goto(f"/admin/hours/{queue.id}")
        await page.select_option("#f-timezone", "UTC")
        await page.check(f'input[name="calendars"][value="{cal.id}"]')
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        await expect(page.locator(f'input[name="calendars"][value="{cal.id}"]')).to_be_checked()
        async with server.services.db.transaction() as s:
            hours = (await s.get_one(m.Queue, queue.id)).business_hours
        assert hours is not None and hours["calendars"] == [cal.id] and hours["timezone"] == "UTC"

        await page.goto("/admin/calendars")
        row = page.locator("table tr", has_text="Russia 2027")
        await expect(row.locator("td").nth(3)).to_have_text("web")  # who follows it
    finally:
        await context.close()

    customer = await browser.new_context(locale="en-US")
    try:
        chat = await customer.new_page()
        await chat.goto(shop["url"])
        await chat.get_by_role("button", name="Chat with us").click()
        notice = chat.locator(".omni-offline")
        await expect(notice).to_be_visible()
        await expect(notice).to_have_text("We are offline now. Leave a message and we will answer later.")
        await chat.locator(".omni-prechat input[name=name]").fill("Ann")
        await chat.get_by_role("button", name="Start chat").click()
        await chat.locator(".omni-form textarea").fill("Are you open today?")
        await chat.keyboard.press("Enter")
        await chat.screenshot(path=screenshot_path("widget-calendar-day-off.png"))

        async def missed_as_closed() -> bool:
            async with server.services.db.transaction() as s:
                conv = await s.scalar(select(m.Conversation).where(m.Conversation.queue_id == queue.id))
                if conv is None or conv.status != m.ConversationStatus.MISSED:
                    return False
                event = await s.scalar(
                    select(m.Event).where(
                        m.Event.conversation_id == conv.id, m.Event.type == "conversation.missed"
                    )
                )
                offers = await s.scalar(select(m.Offer.id).where(m.Offer.conversation_id == conv.id))
                return event is not None and event.payload["reason"] == "closed" and offers is None

        await until(missed_as_closed, 15)
    finally:
        await customer.close()
