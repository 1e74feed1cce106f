"""The customer asks for the transcript from the widget in real Chromium (Russian UI): the
address is asked for and checked, the mail reaches a loopback SMTP server with the PDF, the
PDF downloads; another visitor's token gets nothing, and the requests are rate limited."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from channels.widget import VISITOR_PURPOSE
from omni import crypto
from omni.settings import WidgetSettings
from tests import factories as f
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import screenshot_path
from tests.helpers import HTTP_TIMEOUT, until
from tests.reports.test_mailing import Smtp
from tests.reports.test_mailing import smtp as smtp  # the loopback SMTP server, re-exported
from tests.test_realtime import OperatorClient, token_for

WIDGET_JS = Path(__file__).resolve().parents[2] / "widget" / "dist" / "omni-widget.js"


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
async def server(pg_url: str, tmp_path: Path, smtp: Smtp) -> AsyncIterator[LiveServer]:
    assert WIDGET_JS.exists(), "build the widget first (cd widget && npm ci && npm run build)"
    settings = make_settings(
        pg_url, data_dir=tmp_path, smtp=smtp.settings, widget=WidgetSettings(transcripts_per_minute=3)
    )
    srv = LiveServer(settings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def shop(server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op", display_name="Ольга")
        q = await f.queue(s, "web", [op])
        ib = await f.inbox(s, q, channel="widget")
        ib.config = {"prechat": [{"name": "name", "required": True}]}
        token, inbox_id = ib.public_token, ib.id

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><html lang='ru'><head><title>Магазин</title></head><body><h1>Магазин</h1>"
            f'<script src="{server.url}/widget/omni-widget.js" data-inbox="{token}" async></script>'
            "</body></html>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield {
            "url": f"http://127.0.0.1:{port}/",
            "token": token,
            "inbox_id": inbox_id,
            "op_token": await token_for(server, "op"),
        }
    finally:
        await runner.cleanup()


async def test_customer_got_the_transcript_by_mail_and_as_a_pdf(
    server: LiveServer, shop: dict[str, Any], browser: Browser, smtp: Smtp
) -> None:
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    context = await browser.new_context(locale="ru-RU", accept_downloads=True)
    try:
        page = await context.new_page()
        await page.goto(shop["url"])
        await page.get_by_role("button", name="Напишите нам").click()
        await page.locator(".omni-prechat input[name=name]").fill("Анна")
        await page.locator(".omni-prechat button[type=submit]").click()
        await page.locator(".omni-form textarea").fill("Здравствуйте, где мой заказ?")
        await page.keyboard.press("Enter")
        offer = await op.wait_for("conversation.offered", timeout=15)
        conv_id = offer["data"]["id"]
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        assert (await op.call("send", {"conversation_id": conv_id, "body": "Заказ уже в пути"}))["ok"]
        note = {"conversation_id": conv_id, "body": "внутренняя заметка", "private": True}
        assert (await op.call("send", note))["ok"]
        await page.locator(".omni-log").get_by_text("Заказ уже в пути").wait_for(timeout=15_000)

        toggle = page.get_by_role("button", name="Переписка")
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        email = page.get_by_label("Ваш e-mail")
        send = page.get_by_role("button", name="Отправить на e-mail")
        result = page.locator(".omni-transcript [role=status]")
        await email.fill("anna@")  # checked in the widget: nothing is sent
        await send.click()
        await expect(result).to_have_text("Это не адрес e-mail")
        await expect(email).to_have_attribute("aria-invalid", "true")
        await email.fill("")  # no address on the card: the server asks for one, in Russian
        await send.click()
        await expect(result).to_have_text("укажите адрес e-mail, на который отправить переписку")
        await email.fill("anna@example.com")
        await send.click()
        await expect(result).to_have_text("Переписка отправлена на anna@example.com")
        await page.screenshot(path=screenshot_path("widget-transcript.png"))
        await until(lambda: len(smtp.box.messages) == 1, what="the transcript mail")
        mail = smtp.box.messages[0]
        assert mail["To"] == "anna@example.com" and f"№{conv_id}" in mail["Subject"]
        [pdf] = list(mail.iter_attachments())
        mailed = pdf_text(pdf.get_content())
        assert "Здравствуйте, где мой заказ?" in mailed and "Заказ уже в пути" in mailed
        assert "Ольга" in mailed and "внутренняя" not in mailed

        async with page.expect_download() as info:
            await page.get_by_role("link", name="Скачать PDF").click()
        download = await info.value
        assert download.suggested_filename == f"transcript-{conv_id}.pdf"
        saved = await download.path()
        downloaded = pdf_text(await asyncio.to_thread(Path(saved).read_bytes))
        assert "Здравствуйте, где мой заказ?" in downloaded and "внутренняя" not in downloaded

        stored = await page.evaluate(f"localStorage.getItem('omni:{shop['token']}:visitor')")
        mine = json.loads(stored)
        key = server.settings.effective_secret_key()
        someone_else = crypto.sign_value(key, VISITOR_PURPOSE, f"v:{shop['inbox_id']}:someone-else")
        url = f"{server.url}/api/v1/widget/transcript"
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            base = {"inbox": shop["token"], "conversation_id": conv_id}
            other = await http.get(url, params={**base, "visitor": someone_else})
            assert other.status_code == 404, other.text
            forged = await http.get(url, params={**base, "visitor": mine[:-2] + "xx"})
            assert forged.status_code == 401, forged.text
            # Three of this visitor's requests this minute (refused, mailed, downloaded): the
            # fourth is refused until the minute is over.
            limited = await http.get(url, params={**base, "visitor": mine})
            assert limited.status_code == 429, limited.text
    finally:
        await context.close()
        await op.sio.disconnect()
