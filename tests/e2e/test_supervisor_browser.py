"""The supervisor's monitoring page in real Chromium: live updates without a reload, and a
status change with a reason from the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.test_realtime import OperatorClient, post_inbound, token_for


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app on loopback, knowing its own address: the staff sockets accept session cookies
    from pages of ``public_base_url`` only."""
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
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
        op.display_name = "Olga Operator"
        other = await f.user(s, "other")
        g_a, g_b = m.Group(name="A"), m.Group(name="B")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=op.id),
                m.GroupMember(group_id=g_b.id, user_id=other.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
            ]
        )
        q_a = await f.queue(s, "Support", [op], group_id=g_a.id, sla_seconds=20, operator_timeout_seconds=60)
        q_b = await f.queue(s, "Other team", [other], group_id=g_b.id)
        ib_a = await f.inbox(s, q_a)
        await f.inbox(s, q_b)
        ids: dict[str, Any] = {"op": op.id, "inbox": ib_a.id, "q_a": q_a.id}
    ids["admin_token"] = await token_for(live_server, "admin")
    ids["op_token"] = await token_for(live_server, "op")
    return ids


async def test_supervisor_watches_live_and_changes_a_status(
    live_server: LiveServer, world: dict[str, Any], browser: Browser
) -> None:
    await post_inbound(live_server, world["admin_token"], world["inbox"], "first", "hello")
    context, page = await staff_page(browser, live_server.url, "sup")
    op = OperatorClient(live_server.url, world["op_token"])
    try:
        assert page.url.endswith("/supervisor")
        queue_row = page.get_by_test_id("queue-row")
        await expect(queue_row).to_have_count(1)  # the other group's queue stays hidden
        await expect(queue_row.get_by_test_id("waiting")).to_have_text("1")
        await expect(queue_row.get_by_test_id("longest-wait")).not_to_have_text("—")
        op_row = page.locator('[data-testid="operator-row"]')
        await expect(op_row).to_have_count(1)
        await expect(op_row.get_by_test_id("operator-name")).to_have_text("Olga Operator")
        await expect(op_row.get_by_test_id("status-name")).to_have_text("Offline")
        await page.evaluate("window.__sameDocument = true")

        # Live, without a reload: the operator logs in, a second customer starts waiting.
        await op.connect()
        await expect(op_row.get_by_test_id("status-name")).to_have_text("Available", timeout=10_000)
        await post_inbound(live_server, world["admin_token"], world["inbox"], "second", "anyone?")
        await expect(queue_row.get_by_test_id("waiting")).to_have_text("2", timeout=10_000)
        assert await page.evaluate("window.__sameDocument === true"), "the page was not reloaded"

        # Change the operator's status with a reason, from the page.
        await op_row.get_by_test_id("status-change").click()
        panel = page.get_by_test_id("action-panel")
        await panel.get_by_test_id("status-select").select_option("pause")
        await panel.get_by_test_id("status-reason-input").fill("coaching session")
        await panel.get_by_test_id("status-submit").click()
        await expect(panel.get_by_test_id("action-result")).to_have_text("Done.")
        await expect(op_row.get_by_test_id("status-name")).to_have_text("Pause", timeout=10_000)
        await expect(op_row.get_by_test_id("status-reason")).to_contain_text("coaching session")
        async with live_server.services.db.transaction() as s:
            p = await s.get_one(m.OperatorPresence, world["op"])
            status = await s.get_one(m.OperatorStatus, p.status_id)
            assert (status.code, p.reason) == ("pause", "coaching session")
            audit = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "supervisor.set_status"))
            assert audit is not None and audit.input["reason"] == "coaching session"
        await op.wait_for("presence.changed", status="pause")

        # The operator answers the ringing chat; the supervisor joins it with a private note.
        offer = await op.wait_for("conversation.offered")
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        await expect(op_row.get_by_test_id("conversation-count")).to_have_text("1", timeout=10_000)
        await expect(queue_row.get_by_test_id("in-service")).to_have_text("1")
        await op_row.get_by_test_id("whisper").click()
        await panel.get_by_test_id("whisper-text").fill("<b>offer the discount</b>")
        await panel.get_by_test_id("whisper-submit").click()
        await expect(panel.get_by_test_id("action-result")).to_have_text("Sent.")
        note = await op.wait_for("message.created", direction="note")
        assert note["data"]["body"] == "<b>offer the discount</b>"
        await page.screenshot(path=screenshot_path("supervisor-monitoring.png"), full_page=True)
    finally:
        await op.sio.disconnect()
        await context.close()
