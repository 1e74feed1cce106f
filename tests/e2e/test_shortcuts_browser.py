"""Keyboard shortcuts in real Chromium (issue 18, docs/operator.md "Keyboard shortcuts").

The operator works two chats without the mouse: "?" lists the keys (a dialog: focus inside,
Esc closes it, the focus goes back), "a" accepts the offers, "j"/"k" and Alt+↓ move between the
conversations, "/" opens the canned replies, "n" (and Alt+N from the composer) toggles the
private note, "h" holds and resumes, "c" + ↓ + Enter closes with a result code, "t" + ↓ + Enter
transfers, in English and in Russian, and the database has what the keys did.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.axe import axe_serious
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_operator_browser import BORIS, GRIGORY, customer_says, desk, server

__all__ = ["desk", "server"]

TIMEOUT = 15_000
TEXT = {
    "en": {
        "title": "Keyboard shortcuts",
        "accept": "Accept the first offer",
        "close": "Close with a result code",
        "active": "Active",
        "on_hold": "On hold",
        "closed": "Closed",
        "nothing": "Not available now: Decline the first offer",
        "transferred": "Transferred.",
    },
    "ru": {
        "title": "Горячие клавиши",
        "accept": "Принять первое предложение",
        "close": "Закрыть с кодом результата",
        "active": "Активно",
        "on_hold": "На удержании",
        "closed": "Закрыто",
        "nothing": "Сейчас недоступно: Отклонить первое предложение",
        "transferred": "Переведено.",
    },
}


async def contact_is(page: Page, name: str) -> None:
    await expect(page.get_by_test_id("conversation-contact")).to_have_text(name, timeout=TIMEOUT)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_operator_works_two_chats_from_the_keyboard(
    server: LiveServer, desk: dict[str, Any], browser: Browser, lang: str
) -> None:
    text = TEXT[lang]
    async with server.services.db.transaction() as s:
        (await s.get_one(m.User, desk["op"])).language = lang
        s.add(m.CannedReply(shortcut="thanks", title="Thanks", body="Thank you, {{contact.name}}!"))
        french = await s.scalar(select(m.Queue.id).where(m.Queue.name == "french"))
    _, op = await staff_page(browser, server.url, "olga", locale="ru-RU" if lang == "ru" else "en-US")
    await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)

    # "?" lists the shortcuts in a dialog; the focus is inside and stays there; Esc closes it.
    dialog = op.get_by_role("dialog", name=text["title"])
    await op.keyboard.press("?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_test_id("shortcut")).to_have_count(13)
    await expect(dialog.locator('[data-keys="a alt+a"]')).to_contain_text(text["accept"])
    await expect(dialog.locator('[data-keys="a alt+a"] kbd')).to_have_text(["A", "Alt", "A"])
    await expect(dialog.locator('[data-keys="c alt+c"]')).to_contain_text(text["close"])
    await expect(op.get_by_test_id("shortcuts-close")).to_be_focused()
    for _ in range(3):
        await op.keyboard.press("Tab")
        assert await dialog.evaluate("d => d.contains(document.activeElement)")
    found = await axe_serious(op, "[data-testid=shortcuts]")
    assert found == [], "\n".join(found)
    await op.screenshot(path=screenshot_path(f"shortcuts-{lang}.png"))
    await op.keyboard.press("a")  # keys don't reach the window behind the dialog
    await op.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    # The header button opens it too, and Esc gives the focus back to the button.
    button = op.get_by_test_id("shortcuts-button")
    await button.click()
    await expect(dialog).to_be_visible()
    await op.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(button).to_be_focused()

    # Nothing offered: the key says so instead of doing nothing.
    await op.keyboard.press("d")
    await expect(op.get_by_test_id("error")).to_have_text(text["nothing"])

    # Two offers; "a" accepts them one after the other, each opens.
    boris = await customer_says(server, desk["inbox"], BORIS, "Hello")
    await customer_says(server, desk["inbox"], GRIGORY, "Hi there")
    await expect(op.get_by_test_id("offer")).to_have_count(2, timeout=TIMEOUT)
    await op.keyboard.press("a")
    await contact_is(op, BORIS)
    await expect(op.get_by_test_id("offer")).to_have_count(1, timeout=TIMEOUT)
    if lang == "ru":
        # With the Russian layout the A key types "ф": the shortcut follows the key, not the letter.
        await op.evaluate(
            "document.body.dispatchEvent("
            "new KeyboardEvent('keydown', {key: 'ф', code: 'KeyA', bubbles: true}))"
        )
    else:
        await op.keyboard.press("a")
    await contact_is(op, GRIGORY)
    await expect(op.get_by_test_id("offer")).to_have_count(0, timeout=TIMEOUT)
    await expect(op.get_by_test_id("conversation-item")).to_have_count(2, timeout=TIMEOUT)

    # Next / previous conversation: j, k, and Alt+↓ (which also works from the composer).
    await op.keyboard.press("j")
    await contact_is(op, BORIS)
    await op.keyboard.press("k")
    await contact_is(op, GRIGORY)
    await op.get_by_test_id("composer").focus()
    await op.keyboard.press("j")  # a letter in the composer is text, not a shortcut
    await expect(op.get_by_test_id("composer")).to_have_value("j")
    await contact_is(op, GRIGORY)
    await op.keyboard.press("Alt+ArrowDown")
    await contact_is(op, BORIS)

    # "/" outside the composer opens the canned replies; Enter picks, Enter sends.
    await op.keyboard.press("Escape")
    await op.keyboard.press("/")
    composer = op.get_by_test_id("composer")
    await expect(composer).to_be_focused()
    await expect(op.get_by_test_id("canned-picker").get_by_test_id("canned-option")).to_have_count(1)
    await op.keyboard.press("Enter")
    await expect(composer).to_have_value(f"Thank you, {BORIS}!")
    await op.keyboard.press("Enter")
    await expect(op.get_by_test_id("message-body").last).to_have_text(f"Thank you, {BORIS}!", timeout=TIMEOUT)

    # The private note: Alt+N from the composer, "n" outside it.
    note = op.get_by_test_id("note-toggle")
    await op.keyboard.press("Alt+n")
    await expect(note).to_be_checked()
    await composer.press_sequentially("VIP, be kind")
    await op.keyboard.press("Enter")
    await expect(op.locator("[data-testid=message][data-direction=note]")).to_have_count(1, timeout=TIMEOUT)
    await op.keyboard.press("Escape")
    await op.keyboard.press("n")
    await expect(note).not_to_be_checked()

    # Hold and resume.
    status = op.get_by_test_id("conversation-status")
    await op.keyboard.press("h")
    await expect(status).to_have_text(text["on_hold"], timeout=TIMEOUT)
    await op.keyboard.press("h")
    await expect(status).to_have_text(text["active"], timeout=TIMEOUT)

    # Close with a code: "c" focuses the codes, ↓ picks the first one, Enter closes.
    await op.keyboard.press("c")
    codes = op.get_by_test_id("close-code")
    await expect(codes).to_be_focused()
    await op.keyboard.press("ArrowDown")
    await expect(codes).to_have_value(str(desk["code"]))
    await op.keyboard.press("Enter")
    await expect(status).to_have_text(text["closed"], timeout=TIMEOUT)
    await expect(op.get_by_test_id("conversation-item")).to_have_count(1, timeout=TIMEOUT)

    # Transfer: "j" opens the other chat, "t" focuses the target list, ↓ picks, Enter transfers.
    await op.keyboard.press("j")
    await contact_is(op, GRIGORY)
    await op.keyboard.press("t")
    target = op.get_by_test_id("transfer-target")
    await expect(target).to_be_focused()
    # The arrows walk the list to the "french" queue (Olga's other queue, never routed to her).
    names = await target.locator("option").all_inner_texts()
    at = await target.evaluate("t => t.selectedIndex")
    for _ in range(abs(names.index("french") - at)):
        await op.keyboard.press("ArrowDown" if names.index("french") > at else "ArrowUp")
    await expect(target).to_have_value(str(french))
    await op.keyboard.press("Enter")
    await expect(op.get_by_test_id("error")).to_have_text(text["transferred"], timeout=TIMEOUT)
    await expect(op.get_by_test_id("conversation-item")).to_have_count(0, timeout=TIMEOUT)

    async with server.services.db.transaction() as s:
        moved = await s.scalar(
            select(m.Conversation).where(m.Conversation.id != boris, m.Conversation.queue_id == french)
        )
        assert moved is not None and moved.status == m.ConversationStatus.QUEUED
        conv = await s.get_one(m.Conversation, boris)
        kinds = list(
            await s.scalars(
                select(m.Message.direction).where(m.Message.conversation_id == boris).order_by(m.Message.id)
            )
        )
        events = set(await s.scalars(select(m.Event.type).where(m.Event.conversation_id == boris)))
    assert (conv.status, conv.result_code_id) == (m.ConversationStatus.CLOSED, desk["code"])
    assert kinds == ["in", "out", "note"]
    assert {"conversation.accepted", "conversation.on_hold", "conversation.closed"} <= events, events


async def test_the_supervisor_finds_an_operator_with_slash_and_lists_the_keys(
    server: LiveServer, browser: Browser
) -> None:
    async with server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
        olga, ivan = await f.user(s, "olga"), await f.user(s, "ivan")
        olga.display_name, ivan.display_name = "Olga Petrova", "Ivan Sidorov"
        await f.queue(s, "sales", [olga, ivan])
    _, sup = await staff_page(browser, server.url, "boss")
    await sup.goto("/supervisor")
    rows = sup.locator("[data-testid=operator-row]:visible")
    await expect(rows).to_have_count(2, timeout=TIMEOUT)

    await sup.keyboard.press("/")
    box = sup.get_by_test_id("operator-filter")
    await expect(box).to_be_focused()
    await sup.keyboard.type("petr")
    await expect(rows).to_have_count(1)
    await expect(rows.get_by_test_id("operator-name")).to_have_text("Olga Petrova")
    await sup.keyboard.press("Escape")
    await expect(box).to_have_value("")
    await expect(rows).to_have_count(2)

    await sup.keyboard.press("?")
    dialog = sup.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(dialog.get_by_test_id("shortcut")).to_have_count(3)
    await expect(dialog.locator('[data-keys="/ alt+o"]')).to_contain_text("Find an operator")
    assert await axe_serious(sup, "[data-testid=shortcuts]") == []
    await sup.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
