"""One scenario, two channels: a widget customer in Chromium (quick replies) and a Telegram
user through aiogram and the Bot API emulator (inline keyboard) go through the same published
scenario and reach the operator, whose window shows what the bot collected."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect
from sqlalchemy import select

from bots import service
from omni.db import models as m
from omni.domain.auth import Principal
from tests import factories as f
from tests.channels.telegram.emulator import BotApiEmulator
from tests.channels.telegram.test_telegram_channel import until
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import screenshot_path, staff_page
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import token_for

TIMEOUT = 15_000
DESK: dict[str, Any] = {
    "name": "Front desk",
    "start": "menu",
    "variables": [{"name": "order", "type": "number"}],
    "nodes": [
        {"id": "menu", "type": "menu", "content": {"text": "What is it about?"},
         "options": [{"id": "billing", "label": "Billing"}, {"id": "tech", "label": "Technical"}],
         "ports": {"opt:billing": "order", "opt:tech": "order", "on_max_retries": "agent"}},
        {"id": "order", "type": "ask", "input": "number", "content": {"text": "Your order number?"},
         "variable": "order", "ports": {"next": "agent", "on_max_retries": "agent"}},
        {"id": "agent", "type": "handoff", "note": "order {{order}}",
         "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
        {"id": "bye", "type": "close", "message": {"text": "Nobody is free, sorry"}},
    ],
}  # fmt: skip
_chat_ids = itertools.count(777_000)


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    emu = BotApiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def server(pg_url: str, tmp_path: Path, emulator: BotApiEmulator) -> AsyncIterator[LiveServer]:
    settings = make_settings(pg_url, data_dir=tmp_path)
    settings.telegram.api_base_url = emulator.url
    srv = LiveServer(settings)
    srv.settings.public_base_url = srv.url  # the operator page's socket is same-origin only
    settings.telegram.webhook_base_url = srv.url
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def world(server: LiveServer, emulator: BotApiEmulator) -> AsyncIterator[dict[str, Any]]:
    async with server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op", capacity=5)
        q = await f.queue(s, "front", [op])
        widget_inbox = await f.inbox(s, q, channel="widget")
        widget_inbox.config = {"scenario": "desk"}
        row = await service.create(s, Principal.of(admin), "desk", "Front desk", DESK)
        await service.publish(s, Principal.of(admin), row.id)
        token, queue_id = widget_inbox.public_token, q.id
    bot_token = emulator.add_bot()
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {await token_for(server, 'admin')}"},
        timeout=HTTP_TIMEOUT,
    ) as c:
        created = await c.post(
            "/api/v1/telegram/bots",
            json={"name": "shop-bot", "token": bot_token, "queue_id": queue_id, "mode": "webhook",
                  "queue_message": ""},
        )  # fmt: skip
        assert created.status_code == 201, created.text
    async with server.services.db.transaction() as s:
        tg_inbox = await s.get_one(m.Inbox, created.json()["inbox_id"])
        tg_inbox.config = {**tg_inbox.config, "scenario": "desk"}

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            text=f'<!doctype html><html><body><h1>Shop</h1><script src="{server.url}/widget/omni-widget.js" '
            f'data-inbox="{token}" async></script></body></html>',
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield {"shop": f"http://127.0.0.1:{port}/", "bot_token": bot_token}
    finally:
        await runner.cleanup()


async def test_widget_and_telegram_customers_share_one_scenario(
    server: LiveServer, world: dict[str, Any], emulator: BotApiEmulator, browser: Browser
) -> None:
    _, op = await staff_page(browser, server.url, "op")
    await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)

    # The widget customer: quick replies, then a typed answer.
    customer = await (await browser.new_context(locale="en-US")).new_page()
    await customer.goto(world["shop"])
    await customer.get_by_role("button", name="Chat with us").click()
    await customer.locator(".omni-form textarea").fill("hi")
    await customer.keyboard.press("Enter")
    await customer.get_by_role("button", name="Billing").click()
    await customer.locator(".omni-msg").filter(has_text="Your order number?").wait_for(timeout=TIMEOUT)
    await customer.locator(".omni-form textarea").fill("4242")
    await customer.keyboard.press("Enter")

    # The operator takes it and sees what the bot collected, on the card.
    offer = op.get_by_test_id("offer")
    await expect(offer).to_be_visible(timeout=TIMEOUT)
    await offer.get_by_test_id("offer-accept").click()
    await expect(op.get_by_test_id("bot-var-order")).to_have_text("4242", timeout=TIMEOUT)
    await op.screenshot(path=screenshot_path("operator-bot-data.png"))

    # The Telegram user: the same menu arrives as an inline keyboard; a press answers it.
    user = {"id": next(_chat_ids), "first_name": "Tim", "username": "tim"}
    bot = world["bot_token"]
    assert await emulator.deliver(bot, emulator.update(message=emulator.message(user, text="hello"))) == 200
    menu = (await until(lambda: emulator.sent(user["id"])))[0]
    keyboard = menu.params["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in keyboard] == [["Billing"], ["Technical"]]
    prompt = {"message_id": 5, "from": emulator.bots[bot].user(), "date": 1, "text": menu.params["text"],
              "chat": {"id": user["id"], "type": "private", "first_name": "Tim"},
              "reply_markup": menu.params["reply_markup"]}  # fmt: skip
    press = {"id": "cq-tech", "from": {"is_bot": False, **user}, "chat_instance": "x", "message": prompt,
             "data": "tech"}  # fmt: skip
    assert await emulator.deliver(bot, emulator.update(callback_query=press)) == 200
    await until(lambda: len(emulator.sent(user["id"])) >= 2)
    assert emulator.sent(user["id"])[1].params["text"] == "Your order number?"
    assert await emulator.deliver(bot, emulator.update(message=emulator.message(user, text="77"))) == 200

    offers = op.get_by_test_id("offer")
    await expect(offers).to_be_visible(timeout=TIMEOUT)
    await offers.get_by_test_id("offer-accept").click()
    await expect(op.get_by_test_id("bot-var-order")).to_have_text("77", timeout=TIMEOUT)
    async with server.services.db.transaction() as s:
        rows = (await s.scalars(select(m.Conversation).order_by(m.Conversation.id))).all()
        assert [(c.channel, c.variables.get("order"), c.status) for c in rows] == [
            ("widget", 4242, "active"), ("telegram", 77, "active")]  # fmt: skip
        steps = await service.node_stats(
            s, Principal(id=0, username="x", role=m.Role.ADMIN), 1, channel="telegram"
        )
    assert steps["menu"]["ports"] == {"opt:tech": 1}, "per-channel statistics"
