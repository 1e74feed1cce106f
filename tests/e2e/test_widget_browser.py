"""The widget in real Chromium on a customer's page (another origin), talking to an operator."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page
from sqlalchemy import select

from channels.widget import identity_hash
from omni import crypto
from omni.db import models as m
from omni.domain import automated
from omni.settings import WidgetSettings
from tests import factories as f
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import ARTIFACTS
from tests.test_realtime import OperatorClient, token_for

SITE_SECRET = "shop-site-secret-123456"
WIDGET_JS = Path(__file__).resolve().parents[2] / "widget" / "dist" / "omni-widget.js"


@pytest.fixture
async def server(pg_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    assert WIDGET_JS.exists(), (
        "build the widget first (scripts/test.sh does: cd widget && npm ci && npm run build)"
    )
    srv = LiveServer(make_settings(pg_url, data_dir=tmp_path, widget=WidgetSettings(max_upload_bytes=2048)))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def shop(server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    """A customer's site on its own origin, with the one script tag."""
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        ib = await f.inbox(s, q, channel="widget")
        ib.config = {
            "prechat": [{"name": "name", "required": True}],
            "greeting": "Shop support",
            "colour": "#aa0000",
        }
        token = ib.public_token
        ib.secret_encrypted = crypto.encrypt(server.settings.effective_secret_key(), SITE_SECRET)

    def html(extra: str = "") -> str:
        return (
            "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
            f'<script src="{server.url}/widget/omni-widget.js" data-inbox="{token}" {extra} async></script>'
            "</body></html>"
        )

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=html(), content_type="text/html")

    async def forged_login(_: web.Request) -> web.Response:
        return web.Response(
            text=html('data-user-id="42" data-user-hash="' + "0" * 64 + '"'), content_type="text/html"
        )

    async def real_login(_: web.Request) -> web.Response:
        signed = identity_hash(SITE_SECRET, "42")
        return web.Response(
            text=html(f'data-user-id="42" data-user-hash="{signed}"'), content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/forged", forged_login)
    app.router.add_get("/account", real_login)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "op_token": await token_for(server, "op")}
    finally:
        await runner.cleanup()


async def _text_appears(page: Page, text: str) -> None:
    await page.get_by_text(text, exact=False).first.wait_for(timeout=15_000)


async def test_customer_chats_with_operator_in_chromium(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    try:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(shop["url"])
        await page.get_by_role("button", name="Chat with us").click()
        await _text_appears(page, "Shop support")  # the inbox's greeting
        colour = await page.locator(".omni-launcher").evaluate("b => getComputedStyle(b).backgroundColor")
        assert colour == "rgb(170, 0, 0)", "the inbox's colour themes the widget"
        await page.get_by_role("button", name="Start chat").click()
        await _text_appears(page, "Please fill in this field")  # required pre-chat field
        await page.locator(".omni-prechat input[name=name]").fill("Ann")
        await page.get_by_role("button", name="Start chat").click()
        hostile = "<img src=x onerror=window.__xss=1>"
        await page.locator(".omni-form textarea").fill(hostile)
        await page.keyboard.press("Enter")
        offer = await op.wait_for("conversation.offered", timeout=15)
        conv_id = offer["data"]["id"]
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        await op.call("typing", {"conversation_id": conv_id, "typing": True})
        await _text_appears(page, "Operator is typing")
        assert (await op.call("send", {"conversation_id": conv_id, "body": "Hello Ann, <b>welcome</b>"}))[
            "ok"
        ]
        await _text_appears(page, "Hello Ann, <b>welcome</b>")
        assert await page.locator(".omni-msg.omni-in").first.text_content() == hostile + "✓"
        assert await page.evaluate("window.__xss") is None, "customer text must never run"
        await page.screenshot(path=str(ARTIFACTS / "widget-chat.png"))
        # The customer's name from the pre-chat form reached the contact card.
        async with server.services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            assert (await s.get_one(m.Contact, conv.contact_id)).name == "Ann"
        # Bot buttons are quick replies: a press sends the label and is gone from the page.
        async with server.services.db.transaction() as s:
            await automated.send_automated(
                s, conv_id, "Anything else?", buttons=[{"id": "no", "label": "No, thanks"}]
            )
        await page.get_by_role("button", name="No, thanks").click()
        await page.locator(".omni-quick").wait_for(state="detached", timeout=10_000)
        reply = await op.wait_for("message.created", body="No, thanks")
        assert reply["data"]["attachments"] == [{"kind": "button_reply", "id": "no"}]
        # Oversize upload: a clear error in the widget, nothing stored.
        with tempfile.NamedTemporaryFile(suffix=".png") as big:
            big.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096)
            big.flush()
            await page.locator(".omni-form input[type=file]").set_input_files(big.name)
            await _text_appears(page, "the file is larger than 2 KB")
        # Reload: history is back.
        await page.reload()
        await page.get_by_role("button", name="Chat with us").click()
        await _text_appears(page, "Hello Ann, <b>welcome</b>")
        assert await page.locator(".omni-msg").count() == 4
        await page.screenshot(path=str(ARTIFACTS / "widget-after-reload.png"))
    finally:
        await op.sio.disconnect()
    # Let the operator's presence settle before the server stops.
    await asyncio.sleep(0.1)


async def test_network_drop_loses_and_duplicates_nothing(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    try:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(shop["url"])
        await page.get_by_role("button", name="Chat with us").click()
        await page.locator(".omni-prechat input[name=name]").fill("Bob")
        await page.get_by_role("button", name="Start chat").click()
        box = page.locator(".omni-form textarea")
        await box.fill("before the drop")
        await page.keyboard.press("Enter")
        await _text_appears(page, "You are number 1 in line")
        await context.set_offline(True)
        await page.evaluate("window.omniWidget && window.omniWidget['socket'].io.engine.close()")
        await box.fill("typed while offline")
        await page.keyboard.press("Enter")
        await asyncio.sleep(1)
        await context.set_offline(False)
        offer = await op.wait_for("conversation.offered", timeout=15)
        conv_id = offer["data"]["id"]
        await op.call("accept", {"offer_id": offer["data"]["offer_id"]})
        for _ in range(150):
            async with server.services.db.transaction() as s:
                bodies = list(
                    await s.scalars(
                        select(m.Message.body)
                        .where(m.Message.conversation_id == conv_id)
                        .order_by(m.Message.id)
                    )
                )
            if len(bodies) >= 2:
                break
            await asyncio.sleep(0.1)
        assert bodies == ["before the drop", "typed while offline"]
        await page.wait_for_timeout(500)
        assert await page.locator(".omni-msg.omni-in").count() == 2, "no duplicate bubbles after the resend"
    finally:
        await op.sio.disconnect()


async def test_site_identity_forged_hash_is_refused(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    page = await (await browser.new_context(locale="en-US")).new_page()
    await page.goto(shop["url"] + "forged")
    await page.get_by_role("button", name="Chat with us").click()
    await _text_appears(page, "the user_hash does not match this user_id")
    good = await (await browser.new_context(locale="ru-RU")).new_page()
    await good.goto(shop["url"] + "account")
    await good.get_by_role("button", name="Напишите нам").click()  # Russian by browser language
    await good.locator(".omni-prechat input[name=name]").fill("Иван")
    await good.get_by_role("button", name="Начать чат").click()
    await good.locator(".omni-form textarea").fill("Привет")
    await good.keyboard.press("Enter")
    await _text_appears(good, "Вы 1-й в очереди")
    await good.screenshot(path=str(ARTIFACTS / "widget-ru.png"))
