"""Labels and snooze in real Chromium (issue 18, docs/organise.md): the operator labels the
widget customer's chat (a coloured chip in the card and the list), snoozes it until the
customer writes, the customer writes in the widget, and the chat is offered back to the same
operator, labels kept."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import Browser, Route, expect
from sqlalchemy import select

from omni.db import models as m
from tests.conftest import LiveServer
from tests.e2e.conftest import count_json_reads, staff_page
from tests.e2e.test_operator_browser import BORIS, GRIGORY, customer_says, desk, server, world

__all__ = ["desk", "server", "world"]

TIMEOUT = 15_000


async def test_label_then_snooze_until_the_customer_writes_brings_the_chat_back_to_the_same_operator(
    server: LiveServer, world: dict[str, Any], browser: Browser
) -> None:
    async with server.services.db.transaction() as s:
        s.add(m.Label(name="VIP", color="#e53935"))
        (await s.scalar(select(m.User).where(m.User.username == "op"))).language = "ru"  # type: ignore[union-attr]
    _, op = await staff_page(browser, server.url, "op", locale="ru-RU")
    await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)

    customer = await (await browser.new_context(locale="en-US")).new_page()
    await customer.goto(world["shop"])
    await customer.get_by_role("button", name="Chat with us").click()
    await customer.locator(".omni-prechat input[name=name]").fill("Ann")
    await customer.get_by_role("button", name="Start chat").click()
    await customer.locator(".omni-form textarea").fill("Where is my order?")
    await customer.keyboard.press("Enter")
    await op.get_by_test_id("offer-accept").click(timeout=TIMEOUT)
    await expect(op.get_by_test_id("conversation-status")).to_have_text("Активно", timeout=TIMEOUT)

    # A label: picked in the card, a chip in the card and in the operator's list.
    await op.get_by_test_id("label-pick").select_option(label="VIP")
    organise = op.get_by_test_id("organise")
    await expect(organise.get_by_test_id("label-chip")).to_have_text("VIP×", timeout=TIMEOUT)
    item = op.get_by_test_id("conversation-item").first
    await expect(item.get_by_test_id("label-chip")).to_have_text("VIP")
    conv_id = int((await item.get_attribute("data-id")) or 0)

    # Snooze until the customer writes: the list says so, in Russian.
    await op.get_by_test_id("snooze-customer").click()
    await expect(item).to_have_attribute("data-status", "snoozed", timeout=TIMEOUT)
    await expect(item).to_contain_text("Отложено")
    await expect(op.get_by_test_id("unsnooze")).to_be_visible()

    # The customer writes in the widget: the same operator is offered it again, labels kept.
    await customer.locator(".omni-form textarea").fill("Any news?")
    await customer.keyboard.press("Enter")
    await op.get_by_test_id("offer-accept").click(timeout=TIMEOUT)
    await expect(op.get_by_test_id("conversation-status")).to_have_text("Активно", timeout=TIMEOUT)
    await expect(op.get_by_test_id("message-body").last).to_have_text("Any news?", timeout=TIMEOUT)
    await expect(op.get_by_test_id("organise").get_by_test_id("label-chip")).to_have_text("VIP×")
    async with server.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        events = list(
            await s.scalars(
                m.Event.__table__.select()
                .with_only_columns(m.Event.type)
                .where(m.Event.conversation_id == conv_id)
                .order_by(m.Event.id)
            )
        )
    assert conv.status == "active" and conv.assigned_user_id is not None
    assert events.index("conversation.snoozed") < events.index("conversation.woken")


async def test_a_saved_view_lists_the_waiting_chats_and_bulk_actions_report_what_could_not_be_done(
    server: LiveServer, desk: dict[str, Any], browser: Browser
) -> None:
    async with server.services.db.transaction() as s:
        vip = m.Label(name="VIP", color="#e53935")
        s.add(vip)
        (await s.scalar(select(m.User).where(m.User.username == "admin"))).language = "ru"  # type: ignore[union-attr]
        await s.flush()
        vip_id = vip.id
    first = await customer_says(server, desk["inbox"], BORIS, "Hello")
    second = await customer_says(server, desk["inbox"], GRIGORY, "Hi there")
    _, sv = await staff_page(browser, server.url, "admin", locale="ru-RU")

    # Admin → Labels: a bad colour is refused next to the field, then the label is listed.
    await sv.goto("/admin/labels/new")
    await sv.fill("#f-name", "Срочно")
    await sv.fill("#f-color", "red")
    await sv.click("button.primary")
    await expect(sv.locator('.field-error[data-field="color"]')).to_contain_text("#1E88E5", timeout=TIMEOUT)
    await sv.fill("#f-color", "#fb8c00")
    await sv.click("button.primary")
    await expect(sv.locator(".notice")).to_have_text("Сохранено.", timeout=TIMEOUT)
    await sv.goto("/admin/labels")
    await expect(sv.get_by_role("link", name="Срочно")).to_be_visible(timeout=TIMEOUT)

    await sv.goto("/supervisor")
    box = sv.get_by_test_id("organise")
    await expect(box).to_contain_text("Сохранить вид", timeout=TIMEOUT)

    # An empty name is refused next to the form; a named view opens with the waiting chats.
    await box.get_by_test_id("view-status").select_option("queued")
    await box.get_by_test_id("view-save").click()
    await expect(box.get_by_test_id("view-error")).to_contain_text("name", timeout=TIMEOUT)
    await box.get_by_test_id("view-name").fill("Ждут ответа")
    await box.get_by_test_id("view-save").click()
    rows = box.get_by_test_id("view-row")
    await expect(rows).to_have_count(2, timeout=TIMEOUT)
    await expect(box.get_by_test_id("view-pick")).to_contain_text("Ждут ответа")

    # Bulk label both: done, chips shown.
    for checkbox in await box.get_by_test_id("view-select").all():
        await checkbox.check()
    # The bulk bar names what it applies (no ids to know): labels, result codes, queues.
    await box.get_by_test_id("bulk-action").select_option("label")
    await box.get_by_test_id("bulk-param").select_option(label="VIP")
    await box.get_by_test_id("bulk-apply").click()
    await expect(box.get_by_test_id("bulk-done")).to_have_text("Выполнено: 2", timeout=TIMEOUT)
    await expect(box.get_by_test_id("label-chip")).to_have_count(2, timeout=TIMEOUT)

    # Bulk close of waiting chats: nothing half-done, each refusal says why, in Russian.
    for checkbox in await box.get_by_test_id("view-select").all():
        await checkbox.check()
    await box.get_by_test_id("bulk-action").select_option("transfer")
    await expect(box.get_by_test_id("bulk-param")).to_contain_text("sales", timeout=TIMEOUT)
    await box.get_by_test_id("bulk-action").select_option("close")
    await box.get_by_test_id("bulk-param").select_option(label="Solved")
    await box.get_by_test_id("bulk-apply").click()
    await expect(box.get_by_test_id("bulk-done")).to_have_text("Выполнено: 0", timeout=TIMEOUT)
    refused = box.get_by_test_id("bulk-refused")
    await expect(refused).to_have_count(2)
    await expect(refused.first).to_contain_text("нельзя закрыть")
    async with server.services.db.transaction() as s:
        convs = [await s.get_one(m.Conversation, i) for i in (first, second)]
        bulk_runs = list(
            await s.scalars(
                m.AuditLog.__table__.select()
                .with_only_columns(m.AuditLog.result)
                .where(m.AuditLog.action.like("conversation.bulk_%"))
                .order_by(m.AuditLog.id)
            )
        )
    assert [(c.status, c.label_ids) for c in convs] == [("queued", [vip_id]), ("queued", [vip_id])]
    assert bulk_runs == ["ok", "refused"]


async def test_a_late_answer_for_the_view_picked_before_is_not_shown_under_the_new_one(
    server: LiveServer, desk: dict[str, Any], browser: Browser
) -> None:
    """Two views picked one after the other each read their chats; when the first answer came
    last, its rows (and a second bulk bar) were added under the second view."""
    await customer_says(server, desk["inbox"], BORIS, "Hello")
    await customer_says(server, desk["inbox"], GRIGORY, "Hi there")
    async with server.services.db.transaction() as s:
        admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
        assert admin is not None
        waiting = m.SavedView(owner_id=admin.id, name="Waiting", filters={"status": ["queued"]})
        closed = m.SavedView(owner_id=admin.id, name="Closed", filters={"status": ["closed"]})
        s.add_all([waiting, closed])
        await s.flush()
        waiting_id = waiting.id
    context, sv = await staff_page(browser, server.url, "admin")
    await count_json_reads(context, "/api/v1/views/")
    held: list[Route] = []
    asked = asyncio.Event()

    async def hold(route: Route) -> None:
        if held:
            await route.continue_()
            return
        held.append(route)
        asked.set()

    await sv.route(re.compile(rf"/api/v1/views/{waiting_id}/conversations"), hold)
    await sv.goto("/supervisor")
    box = sv.get_by_test_id("organise")
    pick = box.get_by_test_id("view-pick")
    await expect(pick).to_contain_text("Closed", timeout=TIMEOUT)
    await pick.select_option(label="Waiting")
    await asyncio.wait_for(asked.wait(), 15)  # the waiting chats are on their way
    await pick.select_option(label="Closed")
    await expect(box.get_by_test_id("view-empty")).to_have_count(1, timeout=TIMEOUT)
    await held[0].continue_()
    await sv.wait_for_function("() => window.__jsonReads === 2")  # Closed's, then Waiting's

    await expect(box.get_by_test_id("view-row")).to_have_count(0)
    await expect(box.get_by_test_id("view-empty")).to_have_count(1)
    await expect(box.get_by_test_id("bulk-apply")).to_have_count(1)
