"""The widget, the operator window and the supervisor page catch up on ``sync`` in Chromium,
without a reload.

``sync`` is what a node sends its own sockets when its Redis link had a hole (see
docs/events.md, "Redis restarts"). Here two messages are stored that no live path ever
carried (as if their pushes were lost with Redis); after the server's ``sync`` both pages
show them, once and in order, and neither page reloaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect
from sqlalchemy import delete

from omni.db import models as m
from omni.domain.conversations import InboundMessage, do_ingest_inbound
from tests import factories as f
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import staff_page
from tests.e2e.test_widget_browser import WIDGET_JS
from tests.test_realtime import OperatorClient, token_for

TIMEOUT = 15_000


@pytest.fixture
async def server(pg_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    assert WIDGET_JS.exists(), "build the widget first: cd widget && npm ci && npm run build"
    srv = LiveServer(make_settings(pg_url, data_dir=tmp_path))
    srv.settings.public_base_url = srv.url  # the operator's socket is same-origin only
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def shop(server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op], operator_timeout_seconds=120)
        token = (await f.inbox(s, q, channel="widget")).public_token

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
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "op_token": await token_for(server, "op")}
    finally:
        await runner.cleanup()


async def _store_without_push(server: LiveServer, conv_id: int, direction: str, body: str) -> None:
    """A message whose live push never arrived (no event, no widget emit)."""
    async with server.services.db.transaction() as s:
        s.add(m.Message(conversation_id=conv_id, direction=direction, body=body, delivery="sent"))


async def _mark(page: Page) -> None:
    await page.evaluate("window.__noReload = 1")


async def _not_reloaded(page: Page) -> bool:
    return bool(await page.evaluate("window.__noReload === 1"))


async def test_widget_and_operator_window_catch_up_on_sync_without_reload(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    op_socket = OperatorClient(server.url, shop["op_token"])
    await op_socket.connect()
    assert (await op_socket.call("set_status", {"status": "available"}))["ok"]
    customer = await (await browser.new_context(locale="en-US")).new_page()
    await customer.goto(shop["url"])
    await customer.get_by_role("button", name="Chat with us").click()
    await customer.locator(".omni-form textarea").fill("hello there")
    await customer.locator(".omni-form textarea").press("Enter")
    offer = await op_socket.wait_for("conversation.offered", timeout=15)
    conv_id = int(offer["data"]["id"])
    assert (await op_socket.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
    assert (await op_socket.call("send", {"conversation_id": conv_id, "body": "first reply"}))["ok"]
    await expect(customer.locator(".omni-out", has_text="first reply")).to_have_count(1, timeout=TIMEOUT)

    _, window = await staff_page(browser, server.url, "op")
    await window.goto(f"/app#c={conv_id}")
    messages = window.get_by_test_id("messages")
    await expect(messages).to_contain_text("first reply", timeout=TIMEOUT)
    await _mark(customer)
    await _mark(window)

    await _store_without_push(server, conv_id, "out", "lost reply")
    await _store_without_push(server, conv_id, "in", "lost customer line")
    sio = server.app.engineio_server
    for namespace in ("/widget", "/operator"):
        await sio.emit("sync", {"seq": 0}, namespace=namespace)

    lost = customer.locator(".omni-out", has_text="lost reply")
    await expect(lost).to_have_count(1, timeout=TIMEOUT)
    texts = await customer.locator(".omni-msg").all_inner_texts()
    assert [t for t in texts if "reply" in t][:2] == ["first reply", "lost reply"], texts
    await expect(messages).to_contain_text("lost customer line", timeout=TIMEOUT)
    await expect(messages).to_contain_text("lost reply", timeout=TIMEOUT)
    assert await _not_reloaded(customer) and await _not_reloaded(window), "nobody reloaded"

    await sio.emit("sync", {"seq": 0}, namespace="/widget")  # a second sync shows nothing twice
    line = customer.locator(".omni-msg", has_text="lost customer line")
    await expect(line).to_have_count(1, timeout=TIMEOUT)
    await expect(lost).to_have_count(1)
    await op_socket.sio.disconnect()


async def test_supervisor_page_reloads_its_snapshot_on_sync(server: LiveServer, browser: Browser) -> None:
    async with server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
        group = m.Group(name="A")
        s.add(group)
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=group.id, user_id=op.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=group.id),
            ]
        )
        inbox = await f.inbox(s, await f.queue(s, "Support", [op], group_id=group.id))
    _, page = await staff_page(browser, server.url, "sup")
    waiting = page.get_by_test_id("queue-row").get_by_test_id("waiting")
    await expect(waiting).to_have_text("0", timeout=TIMEOUT)
    await _mark(page)
    # A customer starts waiting, and every event about it is lost (as if with Redis).
    async with server.services.db.transaction() as s:
        await do_ingest_inbound(
            s, InboundMessage(inbox_id=inbox.id, identity_kind="external", identity_value="c1", body="hi")
        )
        await s.flush()
        await s.execute(delete(m.Event))
    await server.app.engineio_server.emit("sync", {"seq": 0}, namespace="/supervisor")
    await expect(waiting).to_have_text("1", timeout=TIMEOUT)
    assert await _not_reloaded(page), "the page was not reloaded"
