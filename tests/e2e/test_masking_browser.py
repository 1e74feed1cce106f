"""Field masking in real Chromium (issue 16, perm16), one journey: the admin takes "see phones
and e-mails unmasked" from operators on the Permissions page → the operator's card shows
``+7 916 ***-**-12`` and a masked e-mail, locked, with no click-to-call → a supervisor
handling a chat of the same kind sees the full number → the operator reveals the contact, sees
the full data, and the reveal is in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import grants
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage, do_ingest_inbound
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, copy_sqlite
from tests.e2e.conftest import screenshot_path, staff_page
from tests.helpers import until

TIMEOUT = 15_000
IVAN = ("+79161234512", "ivan.petrov@mail.ru")
PETR = ("+79031112233", "petr@example.com")


@pytest.fixture
async def server(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[LiveServer]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    srv = LiveServer(settings)
    srv.settings.public_base_url = srv.url  # the operator's socket is same-origin only
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def desk(server: LiveServer) -> dict[str, Any]:
    """Group A: operator Olga in queue ``care``, supervisor Sergey (scope: group A) answering
    queue ``vip`` himself; an API inbox on each queue."""
    async with server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        olga = await f.user(s, "olga")
        sergey = await f.user(s, "sergey", m.Role.SUPERVISOR)
        group = m.Group(name="A")
        s.add(group)
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=group.id, user_id=olga.id),
                m.SupervisorScope(supervisor_id=sergey.id, group_id=group.id),
            ]
        )
        care = await f.queue(s, "care", [olga], group_id=group.id, operator_timeout_seconds=300)
        vip = await f.queue(s, "vip", [sergey], group_id=group.id, operator_timeout_seconds=300)
        return {"care": (await f.inbox(s, care)).id, "vip": (await f.inbox(s, vip)).id}


async def wait_available(server: LiveServer, username: str) -> None:
    """The status chosen in the window reached the database (routing reads it there)."""

    async def available() -> bool:
        async with server.services.db.transaction() as s:
            code = await s.scalar(
                select(m.OperatorStatus.code)
                .join(m.OperatorPresence, m.OperatorPresence.status_id == m.OperatorStatus.id)
                .join(m.User, m.User.id == m.OperatorPresence.user_id)
                .where(m.User.username == username)
            )
            return code == "available"

    await until(available, timeout=TIMEOUT / 1000, what=f"{username} available")


async def customer_calls(server: LiveServer, inbox_id: int, name: str, phone: str, email: str) -> int:
    async with server.services.db.transaction() as s:
        res = await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox_id,
                identity_kind="phone",
                identity_value=phone,
                body="Hello",
                contact_name=name,
                contact_email=email,
            ),
        )
        return res.conversation.contact_id


async def test_operator_sees_masked_data_supervisor_full_and_a_reveal_is_audited(
    server: LiveServer, desk: dict[str, Any], browser: Browser
) -> None:
    admin_ctx, admin = await staff_page(browser, server.url, "admin")
    await admin.goto("/admin/grants")
    operator_row = admin.get_by_role("link", name="Operator", exact=True)
    await operator_row.click()
    unmasked = admin.locator("#f-grant_pii_view")
    await expect(unmasked).to_be_checked()
    await expect(admin.locator("#f-grant_call_barge")).to_be_disabled()  # never an operator's
    await unmasked.uncheck()
    await admin.click("button.primary")
    await expect(admin.locator(".notice")).to_be_visible(timeout=TIMEOUT)
    await admin.goto("/admin/grants")
    operator_link = admin.get_by_role("link", name="Operator", exact=True)
    operator_grants = admin.locator("main table tr", has=operator_link)
    await expect(operator_grants).to_contain_text("reveal personal data")
    await expect(operator_grants).not_to_contain_text("unmasked")
    await admin.screenshot(path=screenshot_path("grants-list.png"), full_page=True)
    await admin_ctx.close()

    op_ctx, op = await staff_page(browser, server.url, "olga")
    sup_ctx, sup = await staff_page(browser, server.url, "sergey")
    await sup.goto("/app")
    for page in (op, sup):
        await expect(page.get_by_test_id("status-select")).to_be_enabled(timeout=TIMEOUT)
        await page.get_by_test_id("status-select").select_option("available")
    for name in ("olga", "sergey"):
        await wait_available(server, name)
    contact_id = await customer_calls(server, desk["care"], "Ivan", *IVAN)
    await customer_calls(server, desk["vip"], "Petr", *PETR)

    await op.get_by_test_id("offer-accept").click()
    phone, email = op.get_by_test_id("card-field-phone"), op.get_by_test_id("card-field-email")
    await expect(phone).to_have_value("+7 916 ***-**-12", timeout=TIMEOUT)
    await expect(email).to_have_value("i***@m***.ru")
    await expect(phone).to_be_disabled()
    await expect(op.get_by_test_id("card-call")).to_have_count(0)
    await op.screenshot(path=screenshot_path("masking-operator.png"))

    await sup.get_by_test_id("offer-accept").click()
    await expect(sup.get_by_test_id("card-field-phone")).to_have_value(PETR[0], timeout=TIMEOUT)
    await expect(sup.get_by_test_id("card-field-email")).to_have_value(PETR[1])
    await expect(sup.get_by_test_id("card-reveal")).to_have_count(0)
    await sup_ctx.close()

    await op.get_by_test_id("card-reveal").click()
    await expect(phone).to_have_value(IVAN[0], timeout=TIMEOUT)
    await expect(email).to_have_value(IVAN[1])
    await expect(phone).to_be_enabled()
    await expect(op.get_by_test_id("card-reveal")).to_have_count(0)
    await expect(op.get_by_text("the reveal is recorded in the audit log")).to_be_visible()
    await op_ctx.close()

    async with server.services.db.transaction() as s:
        rows = list(await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "contact.reveal")))
        olga = await s.scalar(select(m.User).where(m.User.username == "olga"))
        assert olga is not None
        assert [(r.user_id, r.object_id) for r in rows] == [(olga.id, str(contact_id))]


WRITTEN = "Call me back at +7 916 765-43-21 or mail ivan.petrov@mail.ru"
WRITTEN_MASKED = "Call me back at +7 916 ***-**-21 or mail i***@m***.ru"


async def customer_writes(server: LiveServer, inbox_id: int, phone: str, body: str) -> None:
    async with server.services.db.transaction() as s:
        await do_ingest_inbound(
            s, InboundMessage(inbox_id=inbox_id, identity_kind="phone", identity_value=phone, body=body)
        )


async def test_a_live_message_with_a_phone_reads_masked_for_the_operator_and_full_for_the_supervisor(
    server: LiveServer, desk: dict[str, Any], browser: Browser
) -> None:
    """Issue 16 (mask16): what the customer writes arrives live in both windows; the operator
    without ``pii.view`` reads the phone and e-mail in it masked and reveals the message (audited),
    the supervisor reads it as written."""
    async with server.services.db.transaction() as s:
        admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
        assert admin is not None
        await grants.check_set_role_grants(s, Principal.of(admin), "operator", {"pii.view": False})

    op_ctx, op = await staff_page(browser, server.url, "olga")
    sup_ctx, sup = await staff_page(browser, server.url, "sergey")
    await sup.goto("/app")
    for page in (op, sup):
        await expect(page.get_by_test_id("status-select")).to_be_enabled(timeout=TIMEOUT)
        await page.get_by_test_id("status-select").select_option("available")
    for name in ("olga", "sergey"):
        await wait_available(server, name)
    await customer_calls(server, desk["care"], "Ivan", *IVAN)
    await customer_calls(server, desk["vip"], "Petr", *PETR)
    for page in (op, sup):
        await page.get_by_test_id("offer-accept").click()
        await expect(page.get_by_test_id("message-body").first).to_have_text("Hello", timeout=TIMEOUT)

    # Both customers write a phone and an e-mail while the windows are open: live events.
    await customer_writes(server, desk["care"], IVAN[0], WRITTEN)
    await customer_writes(server, desk["vip"], PETR[0], WRITTEN)
    op_message = op.get_by_test_id("message").filter(has_text="Call me back")
    await expect(op_message.get_by_test_id("message-body")).to_have_text(WRITTEN_MASKED, timeout=TIMEOUT)
    sup_message = sup.get_by_test_id("message").filter(has_text="Call me back")
    await expect(sup_message.get_by_test_id("message-body")).to_have_text(WRITTEN, timeout=TIMEOUT)
    await expect(sup_message.get_by_test_id("message-reveal")).to_have_count(0)
    await expect(op.get_by_text("765-43-21")).to_have_count(0)
    await op.screenshot(path=screenshot_path("masking-live-message-operator.png"))
    await sup_ctx.close()

    await op_message.get_by_test_id("message-reveal").click()
    await expect(op_message.get_by_test_id("message-body")).to_have_text(WRITTEN, timeout=TIMEOUT)
    await expect(op_message.get_by_test_id("message-reveal")).to_have_count(0)
    await op_ctx.close()
    async with server.services.db.transaction() as s:
        olga = await s.scalar(select(m.User).where(m.User.username == "olga"))
        rows = list(await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "message.reveal")))
        assert olga is not None and [r.user_id for r in rows] == [olga.id]
