"""The widget in real Chromium on a customer's page (another origin), talking to an operator."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, WebSocketRoute, expect
from sqlalchemy import select

from bots import service
from channels.widget import VISITOR_PURPOSE, identity_hash
from omni import crypto
from omni.db import models as m
from omni.domain import automated
from omni.domain.auth import Principal
from omni.domain.reports.chats import csat_of
from omni.settings import WidgetSettings
from tests import factories as f
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import ARTIFACTS, staff_page
from tests.helpers import until
from tests.test_realtime import OperatorClient, token_for

SITE_SECRET = "shop-site-secret-123456"
WIDGET_JS = Path(__file__).resolve().parents[2] / "widget" / "dist" / "omni-widget.js"


@pytest.fixture
async def server(pg_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    assert WIDGET_JS.exists(), (
        "build the widget first (scripts/test.sh does: cd widget && npm ci && npm run build)"
    )
    srv = LiveServer(make_settings(pg_url, data_dir=tmp_path, widget=WidgetSettings(max_upload_bytes=2048)))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def shop(server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    """A customer's site on its own origin, with the one script tag."""
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        ib = await f.inbox(s, q, channel="widget")
        ib.config = {
            "prechat": [{"name": "name", "required": True}],
            "greeting": "Shop support",
            "colour": "#aa0000",
        }
        token = ib.public_token
        ib.secret_encrypted = crypto.encrypt(server.settings.effective_secret_key(), SITE_SECRET)

    def html(extra: str = "") -> str:
        return (
            "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
            f'<script src="{server.url}/widget/omni-widget.js" data-inbox="{token}" {extra} async></script>'
            "</body></html>"
        )

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=html(), content_type="text/html")

    async def forged_login(_: web.Request) -> web.Response:
        return web.Response(
            text=html('data-user-id="42" data-user-hash="' + "0" * 64 + '"'), content_type="text/html"
        )

    async def real_login(_: web.Request) -> web.Response:
        signed = identity_hash(SITE_SECRET, "42")
        return web.Response(
            text=html(f'data-user-id="42" data-user-hash="{signed}"'), content_type="text/html"
        )

    pages: dict[str, str] = {}  # more pages of the site, each with its own <head> (``_site``)

    async def site_page(request: web.Request) -> web.Response:
        head = pages[request.match_info["name"]]
        text = (
            html()
            .replace("<title>Shop</title>", f"<title>Shop</title>{head}")
            .replace("<html>", "<html lang='en'>")
        )
        return web.Response(text=text, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/p/{name}", site_page)
    app.router.add_get("/forged", forged_login)
    app.router.add_get("/account", real_login)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "op_token": await token_for(server, "op"), "pages": pages}
    finally:
        await runner.cleanup()


async def _text_appears(page: Page, text: str) -> None:
    await page.get_by_text(text, exact=False).first.wait_for(timeout=15_000)


