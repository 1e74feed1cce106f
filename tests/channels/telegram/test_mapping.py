"""``update_to_inbound`` and the outbound helpers on captured Bot API payloads (no I/O)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiogram.types import Update

from channels.telegram.mapping import (
    MediaRef,
    file_attachments,
    inline_keyboard,
    queue_text,
    split_text,
    update_to_inbound,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Update:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return Update.model_validate(data)


def test_text() -> None:
    item = update_to_inbound(load("text"), inbox_id=3)
    assert item is not None and item.kind == "message" and item.chat_id == 123456789
    msg = item.message
    assert (msg.inbox_id, msg.identity_kind, msg.identity_value) == (3, "telegram", "123456789")
    assert msg.body == "Здравствуйте! Где мой заказ?" and msg.contact_name == "Анна Петрова"
    assert msg.external_id == "123456789:52" and msg.variables["telegram_chat_id"] == 123456789


def test_bot_spoke_english_to_a_russian_telegram_customer() -> None:
    """The user's ``language_code`` reaches the core, which the bot picks its texts by."""
    item = update_to_inbound(load("text"), inbox_id=3)
    assert item is not None and item.message.language == "ru"


def test_photo_takes_the_largest_size_and_the_caption() -> None:
    item = update_to_inbound(load("photo"), inbox_id=3)
    assert item is not None and item.message.body == "чек"
    assert item.media == [MediaRef("AgACAgIAAxkBAAM1big", "photo_AQADb.jpg", "image/jpeg", 61234)]


def test_document_and_voice() -> None:
    doc = update_to_inbound(load("document"), inbox_id=1)
    voice = update_to_inbound(load("voice"), inbox_id=1)
    assert (
        doc is not None
        and doc.media[0].name == "invoice.pdf"
        and doc.media[0].content_type == "application/pdf"
    )
    assert voice is not None and voice.media[0].content_type == "audio/ogg" and voice.message.body == ""


def test_own_contact_is_a_phone_to_join() -> None:
    item = update_to_inbound(load("contact_own"), inbox_id=1)
    assert item is not None and item.shared_phone == "79161234567"
    assert item.message.attachments[0] == {
        "kind": "contact",
        "name": "Анна Петрова",
        "phone": "79161234567",
        "user_id": 123456789,
    }


def test_edit_has_the_key_of_the_original_message() -> None:
    original = update_to_inbound(load("text"), inbox_id=1)
    edit = update_to_inbound(load("edited"), inbox_id=1)
    assert original is not None and edit is not None and edit.kind == "edit"
    assert edit.message.external_id == original.message.external_id
    assert edit.message.body.endswith("1234?")


def test_button_press_carries_the_label_and_the_id() -> None:
    item = update_to_inbound(load("callback_query"), inbox_id=1)
    assert item is not None and item.kind == "button" and item.callback_query_id == "4382bfdwdsb323b2d9"
    assert item.message.body == "Поддержка"
    assert item.message.attachments == [{"kind": "button_reply", "id": "support"}]
    assert item.message.external_id == "cb:4382bfdwdsb323b2d9"


def test_group_chats_are_ignored() -> None:
    assert update_to_inbound(load("group_message"), inbox_id=1) is None


def test_outbound_helpers() -> None:
    buttons = [{"kind": "buttons", "buttons": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]}]
    markup = inline_keyboard(buttons)
    assert markup is not None and [[b.callback_data for b in row] for row in markup.inline_keyboard] == [
        ["a"],
        ["b"],
    ]
    assert inline_keyboard([]) is None
    assert file_attachments([{"id": "x", "name": "a.pdf"}, {"kind": "buttons"}]) == [
        {"id": "x", "name": "a.pdf"}
    ]
    chunks = split_text("a" * 5000 + "\n" + "b" * 100)
    assert chunks == ["a" * 4096, "a" * 904 + "\n" + "b" * 100]
    lines = split_text("line one\n" * 600)
    assert len(lines) == 2 and all(len(c) <= 4096 for c in lines) and lines[0].endswith("one"), (
        "cut at a line break"
    )
    assert queue_text("#{position}, {wait}", 3, 150) == "#3, about 2 minutes"
    assert queue_text("#{position}, {wait}", 1, None) == "#1, unknown"
