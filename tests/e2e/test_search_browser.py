"""Find anything in real Chromium (issue 18), one journey in Russian on the embedded database
(SQLite FTS5): an empty search is refused next to the box → the operator types a word form
("заказа") → only her queue's conversation is found, the word highlighted → the hit opens the
conversation scrolled to the message, which is marked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, copy_sqlite
from tests.e2e.conftest import screenshot_path, staff_page

TIMEOUT = 15_000
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
async def server(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[LiveServer]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    srv = LiveServer(settings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_an_operator_finds_a_word_form_and_opens_the_conversation_at_the_hit(
    server: LiveServer, browser: Browser
) -> None:
    async with server.services.db.transaction() as s:
        olga = await f.user(s, "olga", language="ru")
        other = await f.user(s, "boris")
        care = await f.queue(s, "care", [olga])
        sales = await f.queue(s, "sales", [other])
        ivan, petr = m.Contact(name="Иван"), m.Contact(name="Пётр")
        s.add_all([ivan, petr])
        await s.flush()
        mine = m.Conversation(contact_id=ivan.id, channel="telegram", queue_id=care.id, status="closed")
        theirs = m.Conversation(contact_id=petr.id, channel="widget", queue_id=sales.id, status="closed")
        s.add_all([mine, theirs])
        await s.flush()
        s.add_all(
            m.Message(
                conversation_id=mine.id,
                direction="in" if i % 2 else "out",
                body=f"реплика {i}",
                created_at=T0 + timedelta(seconds=i),
            )
            for i in range(60)
        )
        hit = m.Message(
            conversation_id=mine.id,
            direction="in",
            body="Где мой заказ? Жду с понедельника.",
            created_at=T0 + timedelta(minutes=5),
        )
        s.add_all([hit, m.Message(conversation_id=theirs.id, direction="in", body="Отмените заказ")])
        s.add_all(
            m.Message(
                conversation_id=mine.id,
                direction="out",
                body=f"ответ {i}",
                created_at=T0 + timedelta(minutes=6, seconds=i),
            )
            for i in range(30)
        )
        vip, complaint = m.Label(name="VIP"), m.Label(name="Жалоба")
        s.add_all([vip, complaint])
        await s.flush()
        s.add(m.ConversationLabel(conversation_id=mine.id, label_id=vip.id))
        await s.flush()
        hit_id, mine_id, complaint_id = hit.id, mine.id, complaint.id

    _, page = await staff_page(browser, server.url, "olga", locale="ru-RU")
    await page.get_by_role("link", name="Поиск").click()
    await expect(page.get_by_role("heading", name="Поиск")).to_be_visible(timeout=TIMEOUT)
    await page.get_by_role("button", name="Найти").click()
    await expect(page.locator(".form-error")).to_contain_text("введите, что искать", timeout=TIMEOUT)

    await page.get_by_test_id("search-q").fill("заказа")
    await page.get_by_role("button", name="Найти").click()
    hits = page.get_by_test_id("search-hit")
    await expect(hits).to_have_count(1, timeout=TIMEOUT)
    await expect(hits.first).to_contain_text("Иван")
    await expect(hits.first.locator("mark")).to_have_text("заказ")
    await page.screenshot(path=screenshot_path("search-results.png"))
    # A label narrows the hits: none of hers carries "Жалоба", hers carries "VIP".
    await page.get_by_test_id("search-label").select_option(label="Жалоба")
    await page.get_by_role("button", name="Найти").click()
    await expect(page).to_have_url(re.compile(f"label={complaint_id}"), timeout=TIMEOUT)
    await expect(hits).to_have_count(0)
    await page.get_by_test_id("search-label").select_option(label="VIP")
    await page.get_by_role("button", name="Найти").click()
    await expect(hits).to_have_count(1, timeout=TIMEOUT)

    await hits.first.get_by_role("link").click()
    await expect(page.get_by_test_id("transcript")).to_have_attribute("data-conversation", str(mine_id))
    marked = page.locator(f"#m-{hit_id}")
    await expect(marked).to_have_attribute("data-hit", "true", timeout=TIMEOUT)
    await expect(marked).to_contain_text("Где мой заказ?")
    await expect(marked).to_be_in_viewport()
    await expect(page.get_by_test_id("transcript-message").first).not_to_be_in_viewport()
    await page.screenshot(path=screenshot_path("search-hit.png"))
