"""The reports page in real Chromium on the real reports: a supervisor picks the queue summary
and a period, filters by a queue (the URL follows, the back button undoes it), reads the table
and the chart, prints, exports XLSX (opened with openpyxl) and schedules a mailing that arrives
on a loopback SMTP server (aiosmtpd) with the workbook attached.

The world is a hand-built fixture in Moscow: conversations inserted with known times and waits
(across an interval boundary and local midnight), the rollups rebuilt from them
(``rollups.rebuild_range``); every figure checked is computed by hand in the docstrings below.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from litestar.routes import HTTPRoute
from openpyxl import load_workbook
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain.reports.config import check_update_config
from omni.domain.reports.registry import REPORTS, ordered
from omni.domain.reports.rollups import rebuild_range
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, make_settings
from tests.e2e.conftest import screenshot_path, staff_page
from tests.reports.test_mailing import Smtp, attachment
from tests.reports.test_mailing import smtp as smtp  # the loopback SMTP server's fixture

MSK = ZoneInfo("Europe/Moscow")
KEY = "queue_summary"
VIP = "Support <b>VIP</b>"
"""A queue name that is also markup: the page must show it as text."""
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, smtp: Smtp) -> Settings:
    """The live server mails through the loopback SMTP server."""
    return make_settings(pg_url, data_dir=tmp_path, smtp=smtp.settings)


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(settings)
    server.settings.public_base_url = server.url
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def world(live_server: LiveServer) -> dict[str, Any]:
    """Group A (the supervisor's): queues VIP and Sales; group B: Other team; SL threshold 20 s.
    Yesterday in Moscow: VIP 3 contacts — 10:05 answered after 10 s, 10:25 (the next interval)
    after 30 s, 23:55 abandoned after 60 s —, Sales 1 (10:05, after 5 s), Other team 4 (after
    1 s); today 00:10 one more VIP contact (after 3 s). Answered contacts close 5 minutes after
    they came in. Operator ``op`` handled group A's, with status spans 10:00–10:20 yesterday.

    By hand, yesterday: VIP offered 3, answered 2, abandoned 1, lost 1, SL 1/3 = 33.3 %, ASA
    (10 + 30) / 2 = 20 s, longest wait 60 s, AHT ((300 − 10) + (300 − 30)) / 2 = 280 s; Sales
    1, 1, 0, 0, 100 %, 5 s, 5 s, 295 s."""
    yesterday = datetime.now(MSK).date() - timedelta(days=1)
    at = datetime.combine(yesterday, time(10, 5), MSK)
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow")
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        await f.user(s, "auditor", m.Role.AUDITOR, language="ru")
        await f.user(s, "rusup", m.Role.SUPERVISOR, language="ru")
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        g_a, g_b = m.Group(name="A"), m.Group(name="B")
        s.add_all([g_a, g_b])
        await s.flush()
        rusup = await s.scalar(select(m.User).where(m.User.username == "rusup"))
        assert rusup is not None
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=op.id),
                m.GroupMember(group_id=g_b.id, user_id=other.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
                m.SupervisorScope(supervisor_id=rusup.id, group_id=g_a.id),
            ]
        )
        vip = await f.queue(s, VIP, [op], group_id=g_a.id)
        sales = await f.queue(s, "Sales", [op], group_id=g_a.id)
        far = await f.queue(s, "Other team", [other], group_id=g_b.id)
        contact = m.Contact(name="c", custom_fields={}, tags=[])
        s.add(contact)
        await s.flush()

        def conv(q: m.Queue, start: datetime, wait: int | None, who: m.User) -> m.Conversation:
            answered = wait is not None
            return m.Conversation(
                contact_id=contact.id,
                channel="api",
                queue_id=q.id,
                status="closed" if answered else "abandoned",
                created_at=start,
                first_enqueued_at=start,
                enqueued_at=start,
                assigned_user_id=who.id if answered else None,
                accepted_at=start + timedelta(seconds=wait) if wait is not None else None,
                closed_at=start + (timedelta(minutes=5) if answered else timedelta(seconds=60)),
                closed_by="operator" if answered else "customer",
            )

        s.add_all(
            [
                conv(vip, at, 10, op),
                conv(vip, at + timedelta(minutes=20), 30, op),  # the next interval
                conv(vip, at + timedelta(hours=13, minutes=50), None, op),  # 23:55, still yesterday
                conv(vip, at + timedelta(hours=14, minutes=5), 3, op),  # 00:10 today
                conv(sales, at, 5, op),
                *[conv(far, at, 1, other) for _ in range(4)],
            ]
        )
        statuses = {st.code: st.id for st in await s.scalars(select(m.OperatorStatus))}
        ten = at - timedelta(minutes=5)
        s.add_all(
            [
                m.StatusHistory(
                    user_id=op.id,
                    status_id=statuses["available"],
                    status_code="available",
                    started_at=ten,
                    ended_at=ten + timedelta(minutes=5),
                ),
                m.StatusHistory(
                    user_id=op.id,
                    status_id=statuses["talking"],
                    status_code="talking",
                    started_at=ten + timedelta(minutes=5),
                    ended_at=ten + timedelta(minutes=20),
                ),
            ]
        )
        await s.flush()
        await rebuild_range(s, at - timedelta(days=2), datetime.now(UTC) + timedelta(hours=1))
    return {"vip": vip.id, "sales": sales.id, "far": far.id, "yesterday": yesterday}


def has_route(server: LiveServer, method: str, path: str) -> bool:
    for route in server.app.other_asgi_app.routes:
        if (
            isinstance(route, HTTPRoute)
            and route.path == path
            and any(method in h.http_methods for h in route.route_handlers)
        ):
            return True
    return False


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def cells(page: Page, testid: str = "report-row") -> list[dict[str, str]]:
    rows: list[dict[str, str]] = await page.eval_on_selector_all(
        f'[data-testid="{testid}"]',
        "trs => trs.map(tr => Object.fromEntries([...tr.cells].map(td => [td.dataset.col, td.textContent])))",
    )
    return rows


CANVAS_DRAWN = """c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return c.width > 0;
  return false;
}"""


SHOWN = ("period", "queue", "offered", "answered", "abandoned", "lost", "sl_pct", "asa", "wait_max", "aht")


def shown(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: r[k] for k in SHOWN} for r in rows]


def checked(sheet_rows: list[tuple[Any, ...]], queue: str) -> tuple[Any, ...]:
    """A queue's figures in a queue summary workbook: offered, answered, abandoned, lost, SL %,
    ASA, longest wait, AHT (the header names the columns)."""
    header = list(sheet_rows[0])
    titles = ("Offered", "Answered", "Abandoned", "Lost", "Service level", "ASA", "Longest wait", "AHT")
    [row] = [r for r in sheet_rows[1:] if r[header.index("Queue")] == queue]
    return tuple(row[header.index(t)] for t in titles)


VIP_YESTERDAY = (3, 2, 1, 1, 33.3, 20.0, 60.0, 280.0)


async def test_supervisor_filters_reads_table_and_chart_prints_exports_xlsx_and_schedules_a_mailing(
    live_server: LiveServer, world: dict[str, Any], browser: Browser, smtp: Smtp, tmp_path: Path
) -> None:
    context, page = await staff_page(browser, live_server.url, "sup")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.locator('[data-nav="reports"]').click()
        await page.wait_for_url(re.compile(r"/reports$"))
        await expect(page.get_by_test_id("choose-report")).to_be_visible()
        await page.locator(f'[data-testid="report-link"][data-key="{KEY}"]').click()
        app = page.locator("#app")
        await expect(app).to_have_attribute("data-state", "ready")
        assert query_of(page.url) == {"report": [KEY]}

        # Only the supervisor's queues in the picker; the report's own filters only.
        queue_picker = page.get_by_test_id("filter-queue")
        assert await queue_picker.locator("option").all_text_contents() == ["Sales", VIP]
        await expect(page.get_by_test_id("filter-operator")).to_have_count(0)

        await page.get_by_test_id("filter-preset").select_option("yesterday")
        await expect(app).to_have_attribute("data-query", "preset=yesterday")
        day = world["yesterday"].strftime("%d/%m/%Y")  # the Moscow day, as en-GB writes it
        vip_row = {
            "period": day,
            "queue": VIP,
            "offered": "3",
            "answered": "2",
            "abandoned": "1",
            "lost": "1",
            "sl_pct": "33.3%",
            "asa": "0:20",
            "wait_max": "1:00",
            "aht": "4:40",
        }
        sales_row = {
            "period": day,
            "queue": "Sales",
            "offered": "1",
            "answered": "1",
            "abandoned": "0",
            "lost": "0",
            "sl_pct": "100.0%",
            "asa": "0:05",
            "wait_max": "0:05",
            "aht": "4:55",
        }
        assert shown(await cells(page)) == [sales_row, vip_row]

        # The chart stacks answered (2 + 1) against lost (1) for the day, over both queues.
        points = json.loads(await page.get_by_test_id("report-chart").get_attribute("data-points") or "{}")
        assert points == {"labels": [day], "series": [[3], [1]]}

        await queue_picker.select_option(str(world["vip"]))
        await expect(app).to_have_attribute("data-query", f"preset=yesterday&queue={world['vip']}")
        assert query_of(page.url) == {"report": [KEY], "preset": ["yesterday"], "queue": [str(world["vip"])]}
        assert shown(await cells(page)) == [vip_row]  # markup shown as text, never parsed
        assert await page.locator(".rpt-table b").count() == 0
        assert shown(await cells(page, "totals-row")) == [{**vip_row, "period": "Total", "queue": "—"}]
        await expect(page.get_by_test_id("report-notes")).not_to_be_empty()
        chart = page.get_by_test_id("report-chart")
        await expect(chart).to_be_visible()
        assert await chart.evaluate(CANVAS_DRAWN), "the chart canvas is blank"

        # The back button undoes the queue filter; forward brings it back; a reload keeps it.
        await page.go_back()
        await expect(app).to_have_attribute("data-query", "preset=yesterday")
        assert len(await cells(page)) == 2
        await page.go_forward()
        await expect(app).to_have_attribute("data-query", f"preset=yesterday&queue={world['vip']}")
        await page.reload()
        await expect(app).to_have_attribute("data-state", "ready")
        assert [r["queue"] for r in await cells(page)] == [VIP]
        await expect(page.get_by_test_id("filter-preset")).to_have_value("yesterday")

        # Hourly grouping: the 10:25 contact joins 10:00, the 23:55 one stays in yesterday's last
        # hour (Moscow time).
        await page.get_by_test_id("filter-grouping").select_option("hour")
        await expect(app).to_have_attribute(
            "data-query", f"preset=yesterday&grouping=hour&queue={world['vip']}"
        )
        hours = [(r["period"], r["offered"], r["answered"]) for r in await cells(page)]
        assert hours == [(f"{day}, 10:00", "2", "2"), (f"{day}, 23:00", "1", "0")]
        await page.get_by_test_id("filter-grouping").select_option("day")
        await expect(app).to_have_attribute(
            "data-query", f"preset=yesterday&grouping=day&queue={world['vip']}"
        )

        # On paper: no navigation or filters, the table and the chart stay.
        await page.emulate_media(media="print")
        await expect(page.locator(".topbar")).to_be_hidden()
        await expect(page.get_by_test_id("filters")).to_be_hidden()
        await expect(page.get_by_test_id("actions")).to_be_hidden()
        await expect(page.get_by_test_id("report-table")).to_be_visible()
        await expect(chart).to_be_visible()
        await expect(page.get_by_test_id("report-period")).to_have_text(
            f"Period: Yesterday · Grouping: Day · Queues: {VIP}"
        )
        await page.screenshot(path=screenshot_path("reports-print.png"), full_page=True)
        await page.emulate_media(media="screen")
        await page.screenshot(path=screenshot_path("reports.png"), full_page=True)

        # Export XLSX: the same rows, opened with openpyxl.
        async with page.expect_download() as download_info:
            await page.get_by_test_id("export-xlsx").click()
        download = await download_info.value
        await expect(page.get_by_test_id("export-box")).to_have_attribute("data-state", "done")
        await expect(page.get_by_test_id("export-progress")).to_have_js_property("value", 1)
        target = tmp_path / "report.xlsx"
        await download.save_as(target)
        sheet = load_workbook(target, read_only=True).active
        assert sheet is not None
        table = [tuple(r) for r in sheet.iter_rows(values_only=True)]
        assert list(table[0][:4]) == ["Period", "Queue", "Offered", "Answered"]
        assert checked(table, VIP) == VIP_YESTERDAY
        assert not [r for r in table[1:] if r[1] == "Sales"]  # the queue filter held
        assert table[1][0] == datetime.combine(world["yesterday"], time(0))  # the Moscow day

        # Schedule a mailing: the mailing page opens with the report and the same filter; saved,
        # then sent now, it arrives on the SMTP server with the workbook.
        schedule = page.get_by_test_id("schedule-mailing")
        href = await schedule.get_attribute("href")
        assert href is not None and href.startswith("/reports/schedules?")
        assert query_of(href) == {
            "report": [KEY],
            "preset": ["yesterday"],
            "grouping": ["day"],
            "queue": [str(world["vip"])],
        }
        await schedule.click()
        await page.wait_for_url(re.compile(r"/reports/schedules\?"))
        await expect(page.locator("select[name=report_key]")).to_have_value(KEY)
        await expect(page.locator("select[name=preset]")).to_have_value("yesterday")
        await expect(page.locator("select[name=queue]")).to_have_values([str(world["vip"])])
        await page.select_option("#f-frequency", "daily")
        await page.select_option("#f-format", "xlsx")
        await page.fill("#f-send_time", "08:00")
        await page.select_option("#f-language", "en")
        await page.fill("#f-recipients", "boss@example.com")
        await page.click("button.primary")
        await expect(page.locator(".notice")).to_have_text("Saved.")
        row = page.locator("tr[data-schedule]")
        await expect(row).to_have_count(1)
        await row.locator("button[data-action=send]").click()
        await expect(page.locator(".notice")).to_have_text("Sent.")
        assert errors == []
    finally:
        await context.close()
    [msg] = smtp.box.messages
    assert smtp.box.envelopes == [["boss@example.com"]]
    name, content, content_type = attachment(msg)
    assert content_type == XLSX_TYPE
    assert name == f"Queue summary {world['yesterday'].isoformat()}.xlsx"
    book = load_workbook(io.BytesIO(content), read_only=True).active
    assert book is not None
    mailed = [tuple(r) for r in book.iter_rows(values_only=True)]
    assert checked(mailed, VIP) == VIP_YESTERDAY
    assert [r[1] for r in mailed[1:]] == [VIP, None]  # the VIP row and the totals


async def test_reports_page_speaks_russian_and_refuses_operators(
    live_server: LiveServer, world: dict[str, Any], browser: Browser
) -> None:
    context, page = await staff_page(browser, live_server.url, "auditor", locale="ru-RU")
    try:
        await page.goto(f"/reports?report={KEY}&preset=yesterday")
        await expect(page.locator("h1")).to_have_text("Отчёты")
        await expect(page.locator("#app")).to_have_attribute("data-state", "ready")
        await expect(page.get_by_test_id("field-preset")).to_contain_text("Период")
        # Auditors read every queue.
        options = await page.get_by_test_id("filter-queue").locator("option").all_text_contents()
        assert options == ["Other team", "Sales", VIP]
        assert [r["queue"] for r in await cells(page)] == ["Other team", "Sales", VIP]
        assert (await cells(page, "totals-row"))[0]["period"] == "Итого"

        # Custom dates: the install's day by default, then the chosen ones; a reversed period
        # is refused with the server's message, in Russian.
        await page.get_by_test_id("filter-preset").select_option("custom")
        today = datetime.now(MSK).date().isoformat()
        app = page.locator("#app")
        await expect(app).to_have_attribute("data-query", f"since={today}&until={today}")
        assert [r["queue"] for r in await cells(page)] == [VIP]  # today's 00:10 contact
        day = world["yesterday"].isoformat()
        await page.get_by_test_id("filter-since").fill(day)
        await expect(app).to_have_attribute("data-query", f"since={day}&until={today}")
        assert len(await cells(page)) == 4  # yesterday's three queues and today's VIP
        await page.get_by_test_id("filter-until").fill((world["yesterday"] - timedelta(days=1)).isoformat())
        await expect(app).to_have_attribute("data-state", "error")
        await expect(page.get_by_test_id("report-error")).to_contain_text("Не удалось загрузить отчёт")
        await page.go_back()
        await expect(app).to_have_attribute("data-state", "ready")
        await expect(page.get_by_test_id("report-error")).to_be_hidden()
    finally:
        await context.close()
    context, page = await staff_page(browser, live_server.url, "op")
    try:
        resp = await page.goto("/reports")
        assert resp is not None and resp.status == 403
        await expect(page.locator('[data-nav="reports"]')).to_have_count(0)
        api = await page.request.get("/api/v1/reports/options")
        assert api.status == 403
    finally:
        await context.close()


async def test_contact_history_searches_pages_and_opens_a_transcript(
    live_server: LiveServer, world: dict[str, Any], browser: Browser
) -> None:
    """Needs teammate "history"'s ``contact_history`` report; skipped without it."""
    if "contact_history" not in REPORTS:
        pytest.skip("the contact history report is not merged yet (teammate 'history')")
    noon = datetime.combine(world["yesterday"], time(12, 0), MSK)
    async with live_server.services.db.transaction() as s:
        crowd = m.Contact(name="Crowd", custom_fields={}, tags=[])
        ivan = m.Contact(name="Ivan <i>Petrov</i>", phone="+79161234567", custom_fields={}, tags=[])
        s.add_all([crowd, ivan])
        await s.flush()
        for n in range(50):
            at = noon + timedelta(minutes=n)
            s.add(
                m.Conversation(
                    contact_id=crowd.id,
                    channel="api",
                    queue_id=world["sales"],
                    status="closed",
                    created_at=at,
                    first_enqueued_at=at,
                    closed_at=at + timedelta(minutes=1),
                )
            )
        talk = m.Conversation(
            contact_id=ivan.id,
            channel="api",
            queue_id=world["vip"],
            status="closed",
            created_at=noon,
            first_enqueued_at=noon,
            closed_at=noon + timedelta(minutes=3),
        )
        s.add(talk)
        await s.flush()
        s.add_all(
            [
                m.Message(
                    conversation_id=talk.id, direction="in", body="<b>where is my order?</b>", created_at=noon
                ),
                m.Message(
                    conversation_id=talk.id,
                    direction="out",
                    body="On its way",
                    created_at=noon + timedelta(minutes=1),
                ),
            ]
        )
    context, page = await staff_page(browser, live_server.url, "sup")
    try:
        await page.goto("/reports?report=contact_history&preset=yesterday")
        app = page.locator("#app")
        await expect(app).to_have_attribute("data-state", "ready")
        await expect(page.get_by_test_id("filter-grouping")).to_have_count(0)  # not offered here
        # Yesterday in the supervisor's queues: 3 + 1 from the world, 50 + 1 here; 50 a page.
        await expect(page.get_by_test_id("page-info")).to_have_text("Rows 1–50 of 55")
        await expect(page.get_by_test_id("page-prev")).to_be_disabled()
        await page.get_by_test_id("page-next").click()
        await expect(page.get_by_test_id("page-info")).to_have_text("Rows 51–55 of 55")
        assert query_of(page.url)["page"] == ["2"]
        await expect(page.get_by_test_id("page-next")).to_be_disabled()
        await page.go_back()
        await expect(page.get_by_test_id("page-info")).to_have_text("Rows 1–50 of 55")

        search = page.get_by_test_id("filter-q")
        await search.fill("916 123")
        await search.press("Enter")
        await expect(app).to_have_attribute("data-query", re.compile(r"q=916\+123"))
        rows = await cells(page)
        assert [r["contact"] for r in rows] == ["Ivan <i>Petrov</i>"]
        await page.get_by_test_id("open-conversation").click()
        transcript = page.get_by_test_id("transcript-message")
        await expect(transcript).to_have_count(2)
        await expect(transcript.nth(0)).to_contain_text("<b>where is my order?</b>")
        await expect(transcript.nth(1)).to_contain_text("On its way")
        assert await page.locator('[data-testid="transcript"] b').count() == 0
    finally:
        await context.close()


