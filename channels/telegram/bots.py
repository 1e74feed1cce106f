"""Managing bots: a bot is an inbox with ``channel = "telegram"``, its token encrypted at rest
(``Inbox.secret_encrypted``) and ``config = {"mode", "bot_id", "bot_username", ...}``.

Creation validates the token with ``getMe`` first, so a wrong token is refused with a
sentence naming it, and nothing is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError
from aiogram.types import User
from aiogram.utils.token import TokenValidationError

from omni.db import models as m
from omni.domain import admin, inboxes
from omni.domain.auth import Principal, check_role
from omni.domain.errors import DomainError, InvalidInput

if TYPE_CHECKING:
    from channels.telegram import TelegramChannel

MODES = ("webhook", "polling")
CONFIG_KEYS = ("queue_message", "closing_message", "csat")
"""Per-bot texts an admin may set at creation (``PATCH /api/v1/inboxes/{id}`` later)."""


class InvalidBotToken(DomainError):
    status_code = 400
    code = "invalid_token"


class TelegramUnreachable(DomainError):
    status_code = 502
    code = "telegram_unreachable"


async def check_token(token: str, api_base_url: str) -> User:
    """``getMe`` with the token: the bot it belongs to, or a clear refusal."""
    from channels.telegram import make_bot

    try:
        bot = make_bot(token.strip(), api_base_url)
    except TokenValidationError as exc:
        raise InvalidBotToken(
            "the bot token is malformed: it looks like 123456789:AA… (ask @BotFather)", field="token"
        ) from exc
    try:
        return await bot.get_me()
    except TelegramUnauthorizedError as exc:
        raise InvalidBotToken(
            "Telegram refused the bot token (getMe: Unauthorized): copy it again from @BotFather",
            field="token",
        ) from exc
    except TelegramNetworkError as exc:
        raise TelegramUnreachable("the Telegram Bot API can't be reached: {text}", text=exc.message) from exc
    except TelegramAPIError as exc:
        raise InvalidBotToken(
            "getMe with this bot token failed: {text}", text=exc.message, field="token"
        ) from exc
    finally:
        await bot.session.close()


def bot_dict(inbox: m.Inbox, channel: TelegramChannel) -> dict[str, Any]:
    """Never the token."""
    config = dict(inbox.config or {})
    runtime = channel.bots.get(inbox.id)
    return {
        "inbox_id": inbox.id,
        "name": inbox.name,
        "queue_id": inbox.queue_id,
        "active": inbox.active,
        "mode": config.get("mode", "webhook"),
        "bot_id": config.get("bot_id"),
        "bot_username": config.get("bot_username"),
        "webhook_url": channel.webhook_url(inbox.public_token) if config.get("mode") == "webhook" else None,
        "running": runtime is not None,
        "config": {k: config[k] for k in CONFIG_KEYS if k in config},
    }


async def create_bot(channel: TelegramChannel, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """Admin only. Validates the token (``getMe``), stores it encrypted, creates the inbox,
    starts the bot (``setWebhook`` or a poller) and returns the bot's description."""
    check_role(who, m.Role.ADMIN)
    mode = str(data.get("mode") or "webhook")
    if mode not in MODES:
        raise InvalidInput("mode must be webhook or polling", field="mode")
    token = str(data.get("token") or "").strip()
    if not token:
        raise InvalidBotToken("the bot token is required", field="token")
    services = channel.services
    me = await check_token(token, services.settings.telegram.api_base_url)
    extra = {k: data[k] for k in CONFIG_KEYS if data.get(k) is not None}
    config = {"mode": mode, "bot_id": me.id, "bot_username": me.username or "", **extra}
    async with services.db.transaction() as session:
        clash = await inboxes.inbox_with_config_id(session, "telegram", "bot_id", me.id)
        if clash is not None:
            raise InvalidInput(
                "bot @{username} is already connected (inbox {clash})",
                username=me.username,
                clash=clash,
                field="token",
            )
        inbox = await admin.check_create_inbox(
            session,
            who,
            {
                "name": data.get("name"),
                "channel": "telegram",
                "queue_id": data.get("queue_id"),
                "config": config,
            },
        )
        inboxes.do_store_inbox_secret(inbox, services.settings.effective_secret_key(), token)
    body = bot_dict(inbox, channel)
    runtime = await channel.activate(inbox)
    body["running"] = runtime is not None
    body["webhook_error"] = runtime.webhook_error if runtime is not None else None
    return body


async def list_bots(channel: TelegramChannel, who: Principal) -> list[dict[str, Any]]:
    check_role(who, m.Role.ADMIN)
    async with channel.services.db.transaction() as session:
        rows = await inboxes.channel_inboxes(session, "telegram", active_only=False)
    return [bot_dict(row, channel) for row in rows]
