"""Telegram update → core input, as pure functions (no I/O): tested on captured payloads.

The idempotency key of a customer message is ``"<chat id>:<message id>"``: a re-delivered
update (same ``update_id``) carries the same message, so it is stored once, and an
``edited_message`` update finds the stored copy by the same key. A button press is keyed by
its callback query id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from omni.domain.automated import button_reply
from omni.domain.conversations import InboundMessage

CSAT_PREFIX = "csat:"
"""Callback data of the satisfaction buttons: recorded as a rating, not as a new message."""
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
"""Sent back with ``sendPhoto``; everything else with ``sendDocument``."""


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file to download with ``getFile`` before the message is stored."""

    file_id: str
    name: str
    content_type: str
    size: int | None = None


@dataclass(slots=True)
class TelegramInbound:
    """One update, normalised. ``kind``: ``message`` | ``edit`` | ``button`` | ``rating``."""

    update_id: int
    kind: str
    chat_id: int
    message: InboundMessage
    media: list[MediaRef] = field(default_factory=list)
    shared_phone: str | None = None
    """The sender's own phone number from a contact share (``contact.user_id`` is the sender):
    the Telegram identity joins the contact that has this phone."""
    callback_query_id: str | None = None
    rating: int | None = None


def message_key(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, last) if p).strip()


def _content(message: Message) -> tuple[str, list[dict[str, Any]], list[MediaRef], str | None]:
    """Body, non-file attachments, media to download and a shared own phone number."""
    body = message.text or message.caption or ""
    extra: list[dict[str, Any]] = []
    media: list[MediaRef] = []
    phone: str | None = None
    if message.photo:
        best = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        media.append(MediaRef(best.file_id, f"photo_{best.file_unique_id}.jpg", "image/jpeg", best.file_size))
    if message.document:
        doc = message.document
        media.append(
            MediaRef(
                doc.file_id,
                doc.file_name or f"document_{doc.file_unique_id}",
                doc.mime_type or "application/octet-stream",
                doc.file_size,
            )
        )
    if message.voice:
        v = message.voice
        media.append(
            MediaRef(v.file_id, f"voice_{v.file_unique_id}.ogg", v.mime_type or "audio/ogg", v.file_size)
        )
    if message.audio:
        a = message.audio
        name = a.file_name or f"audio_{a.file_unique_id}.mp3"
        media.append(MediaRef(a.file_id, name, a.mime_type or "audio/mpeg", a.file_size))
    if message.video:
        vd = message.video
        name = vd.file_name or f"video_{vd.file_unique_id}.mp4"
        media.append(MediaRef(vd.file_id, name, vd.mime_type or "video/mp4", vd.file_size))
    if message.video_note:
        vn = message.video_note
        media.append(MediaRef(vn.file_id, f"video_note_{vn.file_unique_id}.mp4", "video/mp4", vn.file_size))
    if message.sticker:
        st = message.sticker
        label = f"[sticker {st.emoji}]" if st.emoji else "[sticker]"
        body = body or label
        extra.append({"kind": "sticker", "emoji": st.emoji or "", "set_name": st.set_name or ""})
    if message.location:
        lat, lon = message.location.latitude, message.location.longitude
        body = body or f"Location: {lat:.6f}, {lon:.6f}"
        extra.append(
            {
                "kind": "location",
                "latitude": lat,
                "longitude": lon,
                "url": f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}",
            }
        )
    if message.contact:
        c = message.contact
        name = _full_name(c.first_name, c.last_name)
        body = body or f"Contact: {name} {c.phone_number}".replace("  ", " ")
        extra.append({"kind": "contact", "name": name, "phone": c.phone_number, "user_id": c.user_id})
        sender = message.from_user.id if message.from_user else None
        if c.user_id is not None and c.user_id == sender:
            phone = c.phone_number
    return body, extra, media, phone


def _button_label(markup: InlineKeyboardMarkup | None, data: str) -> str:
    rows: list[list[InlineKeyboardButton]] = markup.inline_keyboard if markup else []
    for row in rows:
        for button in row:
            if button.callback_data == data:
                return button.text
    return data


def _callback(update_id: int, inbox_id: int, cq: CallbackQuery) -> TelegramInbound | None:
    data = cq.data or ""
    msg = cq.message if isinstance(cq.message, Message) else None
    if not data or (msg is not None and msg.chat.type != "private"):
        return None
    chat_id = msg.chat.id if msg is not None else cq.from_user.id
    inbound = InboundMessage(
        inbox_id=inbox_id,
        identity_kind="telegram",
        identity_value=str(cq.from_user.id),
        body=_button_label(msg.reply_markup if msg else None, data),
        external_id=f"cb:{cq.id}",
        contact_name=_full_name(cq.from_user.first_name, cq.from_user.last_name),
        variables={"telegram_chat_id": chat_id},
        language=cq.from_user.language_code or "",
    )
    if data.startswith(CSAT_PREFIX):
        score = data[len(CSAT_PREFIX) :]
        rating = int(score) if score.isdigit() else None
        return TelegramInbound(update_id, "rating", chat_id, inbound, callback_query_id=cq.id, rating=rating)
    inbound.attachments = [button_reply(data)]
    return TelegramInbound(update_id, "button", chat_id, inbound, callback_query_id=cq.id)


def update_to_inbound(update: Update, inbox_id: int) -> TelegramInbound | None:
    """What the core should do with an update, or ``None`` when it is not for operators
    (group chats, service messages, update kinds we don't subscribe to)."""
    if update.callback_query is not None:
        return _callback(update.update_id, inbox_id, update.callback_query)
    message = update.message or update.edited_message
    if message is None or message.chat.type != "private" or message.from_user is None:
        return None
    body, extra, media, phone = _content(message)
    if not body and not extra and not media:
        return None
    user = message.from_user
    inbound = InboundMessage(
        inbox_id=inbox_id,
        identity_kind="telegram",
        identity_value=str(user.id),
        body=body,
        attachments=extra,
        external_id=message_key(message.chat.id, message.message_id),
        contact_name=_full_name(user.first_name, user.last_name) or (user.username or ""),
        variables={"telegram_chat_id": message.chat.id, "telegram_username": user.username or ""},
        language=user.language_code or "",
    )
    kind = "edit" if update.edited_message is not None else "message"
    return TelegramInbound(update.update_id, kind, message.chat.id, inbound, media=media, shared_phone=phone)


def inline_keyboard(attachments: list[dict[str, Any]]) -> InlineKeyboardMarkup | None:
    """Bot buttons (``{"kind": "buttons"}``) as an inline keyboard, one button per row."""
    for item in attachments:
        if item.get("kind") == "buttons":
            rows = [
                [InlineKeyboardButton(text=str(b["label"]), callback_data=str(b["id"])[:64])]
                for b in item.get("buttons") or []
            ]
            return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
    return None


def file_attachments(attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored files among a message's attachments (they have an ``id`` and no ``kind``)."""
    return [a for a in attachments if "kind" not in a and a.get("id")]


def split_text(text: str, limit: int = 4096) -> list[str]:
    """Telegram refuses texts over 4096 characters: cut at line breaks where possible."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def queue_text(template: str, position: int, wait_seconds: int | None) -> str:
    """The position / expected wait message; ``{position}`` and ``{wait}`` placeholders."""
    if wait_seconds is None:
        wait = "unknown"
    elif wait_seconds < 60:
        wait = "less than a minute"
    else:
        minutes = round(wait_seconds / 60)
        wait = f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return template.replace("{position}", str(position)).replace("{wait}", wait)