async def test_customer_chats_with_operator_in_chromium(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    try:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(shop["url"])
        await page.get_by_role("button", name="Chat with us").click()
        await _text_appears(page, "Shop support")  # the inbox's greeting
        colour = await page.locator(".omni-launcher").evaluate("b => getComputedStyle(b).backgroundColor")
        assert colour == "rgb(170, 0, 0)", "the inbox's colour themes the widget"
        await page.get_by_role("button", name="Start chat").click()
        await _text_appears(page, "Please fill in this field")  # required pre-chat field
        await page.locator(".omni-prechat input[name=name]").fill("Ann")
        await page.get_by_role("button", name="Start chat").click()
        hostile = "<img src=x onerror=window.__xss=1>"
        await page.locator(".omni-form textarea").fill(hostile)
        await page.keyboard.press("Enter")
        offer = await op.wait_for("conversation.offered", timeout=15)
        conv_id = offer["data"]["id"]
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        await op.call("typing", {"conversation_id": conv_id, "typing": True})
        await _text_appears(page, "Operator is typing")
        assert (await op.call("send", {"conversation_id": conv_id, "body": "Hello Ann, <b>welcome</b>"}))[
            "ok"
        ]
        await _text_appears(page, "Hello Ann, <b>welcome</b>")
        assert await page.locator(".omni-msg.omni-in").first.text_content() == hostile + "✓"
        assert await page.evaluate("window.__xss") is None, "customer text must never run"
        await page.screenshot(path=str(ARTIFACTS / "widget-chat.png"))
        # The customer's name from the pre-chat form reached the contact card.
        async with server.services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            assert (await s.get_one(m.Contact, conv.contact_id)).name == "Ann"
        # Bot buttons are quick replies: a press sends the label and is gone from the page.
        async with server.services.db.transaction() as s:
            await automated.do_send_automated(
                s, conv_id, "Anything else?", buttons=[{"id": "no", "label": "No, thanks"}]
            )
        await page.get_by_role("button", name="No, thanks").click()
        await page.locator(".omni-quick").wait_for(state="detached", timeout=10_000)
        reply = await op.wait_for("message.created", body="No, thanks")
        assert reply["data"]["attachments"] == [{"kind": "button_reply", "id": "no"}]
        # Oversize upload: a clear error in the widget, nothing stored.
        with tempfile.NamedTemporaryFile(suffix=".png") as big:
            big.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096)
            big.flush()
            await page.locator(".omni-form input[type=file]").set_input_files(big.name)
            await _text_appears(page, "the file is larger than 2 KB")
        # Reload: history is back.
        await page.reload()
        await page.get_by_role("button", name="Chat with us").click()
        await _text_appears(page, "Hello Ann, <b>welcome</b>")
        assert await page.locator(".omni-msg").count() == 4
        await page.screenshot(path=str(ARTIFACTS / "widget-after-reload.png"))
    finally:
        await op.sio.disconnect()
    # Let the operator's presence settle before the server stops.
    await asyncio.sleep(0.1)


