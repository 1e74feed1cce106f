"""Chat service levels in real Chromium (one journey): an admin sets the queue's policy in the
admin form (a bad value is refused next to its field), a chat waits, the operator takes it;
its countdown turns from ok to warning on the page's own clock, and when the breach deadline
fires the item turns red in the operator's and the supervisor's lists and each is alerted
exactly once; the late reply stops the clock; the operator sends the transcript on the
customer's request, and closing mails it again (escaped) to the loopback SMTP server.

The browsers' clocks are pinned (``clock.set_fixed_time``) and the breach deadline is fired
with ``run_due_deadlines(now=due)``: the test waits for conditions, never for time to pass.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.engine import run_due_deadlines
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, make_settings
from tests.e2e.conftest import screenshot_path, staff_page
from tests.helpers import until
from tests.reports.test_mailing import Smtp
from tests.reports.test_mailing import smtp as smtp  # the loopback SMTP server, re-exported

TIMEOUT = 15_000
HOSTILE = "<img src=x onerror=alert(1)> refund?"


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, smtp: Smtp) -> Settings:
    return make_settings(pg_url, data_dir=tmp_path, smtp=smtp.settings)


async def test_a_chat_warns_breaches_alerts_once_and_mails_its_transcript(
    browser: Browser, live_server: LiveServer, smtp: Smtp
) -> None:
    srv = live_server
    srv.settings.public_base_url = srv.url  # the consoles' sockets are same-origin only
    async with srv.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op", display_name="Olga")
        group = m.Group(name="Support")
        s.add(group)
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=group.id, user_id=op.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=group.id),
            ]
        )
        q = await f.queue(s, "help", [op], group_id=group.id)
        code = await f.result_code(s, "solved")
        s.add(m.QueueResultCode(queue_id=q.id, result_code_id=code.id))
        inbox = await f.inbox(s, q)
        ids = {"queue": q.id, "inbox": inbox.id, "code": code.id, "op": op.id}

    # The admin form: a negative deadline is refused next to its field, then saved.
    _, admin = await staff_page(browser, srv.url, "boss")
    await admin.goto("/admin/sla/new")
    await admin.select_option("#f-queue_id", str(ids["queue"]))
    await admin.fill("#f-first_response_seconds", "-5")
    await admin.fill("#f-next_response_seconds", "0")
    await admin.fill("#f-warning_percent", "1")
    await admin.check("#f-transcript_at_close")
    await admin.click("button.primary")
    await expect(admin.locator('.field-error[data-field="first_response_seconds"]')).to_be_visible()
    await expect(admin.locator("#f-first_response_seconds")).to_have_class("invalid")
    await admin.fill("#f-first_response_seconds", "600")
    await admin.click("button.primary")
    await expect(admin.locator(".notice")).to_be_visible()
    await admin.goto("/admin/sla")
    await expect(admin.locator("table")).to_contain_text("help")
    await expect(admin.locator("table")).to_contain_text("600")

    _, oper = await staff_page(browser, srv.url, "op")
    await expect(oper.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
    _, watch = await staff_page(browser, srv.url, "sup")
    await watch.goto("/supervisor")

    # The consoles' clocks stand still from here (small steps only: a jump of minutes would
    # look like a dead connection to Socket.IO's heartbeat).
    for page in (oper, watch):
        await page.clock.set_fixed_time(datetime.now(UTC))
    async with srv.services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=ids["inbox"], identity_kind="external", identity_value="ann", body=HOSTILE,
                contact_name="Ann", contact_email="ann@example.com",
            ),
        )  # fmt: skip
        conv_id = res.conversation.id
    await oper.get_by_test_id("offer-accept").click(timeout=TIMEOUT)
    item = oper.locator(f'[data-testid="conversation-item"][data-id="{conv_id}"]')
    await expect(item).to_have_attribute("data-sla", "ok", timeout=TIMEOUT)

    async def taken() -> m.SlaTarget | None:
        async with srv.services.db.transaction() as s:
            row = await s.scalar(select(m.SlaTarget).where(m.SlaTarget.conversation_id == conv_id))
            return row if row is not None and row.user_id == ids["op"] else None

    target = await until(taken, what="the first-reply clock handed to the operator")
    warning_at, due_at = target.warning_at, target.due_at
    assert due_at - warning_at == timedelta(seconds=594)

    # Past the warning on the consoles' clocks: amber, no event needed.
    for page in (oper, watch):
        await page.clock.set_fixed_time(warning_at + timedelta(seconds=1))
    await expect(item).to_have_attribute("data-sla", "warning", timeout=TIMEOUT)
    watched = watch.locator(f'[data-testid="conversation"][data-conversation-id="{conv_id}"]')
    await expect(watched).to_have_attribute("data-sla", "warning", timeout=TIMEOUT)

    # The breach deadline fires (twice asked, once done): red, and one alert each.
    await run_due_deadlines(srv.services.db, now=due_at)
    await run_due_deadlines(srv.services.db, now=due_at + timedelta(minutes=5))
    await expect(item).to_have_attribute("data-sla", "breached", timeout=TIMEOUT)
    await expect(watched).to_have_attribute("data-sla", "breached", timeout=TIMEOUT)
    await expect(item.get_by_test_id("sla")).to_have_text(re.compile(r"^−\d+:\d\d$"))  # overdue
    await expect(oper.get_by_test_id("sla-alert")).to_have_count(1, timeout=TIMEOUT)
    await expect(watch.get_by_test_id("sla-alert")).to_have_count(1, timeout=TIMEOUT)
    await expect(oper.get_by_test_id("sla-alert")).to_contain_text(f"#{conv_id}")
    await oper.screenshot(path=screenshot_path("sla-operator-breached.png"))
    await watch.screenshot(path=screenshot_path("sla-supervisor-breached.png"))

    # The late reply stops the clock: the badge goes (the sentinel that every event so far was
    # applied), and still exactly one alert on each console. The click on the conversation that
    # the accept is opening anyway must not cost the reply typed right after it.
    await item.click()
    composer = oper.get_by_test_id("composer")
    await composer.fill("Sorry for the wait, Ann")
    await composer.press("Enter")
    reply = oper.locator('[data-testid="message"][data-direction="out"]', has_text="Sorry for the wait, Ann")
    await expect(reply).to_have_count(1, timeout=TIMEOUT)
    await expect(composer).to_have_value("")
    await expect(item.get_by_test_id("sla")).to_have_count(0, timeout=TIMEOUT)

    async def clock_stopped() -> bool:
        async with srv.services.db.transaction() as s:
            row = await s.get_one(m.SlaTarget, target.id)
            return row.ended_at is not None and row.replied_at is not None

    await until(clock_stopped, what="the first-reply clock stopped by the late reply")
    await expect(watched.get_by_test_id("sla")).to_have_count(0, timeout=TIMEOUT)  # live, no reload
    await expect(oper.get_by_test_id("sla-alert")).to_have_count(1)
    await expect(watch.get_by_test_id("sla-alert")).to_have_count(1)

    # The customer asks for the transcript: a bad address is refused, the card's one is used.
    email = oper.get_by_test_id("transcript-email")
    await expect(email).to_have_value("ann@example.com", timeout=TIMEOUT)
    await email.fill("not-an-address")
    await oper.get_by_test_id("transcript-send").click()
    await expect(oper.get_by_test_id("transcript-result")).to_contain_text(
        "not an e-mail address", timeout=TIMEOUT
    )
    await email.fill("")
    await oper.get_by_test_id("transcript-send").click()
    await expect(oper.get_by_test_id("transcript-result")).to_have_text(
        "Sent to ann@example.com.", timeout=TIMEOUT
    )
    await until(lambda: len(smtp.box.messages) == 1, what="the requested transcript")

    # Close: the queue mails the transcript at close too; customer markup stays text.
    await oper.get_by_test_id("end").click()
    await oper.get_by_test_id("close-code").select_option(str(ids["code"]), timeout=TIMEOUT)
    await oper.get_by_test_id("close-submit").click()
    await until(lambda: len(smtp.box.messages) == 2, what="the transcript mailed at close")
    mail = smtp.box.messages[1]
    assert mail["To"] == "ann@example.com"
    html_part, text_part = mail.get_body(("html",)), mail.get_body(("plain",))
    assert html_part is not None and text_part is not None
    markup, text = html_part.get_content(), text_part.get_content()
    assert "&lt;img src=x onerror=alert(1)&gt; refund?" in markup and "<img" not in markup
    assert HOSTILE in text and "Sorry for the wait, Ann" in text and "Olga" in text
    async with srv.services.db.transaction() as s:
        breaches = list(await s.scalars(select(m.Event.id).where(m.Event.type == "sla.breached")))
        assert len(breaches) == 1
