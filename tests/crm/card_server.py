"""A stand-in CRM for the screen-pop: ``GET /card?phone=...`` on loopback, recording each request.

``cards`` maps a phone (else the identity, ``id``) to the JSON it answers (an unknown one
gets 404, which is "no card"); ``mode`` makes it unkind: ``hang`` (never answers: Omni's
timeout must cut it), ``error`` (500), ``garbage`` (200 with HTML). Each request's URL and
headers are kept so a test can check the signature and count what the cache spared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.conftest import free_port


@dataclass
class CardServer:
    cards: dict[str, Any] = field(default_factory=dict)
    mode: str = "ok"
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a request arrived in ``hang`` mode."""
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/card?phone={{phone}}&email={{email}}&id={{identity}}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits.append((str(request.url), dict(request.headers)))
        if self.mode == "hang":
            self.hung.set()
            await self._release.wait()
        if self.mode == "error":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "garbage":
            return web.Response(status=200, text="<html>maintenance</html>", content_type="text/html")
        card = self.cards.get(request.query.get("phone") or request.query.get("id", ""))
        if card is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(card)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/card", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
