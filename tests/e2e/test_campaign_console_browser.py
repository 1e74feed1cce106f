"""Outbound campaigns in real Chromium: an operator works a preview campaign (card with the
countdown, Call, the answered call's campaign card, a callback result for me), and a supervisor
watches a running campaign live and pauses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.channels import AttemptOrder
from omni.db import models as m
from omni.db.models.outbound import CampaignState, Outcome, TargetState
from omni.domain.outbound.lifecycle import do_close_attempt, do_open_attempt
from omni.settings import Settings
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.outbound import console_world
from tests.outbound.console_world import CampaignWorld

TIMEOUT = 15_000


class AnsweringChannel:
    """A voice channel's ``PlacesAttempts`` stand-in registered in the test server: it records
    each order and, like the voice adapter on answer, opens the conversation for the reserved
    operator with the campaign's ids in its variables."""

    kind = "voice"

    def __init__(self, server: LiveServer, inbox_id: int) -> None:
        self.server = server
        self.inbox_id = inbox_id
        self.orders: list[AttemptOrder] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, msg: object) -> object:
        raise NotImplementedError

    async def place(self, order: AttemptOrder) -> None:
        self.orders.append(order)
        async with self.server.services.db.transaction() as s:
            await console_world.answer(s, order, self.inbox_id)


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    settings.routing.outbound_seconds = 0  # the tests open the attempts themselves: no scheduler
    server = LiveServer(settings)
    server.settings.public_base_url = server.url  # staff sockets are same-origin only
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def world(live_server: LiveServer) -> CampaignWorld:
    async with live_server.services.db.transaction() as s:
        return await console_world.build(s, preview_seconds=600, names=("Ivan Petrov", "Anna Smirnova"))