async def test_network_drop_loses_and_duplicates_nothing(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    try:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(shop["url"])
        await page.get_by_role("button", name="Chat with us").click()
        await page.locator(".omni-prechat input[name=name]").fill("Bob")
        await page.get_by_role("button", name="Start chat").click()
        box = page.locator(".omni-form textarea")
        await box.fill("before the drop")
        await page.keyboard.press("Enter")
        await _text_appears(page, "You are number 1 in line")
        await context.set_offline(True)
        await page.evaluate("window.omniWidget && window.omniWidget['socket'].io.engine.close()")
        await box.fill("typed while offline")
        await page.keyboard.press("Enter")
        await asyncio.sleep(1)
        await context.set_offline(False)
        offer = await op.wait_for("conversation.offered", timeout=15)
        conv_id = offer["data"]["id"]
        await op.call("accept", {"offer_id": offer["data"]["offer_id"]})
        for _ in range(150):
            async with server.services.db.transaction() as s:
                bodies = list(
                    await s.scalars(
                        select(m.Message.body)
                        .where(m.Message.conversation_id == conv_id)
                        .order_by(m.Message.id)
                    )
                )
            if len(bodies) >= 2:
                break
            await asyncio.sleep(0.1)
        assert bodies == ["before the drop", "typed while offline"]
        # The operator's reply is the sentinel: the socket brings it after the resend's answer.
        assert (await op.call("send", {"conversation_id": conv_id, "body": "got both"}))["ok"]
        await _text_appears(page, "got both")
        assert await page.locator(".omni-msg.omni-in").count() == 2, "no duplicate bubbles after the resend"
    finally:
        await op.sio.disconnect()


async def test_site_identity_forged_hash_is_refused(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    page = await (await browser.new_context(locale="en-US")).new_page()
    await page.goto(shop["url"] + "forged")
    await page.get_by_role("button", name="Chat with us").click()
    await _text_appears(page, "the user_hash does not match this user_id")
    good = await (await browser.new_context(locale="ru-RU")).new_page()
    await good.goto(shop["url"] + "account")
    await good.get_by_role("button", name="Напишите нам").click()  # Russian by browser language
    await good.locator(".omni-prechat input[name=name]").fill("Иван")
    await good.get_by_role("button", name="Начать чат").click()
    await good.locator(".omni-form textarea").fill("Привет")
    await good.keyboard.press("Enter")
    await _text_appears(good, "Вы 1-й в очереди")
    await good.screenshot(path=str(ARTIFACTS / "widget-ru.png"))


# --- refusals, pre-chat, language, closed notice, looks (issue 10: 15, 16, 17, 23, 25) ---------


async def _inbox(server: LiveServer) -> m.Inbox:
    async with server.services.db.transaction() as s:
        inbox = await s.scalar(select(m.Inbox).where(m.Inbox.channel == "widget"))
        assert inbox is not None
        return inbox


async def _configure(server: LiveServer, **config: Any) -> str:
    async with server.services.db.transaction() as s:
        inbox = await s.scalar(select(m.Inbox).where(m.Inbox.channel == "widget"))
        assert inbox is not None
        inbox.config = {**inbox.config, **config}
        return inbox.public_token


async def _stored_bodies(server: LiveServer) -> list[str]:
    async with server.services.db.transaction() as s:
        return list(await s.scalars(select(m.Message.body).order_by(m.Message.id)))


async def _until_stored(server: LiveServer, count: int) -> list[str]:
    async def enough() -> list[str] | None:
        bodies = await _stored_bodies(server)
        return bodies if len(bodies) >= count else None

    stored: list[str] = await until(enough, 15, what=f"{count} stored messages", every=0.05)
    return stored


async def _open_and_start(page: Page, url: str, name: str = "Ann") -> None:
    await page.goto(url)
    await page.get_by_role("button", name="Chat with us").click()
    await page.get_by_label("Name *").fill(name)
    await page.get_by_role("button", name="Start chat").click()


async def test_too_long_message_stayed_sending_and_its_text_was_gone(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    page = await (await browser.new_context(locale="en-US")).new_page()
    await _open_and_start(page, shop["url"])
    box = page.locator(".omni-form textarea")
    counter = page.locator(".omni-counter")
    await box.fill("x" * 100)
    assert await counter.text_content() == "", "no counter far from the limit"
    await box.fill("x" * 9_000)
    await expect(counter).to_have_text("9000 / 10000")
    long_text = "y" * 20_000
    await box.fill(long_text)
    await expect(counter).to_have_text("20000 / 10000")
    await expect(counter).to_have_class("omni-counter over")
    await page.keyboard.press("Enter")
    await _text_appears(page, "The message is too long: at most 10000 characters")
    assert await box.input_value() == long_text, "the text stays in the composer"
    assert await page.locator(".omni-msg.omni-in").count() == 0
    await page.screenshot(path=str(ARTIFACTS / "widget-too-long.png"))
    await box.fill("short and fine")
    await page.keyboard.press("Enter")
    assert await _until_stored(server, 1) == ["short and fine"]


async def test_unsendable_message_was_resent_on_every_reload(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    """A message with a NUL character left in the queue kept across reloads (as older widgets
    did) is refused once, given back with a translated reason and removed from that queue."""
    token = (await _inbox(server)).public_token
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    await page.goto(shop["url"])
    stuck = [{"client_id": "old-1", "body": "счёт\u0000 123", "attachments": [], "fields": {"name": "Аня"}}]
    await page.evaluate(
        """([key, stuck]) => {
            localStorage.setItem(key + ':pending', JSON.stringify(stuck));
            localStorage.setItem(key + ':started', 'true');
            localStorage.setItem(key + ':fields', JSON.stringify({name: 'Аня'}));
        }""",
        [f"omni:{token}", stuck],
    )
    await page.reload()
    await page.get_by_role("button", name="Напишите нам").click()
    await _text_appears(page, "В сообщении есть символы, которые нельзя отправить.")
    assert await page.locator(".omni-form textarea").input_value() == "счёт\u0000 123"
    pending = await page.evaluate(f"localStorage.getItem('omni:{token}:pending')")
    assert pending == "[]", "dropped from the queue that survives reloads"
    await page.reload()
    await page.get_by_role("button", name="Напишите нам").click()
    await page.locator(".omni-form textarea").wait_for()
    assert await page.locator(".omni-notice").text_content() == "", "not refused again after a reload"
    assert await _stored_bodies(server) == []


async def test_megabyte_message_made_the_widget_reconnect_forever(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    """A frame over the server's limit closes the connection; the widget never sends one."""
    token = (await _inbox(server)).public_token
    page = await (await browser.new_context(locale="en-US")).new_page()
    await page.goto(shop["url"])
    huge = "z" * 1_000_000
    await page.evaluate(
        """([key, body]) => {
            localStorage.setItem(key + ':pending', JSON.stringify(
                [{client_id: 'big-1', body, attachments: [], fields: {name: 'Ann'}}]));
            localStorage.setItem(key + ':started', 'true');
            localStorage.setItem(key + ':fields', JSON.stringify({name: 'Ann'}));
        }""",
        [f"omni:{token}", huge],
    )
    await page.reload()
    await page.get_by_role("button", name="Chat with us").click()
    await _text_appears(page, "The message is too long: at most 10000 characters")
    assert await page.locator(".omni-form textarea").input_value() == huge
    assert await page.evaluate(f"localStorage.getItem('omni:{token}:pending')") == "[]"
    assert await page.evaluate("window.omniWidget['socket'].connected") is True
    await page.locator(".omni-form textarea").fill("a normal one")
    await page.keyboard.press("Enter")
    assert await _until_stored(server, 1) == ["a normal one"], "the same connection still works"


async def test_rate_limited_message_waited_for_the_next_message(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    """Refused for the rate limit: it goes out by itself when the window reopens, and the
    notice stays until then (the queue position must not overwrite it)."""
    page = await (await browser.new_context(locale="en-US")).new_page()
    await _open_and_start(page, shop["url"])
    box = page.locator(".omni-form textarea")
    token = (await _inbox(server)).public_token
    visitor_token = await page.evaluate(f"JSON.parse(localStorage.getItem('omni:{token}:visitor'))")
    identity = crypto.unsign_value(server.settings.effective_secret_key(), VISITOR_PURPOSE, visitor_token)
    assert identity is not None
    limiter = server.app.other_asgi_app.state.sio.namespace_handlers["/widget"].limiter
    # The visitor's minute is nearly full, and its oldest hits leave the window 2 s from now;
    # the limiter's clock stands still until the refusal is seen (a loaded machine can take
    # longer than 2 s to send two messages, and the second would then be allowed).
    frozen = time.monotonic()
    limiter.clock = lambda: frozen
    for _ in range(limiter.per_minute - 1):
        limiter.hit(identity, now=frozen - 58)
    await box.fill("first")
    await page.keyboard.press("Enter")
    await _text_appears(page, "You are number 1 in line")
    await box.fill("second, sent when allowed")
    await page.keyboard.press("Enter")
    notice = page.locator(".omni-notice")
    await expect(notice).to_contain_text("Too many messages. Yours will be sent in", timeout=15_000)
    assert await page.locator(".omni-status").text_content() == "You are number 1 in line"
    await page.screenshot(path=str(ARTIFACTS / "widget-rate-limited.png"))
    assert await _until_stored(server, 1) == ["first"], "refused: not stored"
    # The clock moves on from the moment the oldest hits leave the window.
    moved = time.monotonic()
    limiter.clock = lambda: frozen + 2 + (time.monotonic() - moved)
    assert await _until_stored(server, 2) == ["first", "second, sent when allowed"]
    await expect(notice).to_have_text("", timeout=15_000)
    await expect(page.locator(".omni-msg.omni-in").nth(1)).to_have_text("second, sent when allowed✓")


async def test_message_typed_while_connecting_skipped_the_prechat_form(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    context = await browser.new_context(locale="en-US")
    # The connection is slow to come up: what the server says is held back until released.
    held: list[tuple[WebSocketRoute, str | bytes]] = []
    released = False

    def slow_link(ws: WebSocketRoute) -> None:
        def from_server(message: str | bytes) -> None:
            if released:
                ws.send(message)
            else:
                held.append((ws, message))

        ws.connect_to_server().on_message(from_server)

    def release() -> None:
        nonlocal released
        for ws, message in held:
            ws.send(message)
        released = True

    await context.route_web_socket(lambda url: "/socket.io/" in url, slow_link)
    page = await context.new_page()
    await page.goto(shop["url"])
    await page.get_by_role("button", name="Chat with us").click()
    box = page.locator(".omni-form textarea")
    await box.fill("typed before the connection was up")
    await page.keyboard.press("Enter")
    assert held, "the widget is still connecting"
    release()
    await page.get_by_label("Name *").wait_for(timeout=15_000)  # the form, once the config is known
    assert await _stored_bodies(server) == [], "nothing goes out before the form is filled"
    await page.get_by_label("Name *").fill("Early Bird")
    await page.get_by_role("button", name="Start chat").click()
    assert await box.input_value() == "typed before the connection was up", "the text is kept"
    await page.keyboard.press("Enter")
    assert await _until_stored(server, 1) == ["typed before the connection was up"]
    async with server.services.db.transaction() as s:
        assert await s.scalar(select(m.Contact.name)) == "Early Bird"
        assert await s.scalar(select(m.Conversation.status)) == "queued"


async def test_prechat_made_required_later_is_asked_before_the_next_conversation(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    """The server refuses a first message without a required field (permanently, naming it):
    the widget shows the form again with the reason and keeps the text."""
    token = await _configure(server, prechat=[{"name": "name", "required": False}])
    page = await (await browser.new_context(locale="ru-RU")).new_page()
    await page.goto(shop["url"])
    await page.get_by_role("button", name="Напишите нам").click()
    await page.get_by_role("button", name="Начать чат").click()  # name optional: left empty
    await _configure(server, prechat=[{"name": "name", "required": True}])
    box = page.locator(".omni-form textarea")
    await box.fill("Здравствуйте")
    await page.keyboard.press("Enter")
    await _text_appears(page, "Сначала заполните поле «Имя».")
    await page.get_by_label("Имя").fill("Пётр")
    await page.get_by_role("button", name="Начать чат").click()
    assert await box.input_value() == "Здравствуйте"
    await page.keyboard.press("Enter")
    assert await _until_stored(server, 1) == ["Здравствуйте"]
    async with server.services.db.transaction() as s:
        assert await s.scalar(select(m.Contact.name)) == "Пётр"
    assert token


RU_EN_SCENARIO: dict[str, Any] = {
    "name": "Greeter",
    "start": "menu",
    "nodes": [
        {"id": "menu", "type": "menu", "content": {"text": "What is it about?", "text_ru": "О чём вопрос?"},
         "options": [{"id": "pay", "label": "Payment", "label_ru": "Оплата"}],
         "ports": {"opt:pay": "agent", "on_max_retries": "agent"}},
        {"id": "agent", "type": "handoff", "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
        {"id": "bye", "type": "close", "message": {"text": "Bye", "text_ru": "До свидания"}},
    ],
}  # fmt: skip


async def test_bot_spoke_english_to_a_russian_widget_customer(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    async with server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        row = await service.create(s, Principal.of(admin), "greeter", "Greeter", RU_EN_SCENARIO)
        await service.publish(s, Principal.of(admin), row.id)
    await _configure(server, scenario="greeter", prechat=[])
    page = await (await browser.new_context(locale="ru-RU")).new_page()
    await page.goto(shop["url"])
    await page.get_by_role("button", name="Напишите нам").click()
    await page.locator(".omni-form textarea").fill("Привет")
    await page.keyboard.press("Enter")
    await _text_appears(page, "О чём вопрос?")
    await page.get_by_role("button", name="Оплата").click()
    await page.screenshot(path=str(ARTIFACTS / "widget-bot-ru.png"))
    assert "What is it about?" not in (await page.locator(".omni-log").text_content() or "")


async def test_customer_was_not_told_the_conversation_was_closed(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    await _configure(server, csat={"question": "How did we do?", "labels": ["Bad", "OK", "Great"]})
    async with server.services.db.transaction() as s:
        code_id = (await f.result_code(s)).id
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    try:
        page = await (await browser.new_context(locale="en-US")).new_page()
        await _open_and_start(page, shop["url"])
        await page.locator(".omni-form textarea").fill("my order is late")
        await page.keyboard.press("Enter")
        offer = await op.wait_for("conversation.offered", timeout=15)
        first = offer["data"]["id"]
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        assert (await op.call("close", {"conversation_id": first, "result_code_id": code_id}))["ok"]
        await _text_appears(page, "The conversation has been closed.")
        await _text_appears(page, "How did we do?")
        await page.screenshot(path=str(ARTIFACTS / "widget-closed.png"))
        await page.get_by_role("button", name="Great").click()
        await _text_appears(page, "Thank you for your rating!")
        await page.get_by_role("button", name="Start a new conversation").click()
        await _text_appears(page, "New conversation")
        await page.locator(".omni-form textarea").fill("another question")
        await page.keyboard.press("Enter")

        async def two_conversations() -> list[m.Conversation] | None:
            async with server.services.db.transaction() as s:
                rows = list(await s.scalars(select(m.Conversation).order_by(m.Conversation.id)))
            return rows if len(rows) == 2 else None

        convs = await until(two_conversations, 15, what="a second conversation", every=0.05)
        # A second conversation, waiting for (or already offered to) the free operator.
        assert [c.status for c in convs][:1] == ["closed"] and len(convs) == 2, "a new conversation"
        assert convs[1].status in ("queued", "offered"), convs[1].status
        assert convs[0].id == first and convs[0].variables["csat"] == 3
        assert csat_of(convs[0].variables) == 5, "reports count Great of three as satisfied"
    finally:
        await op.sio.disconnect()


async def test_widget_looked_unfinished(server: LiveServer, shop: dict[str, Any], browser: Browser) -> None:
    """No native "Choose File" control, a styled primary button, labelled fields, the offline
    notice once (nobody is online in this test)."""
    await _configure(
        server,
        prechat=[{"name": "name", "required": True}, {"name": "email", "required": False}],
    )
    page = await (
        await browser.new_context(locale="en-US", viewport={"width": 900, "height": 700})
    ).new_page()
    await page.goto(shop["url"])
    await page.get_by_role("button", name="Chat with us").click()
    await page.get_by_label("Name *").wait_for()
    await expect(page.get_by_text("We are offline now")).to_have_count(1)
    start = page.get_by_role("button", name="Start chat")
    assert await start.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(170, 0, 0)"
    await expect(page.get_by_label("E-mail", exact=True)).to_have_attribute("type", "email")
    await page.screenshot(path=str(ARTIFACTS / "widget-prechat.png"))
    await page.get_by_label("Name *").fill("Ann")
    await start.click()
    await expect(page.get_by_text("We are offline now")).to_have_count(1)
    await expect(page.locator(".omni-form input[type=file]")).to_be_hidden()
    attach = page.get_by_role("button", name="Attach a file")
    await expect(attach).to_be_visible()
    assert await attach.locator("svg").count() == 1
    async with page.expect_file_chooser() as chooser:
        await attach.click()
    assert (await chooser.value).is_multiple() is False
    await page.screenshot(path=str(ARTIFACTS / "widget-composer.png"))


# --- issue 18: a widget customers enjoy -------------------------------------------------------

AXE_JS = Path(__file__).resolve().parents[2] / "widget" / "node_modules" / "axe-core" / "axe.min.js"
PHONE_META = '<meta name="viewport" content="width=device-width, initial-scale=1">'
HOSTILE_CSS = """
* { font-size: 40px !important; color: #0f0 !important; box-sizing: content-box !important;
    letter-spacing: 9px !important; line-height: 3 !important; visibility: visible !important; }
button { background: lime !important; padding: 60px !important; position: static !important;
    display: block !important; }
div, textarea, input, form { display: none !important; }
"""


async def _axe_serious(page: Page, include: str | None = None) -> list[str]:
    """axe-core (pinned in widget/package-lock.json) in the page: the serious and critical
    violations, as "rule: target" lines (an empty list is the pass)."""
    assert AXE_JS.exists(), "cd widget && npm ci (axe-core is a devDependency)"
    # Evaluated, not a <script> tag: the console's CSP (script-src 'self') refuses inline tags.
    await page.evaluate(AXE_JS.read_text() + "\n;0")
    context = f"{{include: [[{include!r}]]}}" if include else "document"
    found: list[dict[str, Any]] = await page.evaluate(
        f"async () => (await axe.run({context}, {{resultTypes: ['violations']}})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, nodes: v.nodes.map(n => JSON.stringify(n.target) + ' ' + n.failureSummary)}))"
    )
    return [f"{v['id']}: {'; '.join(v['nodes'])}" for v in found]


async def _site(page: Page, shop: dict[str, Any], name: str, head: str) -> None:
    """A page of the shop's site with ``head`` before the real widget script tag."""
    shop["pages"][name] = head
    await page.goto(f"{shop['url']}p/{name}")


async def test_widget_on_a_phone_on_a_hostile_site(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    """Full screen on a phone (dvh: the composer stays above the on-screen keyboard), a close
    button one can hit, typed with the keyboard; a site whose CSS restyles every element can't
    reach inside; the operator's reply while closed shows as a dot and a preview."""
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    try:
        context = await browser.new_context(
            locale="en-US", viewport={"width": 390, "height": 700}, is_mobile=True, has_touch=True
        )
        page = await context.new_page()
        await _site(page, shop, "hostile", f"{PHONE_META}<style>{HOSTILE_CSS}</style>")
        launcher = page.get_by_role("button", name="Chat with us")
        await expect(launcher).to_be_visible()
        # The site's CSS reached nothing: the inbox's colour (once the welcome came), our sizes.
        await expect(launcher).to_have_css("background-color", "rgb(170, 0, 0)")
        await expect(launcher).to_have_css("font-size", "15px")
        await expect(launcher).to_have_css("position", "fixed")
        await launcher.click()
        panel = page.get_by_role("dialog", name="Shop support")
        await expect(panel).to_be_visible()
        assert await panel.bounding_box() == {"x": 0, "y": 0, "width": 390, "height": 700}, "full screen"
        await expect(launcher).to_be_hidden()
        name = page.get_by_label("Name *")
        await expect(name).to_be_focused()  # focus goes into the panel
        await page.keyboard.type("Ann")
        await page.keyboard.press("Enter")
        composer = page.get_by_role("textbox", name="Type your message")
        await expect(composer).to_be_focused()
        await page.keyboard.type("Hello from my phone")
        # The on-screen keyboard takes the lower part of the screen: the panel follows (dvh).
        await page.set_viewport_size({"width": 390, "height": 380})
        await expect(panel).to_have_js_property("offsetHeight", 380)
        box = await composer.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 380, "the composer is under the keyboard"
        await page.keyboard.press("Enter")
        offer = await op.wait_for("conversation.offered", timeout=15)
        conv_id = offer["data"]["id"]
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        await page.screenshot(path=str(ARTIFACTS / "widget-phone-keyboard.png"))
        await page.set_viewport_size({"width": 390, "height": 700})
        close = page.get_by_role("button", name="Close")
        close_box = await close.bounding_box()
        assert close_box is not None and min(close_box["width"], close_box["height"]) >= 44, close_box
        await close.click()
        await expect(panel).to_be_hidden()
        await expect(launcher).to_be_focused()
        # The operator answers while the panel is closed: a dot and a preview on the launcher.
        assert (await op.call("send", {"conversation_id": conv_id, "body": "Your parcel left today"}))["ok"]
        preview = page.get_by_role("button", name="New message")
        await expect(preview).to_contain_text("Your parcel left today")
        await expect(page.get_by_role("button", name="Chat with us (1 unread)")).to_be_visible()
        await expect(page.locator(".omni-dot")).to_be_visible()
        await page.screenshot(path=str(ARTIFACTS / "widget-unread-preview.png"))
        await preview.click()
        await expect(panel).to_be_visible()
        await expect(page.get_by_role("log").get_by_text("Your parcel left today")).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(panel).to_be_hidden()
        await expect(page.locator(".omni-dot")).to_be_hidden()
        await expect(preview).to_have_count(0)
    finally:
        await op.sio.disconnect()


async def test_site_drove_the_widget_through_its_api_and_axe_found_nothing_serious(
    server: LiveServer, shop: dict[str, Any], browser: Browser
) -> None:
    """window.Omni: calls queued before the script loaded run, setUser/setCustomAttributes
    reach the contact card (the pre-chat form is skipped for a known name), bad input is a
    console error and stores nothing, setLocale, open/close and the events; then axe-core:
    no serious or critical violation in the widget or in the operator console."""
    op = OperatorClient(server.url, shop["op_token"])
    await op.connect()
    try:
        page = await (await browser.new_context(locale="en-US")).new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        await _site(
            page,
            shop,
            "api",
            "<script>window.events = []; window.Omni = ["
            "['on', 'ready', () => events.push('ready')],"
            "['on', 'opened', () => events.push('opened')],"
            "['on', 'closed', () => events.push('closed')],"
            "['on', 'message', m => events.push(m.direction + ':' + m.body)],"
            "['setUser', {name: 'Ann Lee', email: 'ann@example.com'}],"
            "['setCustomAttributes', {plan: 'gold', orders: 3}]];</script>",
        )
        await page.wait_for_function("window.events.includes('ready')")

        async def card() -> m.Contact | None:
            async with server.services.db.transaction() as s:
                c = await s.scalar(select(m.Contact).where(m.Contact.name == "Ann Lee"))
            return c if c is not None and c.custom_fields.get("plan") == "gold" else None

        contact = await until(card, 15, what="the site's data on the contact card", every=0.05)
        assert contact.email == "ann@example.com" and contact.custom_fields == {"plan": "gold", "orders": 3}
        # Bad input: a clear console error, false back, nothing stored.
        assert await page.evaluate("Omni.setCustomAttributes({'has space': 1, plan: 'free'})") is False
        assert await page.evaluate("Omni.setUser('Ann')") is False
        assert await page.evaluate("Omni.setUser({email: 'nope'})") is False
        assert await page.evaluate("Omni.setLocale('de')") is False
        assert any("Omni.setCustomAttributes" in e and "has space" in e for e in errors), errors
        assert any("Omni.setUser" in e and "nope" in e for e in errors), errors
        assert any("Omni.setLocale" in e for e in errors), errors
        assert (await until(card, 5, what="the card unchanged")).custom_fields == {
            "plan": "gold",
            "orders": 3,
        }
        # setLocale re-labels what is on screen.
        assert await page.evaluate("Omni.setLocale('ru')") is True
        await expect(page.get_by_role("button", name="Напишите нам")).to_be_visible()
        assert await page.evaluate("Omni.setLocale('en')") is True
        await page.evaluate("Omni.open()")
        composer = page.get_by_role("textbox", name="Type your message")
        await expect(composer).to_be_focused()  # the known name skipped the pre-chat form
        await page.keyboard.type("Where is my order?")
        await page.keyboard.press("Enter")
        offer = await op.wait_for("conversation.offered", timeout=15)
        conv_id = offer["data"]["id"]
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        assert (await op.call("send", {"conversation_id": conv_id, "body": "Let me check"}))["ok"]
        await page.wait_for_function("window.events.includes('out:Let me check')")
        # Incoming messages are announced to screen readers.
        await expect(page.locator("[aria-live=polite].omni-sr")).to_have_text("Let me check")
        async with server.services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            assert conv.contact_id == contact.id, "the conversation is on the card the site filled"

        assert await _axe_serious(page, "omni-chat") == [], "widget"
        await page.evaluate("Omni.close()")
        assert await page.evaluate("events.filter(e => !e.includes(':'))") == ["ready", "opened", "closed"]
        assert await _axe_serious(page, "omni-chat") == [], "widget, closed with the launcher"

        server.settings.public_base_url = server.url  # the staff socket is same-origin only
        _, console = await staff_page(browser, server.url, "op")
        await console.goto(f"/app#c={conv_id}")
        await expect(console.get_by_test_id("message-body").first).to_be_visible(timeout=15_000)
        found = await _axe_serious(console)
        assert found == [], "\n".join(found)
    finally:
        await op.sio.disconnect()
