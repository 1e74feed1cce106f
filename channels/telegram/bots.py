"""Managing bots: a bot is an inbox with ``channel = "telegram"``, its token encrypted at rest
(``Inbox.secret_encrypted``) and ``config = {"mode", "bot_id", "bot_username", ...}``.

Creation validates the token with ``getMe`` first, so a wrong token is refused with a
sentence naming it, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError
from aiogram.types import User
from aiogram.utils.token import TokenValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin, inboxes
from omni.domain.auth import Principal, check_role
from omni.domain.errors import DomainError, InvalidInput, NotFound

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
    async with channel.services.db.transaction() as session:
        inbox = await check_create_bot(session, channel, who, data)
    body = bot_dict(inbox, channel)
    runtime = await channel.activate(inbox)
    body["running"] = runtime is not None
    body["webhook_error"] = runtime.webhook_error if runtime is not None else None
    return body


async def check_create_bot(
    session: AsyncSession, channel: TelegramChannel, who: Principal, data: Mapping[str, Any]
) -> m.Inbox:
    """The checks and rows of :func:`create_bot` in the caller's transaction (the admin form)."""
    check_role(who, m.Role.ADMIN)
    mode = str(data.get("mode") or "webhook")
    if mode not in MODES:
        raise InvalidInput("mode must be webhook or polling", field="mode")
    token = str(data.get("token") or "").strip()
    if not token:
        raise InvalidBotToken("the bot token is required", field="token")
    services = channel.services
    me = await check_token(token, services.settings.telegram.api_base_url)
    extra = {k: v for k, v in _texts(data).items() if v is not None}  # "": no such message
    config = {"mode": mode, "bot_id": me.id, "bot_username": me.username or "", **extra}
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
    return inbox


MAX_CSAT_LABELS = 10


def _texts(data: Mapping[str, Any]) -> dict[str, Any]:
    """The per-bot texts of ``data`` checked: strings, and a CSAT of a question with 2-10 labels."""
    out: dict[str, Any] = {}
    for key in ("queue_message", "closing_message"):
        if key in data and data[key] is not None:
            if not isinstance(data[key], str):
                raise InvalidInput("{field} must be a string", field=key)
            out[key] = data[key].strip()
    if "csat" in data:
        csat = data["csat"]
        if csat is None or csat == {}:
            out["csat"] = None
        else:
            if not isinstance(csat, dict) or set(csat) - {"question", "labels"}:
                raise InvalidInput("csat is {{question, labels}}", field="csat")
            question = csat.get("question")
            if not isinstance(question, str) or not question.strip():
                raise InvalidInput("the satisfaction question must not be empty", field="csat")
            labels = csat.get("labels") or []
            if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
                raise InvalidInput("the answer labels must be a list of texts", field="csat")
            if labels and not 2 <= len(labels) <= MAX_CSAT_LABELS:
                raise InvalidInput(
                    "give between 2 and {most} answer labels (or none for 1-5)",
                    most=MAX_CSAT_LABELS,
                    field="csat",
                )
            out["csat"] = {
                "question": question.strip(),
                **({"labels": [x.strip() for x in labels]} if labels else {}),
            }
    return out


async def bot_inbox(session: AsyncSession, who: Principal, inbox_id: int) -> m.Inbox:
    """A Telegram inbox (admin only); any other inbox is 'not found' here."""
    check_role(who, m.Role.ADMIN)
    inbox = await session.get(m.Inbox, inbox_id)
    if inbox is None or inbox.channel != "telegram":
        raise NotFound("Telegram bot {inbox_id} not found", inbox_id=inbox_id)
    return inbox


async def check_update_bot(
    session: AsyncSession, channel: TelegramChannel, who: Principal, inbox_id: int, data: Mapping[str, Any]
) -> m.Inbox:
    """Change a bot's label, queue, mode, on/off, texts, or its token (checked with ``getMe``;
    it must be the same bot or one not connected yet). The caller restarts it after commit
    (:func:`restart_bot`): a changed token or mode takes effect at once."""
    inbox = await bot_inbox(session, who, inbox_id)
    unknown = set(data) - {"name", "queue_id", "active", "mode", "token", *CONFIG_KEYS}
    if unknown:
        raise InvalidInput("unknown field '{field}'", field=sorted(unknown)[0])
    config = dict(inbox.config or {})
    if "mode" in data:
        if data["mode"] not in MODES:
            raise InvalidInput("mode must be webhook or polling", field="mode")
        config["mode"] = data["mode"]
    for key, value in _texts(data).items():
        if value is None:  # back to the default (no CSAT, the default place-in-line text)
            config.pop(key, None)
        else:
            config[key] = value  # "" turns the message off
    token = str(data.get("token") or "").strip()
    if token:
        me = await check_token(token, channel.services.settings.telegram.api_base_url)
        clash = await inboxes.inbox_with_config_id(session, "telegram", "bot_id", me.id)
        if clash is not None and clash != inbox.id:
            raise InvalidInput(
                "bot @{username} is already connected (inbox {clash})",
                username=me.username,
                clash=clash,
                field="token",
            )
        config["bot_id"], config["bot_username"] = me.id, me.username or ""
    changes: dict[str, Any] = {k: data[k] for k in ("name", "queue_id", "active") if k in data}
    changes["config"] = config
    inbox = await admin.check_update_inbox(session, who, inbox.id, changes)
    if token:
        inboxes.do_store_inbox_secret(inbox, channel.services.settings.effective_secret_key(), token)
    return inbox


async def check_delete_bot(session: AsyncSession, who: Principal, inbox_id: int) -> None:
    """The inbox goes (its conversations stay); every node stops the bot at its next reconcile,
    this one at once (:func:`restart_bot`)."""
    inbox = await bot_inbox(session, who, inbox_id)
    await admin.check_delete_inbox(session, who, inbox.id)


async def restart_bot(channel: TelegramChannel, inbox_id: int) -> None:
    """After a committed change: this node runs the bot as stored now (or stops it)."""
    await channel.reconcile_one(inbox_id)


async def update_bot(
    channel: TelegramChannel, who: Principal, inbox_id: int, data: dict[str, Any]
) -> dict[str, Any]:
    async with channel.services.db.transaction() as session:
        inbox = await check_update_bot(session, channel, who, inbox_id, data)
    await restart_bot(channel, inbox_id)
    return bot_dict(inbox, channel)


async def delete_bot(channel: TelegramChannel, who: Principal, inbox_id: int) -> None:
    async with channel.services.db.transaction() as session:
        await check_delete_bot(session, who, inbox_id)
    await restart_bot(channel, inbox_id)


async def get_bot(channel: TelegramChannel, who: Principal, inbox_id: int) -> dict[str, Any]:
    async with channel.services.db.transaction() as session:
        return bot_dict(await bot_inbox(session, who, inbox_id), channel)


async def list_bots(channel: TelegramChannel, who: Principal) -> list[dict[str, Any]]:
    check_role(who, m.Role.ADMIN)
    async with channel.services.db.transaction() as session:
        rows = await inboxes.channel_inboxes(session, "telegram", active_only=False)
    return [bot_dict(row, channel) for row in rows]
