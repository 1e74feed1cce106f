"""The reports page in real Chromium: a supervisor picks a report and a period, filters by a
queue (the URL follows, the back button undoes it), reads the table and the chart, prints,
exports XLSX and opens the mailing schedule with the same filter.

The journey runs a report registered by this module (``e2e_contacts``: contacts per day and
queue straight from the conversations), so it needs no teammate's report; the merger switches
it to ``queue_summary``. The XLSX step needs the export jobs API
(``POST /api/v1/reports/{key}/exports``) and the contact history journey needs its report
(``contact_history``): both teammate "history"'s; each is skipped, with a reason, while absent.
Both were run against a trial merge of ``wt/history``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
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
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports import Chart, Column, Kind, ReportSpec, ReportTable, Scope
from omni.domain.reports.config import check_update_config
from omni.domain.reports.period import floor_interval, group_start
from omni.domain.reports.registry import REPORTS, register
from omni.domain.reports.table import mean, pct
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page

MSK = ZoneInfo("Europe/Moscow")
KEY = "e2e_contacts"
VIP = "Support <b>VIP</b>"
"""A queue name that is also markup: the page must show it as text."""


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _contacts(session: AsyncSession, scope: Scope) -> ReportTable:
    """Contacts per group (the filter's grouping) and queue: offered, answered, % and mean wait."""
    columns = [
        Column("period", Kind.DATETIME, "Period"),
        Column("queue", Kind.TEXT, "Queue"),
        Column("offered", Kind.COUNT, "Offered"),
        Column("answered", Kind.COUNT, "Answered"),
        Column("answered_pct", Kind.PERCENT, "Answered %"),
        Column("asa", Kind.SECONDS, "ASA"),
    ]
    chart = Chart("bar", "period", ("offered", "answered"))
    stmt = (
        select(m.Conversation, m.Queue.name)
        .join(m.Queue, m.Queue.id == m.Conversation.queue_id)
        .where(
            m.Conversation.first_enqueued_at >= scope.period.start,
            m.Conversation.first_enqueued_at < scope.period.end,
        )
    )
    if scope.queue_ids is not None:
        stmt = stmt.where(m.Conversation.queue_id.in_(scope.queue_ids))
    groups: dict[tuple[datetime, str], list[m.Conversation]] = defaultdict(list)
    for conv, queue in (await session.execute(stmt)).all():
        assert conv.first_enqueued_at is not None
        start = group_start(
            floor_interval(_aware(conv.first_enqueued_at)), scope.filter.grouping, scope.period.tz
        )
        groups[(start, queue)].append(conv)
    rows: list[list[Any]] = []
    all_offered = all_answered = 0
    all_wait = 0.0
    for (start, queue), convs in sorted(groups.items()):
        waits = [
            (_aware(c.accepted_at) - _aware(c.first_enqueued_at)).total_seconds()
            for c in convs
            if c.accepted_at is not None and c.first_enqueued_at is not None
        ]
        rows.append(
            [start, queue, len(convs), len(waits), pct(len(waits), len(convs)), mean(sum(waits), len(waits))]
        )
        all_offered += len(convs)
        all_answered += len(waits)
        all_wait += sum(waits)
    totals = [
        None,
        None,
        all_offered,
        all_answered,
        pct(all_answered, all_offered),
        mean(all_wait, all_answered),
    ]
    return ReportTable(KEY, columns, rows, totals, chart, notes=["Answered within the period."])


if KEY not in REPORTS:
    register(ReportSpec(KEY, _contacts, filters=("period", "grouping", "queue", "channel"), order=1))


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
    """Group A (the supervisor's): queues VIP and Sales; group B: Other team. Yesterday in
    Moscow: VIP 3 contacts (2 answered after 10 s and 30 s), Sales 1 (answered after 5 s),
    Other team 4; today one more VIP contact (not yesterday's)."""
    yesterday = datetime.now(MSK).date() - timedelta(days=1)
    at = datetime.combine(yesterday, time(10, 5), MSK)
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow")
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        await f.user(s, "auditor", m.Role.AUDITOR, language="ru")
        op = await f.user(s, "op")
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
        vip = await f.queue(s, VIP, [op], group_id=g_a.id)
        sales = await f.queue(s, "Sales", [op], group_id=g_a.id)
        far = await f.queue(s, "Other team", [other], group_id=g_b.id)
        contact = m.Contact(name="c", custom_fields={}, tags=[])
        s.add(contact)
        await s.flush()

        def conv(q: m.Queue, start: datetime, wait: int | None) -> m.Conversation:
            return m.Conversation(
                contact_id=contact.id,
                channel="api",
                queue_id=q.id,
                status="closed",
                created_at=start,
                first_enqueued_at=start,
                enqueued_at=start,
                accepted_at=None if wait is None else start + timedelta(seconds=wait),
                closed_at=start + timedelta(minutes=5),
            )

        s.add_all(
            [
                conv(vip, at, 10),
                conv(vip, at + timedelta(minutes=20), 30),  # the next interval
                conv(vip, at + timedelta(hours=13, minutes=50), None),  # 23:55, still yesterday
                conv(vip, at + timedelta(hours=14, minutes=5), 3),  # 00:10 today
                conv(sales, at, 5),
                *[conv(far, at, 1) for _ in range(4)],
            ]
        )
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


async def test_supervisor_filters_a_report_reads_table_and_chart_prints_and_schedules(
    live_server: LiveServer, world: dict[str, Any], browser: Browser
) -> None:
    context, page = await staff_page(browser, live_server.url, "sup")
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
        all_rows = await cells(page)
        day = world["yesterday"].strftime("%d/%m/%Y")  # the Moscow day, as en-GB writes it
        assert all_rows == [
            {
                "period": day,
                "queue": "Sales",
                "offered": "1",
                "answered": "1",
                "answered_pct": "100.0%",
                "asa": "0:05",
            },
            {
                "period": day,
                "queue": VIP,
                "offered": "3",
                "answered": "2",
                "answered_pct": "66.7%",
                "asa": "0:20",
            },
        ]

        # Both queues' counts add up to one bar per day.
        points = json.loads(await page.get_by_test_id("report-chart").get_attribute("data-points") or "{}")
        assert points == {"labels": [day], "series": [[4], [3]]}

        await queue_picker.select_option(str(world["vip"]))
        await expect(app).to_have_attribute("data-query", f"preset=yesterday&queue={world['vip']}")
        assert query_of(page.url) == {"report": [KEY], "preset": ["yesterday"], "queue": [str(world["vip"])]}
        rows = await cells(page)
        assert [r["queue"] for r in rows] == [VIP]  # markup shown as text, never parsed
        assert await page.locator(".rpt-table b").count() == 0
        assert await cells(page, "totals-row") == [
            {
                "period": "Total",
                "queue": "—",
                "offered": "3",
                "answered": "2",
                "answered_pct": "66.7%",
                "asa": "0:20",
            }
        ]
        await expect(page.get_by_test_id("report-notes")).to_have_text("Answered within the period.")
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

        # Hourly grouping: the 23:55 contact stays in yesterday's last hour (Moscow time).
        await page.get_by_test_id("filter-grouping").select_option("hour")
        await expect(app).to_have_attribute(
            "data-query", f"preset=yesterday&grouping=hour&queue={world['vip']}"
        )
        hours = [(r["period"], r["offered"]) for r in await cells(page)]
        assert hours == [(f"{day}, 10:00", "2"), (f"{day}, 23:00", "1")]
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

        # Schedule mailing: the mailing page opens with the report and the same filter.
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
        assert query_of(page.url)["queue"] == [str(world["vip"])]
        if has_route(live_server, "GET", "/reports/schedules"):  # teammate "mailing"'s form
            await expect(page.locator("select[name=report_key]")).to_have_value(KEY)
            await expect(page.locator("select[name=preset]")).to_have_value("yesterday")
            await expect(page.locator("select[name=queue]")).to_have_values([str(world["vip"])])
    finally:
        await context.close()


async def test_supervisor_exports_the_filtered_report_as_xlsx(
    live_server: LiveServer, world: dict[str, Any], browser: Browser, tmp_path: Path
) -> None:
    """Needs teammate "history"'s export jobs API; skipped without it."""
    if not has_route(live_server, "POST", "/api/v1/reports/{key:str}/exports"):
        pytest.skip("the XLSX export needs the export jobs API (teammate 'history')")
    context, page = await staff_page(browser, live_server.url, "sup")
    try:
        await page.goto(f"/reports?report={KEY}&preset=yesterday&queue={world['vip']}")
        await expect(page.locator("#app")).to_have_attribute("data-state", "ready")
        async with page.expect_download() as download_info:
            await page.get_by_test_id("export-xlsx").click()
        download = await download_info.value
        await expect(page.get_by_test_id("export-box")).to_have_attribute("data-state", "done")
        target = tmp_path / "report.xlsx"
        await download.save_as(target)
        sheet = load_workbook(target, read_only=True).active
        assert sheet is not None
        table = [list(r) for r in sheet.iter_rows(values_only=True)]
        header = table[0]
        assert header[:4] == ["Period", "Queue", "Offered", "Answered"]
        vip_rows = [r for r in table[1:] if r[1] == VIP]
        assert [(r[2], r[3]) for r in vip_rows] == [(3, 2)]
        assert not [r for r in table[1:] if r[1] == "Sales"]  # the queue filter held
        await expect(page.get_by_test_id("export-progress")).to_have_js_property("value", 1)
    finally:
        await context.close()


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
