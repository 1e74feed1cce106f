"""The console's own search, the supervisor's label chips and filter, and the operator's bulk
selection, in real Chromium (issue 18; docs/search.md, docs/organise.md).

* Search in the operator's window (ru and en): an empty search is refused next to the box; a
  word form finds only her queues' conversation, the matched word marked and the customer's
  markup shown as text; the hit opens the colleague's conversation in the centre, read only,
  scrolled to the message, which is outlined.
* Supervisor monitoring: each conversation's labels are coloured chips, a label applied by the
  operator shows without a reload, and the label filter keeps the conversations carrying it.
* The operator's selection mode: select all, label the selection (the conversation of the
  other queue is refused and the report says why), then close two with a code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import labels
from omni.domain.auth import Principal
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_operator_browser import server
from tests.e2e.test_widget_browser import _axe_serious

__all__ = ["server"]

TIMEOUT = 15_000
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
HOSTILE = "<img src=x onerror=window.__pwned=1>"
TEXTS = {
    "ru": {
        "read_only": "Только чтение",
        "found": "Найдено: 1",
        "done": "Выполнено: {n}",
        "other_queue": "относится к другой очереди",
        "all": "Все метки",
        "no_labelled": "Нет разговоров с этой меткой",
    },
    "en": {
        "read_only": "Read only",
        "found": "Found: 1",
        "done": "Done: {n}",
        "other_queue": "belongs to another queue",
        "all": "All labels",
        "no_labelled": "No conversation with this label",
    },
}


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_console_search_opens_a_colleagues_conversation_read_only_at_the_hit(
    server: LiveServer, browser: Browser, lang: str
) -> None:
    async with server.services.db.transaction() as s:
        olga = await f.user(s, "olga", language=lang)
        kate = await f.user(s, "kate")
        boris = await f.user(s, "boris")
        care = await f.queue(s, "care", [olga, kate])
        sales = await f.queue(s, "sales", [boris])
        ivan, petr = m.Contact(name=f"Иван {HOSTILE}"), m.Contact(name="Пётр")
        s.add_all([ivan, petr])
        await s.flush()
        # Kate's conversation in Olga's queue (Olga may read it), and one of another queue.
        kates = m.Conversation(
            contact_id=ivan.id,
            channel="telegram",
            queue_id=care.id,
            status="closed",
            assigned_user_id=kate.id,
        )
        theirs = m.Conversation(contact_id=petr.id, channel="widget", queue_id=sales.id, status="closed")
        s.add_all([kates, theirs])
        await s.flush()
        s.add_all(
            m.Message(
                conversation_id=kates.id,
                direction="in" if i % 2 else "out",
                body=f"реплика {i}",
                created_at=T0 + timedelta(seconds=i),
            )
            for i in range(80)
        )
        hit = m.Message(
            conversation_id=kates.id,
            direction="in",
            body=f"Где мой заказ? {HOSTILE}",
            created_at=T0 + timedelta(minutes=5),
        )
        s.add_all([hit, m.Message(conversation_id=theirs.id, direction="in", body="Отмените заказ")])
        s.add_all(
            m.Message(
                conversation_id=kates.id,
                direction="out",
                body=f"ответ {i}",
                created_at=T0 + timedelta(minutes=6, seconds=i),
            )
            for i in range(40)
        )
        await s.flush()
        hit_id, kates_id = hit.id, kates.id

    _, page = await staff_page(browser, server.url, "olga", locale="ru-RU" if lang == "ru" else "en-US")
    await expect(page.get_by_test_id("status-select")).to_be_visible(timeout=TIMEOUT)
    box = page.get_by_test_id("console-search")
    await box.get_by_test_id("console-search-go").click(timeout=TIMEOUT)
    await expect(box.get_by_test_id("search-error")).not_to_be_empty(timeout=TIMEOUT)

    await box.get_by_test_id("console-search-input").fill("заказа")
    await box.get_by_test_id("console-search-go").click()
    hits = box.get_by_test_id("search-hit")
    await expect(hits).to_have_count(1, timeout=TIMEOUT)
    await expect(box.get_by_test_id("search-results")).to_contain_text(TEXTS[lang]["found"])
    await expect(hits.first).to_contain_text("Иван")
    await expect(hits.first.locator("mark")).to_have_text("заказ")
    # The customer's markup is text in the hit, never an element.
    await expect(hits.first).to_contain_text("<img src=x")
    await expect(box.locator("img")).to_have_count(0)
    assert await _axe_serious(page, '[data-testid="console-search"]') == []

    await hits.first.click()
    await expect(page.get_by_test_id("conversation-contact")).to_contain_text("Иван", timeout=TIMEOUT)
    marked = page.locator('[data-testid="message"][data-hit="true"]')
    await expect(marked).to_have_attribute("data-id", str(hit_id), timeout=TIMEOUT)
    await expect(marked).to_contain_text("Где мой заказ?")
    await expect(marked).to_contain_text(HOSTILE)
    await expect(marked).to_be_in_viewport()
    await expect(page.get_by_test_id("message").first).not_to_be_in_viewport()
    await expect(page.get_by_test_id("search-read-only")).to_contain_text(TEXTS[lang]["read_only"])
    await expect(page.get_by_test_id("composer")).to_have_count(0)
    await expect(page).to_have_url(f"{server.url}/app#c={kates_id}")
    assert await page.evaluate("window.__pwned") is None
    await page.screenshot(path=screenshot_path(f"console-search-{lang}.png"))


async def _active(s: Any, contact: str, queue: m.Queue, user: m.User, label_ids: list[int]) -> int:
    who = m.Contact(name=contact)
    s.add(who)
    await s.flush()
    conv = m.Conversation(
        contact_id=who.id,
        channel="api",
        queue_id=queue.id,
        status="active",
        assigned_user_id=user.id,
        accepted_at=datetime.now(UTC),
        label_ids=label_ids,
    )
    s.add(conv)
    await s.flush()
    s.add_all(m.ConversationLabel(conversation_id=conv.id, label_id=i) for i in label_ids)
    s.add(m.Message(conversation_id=conv.id, direction="in", body=f"hello from {contact}"))
    return conv.id


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_supervisor_sees_label_chips_live_and_filters_by_label(
    server: LiveServer, browser: Browser, lang: str
) -> None:
    async with server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN, language=lang)
        olga = await f.user(s, "olga", capacity=5)
        q = await f.queue(s, "sales", [olga])
        vip, refund = m.Label(name="VIP", color="#e53935"), m.Label(name="Возврат", color="#1e88e5")
        s.add_all([vip, refund, m.Label(name="Spam", color="#757575")])
        await s.flush()
        first = await _active(s, "Anna", q, olga, [vip.id])
        second = await _active(s, "Boris", q, olga, [])
        olga_id, vip_id, refund_id = olga.id, vip.id, refund.id

    _, sv = await staff_page(browser, server.url, "boss", locale="ru-RU" if lang == "ru" else "en-US")
    await sv.goto("/supervisor")
    row = sv.locator(f'[data-testid="operator-row"][data-user-id="{olga_id}"]')
    one = row.locator(f'[data-testid="conversation"][data-conversation-id="{first}"]')
    two = row.locator(f'[data-testid="conversation"][data-conversation-id="{second}"]')
    await expect(one.get_by_test_id("label-chip")).to_have_text("VIP", timeout=TIMEOUT)
    await expect(one.get_by_test_id("label-chip")).to_have_css("border-top-color", "rgb(229, 57, 53)")
    await expect(two.get_by_test_id("label-chip")).to_have_count(0)

    # The operator labels the second conversation: its chip shows without a reload.
    async with server.services.db.transaction() as s:
        who = Principal.of(await s.get_one(m.User, olga_id))
        await labels.check_set_labels(s, who, second, add=[refund_id])
    await expect(two.get_by_test_id("label-chip")).to_have_text("Возврат", timeout=TIMEOUT)

    # The filter keeps the conversations carrying the label.
    await sv.get_by_test_id("label-filter").select_option(str(vip_id))
    await expect(one).to_be_visible()
    await expect(two).to_have_count(0)
    await sv.get_by_test_id("label-filter").select_option(label="Возврат")
    await expect(two).to_be_visible()
    await expect(one).to_have_count(0)
    await sv.screenshot(path=screenshot_path(f"supervisor-label-filter-{lang}.png"))
    assert await _axe_serious(sv, '[data-testid="operators"]') == []
    await sv.get_by_test_id("label-filter").select_option(label="Spam")
    await expect(sv.get_by_test_id("no-labelled")).to_have_text(TEXTS[lang]["no_labelled"])
    await sv.get_by_test_id("label-filter").select_option(label=TEXTS[lang]["all"])
    await expect(row.get_by_test_id("conversation")).to_have_count(2)


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_operator_selects_conversations_and_bulk_actions_report_what_was_refused(
    server: LiveServer, browser: Browser, lang: str
) -> None:
    async with server.services.db.transaction() as s:
        olga = await f.user(s, "olga", capacity=5, language=lang)
        sales = await f.queue(s, "sales", [olga])
        french = await f.queue(s, "french", [olga])
        billing = await f.queue(s, "billing", [])
        code = await f.result_code(s, "solved")
        deal = m.Label(name="Deal", color="#43a047", queue_id=sales.id)
        s.add(deal)
        await s.flush()
        ids = [
            await _active(s, "Anna", sales, olga, []),
            await _active(s, "Boris", sales, olga, []),
            await _active(s, "Claude", french, olga, []),
        ]
        code_id, deal_id, billing_id, olga_id = code.id, deal.id, billing.id, olga.id

    _, op = await staff_page(browser, server.url, "olga", locale="ru-RU" if lang == "ru" else "en-US")
    done = TEXTS[lang]["done"]
    await expect(op.get_by_test_id("status-select")).to_be_visible(timeout=TIMEOUT)
    mine = op.get_by_test_id("mine")
    await expect(mine.get_by_test_id("conversation-item")).to_have_count(3, timeout=TIMEOUT)
    await mine.get_by_test_id("select-mode").click()
    await mine.get_by_test_id("select-all").check()
    await expect(mine.get_by_test_id("selected-count")).to_have_text("3")
    await mine.get_by_test_id("bulk-action").select_option("label")
    await expect(mine.get_by_test_id("bulk-param")).to_contain_text("Deal", timeout=TIMEOUT)
    await mine.get_by_test_id("bulk-param").select_option(label="Deal")
    await mine.get_by_test_id("bulk-apply").click()
    await expect(mine.get_by_test_id("bulk-done")).to_have_text(done.format(n=2), timeout=TIMEOUT)
    refused = mine.get_by_test_id("bulk-refused")
    await expect(refused).to_have_count(1)
    await expect(refused).to_have_attribute("data-conversation-id", str(ids[2]))
    await expect(refused).to_contain_text("Claude")
    await expect(refused).to_contain_text(TEXTS[lang]["other_queue"])
    for conv_id in ids[:2]:
        item = mine.locator(f'[data-testid="conversation-item"][data-id="{conv_id}"]')
        await expect(item.get_by_test_id("label-chip")).to_have_text("Deal", timeout=TIMEOUT)
    await op.screenshot(path=screenshot_path(f"operator-bulk-{lang}.png"))
    assert await _axe_serious(op, '[data-testid="mine"]') == []

    # Close Anna's and Boris's with a code: both leave the list, Claude's stays.
    await expect(mine.get_by_test_id("selected-count")).to_have_text("1")  # the refused one stays selected

    def box(conv_id: int) -> Any:
        item = mine.locator(f'[data-testid="conversation-item"][data-id="{conv_id}"]')
        return item.get_by_test_id("select-conversation")

    await box(ids[0]).check()
    await box(ids[1]).check()
    await box(ids[2]).uncheck()
    await expect(mine.get_by_test_id("selected-count")).to_have_text("2")
    await mine.get_by_test_id("bulk-action").select_option("close")
    await mine.get_by_test_id("bulk-param").select_option(str(code_id))
    await mine.get_by_test_id("bulk-apply").click()
    await expect(mine.get_by_test_id("bulk-done")).to_have_text(done.format(n=2), timeout=TIMEOUT)
    await expect(mine.get_by_test_id("bulk-refused")).to_have_count(0)
    async with server.services.db.transaction() as s:
        rows = [await s.get_one(m.Conversation, i) for i in ids]
        runs = list(
            await s.scalars(
                select(m.AuditLog.result)
                .where(m.AuditLog.action.like("conversation.bulk_%"))
                .order_by(m.AuditLog.id)
            )
        )
    assert [(c.status, c.result_code_id) for c in rows] == [("closed", code_id)] * 2 + [("active", None)]
    assert [c.label_ids for c in rows] == [[deal_id], [deal_id], []]
    await expect(mine.get_by_test_id("conversation-item")).to_have_count(1, timeout=TIMEOUT)

    # Transfer Claude's to the billing queue (not hers): it leaves her list.
    await mine.get_by_test_id("select-all").check()
    await expect(mine.get_by_test_id("selected-count")).to_have_text("1")
    await mine.get_by_test_id("bulk-action").select_option("transfer")
    await mine.get_by_test_id("bulk-param").select_option(label="billing")
    await mine.get_by_test_id("bulk-apply").click()
    await expect(mine.get_by_test_id("bulk-done")).to_have_text(done.format(n=1), timeout=TIMEOUT)
    await expect(mine.get_by_test_id("conversation-item")).to_have_count(0, timeout=TIMEOUT)
    async with server.services.db.transaction() as s:
        moved = await s.get_one(m.Conversation, ids[2])
        runs = list(
            await s.scalars(
                select(m.AuditLog.result)
                .where(m.AuditLog.action.like("conversation.bulk_%"))
                .order_by(m.AuditLog.id)
            )
        )
    assert moved.queue_id == billing_id and moved.assigned_user_id != olga_id
    assert runs == ["partial", "ok", "ok"]
