"""The wall screen in real Chromium: an admin makes a link in the admin form, a TV with no
login opens it, the numbers change live as a conversation enters the queue, and the screen
says so when its link is revoked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import UI_DIST, screenshot_path, staff_page
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import post_inbound, token_for


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app on loopback, knowing its own address (the link the admin form shows)."""
    server = LiveServer(settings)
    server.settings.public_base_url = server.url
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def world(live_server: LiveServer) -> dict[str, Any]:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        support = await f.queue(s, "Support", [op], sla_seconds=20)
        sales = await f.queue(s, "Sales", [op])
        ids: dict[str, Any] = {"support": support.id, "inbox": (await f.inbox(s, support)).id}
        await f.inbox(s, sales)
    ids["admin_token"] = await token_for(live_server, "admin")
    return ids


async def test_wallboard_page_updates_live_as_a_conversation_enters_the_queue(
    browser: Browser, live_server: LiveServer, world: dict[str, Any]
) -> None:
    assert (UI_DIST / "wallboard.js").exists(), "build the console first: cd omni/web/ui && npm run build"
    admin_ctx, admin = await staff_page(browser, live_server.url, "admin")
    await admin.goto("/admin/wallboards/new")
    await admin.fill("#f-name", "Floor 2")
    await admin.check(f"input[name=queue_ids][value='{world['support']}']")
    await admin.click(".admin-form button[type=submit]")
    link = (await admin.locator("[data-wallboard-link]").text_content() or "").strip()
    assert link.startswith(f"{live_server.url}/wallboard?token=wb_"), link
    await admin_ctx.close()

    tv_ctx = await browser.new_context(locale="ru-RU", viewport={"width": 1920, "height": 1080})
    tv = await tv_ctx.new_page()
    try:
        await tv.goto(link)
        tiles = tv.locator("[data-testid=queue]")
        await expect(tiles).to_have_count(1)
        tile = tiles.first
        await expect(tile.locator("h2")).to_have_text("Support")
        await expect(tile.locator("[data-testid=waiting] .wb-label")).to_have_text("В очереди")
        await expect(tile.locator("[data-testid=waiting-value]")).to_have_text("0")
        await expect(tv.locator("[data-testid=link-state]")).to_have_attribute("data-state", "live")
        await expect(tv.locator("[data-testid=title]")).to_have_text("Floor 2")

        await post_inbound(live_server, world["admin_token"], world["inbox"], "tv-customer", "hello")
        await expect(tile.locator("[data-testid=waiting-value]")).to_have_text("1")
        await expect(tile.locator("[data-testid=longest-wait-value]")).to_have_text(
            re.compile(r"^\d\d:\d\d$")
        )
        await expect(tile.locator("[data-testid=longest-wait]")).to_have_class(
            re.compile(r"wb-level-(green|amber|red)")
        )
        await tv.screenshot(path=screenshot_path("wallboard.png"))

        async with httpx.AsyncClient(
            base_url=live_server.url,
            headers={"Authorization": f"Bearer {world['admin_token']}"},
            timeout=HTTP_TIMEOUT,
        ) as api:
            boards = (await api.get("/api/v1/admin/wallboards")).json()
            assert (await api.delete(f"/api/v1/admin/wallboards/{boards[0]['id']}")).status_code == 200
        state = tv.locator("[data-testid=link-state]")
        await expect(state).to_have_attribute("data-state", "revoked")
        await expect(state).to_have_text("Ссылка на табло отозвана или истекла.")
        await tv.reload()
        await expect(tv.locator("[data-testid=refused]")).to_be_visible()
    finally:
        await tv_ctx.close()


async def test_wallboard_says_connection_lost_when_the_server_goes_away(
    browser: Browser, live_server: LiveServer, world: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {world['admin_token']}"},
        timeout=HTTP_TIMEOUT,
    ) as api:
        made = await api.post("/api/v1/admin/wallboards", json={"name": "Hall"})
        assert made.status_code == 201, made.text
    tv_ctx = await browser.new_context(locale="en-US")
    tv = await tv_ctx.new_page()
    try:
        await tv.goto(made.json()["url"])
        state = tv.locator("[data-testid=link-state]")
        await expect(state).to_have_attribute("data-state", "live")
        await expect(state).to_be_hidden()
        await expect(tv.locator("[data-testid=queue]")).to_have_count(2)  # no queues chosen: all
        await live_server.stop()
        await expect(state).to_have_attribute("data-state", "lost")
        await expect(state).to_have_text("Connection lost — reconnecting…")
        await expect(state).to_be_visible()
    finally:
        await tv_ctx.close()