@pytest.mark.parametrize(("username", "locale"), [("sup", "en-US"), ("rusup", "ru-RU")])
async def test_every_report_opens_with_data_charts_and_prints_without_console_errors(
    live_server: LiveServer, world: dict[str, Any], browser: Browser, username: str, locale: str
) -> None:
    """A new supervisor goes down the list: every report opens for yesterday with rows from the
    fixture (or says it has none), its chart is drawn, the print view keeps the table, and the
    browser logs no error. Codes are never shown raw in Russian."""
    context, page = await staff_page(browser, live_server.url, username, locale=locale)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    app = page.locator("#app")
    seen: dict[str, int] = {}
    try:
        await page.goto("/reports")
        await expect(page.get_by_test_id("choose-report")).to_be_visible()
        keys = await page.locator('[data-testid="report-link"]').evaluate_all(
            "as => as.map(a => a.dataset.key)"
        )
        assert keys == [s.key for s in ordered()]
        for key in keys:
            await page.goto(f"/reports?report={key}&preset=yesterday")
            await expect(app).to_have_attribute("data-state", "ready", timeout=20_000)
            await expect(page.get_by_test_id("report-error")).to_be_hidden()
            title = (await page.get_by_test_id("report-title").text_content()) or ""
            assert title and title != key, key  # a title from the catalog
            rows = await page.locator('[data-testid="report-row"]').count()
            seen[key] = rows
            if rows == 0:
                await expect(page.get_by_test_id("report-empty")).to_be_visible()
            if rows and await page.get_by_test_id("report-chart").count():
                assert await page.get_by_test_id("report-chart").evaluate(CANVAS_DRAWN), key
            if key == "staffing":  # regression: every 15-minute row read as the bare date
                cells_ = page.locator('[data-testid="report-row"] td[data-col="interval"]')
                assert (await cells_.nth(0).text_content() or "").endswith("00:00")
                assert (await cells_.nth(1).text_content() or "").endswith("00:15")
                # Its own options: half-hour intervals from the number input, kept in the URL and
                # in the mailing link; an out-of-range target is refused with the server's message.
                await page.get_by_test_id("filter-interval_minutes").fill("30")
                await page.get_by_test_id("filter-interval_minutes").press("Enter")
                await expect(app).to_have_attribute("data-query", "preset=yesterday&interval_minutes=30")
                await expect(page.locator('[data-testid="report-row"]')).to_have_count(48)
                href = await page.get_by_test_id("schedule-mailing").get_attribute("href") or ""
                assert query_of(href)["interval_minutes"] == ["30"]
                await page.get_by_test_id("filter-target_sl").fill("150")
                await page.get_by_test_id("filter-target_sl").press("Enter")
                await expect(app).to_have_attribute("data-state", "error")
                await expect(page.get_by_test_id("report-error")).to_contain_text("target_sl")
                refused = [e for e in errors if "status of 400" in e]
                assert len(refused) == 1  # the refusal just asked for, and nothing else
                errors.remove(refused[0])
                await page.go_back()
                await expect(app).to_have_attribute("data-state", "ready")
            headers = await page.locator(".rpt-table thead th").all_text_contents()
            assert all(h.strip() for h in headers), (key, headers)
            if locale.startswith("ru"):
                texts = await page.locator('[data-testid="report-row"] td').all_text_contents()
                raw = {"abandoned", "missed", "none", "done", "open", "actual", "forecast", "api", "voice"}
                assert not raw & {t.strip() for t in texts}, key
            await page.screenshot(path=screenshot_path(f"reports-{username}-{key}.png"), full_page=True)
            await page.emulate_media(media="print")
            await expect(page.get_by_test_id("filters")).to_be_hidden()
            await expect(page.get_by_test_id("report-table")).to_be_visible()
            await page.emulate_media(media="screen")
        await page.screenshot(path=screenshot_path(f"reports-all-{username}.png"), full_page=True)
    finally:
        await context.close()
    assert errors == []
    # The fixture's day shows up where it should: group A's two queues, one operator.
    assert seen["queue_summary"] == 2 and seen["sl_buckets"] > 0 and seen["missed_outcomes"] == 1
    assert seen["operator_performance"] >= 1 and seen["contact_history"] == 4
