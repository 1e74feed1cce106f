"""HTTP side of the Telegram channel: the webhook Telegram posts updates to, and bot management.

``POST /api/v1/telegram/webhook/{inbox public token}``: refused without the
``X-Telegram-Bot-Api-Secret-Token`` header (401) or with a wrong one (403), before anything is
parsed; answered 200 only once the update is stored, so a failure makes Telegram retry.
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post

from channels.telegram import KIND, WEBHOOK_PATH, TelegramChannel, bots, webhook_secret
from omni.api.core import DEPS
from omni.api.deps import services_of
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from omni.services import Services

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name, not a secret


def channel_of(services: Services) -> TelegramChannel:
    adapter = services.adapters.get(KIND)
    if not isinstance(adapter, TelegramChannel):
        raise NotFound("the Telegram channel is not enabled")
    return adapter


class TelegramWebhookController(Controller):
    path = WEBHOOK_PATH

    @post("/{token:str}", status_code=200)
    async def update(self, request: Request[Any, Any, Any], token: str) -> Response[dict[str, Any]]:
        services = services_of(request)
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise NotAuthenticated("the X-Telegram-Bot-Api-Secret-Token header is missing")
        expected = webhook_secret(services.settings.effective_secret_key(), token)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise PermissionDenied("wrong secret token")
        channel = channel_of(services)
        runtime = await channel.runtime_by_token(token)
        if runtime is None:
            raise NotFound("unknown or disabled Telegram bot")
        try:
            update = msgspec.json.decode(await request.body())
        except msgspec.DecodeError as exc:
            raise InvalidInput("the body is not JSON") from exc
        if not isinstance(update, dict) or "update_id" not in update:
            raise InvalidInput("the body is not a Telegram update")
        await channel.feed(runtime, update)
        return Response({"ok": True})


class TelegramBotController(Controller):
    path = "/api/v1/telegram/bots"
    dependencies = DEPS

    @post("/", status_code=201)
    async def create(self, who: Principal, services: Services, data: dict[str, Any]) -> dict[str, Any]:
        """``{name, token, queue_id, mode: webhook|polling, queue_message?, closing_message?,
        csat?: {question, labels?}}``: the token is checked with ``getMe`` first."""
        return await bots.create_bot(channel_of(services), who, data)

    @get("/")
    async def list_bots(self, who: Principal, services: Services) -> list[dict[str, Any]]:
        return await bots.list_bots(channel_of(services), who)


CONTROLLERS = [TelegramWebhookController, TelegramBotController]
