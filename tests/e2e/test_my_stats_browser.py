"""The operator's own statistics panel in real Chromium: it follows a close without a reload,
in the operator's language, and the REST endpoint behind it answers only for the caller."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from omni.db import models as m
from tests.conftest import LiveServer
from tests.e2e.conftest import staff_page
from tests.e2e.test_operator_browser import BORIS, customer_says, desk, server  # noqa: F401

TIMEOUT = 15_000


async def test_my_stats_panel_counts_a_closed_conversation_at_once(
    server: LiveServer,  # noqa: F811
    desk: dict[str, Any],  # noqa: F811
    browser: Browser,
) -> None:
    async with server.services.db.transaction() as s:
        (await s.get_one(m.User, desk["op"])).language = "ru"
    _, op = await staff_page(browser, server.url, "olga", locale="ru-RU")
    await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
    panel = op.get_by_test_id("my-stats")
    await expect(panel).to_contain_text("Моя статистика", timeout=TIMEOUT)
    await expect(op.get_by_test_id("my-stats-today-handled")).to_have_text("0")
    await expect(op.get_by_test_id("my-stats-today-aht")).to_have_text("—")

    await customer_says(server, desk["inbox"], BORIS, "Hello")
    await op.get_by_test_id("offer-accept").click()
    await expect(op.get_by_test_id("conversation-contact")).to_have_text(BORIS, timeout=TIMEOUT)
    await op.get_by_test_id("end").click()
    await op.get_by_test_id("close-code").select_option(str(desk["code"]))
    await op.get_by_test_id("close-submit").click()

    await expect(op.get_by_test_id("my-stats-today-handled")).to_have_text("1", timeout=TIMEOUT)
    await expect(op.get_by_test_id("my-stats-week-handled")).to_have_text("1")
    await expect(op.get_by_test_id("my-stats-today-aht")).not_to_have_text("—")
    await expect(panel).to_contain_text("Обработано")
    mine = await op.request.get("/api/v1/me/stats")
    body = await mine.json()
    assert (body["today"]["handled"], body["timezone"]) == (1, "UTC")
    assert body["today"]["aht"] is not None and body["today"]["csat"] is None
