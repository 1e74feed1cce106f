"""HTTP side of the Telegram channel: the webhook Telegram posts updates to, and bot management.

``POST /api/v1/telegram/webhook/{inbox public token}``: refused without the
``X-Telegram-Bot-Api-Secret-Token`` header (401) or with a wrong one (403), before anything is
parsed; answered 200 only once the update is stored, so a failure makes Telegram retry.
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec

from channels.telegram import KIND, WEBHOOK_PATH, TelegramChannel, bots, webhook_secret
from omni.api.contracts import ErrorBody, IntId, Name, Text
from omni.api.core import DEPS
from omni.api.deps import services_of
from omni.api.edge import REFUSALS
from omni.api.schemas import OkOut
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from omni.services import Services

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name, not a secret


class CsatIn(msgspec.Struct, forbid_unknown_fields=True):
    """The question asked on close and its answer buttons (none: 1-5)."""

    question: Text
    labels: list[Name] | msgspec.UnsetType = msgspec.UNSET


class TelegramBotIn(msgspec.Struct):
    """A bot to connect; ``token`` is checked with ``getMe`` first (400 ``invalid_token``)."""

    token: Text = ""
    name: Name | None = None
    queue_id: IntId | None = None
    mode: Name | None = None
    queue_message: Text | None = None
    closing_message: Text | None = None
    csat: dict[str, Any] | None = None


class TelegramBotUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What changes; a new ``token`` is checked with ``getMe`` (400 ``invalid_token``)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    token: Text | msgspec.UnsetType = msgspec.UNSET
    queue_id: IntId | msgspec.UnsetType | None = msgspec.UNSET
    mode: Name | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    queue_message: Text | msgspec.UnsetType | None = msgspec.UNSET
    closing_message: Text | msgspec.UnsetType | None = msgspec.UNSET
    csat: CsatIn | msgspec.UnsetType | None = msgspec.UNSET


class TelegramBotOut(msgspec.Struct):
    """``channels.telegram.bots.bot_dict``: never the token."""

    inbox_id: int
    name: str
    queue_id: int | None
    active: bool
    mode: str
    bot_id: int | None
    bot_username: str | None
    webhook_url: str | None
    running: bool
    config: dict[str, Any]


class TelegramBotCreatedOut(TelegramBotOut):
    webhook_error: str | None


def channel_of(services: Services) -> TelegramChannel:
    adapter = services.adapters.get(KIND)
    if not isinstance(adapter, TelegramChannel):
        raise NotFound("the Telegram channel is not enabled")
    return adapter


class TelegramWebhookController(Controller):
    path = WEBHOOK_PATH

    @post(
        "/{token:str}",
        status_code=200,
        responses={401: REFUSALS[401], 403: REFUSALS[403], 404: REFUSALS[404]},
    )
    async def update(self, request: Request[Any, Any, Any], token: Name) -> Response[OkOut]:
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
        return Response(OkOut(ok=True))


class TelegramBotController(Controller):
    path = "/api/v1/telegram/bots"
    dependencies = DEPS

    @post(
        "/",
        status_code=201,
        responses={
            404: REFUSALS[404],
            502: ResponseSpec(ErrorBody, description="Telegram could not be reached"),
        },
    )
    async def create(self, who: Principal, services: Services, data: TelegramBotIn) -> TelegramBotCreatedOut:
        """``{name, token, queue_id, mode: webhook|polling, queue_message?, closing_message?,
        csat?: {question, labels?}}``: the token is checked with ``getMe`` first."""
        body = await bots.create_bot(channel_of(services), who, msgspec.structs.asdict(data))
        return msgspec.convert(body, TelegramBotCreatedOut)

    @get("/", responses={404: REFUSALS[404]})
    async def list_bots(self, who: Principal, services: Services) -> list[TelegramBotOut]:
        return msgspec.convert(await bots.list_bots(channel_of(services), who), list[TelegramBotOut])

    @get("/{inbox_id:int}", responses={404: REFUSALS[404]})
    async def get_bot(self, who: Principal, services: Services, inbox_id: IntId) -> TelegramBotOut:
        return msgspec.convert(await bots.get_bot(channel_of(services), who, inbox_id), TelegramBotOut)

    @patch(
        "/{inbox_id:int}",
        responses={
            404: REFUSALS[404],
            502: ResponseSpec(ErrorBody, description="Telegram could not be reached"),
        },
    )
    async def update_bot(
        self, who: Principal, services: Services, inbox_id: IntId, data: TelegramBotUpdate
    ) -> TelegramBotOut:
        """Label, queue, mode, on/off, texts or a new token (checked with ``getMe``); this node
        restarts the bot at once, the others at their next reconcile."""
        sent: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(data))
        body = await bots.update_bot(channel_of(services), who, inbox_id, sent)
        return msgspec.convert(body, TelegramBotOut)

    @delete("/{inbox_id:int}", status_code=200, responses={404: REFUSALS[404], 409: REFUSALS[409]})
    async def delete_bot(self, who: Principal, services: Services, inbox_id: IntId) -> OkOut:
        """The bot's inbox goes (its conversations stay) and the bot stops."""
        await bots.delete_bot(channel_of(services), who, inbox_id)
        return OkOut(ok=True)


CONTROLLERS = [TelegramWebhookController, TelegramBotController]
