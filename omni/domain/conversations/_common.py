"""What every part of the conversation lifecycle shares: statuses, limits, the event helpers
and the bot gateway (the scenario engine plugged in by the composition root)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.unit_of_work import BotGateway, unit_of_work
from omni.domain.events import emit
from omni.domain.serialize import conversation_dict, message_dict

S = m.ConversationStatus
MAX_BODY = 10_000
REOPEN_WINDOW = timedelta(hours=24)


def _event(session: AsyncSession, type_: str, conv: m.Conversation, **extra: Any) -> None:
    payload = conversation_dict(conv)
    payload.update(extra)
    emit(
        session,
        type_,
        payload,
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


def _message_event(session: AsyncSession, conv: m.Conversation, message: m.Message) -> None:
    emit(
        session,
        "message.created",
        message_dict(message) | {"channel": conv.channel},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )


def bot_gateway(session: AsyncSession) -> BotGateway | None:
    """The scenario runner plugged into this database (``Database.plugins``), if any."""
    return unit_of_work(session).bot_gateway
