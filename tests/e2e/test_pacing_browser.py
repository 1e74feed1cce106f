"""A predictive campaign's pacing figures in real Chromium and over REST: the supervisor sees the
answer rate and the abandon rate of the rolling window and of today against the target, and a
campaign over its target says it dials progressive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, expect

from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import staff_page
from tests.helpers import HTTP_TIMEOUT
from tests.outbound import console_world
from tests.outbound.test_pacing import _history

TIMEOUT = 15_000


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    settings.routing.outbound_seconds = 0  # history is written by the test: no scheduler
    server = LiveServer(settings)
    server.settings.public_base_url = server.url  # staff sockets are same-origin only
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_supervisor_sees_the_abandon_rate_over_target_of_a_predictive_campaign(
    live_server: LiveServer, browser: Browser
) -> None:
    async with live_server.services.db.transaction() as s:
        world = await console_world.build(s, names=("Ivan Petrov",))
        campaign = await s.get_one(m.Campaign, world.campaign_id)
        campaign.dial_mode = "predictive"
        campaign.timezone = "UTC"
    now = datetime.now(UTC)
    # The last minutes: 100 calls, 32 answered by a person, 2 of them dropped (6.25 % > 3 %).
    await _history(
        live_server.services.db,
        now,
        placed=100,
        answered=30,
        dropped=2,
        age=timedelta(minutes=2),
        campaign_id=world.campaign_id,
    )
    context, page = await staff_page(browser, live_server.url, "sup_console")
    try:
        row = page.get_by_test_id("campaign-row")
        await expect(row).to_have_count(1, timeout=TIMEOUT)
        pacing = row.get_by_test_id("campaign-pacing")
        await expect(pacing.get_by_test_id("pacing-answer-rate")).to_have_text("answered 32.0 %")
        abandon = pacing.get_by_test_id("pacing-abandon-rate")
        await expect(abandon).to_have_text("abandoned 6.2 % (target 3.0 %)")
        await expect(pacing.get_by_test_id("pacing-abandon-today")).to_have_text("today 6.2 %")
        await expect(pacing).to_have_attribute("data-over-target", "true")
        await expect(pacing).to_contain_text("over target: dialing progressive")
    finally:
        await context.close()

    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as sup:
        resp = await sup.post("/api/v1/auth/login", json={"username": "sup_console", "password": f.PASSWORD})
        assert resp.status_code == 200, resp.text
        body = (await sup.get(f"/api/v1/campaigns/{world.campaign_id}/stats")).json()
    assert body["pacing"] == {
        "answer_rate": 32.0,
        "abandon_rate": 6.2,
        "abandon_rate_today": 6.2,
        "answered_today": 32,
        "window_attempts": 100,
        "target_abandon_pct": 3.0,
        "over_target": True,
    }