async def test_operator_works_a_preview_campaign_and_promises_a_callback(
    live_server: LiveServer, world: CampaignWorld, browser: Browser
) -> None:
    assert live_server.services.adapters.get("voice") is None, "this server has no real voice adapter"
    channel = AnsweringChannel(live_server, world.inbox_id)
    live_server.services.adapters.register(channel)  # type: ignore[arg-type]  # PlacesAttempts only
    context, page = await staff_page(browser, live_server.url, "op_console")
    try:
        await expect(page.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
        await expect(page.get_by_test_id("my-campaign-callbacks")).to_contain_text("My callbacks (0)")

        # The engine reserves a preview for this operator: the card appears with its countdown.
        async with live_server.services.db.transaction() as s:
            target = await s.get_one(m.CampaignTarget, world.targets[0])
            attempt = await do_open_attempt(
                s, target, caller_id="+74950000000", operator_id=world.operator_id
            )
            attempt_id = attempt.id
        card = page.get_by_test_id("preview")
        await expect(card).to_have_count(1, timeout=TIMEOUT)
        await expect(card.get_by_test_id("campaign-target")).to_have_text("Ivan Petrov")
        await expect(card.get_by_test_id("campaign-phone")).to_have_text("+74232223340")
        now_vvo = datetime.now(UTC).astimezone(_zone("Asia/Vladivostok"))
        either = "|".join((now_vvo + timedelta(minutes=k)).strftime("%H:%M") for k in (0, 1))
        await expect(card.get_by_test_id("campaign-local-time")).to_have_text(_re(f"^({either})$"))
        countdown = card.get_by_test_id("preview-countdown")
        await expect(countdown).to_have_text(_re(r"^(9|10):\d\d$"))
        # Customer data is text: the "contract" field's markup is shown, never run.
        await expect(card.get_by_test_id("campaign-field-contract")).to_contain_text(
            "<img src=x onerror=alert(0)>"
        )
        await expect(card.get_by_test_id("campaign-script").locator("b")).to_have_text("Omni Bank")
        await page.screenshot(path=screenshot_path("campaign-preview.png"), full_page=True)

        # Call: the order goes to the channel; the answered call opens with its campaign card.
        await card.get_by_test_id("preview-call").click()
        await expect(page.get_by_test_id("preview")).to_have_count(0, timeout=TIMEOUT)
        assert [(o.attempt_id, o.phone, o.operator_id) for o in channel.orders] == [
            (attempt_id, "+74232223340", world.operator_id)
        ]
        right = page.locator(".op-right")
        await expect(right.get_by_test_id("campaign-card")).to_be_visible(timeout=TIMEOUT)
        await expect(right.get_by_test_id("campaign-target")).to_have_text("Ivan Petrov")

        # Only the campaign's codes are offered; a callback code asks for the time first.
        options = await page.get_by_test_id("close-code").locator("option").all_inner_texts()
        assert sorted(options[1:]) == sorted(
            ["Campaign callback", "Campaign dnc", "Campaign finish", "Campaign retry"]
        ), options
        await page.get_by_test_id("close-code").select_option(str(world.codes["callback"]))
        await expect(page.get_by_test_id("close-callback")).to_be_visible()
        await page.get_by_test_id("close-submit").click()
        await expect(page.get_by_test_id("close-error")).to_have_text(
            "pick the time to call back", timeout=TIMEOUT
        )
        async with live_server.services.db.transaction() as s:
            conv = await s.scalar(
                select(m.Conversation).where(m.Conversation.assigned_user_id == world.operator_id)
            )
            assert conv is not None and conv.status == m.ConversationStatus.ACTIVE  # nothing was closed

        await page.get_by_test_id("close-callback-at").fill("2030-01-15T10:30")
        await page.get_by_test_id("close-callback-me").check()
        expected = await page.evaluate("new Date('2030-01-15T10:30').toISOString()")
        await page.get_by_test_id("close-submit").click()
        await expect(page.get_by_test_id("read-only")).to_be_visible(timeout=TIMEOUT)
        due = datetime.fromisoformat(expected.replace("Z", "+00:00"))
        async with live_server.services.db.transaction() as s:
            target = await s.get_one(m.CampaignTarget, world.targets[0])
            assert (target.state, target.callback_user_id, target.result_code_id) == (
                TargetState.PENDING,
                world.operator_id,
                world.codes["callback"],
            )
            assert target.next_due_at is not None and target.next_due_at.replace(tzinfo=UTC) == due
            done = await s.get_one(m.CampaignAttempt, attempt_id)
            assert done.outcome == Outcome.ANSWERED
        callbacks = page.get_by_test_id("my-campaign-callbacks")
        await expect(callbacks).to_contain_text("My callbacks (1)", timeout=TIMEOUT)
        await expect(callbacks.get_by_test_id("campaign-callback")).to_contain_text("Ivan Petrov")
        await page.screenshot(path=screenshot_path("campaign-callback.png"), full_page=True)
    finally:
        await context.close()


async def test_supervisor_watches_a_campaign_live_and_pauses_it(
    live_server: LiveServer, world: CampaignWorld, browser: Browser
) -> None:
    async with live_server.services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, world.targets[0])
        attempt = await do_open_attempt(s, target)
        attempt_id = attempt.id
    context, page = await staff_page(browser, live_server.url, "sup_console")
    try:
        row = page.get_by_test_id("campaign-row")
        await expect(row).to_have_count(1, timeout=TIMEOUT)
        await expect(row.get_by_test_id("campaign-state")).to_have_text("running")
        await expect(row.get_by_test_id("campaign-in-progress")).to_have_text("1")
        await expect(row.get_by_test_id("campaign-remaining")).to_have_text("2")
        await expect(row.get_by_test_id("campaign-contact-rate")).to_have_text("—")
        await page.evaluate("window.__sameDocument = true")

        # Live: the call ends busy; the row follows without a reload.
        async with live_server.services.db.transaction() as s:
            await do_close_attempt(s, await s.get_one(m.CampaignAttempt, attempt_id), Outcome.BUSY)
        await expect(row.get_by_test_id("campaign-outcomes")).to_have_text("busy: 1", timeout=TIMEOUT)
        await expect(row.get_by_test_id("campaign-retries")).to_have_text("1")
        await expect(row.get_by_test_id("campaign-in-progress")).to_have_text("0")
        await expect(row.get_by_test_id("campaign-contact-rate")).to_have_text("0.0 %")
        assert await page.evaluate("window.__sameDocument === true")

        await row.get_by_test_id("campaign-pause").click()
        await expect(row.get_by_test_id("campaign-state")).to_have_text("paused", timeout=TIMEOUT)
        await expect(row.get_by_test_id("campaign-start")).to_be_visible()
        async with live_server.services.db.transaction() as s:
            assert (await s.get_one(m.Campaign, world.campaign_id)).state == CampaignState.PAUSED
            audit = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "campaign.state"))
            assert (
                audit is not None and audit.user_id == world.supervisor_id and audit.input["to"] == "paused"
            )
        await page.screenshot(path=screenshot_path("campaign-supervisor.png"), full_page=True)
    finally:
        await context.close()


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _re(pattern: str) -> Any:
    import re

    return re.compile(pattern)
