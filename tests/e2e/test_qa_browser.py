"""Quality assessment in real Chromium (one journey, issue 18): a supervisor builds a scorecard
(a bad item is refused next to its field), opens a call from the contact history, grades it in
the panel with the transcript and the recording player beside the form — the critical "no"
zeroes it; an admin grades the same call; the operator (in Russian) sees both grades in
"My evaluations" and comments; the QA report shows the average and the calibration report the
two graders. axe-core finds no serious violation on the grading panel."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_reports_browser import cells
from tests.e2e.test_widget_browser import _axe_serious

TIMEOUT = 15_000
HOSTILE = "<img src=x onerror=alert(1)> where is my order?"


async def test_build_grade_comment_and_report(browser: Browser, live_server: LiveServer) -> None:
    srv = live_server
    rec_dir = srv.settings.voice.recordings_dir
    rec_dir.mkdir(parents=True, exist_ok=True)
    (rec_dir / "qa.wav").write_bytes(b"RIFF$\x00\x00\x00WAVEfmt ")
    at = datetime.now(UTC) - timedelta(minutes=10)
    async with srv.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN, display_name="Boris")
        sup = await f.user(s, "sup", m.Role.SUPERVISOR, display_name="Sam")
        op = await f.user(s, "op", display_name="Olga", language="ru")
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
        ann = m.Contact(name="Ann", custom_fields={}, tags=[])
        s.add(ann)
        await s.flush()
        conv = m.Conversation(
            contact_id=ann.id, channel="voice", medium="voice", queue_id=q.id, status="closed",
            assigned_user_id=op.id, created_at=at, first_enqueued_at=at, accepted_at=at,
            closed_at=at + timedelta(minutes=3),
        )  # fmt: skip
        s.add(conv)
        await s.flush()
        s.add_all(
            [
                m.Message(conversation_id=conv.id, direction="in", body=HOSTILE, created_at=at),
                m.Message(conversation_id=conv.id, direction="out", body="On its way", created_at=at),
                m.Call(conversation_id=conv.id, linkedid="qa-1", recording_path="qa.wav"),
            ]
        )
        conv_id = conv.id

    # The supervisor builds the scorecard; a scale question can't be critical.
    sup_ctx, page = await staff_page(browser, srv.url, "sup")
    await page.goto("/qa/scorecards")
    await page.fill("#f-name", "Calls")
    rows = page.get_by_test_id("item-row")
    await rows.nth(0).get_by_test_id("item-text").fill("Polite")
    await rows.nth(0).get_by_test_id("item-weight").fill("2")
    await rows.nth(1).get_by_test_id("item-text").fill("Greeting")
    await rows.nth(1).get_by_test_id("item-kind").select_option("scale")
    await rows.nth(1).get_by_test_id("item-scale").fill("4")
    await rows.nth(1).get_by_test_id("item-critical").check()
    await rows.nth(2).get_by_test_id("item-text").fill("No rudeness")
    await rows.nth(2).get_by_test_id("item-critical").check()
    await page.click('[data-action="save"]')
    await expect(page.locator('.field-error[data-field="items[1].critical"]')).to_contain_text(
        "only a yes/no question can be critical"
    )
    await page.get_by_test_id("item-row").nth(1).get_by_test_id("item-critical").uncheck()
    await page.click('[data-action="save"]')
    await expect(page).to_have_url(re.compile(r"/qa/scorecards/\d+\?saved=1"))
    await expect(page.get_by_test_id("scorecards")).to_contain_text("Calls")

    # From the contact history to the grading panel: transcript (as text) and the player.
    await page.goto("/reports?report=contact_history&preset=today")
    await expect(page.locator("#app")).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    await page.get_by_test_id("open-conversation").click()
    await page.get_by_test_id("grade-conversation").click()
    panel = page.get_by_test_id("grade-panel")
    await expect(panel).to_have_attribute("data-conversation", str(conv_id))
    await expect(page.get_by_test_id("transcript-message").nth(0)).to_contain_text(HOSTILE)
    assert await page.locator('[data-testid="transcript"] img').count() == 0
    await expect(page.get_by_test_id("recording-audio")).to_have_attribute(
        "src", f"/api/v1/conversations/{conv_id}/recording"
    )
    assert await _axe_serious(page) == []
    questions = page.get_by_test_id("question")
    await questions.nth(0).get_by_label("Yes").check()
    await questions.nth(1).get_by_label("2", exact=True).check()
    await questions.nth(2).get_by_label("No", exact=True).check()
    await page.fill("#f-comment", "You were rude to Ann")
    await page.screenshot(path=screenshot_path("qa-grade-panel.png"), full_page=True)
    await page.click('[data-action="grade"]')
    await expect(page.get_by_test_id("score")).to_have_text("0.0")
    await expect(page.get_by_test_id("critical-failed")).to_be_visible()

    # A second grader (an admin) grades the same call: all good.
    boss_ctx, boss = await staff_page(browser, srv.url, "boss")
    await boss.goto(f"/qa/grade/{conv_id}")
    await expect(boss.get_by_test_id("earlier-evaluations")).to_contain_text("Sam")
    qs = boss.get_by_test_id("question")
    await qs.nth(0).get_by_label("Yes").check()
    await qs.nth(1).get_by_label("2", exact=True).check()
    await qs.nth(2).get_by_label("Yes").check()
    await boss.click('[data-action="grade"]')
    await expect(boss.get_by_test_id("score")).to_have_text("87.5")

    # The operator, in Russian, sees both grades and comments on the zeroed one.
    op_ctx, oper = await staff_page(browser, srv.url, "op", locale="ru-RU")
    await oper.goto("/qa/evaluations")
    await expect(oper.locator("h1")).to_have_text("Мои оценки")
    rows_ = oper.get_by_test_id("evaluation-row")
    await expect(rows_).to_have_count(2)
    await oper.locator('[data-testid="evaluation-row"]', has_text="0.0").locator("a").click()
    await expect(oper.get_by_test_id("grader-comment")).to_have_text("You were rude to Ann")
    await oper.fill("#f-comment", "Клиентка сама грубила")
    await oper.click('[data-action="comment"]')
    await expect(oper.get_by_test_id("operator-comment")).to_have_text("Клиентка сама грубила")
    async with srv.services.db.transaction() as s:
        commented = await s.scalar(select(m.QaEvaluation).where(m.QaEvaluation.score == 0.0))
        assert commented is not None and commented.acknowledged_at is not None

    # The reports: the average of the two, and calibration shows both graders on the call.
    await page.goto("/reports?report=qa&preset=today&grouping=total")
    await expect(page.locator("#app")).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    got = await cells(page)
    assert [(r["operator"], r["qa_evaluations"], r["qa_score_avg"], r["qa_critical_fails"]) for r in got] == [
        ("Olga", "2", "43.8", "1")
    ]
    await page.goto("/reports?report=qa_calibration&preset=today")
    await expect(page.locator("#app")).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    got = await cells(page)
    assert sorted((r["grader"], r["qa_score"], r["qa_spread"]) for r in got) == [
        ("Boris", "87.5", "87.5"),
        ("Sam", "0", "87.5"),
    ]
    await page.screenshot(path=screenshot_path("qa-calibration.png"), full_page=True)
    for ctx in (sup_ctx, boss_ctx, op_ctx):
        await ctx.close()
