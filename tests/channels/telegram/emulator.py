"""A loopback Telegram Bot API server for aiogram's own HTTP session (``AiohttpSession`` with
``TelegramAPIServer.from_base(emulator.url)``).

Implements, with the real JSON shapes (``{"ok": true, "result": …}`` /
``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``): getMe,
setWebhook, deleteWebhook, getWebhookInfo, getUpdates (long poll, offset confirmation, 409
while a webhook is set), sendMessage, sendPhoto, sendDocument, answerCallbackQuery, getFile
and the file download path. Requests arrive as aiogram sends them (multipart form fields,
JSON-encoded where complex).

Knobs: ``inject(method, status, description, retry_after)`` queues a one-off error reply;
``blocked`` chats get 403 "bot was blocked by the user"; ``enforce_limits`` refuses like
Telegram (429 + retry_after) a second message to a chat within ``chat_interval`` or more than
``global_per_second`` sends per bot in any one-second window (as the server sees arrivals);
``arrival_jitter`` delays each request's arrival by a random 0…N seconds (seeded), like a
jittery network between Omni and Telegram; ``stop()`` / ``start()``
restart the server on the same port, keeping its state (pending updates).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

SEND_METHODS = {"sendmessage", "sendphoto", "senddocument"}


@dataclass
class Call:
    """One request the emulator received."""

    method: str
    token: str
    params: dict[str, Any]
    at: float
    status: int = 200
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class EmulatedBot:
    id: int
    username: str
    first_name: str
    webhook_url: str = ""
    webhook_secret: str = ""
    updates: list[dict[str, Any]] = field(default_factory=list)
    new_update: asyncio.Event = field(default_factory=asyncio.Event)
    sent_at: deque[float] = field(default_factory=deque)
    polling: int = 0
    """``getUpdates`` requests being answered now."""
    overlapping_polls: int = 0
    """``getUpdates`` requests that came while another was pending (Telegram answers one of
    them 409 "terminated by other getUpdates request": two pollers of one bot)."""

    def user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


class BotApiEmulator:
    def __init__(self, port: int) -> None:
        self.port = port
        self.bots: dict[str, EmulatedBot] = {}
        self.calls: list[Call] = []
        self.files: dict[str, tuple[str, bytes]] = {}
        """file_id → (file_path, content)."""
        self.blocked: set[int] = set()
        self.enforce_limits = True
        self.chat_interval = 1.0
        self.global_per_second = 30
        self.refused_429 = 0
        self.arrival_jitter = 0.0
        self._rng = random.Random(13)  # network jitter, not security
        self._injected: dict[str, deque[tuple[int, str, int | None]]] = {}
        self._chat_last: dict[tuple[str, int], float] = {}
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.delivery_status: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- server lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            for bot in self.bots.values():
                bot.new_update.set()
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        await self.stop()
        if self._client is not None:
            await self._client.close()

    # --- test helpers -------------------------------------------------------------------

    def add_bot(self, username: str = "omni_test_bot") -> str:
        """A bot Telegram knows; returns its token."""
        bot_id = 7_000_000 + len(self.bots) + 1
        token = f"{bot_id}:{secrets.token_urlsafe(26)[:35]}"
        self.bots[token] = EmulatedBot(bot_id, username, username.replace("_", " ").title())
        return token

    def inject(self, method: str, status: int, description: str, retry_after: int | None = None) -> None:
        self._injected.setdefault(method.lower(), deque()).append((status, description, retry_after))

    def sent(self, chat_id: int | None = None, method: str | None = None) -> list[Call]:
        """Successful send calls, optionally to one chat / of one method."""
        return [
            c
            for c in self.calls
            if c.method in SEND_METHODS
            and c.status == 200
            and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)
            and (method is None or c.method == method.lower())
        ]

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method.lower()]

    def add_file(self, content: bytes, name: str) -> str:
        file_id = "F" + secrets.token_urlsafe(12)
        self.files[file_id] = (f"files/{file_id}/{name}", content)
        return file_id

    def update(self, **content: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **content}

    def message(self, user: dict[str, Any], **content: Any) -> dict[str, Any]:
        """A private-chat message from ``user`` (``{"id", "first_name", ...}``)."""
        return {
            "message_id": next(self._message_ids),
            "from": {"is_bot": False, **user},
            "chat": {
                "id": user["id"],
                "type": "private",
                "first_name": user.get("first_name", ""),
                **({"username": user["username"]} if "username" in user else {}),
            },
            "date": int(time.time()),
            **content,
        }

    def push(self, token: str, update: dict[str, Any]) -> None:
        """Queue an update for ``getUpdates`` (polling mode)."""
        bot = self.bots[token]
        bot.updates.append(update)
        bot.new_update.set()

    async def deliver(self, token: str, update: dict[str, Any]) -> int:
        """Post an update to the registered webhook with its secret, like Telegram; the status."""
        bot = self.bots[token]
        assert bot.webhook_url, "no webhook registered"
        if self._client is None:
            self._client = aiohttp.ClientSession()
        headers = {"X-Telegram-Bot-Api-Secret-Token": bot.webhook_secret} if bot.webhook_secret else {}
        async with self._client.post(bot.webhook_url, json=update, headers=headers) as resp:
            await resp.read()
            self.delivery_status.append(resp.status)
            return resp.status

    # --- the API ------------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        uploads: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[key] = value.file.read()
                    params[key] = {"filename": value.filename}
                else:
                    params[key] = str(value)
        for key in ("reply_markup", "allowed_updates"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params, uploads

    async def _api(self, request: web.Request) -> web.Response:
        if self.arrival_jitter > 0:
            await asyncio.sleep(self._rng.uniform(0, self.arrival_jitter))
        arrived = time.monotonic()
        token = request.match_info["token"]
        method = request.match_info["method"].lower()
        params, uploads = await self._params(request)
        call = Call(method, token, params, arrived, files=uploads)
        self.calls.append(call)
        response = await self._handle(call, token, method, params, uploads)
        call.status = response.status
        return response

    async def _handle(
        self, call: Call, token: str, method: str, params: dict[str, Any], uploads: dict[str, bytes]
    ) -> web.Response:
        bot = self.bots.get(token)
        if bot is None:
            return self._error(401, "Unauthorized")
        injected = self._injected.get(method)
        if injected:
            status, description, retry_after = injected.popleft()
            if status == 429:
                self.refused_429 += 1
            return self._error(status, description, retry_after)
        if method == "getme":
            return self._ok(bot.user())
        if method == "setwebhook":
            bot.webhook_url = str(params.get("url", ""))
            bot.webhook_secret = str(params.get("secret_token", ""))
            return self._ok(True)
        if method == "deletewebhook":
            bot.webhook_url = ""
            bot.webhook_secret = ""
            return self._ok(True)
        if method == "getwebhookinfo":
            return self._ok(
                {"url": bot.webhook_url, "has_custom_certificate": False, "pending_update_count": 0}
            )
        if method == "getupdates":
            return await self._get_updates(bot, params)
        if method == "answercallbackquery":
            return self._ok(True)
        if method == "getfile":
            file_id = str(params.get("file_id", ""))
            if file_id not in self.files:
                return self._error(400, "Bad Request: invalid file_id")
            path, content = self.files[file_id]
            return self._ok(
                {
                    "file_id": file_id,
                    "file_unique_id": file_id[-8:],
                    "file_size": len(content),
                    "file_path": path,
                }
            )
        if method in SEND_METHODS:
            return self._send(call, bot, token, method, params, uploads)
        return self._error(404, "Not Found: method not found")

    async def _get_updates(self, bot: EmulatedBot, params: dict[str, Any]) -> web.Response:
        if bot.webhook_url:
            return self._error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        if offset:
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
        if bot.polling:
            bot.overlapping_polls += 1
        bot.polling += 1
        try:
            timeout = float(params.get("timeout") or 0)
            if not bot.updates and timeout > 0:
                bot.new_update.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(bot.new_update.wait(), timeout=timeout)
        finally:
            bot.polling -= 1
        limit = int(params.get("limit") or 100)
        return self._ok(bot.updates[:limit])

    def _send(
        self,
        call: Call,
        bot: EmulatedBot,
        token: str,
        method: str,
        params: dict[str, Any],
        uploads: dict[str, bytes],
    ) -> web.Response:
        chat_id = int(params.get("chat_id", 0))
        if chat_id in self.blocked:
            return self._error(403, "Forbidden: bot was blocked by the user")
        if self.enforce_limits:
            now = call.at
            last = self._chat_last.get((token, chat_id))
            while bot.sent_at and bot.sent_at[0] <= now - 1.0:
                bot.sent_at.popleft()
            if (last is not None and now - last < self.chat_interval) or len(
                bot.sent_at
            ) >= self.global_per_second:
                self.refused_429 += 1
                return self._error(429, "Too Many Requests: retry after 1", 1)
            self._chat_last[(token, chat_id)] = now
            bot.sent_at.append(now)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": bot.user(),
            "chat": {"id": chat_id, "type": "private", "first_name": "Customer"},
            "date": int(time.time()),
        }
        if method == "sendmessage":
            message["text"] = str(params.get("text", ""))
        elif method == "sendphoto":
            size = len(uploads.get("photo", b""))
            message["photo"] = [
                {"file_id": "P1", "file_unique_id": "p1", "width": 1, "height": 1, "file_size": size}
            ]
        else:
            doc = params.get("document")
            name = doc.get("filename") if isinstance(doc, dict) else "file"
            message["document"] = {"file_id": "D1", "file_unique_id": "d1", "file_name": name}
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        return self._ok(message)

    async def _file(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        path = request.match_info["path"]
        if token not in self.bots:
            return web.Response(status=401)
        for file_path, content in self.files.values():
            if file_path == path:
                return web.Response(body=content)
        return web.Response(status=404)
