"""What every part of the conversation lifecycle shares: statuses, limits, the event helpers
and the bot gateway (the scenario engine plugged in by the composition root)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
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


class BotGateway(Protocol):
    """How the core hands conversations to the scenario engine (``bots.runner``) without
    importing it; the composition root plugs it in through ``Database.session_info``."""

    async def start(self, session: AsyncSession, conv: m.Conversation, scenario_key: str) -> bool: ...
    async def on_inbound(self, session: AsyncSession, conv: m.Conversation, message: m.Message) -> bool: ...
    async def hand_to_bot(self, session: AsyncSession, conv: m.Conversation, scenario_key: str) -> bool: ...


BOT_GATEWAY = "bot_gateway"


def bot_gateway(session: AsyncSession) -> BotGateway | None:
    """The scenario runner plugged into this database (``Database.session_info``), if any."""
    gateway: BotGateway | None = session.info.get(BOT_GATEWAY)
    return gateway
