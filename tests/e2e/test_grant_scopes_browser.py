"""Widening a grant with a scope in real Chromium (issue 16, rest16), one journey: the admin
gives operators "open the reports" and "export reports" on the Permissions page (scope: own
conversations) → the operator opens the reports, sees only the two reports whose rows are one
operator's, only their own conversation, and exports it → the admin takes the export back →
the operator's next export is refused with the permission's name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from omni.db import models as m
from omni.domain.conversations import InboundMessage, do_ingest_inbound
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, copy_sqlite
from tests.e2e.conftest import screenshot_path, staff_page

TIMEOUT = 15_000


@pytest.fixture
async def server(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """Admin, operators Olga and Pavel in queue ``care``; one conversation handled by each."""
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    srv = LiveServer(settings)
    await srv.start()
    try:
        async with srv.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
            olga, pavel = await f.user(s, "olga"), await f.user(s, "pavel")
            inbox_id = (await f.inbox(s, await f.queue(s, "care", [olga, pavel]))).id
            for phone, user in (("+79160000001", olga), ("+79160000002", pavel)):
                res = await do_ingest_inbound(
                    s,
                    InboundMessage(inbox_id=inbox_id, identity_kind="phone", identity_value=phone, body="Hi"),
                )
                res.conversation.assigned_user_id = user.id
                res.conversation.accepted_at = res.conversation.created_at
        yield srv
    finally:
        await srv.stop()


async def test_admin_widens_operator_export_to_own_rows_then_narrows_it_again(
    server: LiveServer, browser: Browser
) -> None:
    admin_ctx, admin = await staff_page(browser, server.url, "admin")
    await admin.goto("/admin/grants")
    await admin.get_by_role("link", name="Operator", exact=True).click()
    export = admin.locator("#f-grant_report_export")
    await expect(export).not_to_be_checked()
    await expect(export).to_be_enabled()  # a widening the admin may give operators
    await expect(admin.locator("#f-grant_call_barge")).to_be_disabled()  # never an operator's
    await expect(admin.locator("#f-scope_report_export")).to_have_value("own")
    await admin.locator("#f-grant_page_reports").check()
    await export.check()
    await admin.click("button.primary")
    await expect(admin.locator(".notice")).to_be_visible(timeout=TIMEOUT)
    await admin.goto("/admin/grants")
    operator_row = admin.locator("main table tr", has=admin.get_by_role("link", name="Operator", exact=True))
    await expect(operator_row).to_contain_text("export reports (own conversations)")
    await admin.screenshot(path=screenshot_path("grants-widened.png"), full_page=True)

    op_ctx, op = await staff_page(browser, server.url, "olga")
    await op.goto("/reports?report=contact_history&preset=today")
    await expect(op.locator("#app")).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    await expect(op.locator('[data-testid="report-list"] [data-key]')).to_have_count(2)
    rows = op.get_by_test_id("report-row")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("+79160000001")
    await expect(op.get_by_text("+79160000002")).to_have_count(0)
    await op.get_by_test_id("export-csv").click()
    await expect(op.get_by_test_id("export-box")).to_have_attribute("data-state", "done", timeout=TIMEOUT)
    await op.screenshot(path=screenshot_path("grants-operator-report.png"), full_page=True)

    await admin.get_by_role("link", name="Operator", exact=True).click()
    await admin.locator("#f-grant_report_export").uncheck()
    await admin.click("button.primary")
    await expect(admin.locator(".notice")).to_be_visible(timeout=TIMEOUT)
    await admin_ctx.close()

    await op.reload()
    await expect(op.locator("#app")).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    await expect(op.get_by_test_id("report-row")).to_have_count(1)  # the report itself stays
    await op.get_by_test_id("export-csv").click()
    box = op.get_by_test_id("export-box")
    await expect(box).to_have_attribute("data-state", "failed", timeout=TIMEOUT)
    await expect(box).to_contain_text("your role has no permission to export reports")
    await op_ctx.close()
