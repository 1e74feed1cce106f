"""The aiogram router: every update kind operators care about goes to one entry point.

The channel and the inbox come in as dispatcher kwargs (``feed_update(bot, update,
channel=..., inbox_id=...)``), never module globals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, Message, Update

if TYPE_CHECKING:
    from channels.telegram import TelegramChannel


def build_router() -> Router:
    """A fresh router per dispatcher (an aiogram router attaches to one parent only)."""
    router = Router(name="omni.telegram.inbound")

    @router.message()
    async def on_message(
        message: Message, bot: Bot, event_update: Update, channel: TelegramChannel, inbox_id: int
    ) -> None:
        await channel.ingest(bot, inbox_id, event_update)

    @router.edited_message()
    async def on_edited(
        message: Message, bot: Bot, event_update: Update, channel: TelegramChannel, inbox_id: int
    ) -> None:
        await channel.ingest(bot, inbox_id, event_update)

    @router.callback_query()
    async def on_button(
        query: CallbackQuery, bot: Bot, event_update: Update, channel: TelegramChannel, inbox_id: int
    ) -> None:
        await channel.ingest(bot, inbox_id, event_update)

    return router
