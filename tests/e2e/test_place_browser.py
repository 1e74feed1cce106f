"""One place in line across channels, in real Chromium: the widget on a customer's page, the
operator window, and the AMI emulator for the call leg (no Asterisk).

One journey. A chat customer waiting between two others asks "Call me back": the operator is
offered the three in the order they came — the callback in its turn, not before and not after,
with "why" on each offer card — accepts the callback in the window and the phone system calls
the operator's phone, then the customer. Then blending: the operator holds a chat and takes a
call; the chat customer is told the reply will take a moment, writes again, and past the
queue's threshold the chat leaves the operator for a colleague at its old place.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import admin, conversations
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import actions, until
from tests.conftest import LiveServer, free_port
from tests.e2e.conftest import running, staff_page, voice_settings

TIMEOUT = 15_000
WIDGET_JS = Path(__file__).resolve().parents[2] / "widget" / "dist" / "omni-widget.js"


@pytest.fixture
async def server(pg_url: str, tmp_path: Path, emulator: AmiEmulator) -> AsyncIterator[LiveServer]:
    assert WIDGET_JS.exists(), "build the widget first: cd widget && npm ci && npm run build"
    settings = voice_settings(pg_url, tmp_path, emulator)
    async with running(settings) as srv:
        yield srv


@pytest.fixture
async def world(server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    """Queue ``web`` (one contact at a time for Olga, ext. 101) with a widget that offers
    "call me", an API inbox for the other customers and a voice line; Boris, paused."""
    async with server.services.db.transaction() as s:
        olga = await f.user(s, "olga", sip_extension="101", capacity=3, chat_weight=3, voice_weight=3)
        olga.display_name = "Olga"
        boris = await f.user(s, "boris", sip_extension="102")
        code = await f.result_code(s, "solved")
        q = await f.queue(s, "web", [olga, boris], strategy=m.Strategy.LINEAR, operator_timeout_seconds=30)
        s.add(m.QueueResultCode(queue_id=q.id, result_code_id=code.id))
        widget = await f.inbox(s, q, channel="widget")
        widget.config = {"call_me": True, "greeting": "Shop support"}
        api = await f.inbox(s, q, channel="api", name="crm")
        line = await f.inbox(s, q, channel="voice", name="line")
        line.config = {"caller_id": "+74950000000"}
        await f.set_status(s, olga, "pause")
        await f.set_status(s, boris, "pause")
        ids = {
            "queue": q.id,
            "code": code.id,
            "api": api.id,
            "line": line.id,
            "olga": olga.id,
            "boris": boris.id,
        }
        token = widget.public_token

    async def page(_: web.Request) -> web.Response:
        html = (
            "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
            f'<script src="{server.url}/widget/omni-widget.js" data-inbox="{token}" async></script>'
            "</body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield ids | {"shop": f"http://127.0.0.1:{port}/"}
    finally:
        await runner.cleanup()


async def _api_chat(server: LiveServer, inbox_id: int, who: str, body: str) -> int:
    async with server.services.db.transaction() as s:
        res = await conversations.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox_id, identity_kind="external", identity_value=who, contact_name=who, body=body
            ),
        )
        return res.conversation.id


async def test_call_me_in_turn_and_chats_protected_while_on_a_call(
    server: LiveServer, emulator: AmiEmulator, world: dict[str, Any], browser: Browser
) -> None:
    await until(lambda: server.services.adapters.get("voice").ami.ready)  # type: ignore[union-attr]
    ahead = await _api_chat(server, world["api"], "Anna", "First in line")

    # The widget customer writes, then asks to be called back while waiting.
    customer = await (await browser.new_context(locale="en-US")).new_page()
    await customer.goto(world["shop"])
    await customer.get_by_role("button", name="Chat with us").click()
    await customer.locator(".omni-form textarea").fill("Please call me")
    await customer.keyboard.press("Enter")
    call_me = customer.locator(".omni-callme")
    await expect(call_me).to_be_visible(timeout=TIMEOUT)
    await call_me.get_by_role("textbox", name="Your phone number").fill("8 916 700-00-01")
    await call_me.get_by_role("button", name="Call me back").click()
    await expect(
        customer.locator(".omni-msg").filter(has_text="We will call you back at +79167000001")
    ).to_be_visible(timeout=TIMEOUT)
    await expect(call_me).to_be_hidden()
    behind = await _api_chat(server, world["api"], "Boris K", "Third in line")
    async with server.services.db.transaction() as s:
        mine = await s.scalar(select(m.Conversation).where(m.Conversation.channel == "widget"))
        assert mine is not None and mine.medium == "voice"
        callback = mine.id

    # Olga becomes available: the three are offered in the order they came.
    _, op = await staff_page(browser, server.url, "olga")
    await op.get_by_test_id("status-select").select_option("available")
    offer = op.get_by_test_id("offer")
    code = str(world["code"])
    await expect(offer).to_have_attribute("data-conversation", str(ahead), timeout=TIMEOUT)
    await expect(offer.get_by_test_id("offer-why")).to_have_attribute("data-rule", "turn")
    await offer.get_by_test_id("offer-accept").click()
    await op.get_by_test_id("close-code").select_option(code)
    await op.get_by_test_id("close-submit").click()

    await expect(offer).to_have_attribute("data-conversation", str(callback), timeout=TIMEOUT)
    await expect(offer.get_by_test_id("offer-why")).to_contain_text(
        "Call back: the customer kept their place"
    )
    await expect(offer.get_by_test_id("answer-on-phone")).to_have_count(0)  # nobody on the line yet
    emulator.phones["101"] = "answer"
    emulator.customers["+79167000001"] = "manual"  # the customer's phone rings until answered
    await offer.get_by_test_id("offer-accept").click()
    dial = (await until(lambda: actions(emulator, "Originate")))[-1]
    assert (dial["Channel"], dial["Context"], dial["Exten"]) == ("PJSIP/101", "omni-outbound", "+79167000001")

    # The call panel follows the callback's real state, as for an inbound call: dialling the
    # customer → talking once they pick up → on hold → talking → ended.
    call_panel = op.get_by_test_id("call")
    call_state = call_panel.get_by_test_id("call-state")
    await expect(call_state).to_have_attribute("data-state", "ringing", timeout=TIMEOUT)
    await expect(call_state).to_have_text("Calling…")
    await until(lambda: any(c.exten == "+79167000001" and c.state == 5 for c in emulator.channels.values()))
    emulator.customer_answers("+79167000001")
    await until(lambda: (leg := emulator.agent_leg("101")) is not None and leg.bridge)

    async def answered() -> bool:
        async with server.services.db.transaction() as s:
            row = await s.scalar(select(m.Call).where(m.Call.conversation_id == callback))
            return row is not None and row.answered_at is not None and row.direction == "out"

    await until(answered)  # the customer picked up: the same conversation, called back
    await expect(call_state).to_have_attribute("data-state", "talking", timeout=TIMEOUT)
    await call_panel.get_by_test_id("call-hold").click()
    await expect(call_state).to_have_attribute("data-state", "on_hold", timeout=TIMEOUT)
    await call_panel.get_by_test_id("call-hold").click()
    await expect(call_state).to_have_attribute("data-state", "talking", timeout=TIMEOUT)
    leg = emulator.agent_leg("101")
    assert leg is not None
    emulator.hangup(leg.uniqueid)
    await expect(call_state).to_have_attribute("data-state", "ended", timeout=TIMEOUT)
    await expect(op.get_by_test_id("wrap-up")).to_be_visible(timeout=TIMEOUT)
    await op.get_by_test_id("close-code").select_option(code)
    await op.get_by_test_id("close-submit").click()

    await expect(offer).to_have_attribute("data-conversation", str(behind), timeout=TIMEOUT)
    async with server.services.db.transaction() as s:
        order = (
            await s.scalars(
                select(m.Event.conversation_id)
                .where(m.Event.type == "conversation.offered", m.Event.user_id == world["olga"])
                .order_by(m.Event.id)
            )
        ).all()
    assert order == [ahead, callback, behind]

    # Blending: Olga holds the chat and takes a call; its customer is told, writes, and past
    # the threshold the chat goes to Boris at its old place.
    async with server.services.db.transaction() as s:
        olga = await s.get_one(m.User, world["olga"])
        olga.capacity, olga.chat_weight = 4, 1
        q = await s.get_one(m.Queue, world["queue"])
        q.chats_block_calls, q.blend_notice, q.blend_reoffer_seconds = False, True, 2
    await offer.get_by_test_id("offer-accept").click()
    item = op.get_by_test_id("conversation-item").filter(has_text="Boris K")
    await expect(item).to_have_count(1, timeout=TIMEOUT)
    async with server.services.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, world["boris"]))  # a colleague who is free
    caller = emulator.incoming_call("+79161112233", inbox=world["line"])
    await until(lambda: caller.bridge)  # Olga's phone answered (``answer``), bridged
    await item.click()
    notice = "Your operator is on a phone call right now; the reply will take a moment."
    await expect(op.get_by_test_id("message-body").filter(has_text=notice)).to_have_count(1, timeout=TIMEOUT)
    await _api_chat(server, world["api"], "Boris K", "Hello? Anyone?")
    await expect(item).to_have_count(0, timeout=TIMEOUT)  # taken from Olga while she talks
    async with server.services.db.transaction() as s:
        moved = await s.get_one(m.Conversation, behind)
        offered = await s.scalar(
            select(m.Event)
            .where(m.Event.type == "conversation.offered", m.Event.conversation_id == behind)
            .order_by(m.Event.id.desc())
        )
    assert offered is not None and offered.user_id == world["boris"]
    assert offered.payload["why"]["rule"] == "reoffered"
    assert moved.status == "offered" and moved.first_enqueued_at is not None

    # One thread on the card: the caller also writes in a chat while Olga talks to them; the
    # call's card shows that open chat with its channel icon and its message, and links to it.
    async with server.services.db.transaction() as s:
        on_call = await s.scalar(
            select(m.Conversation).where(m.Conversation.medium == "voice", m.Conversation.status == "active")
        )
        assert on_call is not None
        chat = await conversations.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=world["api"],
                identity_kind="phone",
                identity_value="+79161112233",
                contact_phone="+79161112233",
                body="Also writing here: order 1234",
            ),
        )
        assert chat.conversation.contact_id == on_call.contact_id
        call_id, chat_id = on_call.id, chat.conversation.id
    await op.evaluate("id => { location.hash = 'c=' + id }", call_id)
    thread = op.get_by_test_id("thread").get_by_test_id("thread-item")
    await expect(thread).to_have_attribute("data-id", str(chat_id), timeout=TIMEOUT)
    await expect(thread).to_have_attribute("data-channel", "api")
    await expect(thread.get_by_test_id("thread-icon").locator("svg")).to_have_count(1)
    await expect(thread.get_by_test_id("message-body")).to_have_text(["Also writing here: order 1234"])
    await thread.get_by_test_id("thread-link").click()
    await expect(op).to_have_url(re.compile(f"#c={chat_id}$"))
    await expect(op.get_by_test_id("thread").get_by_test_id("thread-item")).to_have_attribute(
        "data-id", str(call_id), timeout=TIMEOUT
    )  # and the chat's card shows the call
    emulator.hangup(caller.uniqueid)

    # An admin makes the browser Olga's phone: her open window follows at once (no reload),
    # and this server has no WebRTC address, so it says so instead of a dead softphone.
    phone = op.get_by_test_id("softphone")
    await expect(phone).to_be_hidden()
    async with server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        await admin.check_update_user(s, Principal.of(boss), world["olga"], {"phone_endpoint": "browser"})
    await expect(phone.get_by_test_id("softphone-status")).to_have_attribute(
        "data-state", "unconfigured", timeout=TIMEOUT
    )
    await expect(phone.get_by_test_id("softphone-error")).to_have_text(
        "The browser phone is not set up on this server: ask an administrator (OMNI_VOICE_WEBRTC_WS_URL)."
    )
    async with server.services.db.transaction() as s:
        boss = await s.get_one(m.User, boss.id)
        await admin.check_update_user(s, Principal.of(boss), world["olga"], {"phone_endpoint": "desk"})
    await expect(phone).to_be_hidden(timeout=TIMEOUT)
