"""Messages the system itself sends to a customer: bot prompts with buttons, notices.

Buttons travel as an attachment ``{"kind": "buttons", "buttons": [{"id", "label"}]}`` so
every channel renders them its own way (widget quick replies, Telegram inline keyboard, a
"press 1" prompt on voice). A customer's press comes back as an inbound message whose body is
the label and whose attachments hold ``{"kind": "button_reply", "id": ...}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.conversations import MAX_BODY, _message_event, defer_message, insert_message
from omni.domain.errors import InvalidInput, NotFound

MAX_BUTTONS = 10
MAX_BUTTON_TEXT = 64


def buttons_attachment(buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """Validated buttons; ids must be unique so a press maps to one choice."""
    if not buttons or len(buttons) > MAX_BUTTONS:
        raise InvalidInput("give 1 to {max_buttons} buttons", max_buttons=MAX_BUTTONS, field="buttons")
    clean: list[dict[str, str]] = []
    for i, button in enumerate(buttons):
        bid = str(button.get("id", "")).strip()
        label = str(button.get("label", "")).strip()
        if not bid or not label or len(bid) > MAX_BUTTON_TEXT or len(label) > MAX_BUTTON_TEXT:
            raise InvalidInput(
                "button {value} needs an id and a label of 1 to {max_button_text} characters",
                value=i + 1,
                max_button_text=MAX_BUTTON_TEXT,
                field="buttons",
            )
        clean.append({"id": bid, "label": label})
    if len({b["id"] for b in clean}) != len(clean):
        raise InvalidInput("button ids must be unique", field="buttons")
    return {"kind": "buttons", "buttons": clean}


def button_reply(button_id: object) -> dict[str, Any]:
    bid = str(button_id).strip()
    if not bid or len(bid) > MAX_BUTTON_TEXT:
        raise InvalidInput(
            "button must be 1 to {max_button_text} characters",
            max_button_text=MAX_BUTTON_TEXT,
            field="button",
        )
    return {"kind": "button_reply", "id": bid}


def offered_buttons(message: m.Message) -> list[dict[str, str]]:
    for item in message.attachments or []:
        if isinstance(item, dict) and item.get("kind") == "buttons":
            return list(item.get("buttons") or [])
    return []


async def do_send_automated(
    session: AsyncSession,
    conversation_id: int,
    body: str,
    *,
    buttons: list[dict[str, Any]] | None = None,
    locked: m.Conversation | None = None,
    attachments: list[dict[str, Any]] | None = None,
    unannounced: list[dict[str, Any]] | None = None,
    deferred: bool = False,
) -> m.Message:
    """Stored, then delivered by the channel adapter like an operator reply (no author).

    ``locked``: the conversation, when the caller already holds its row ``FOR UPDATE`` in this
    transaction (the bot runner mid-step), which saves reading it again. ``attachments``:
    stored files' descriptors (``files.descriptor``), e.g. a transcript PDF. ``unannounced``:
    attachments stored with the message but left out of its event (the prompt file a bot's
    step on a call names, which the IVR reads back from the stored message).

    The returned message is a plain row with its id, not in the session
    (``conversations.insert_message``). ``deferred``: inserted with the transaction's next
    flush of its events instead (``conversations.defer_message``; the bot runner mid-step,
    whose statement writes them), so the returned message has no id yet."""
    if len(body) > MAX_BODY:
        raise InvalidInput("message is longer than {max_body} characters", max_body=MAX_BODY, field="body")
    attachments = [*(attachments or []), *([buttons_attachment(buttons)] if buttons else [])]
    if not body.strip() and not attachments:
        raise InvalidInput("message is empty", field="body")
    conv = locked
    if conv is None or conv.id != conversation_id:
        conv = await session.get(m.Conversation, conversation_id, with_for_update=True)
    if conv is None:
        raise NotFound("conversation {conversation_id} not found", conversation_id=conversation_id)
    now = datetime.now(UTC)
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="out",
        author_user_id=None,
        body=body,
        attachments=(stored := [*attachments, *(unannounced or [])]),
        delivery="pending",
        created_at=now,
    )
    conv.last_message_at = now
    if deferred:
        return await defer_message(session, conv, message, announced=attachments)
    message = await insert_message(session, message)
    message.attachments = attachments  # what the event announces (the row is not in the session)
    _message_event(session, conv, message)
    message.attachments = stored
    return message
