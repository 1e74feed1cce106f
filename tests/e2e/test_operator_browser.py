"""The operator single window in real Chromium, next to a customer page with the widget.

One journey: pre-chat → customer message → offer in the operator window → accept → the
customer sees the operator typing → a canned reply ("/" picker) reaches the customer → hostile
markup stays text on both sides → a private note stays private → reload restores the open
conversation → end, wrap-up, close with a result code → the database has it closed with its
events. An operator of another group sees none of it and can't open it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_widget_browser import WIDGET_JS

HOSTILE = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>"
TIMEOUT = 15_000


@pytest.fixture
async def server(pg_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    assert WIDGET_JS.exists(), "build the widget first: cd widget && npm ci && npm run build"
    srv = LiveServer(make_settings(pg_url, data_dir=tmp_path))
    # The operator's socket is same-origin only: the page's origin is this server's.
    srv.settings.public_base_url = srv.url
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def world(server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    """Group A (queue ``web``: op, the widget inbox), group B (queue ``b``: other), and a
    customer site on its own origin with the one script tag."""
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op")
        op.display_name = "Olga"
        other = await f.user(s, "other")
        code = await f.result_code(s, "solved")
        q = await f.queue(
            s,
            "web",
            [op],
            script="<p>Greet the customer <b>by name</b>.</p><script>window.__pwned=3</script>",
        )
        await f.queue(s, "b", [other])
        s.add(m.QueueResultCode(queue_id=q.id, result_code_id=code.id))
        s.add(
            m.CannedReply(
                shortcut="hi", title="Greeting", body="Hello {{contact.name}}, {{operator.name}} here!"
            )
        )
        ib = await f.inbox(s, q, channel="widget")
        ib.config = {"prechat": [{"name": "name", "required": True}], "greeting": "Shop support"}
        token = ib.public_token
        ids: dict[str, Any] = {"code": code.id}

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            text=(
                "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
                f'<script src="{server.url}/widget/omni-widget.js" data-inbox="{token}" async></script>'
                "</body></html>"
            ),
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    ids["shop"] = f"http://127.0.0.1:{port}/"
    try:
        yield ids
    finally:
        await runner.cleanup()


async def text_appears(page: Page, text: str) -> None:
    await page.get_by_text(text, exact=False).first.wait_for(timeout=TIMEOUT)


async def test_customer_and_operator_side_by_side(
    server: LiveServer, world: dict[str, Any], browser: Browser
) -> None:
    _, op = await staff_page(browser, server.url, "op")
    await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
    _, other = await staff_page(browser, server.url, "other")
    await expect(other.get_by_test_id("status-select")).to_be_visible(timeout=TIMEOUT)

    customer = await (await browser.new_context(locale="en-US")).new_page()
    await customer.goto(world["shop"])
    await customer.get_by_role("button", name="Chat with us").click()
    await customer.locator(".omni-prechat input[name=name]").fill("Ann")
    await customer.get_by_role("button", name="Start chat").click()
    await customer.locator(".omni-form textarea").fill("Hello, I need help")
    await customer.keyboard.press("Enter")

    # The offer rings in the operator window, with a countdown; accepting opens the conversation.
    offer = op.get_by_test_id("offer")
    await expect(offer).to_be_visible(timeout=TIMEOUT)
    await expect(offer.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"^00:[0-2]\d$"))
    await offer.get_by_test_id("offer-accept").click()
    messages = op.get_by_test_id("message-body")
    await expect(messages.first).to_have_text("Hello, I need help", timeout=TIMEOUT)
    await expect(op.get_by_test_id("conversation-status")).to_have_text("Active")
    await expect(op.get_by_test_id("local-time")).to_have_count(0)  # no phone, no known zone
    await expect(op.get_by_test_id("script")).to_contain_text("Greet the customer by name.")
    conv_id = int((await op.get_by_test_id("conversation-item").first.get_attribute("data-id")) or 0)
    assert conv_id

    # Another group's operator: nothing offered, nothing in their queue, and opening it fails.
    await expect(other.get_by_test_id("offer")).to_have_count(0)
    await expect(other.get_by_test_id("queue-item")).to_have_count(0)
    await other.goto(f"/app#c={conv_id}")
    await expect(other.get_by_test_id("error")).to_contain_text("not found", timeout=TIMEOUT)
    await expect(other.get_by_test_id("message")).to_have_count(0)

    # The operator types: the customer sees it; "/" opens the canned replies, rendered for Ann.
    composer = op.get_by_test_id("composer")
    await composer.press_sequentially("/hi", delay=30)
    await text_appears(customer, "Operator is typing")
    picker = op.get_by_test_id("canned-picker")
    await expect(picker.get_by_test_id("canned-option")).to_have_count(1)
    await composer.press("Enter")
    await expect(composer).to_have_value("Hello Ann, Olga here!")
    await composer.press("Enter")
    await text_appears(customer, "Hello Ann, Olga here!")

    # Hostile markup is text on both sides, and nothing ran.
    await customer.locator(".omni-form textarea").fill(HOSTILE)
    await customer.keyboard.press("Enter")
    await expect(messages.last).to_have_text(HOSTILE, timeout=TIMEOUT)
    assert await op.evaluate("window.__pwned") is None
    assert await customer.evaluate("window.__pwned") is None
    assert await op.locator(".messages img, .messages script").count() == 0

    # A private note is labelled in the window and never reaches the customer.
    await op.get_by_test_id("note-toggle").check()
    await composer.fill("VIP: be extra kind")
    await op.get_by_test_id("send").click()
    note = op.locator("[data-testid=message][data-direction=note]")
    await expect(note.get_by_test_id("note-tag")).to_be_visible()
    await op.get_by_test_id("note-toggle").uncheck()

    # Reload = reconnect: the open conversation and its messages are back.
    await op.reload()
    await expect(op.get_by_test_id("message")).to_have_count(4, timeout=TIMEOUT)
    await expect(messages.nth(2)).to_have_text(HOSTILE)
    await expect(op.get_by_test_id("conversation-item")).to_have_count(1)
    await op.screenshot(path=screenshot_path("operator-window.png"))
    await customer.screenshot(path=screenshot_path("widget-with-operator.png"))
    assert "VIP: be extra kind" not in (await customer.locator("body").inner_text())

    # End → wrap-up countdown → close with a result code.
    await op.get_by_test_id("end").click()
    await expect(op.get_by_test_id("wrap-up")).to_have_text(re.compile(r"^00:[0-3]\d$"), timeout=TIMEOUT)
    await op.get_by_test_id("close-code").select_option(str(world["code"]))
    await op.get_by_test_id("close-submit").click()
    await expect(op.get_by_test_id("conversation-status")).to_have_text("Closed", timeout=TIMEOUT)
    await expect(op.get_by_test_id("conversation-item")).to_have_count(0, timeout=TIMEOUT)

    async with server.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        assert conv.status == m.ConversationStatus.CLOSED
        assert conv.result_code_id == world["code"]
        events = set(await s.scalars(select(m.Event.type).where(m.Event.conversation_id == conv_id)))
        bodies = list(
            await s.scalars(
                select(m.Message.direction).where(m.Message.conversation_id == conv_id).order_by(m.Message.id)
            )
        )
    assert {
        "conversation.offered",
        "conversation.accepted",
        "conversation.wrap_up",
        "conversation.closed",
    } <= events
    assert bodies == ["in", "out", "in", "note"]
