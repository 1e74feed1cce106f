"""The widget's server side over real Socket.IO: store-then-ack, idempotent resend, history
after reconnect, operator replies reaching the visitor, identity validation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
from sqlalchemy import func, select

from channels.widget import WidgetChannel, identity_hash
from omni import crypto
from omni.channels import OutboundMessage
from omni.db import models as m
from omni.domain import identities
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT, until
from tests.test_realtime import OperatorClient, token_for


class Visitor:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.messages: list[dict[str, Any]] = []
        self.sio.on("welcome", self._welcome, namespace="/widget")
        self.sio.on("message", self._message, namespace="/widget")

    async def _welcome(self, data: dict[str, Any]) -> None:
        if not self.welcome.done():
            self.welcome.set_result(data)

    async def _message(self, data: dict[str, Any]) -> None:
        self.messages.append(data)

    async def connect(self, **auth: Any) -> dict[str, Any]:
        await self.sio.connect(
            self.url, wait_timeout=10, namespaces=["/widget"], auth=auth, transports=["websocket"]
        )
        return await asyncio.wait_for(self.welcome, 10)

    async def send(self, body: str, client_id: str) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(
            "message", {"body": body, "client_id": client_id, "name": "Ann"}, namespace="/widget", timeout=10
        )
        return ack


@pytest.fixture
async def widget(live_server: LiveServer) -> dict[str, Any]:
    secret = "site-secret-0123456789"
    async with live_server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        ib = await f.inbox(s, q, channel="widget")
        ib.secret_encrypted = crypto.encrypt(live_server.settings.effective_secret_key(), secret)
        token = ib.public_token
    return {"token": token, "secret": secret, "op_token": await token_for(live_server, "op")}


async def test_visitor_chat_round_trip_and_history_after_reload(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, widget["op_token"])
    await op.connect()
    visitor = Visitor(live_server.url)
    welcome = await visitor.connect(inbox=widget["token"])
    assert welcome["messages"] == [] and welcome["visitor"]
    text = "<img src=x onerror=alert(1)> hi"
    ack = await visitor.send(text, "c-1")
    assert ack["ok"] and ack["position"] == 1 and not ack["duplicate"]
    again = await visitor.send(text, "c-1")  # the network dropped before the ack arrived
    assert again["duplicate"] and again["message"]["id"] == ack["message"]["id"]
    async with live_server.services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Message)) == 1
    offer = await op.wait_for("conversation.offered", id=ack["conversation_id"])
    assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
    assert (await op.call("send", {"conversation_id": ack["conversation_id"], "body": "Hello, Ann"}))["ok"]
    await until(lambda: visitor.messages, 5)
    assert [(x["direction"], x["body"]) for x in visitor.messages] == [("out", "Hello, Ann")]
    await visitor.sio.disconnect()
    reloaded = Visitor(live_server.url)
    history = await reloaded.connect(inbox=widget["token"], visitor=welcome["visitor"])
    assert history["conversation_id"] == ack["conversation_id"]
    assert [(x["direction"], x["body"]) for x in history["messages"]] == [("in", text), ("out", "Hello, Ann")]
    assert "author_user_id" not in history["messages"][1]
    await reloaded.sio.disconnect()
    await op.sio.disconnect()


async def test_forged_visitor_token_gets_a_new_identity(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    first = Visitor(live_server.url)
    welcome = await first.connect(inbox=widget["token"])
    await first.send("mine", "c-1")
    await first.sio.disconnect()
    forged = welcome["visitor"][:-1] + ("0" if welcome["visitor"][-1] != "0" else "1")
    intruder = Visitor(live_server.url)
    other = await intruder.connect(inbox=widget["token"], visitor=forged)
    assert other["messages"] == [] and other["visitor"] != welcome["visitor"]
    await intruder.sio.disconnect()


async def test_identity_validation(live_server: LiveServer, widget: dict[str, Any]) -> None:
    bad = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await bad.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/widget"],
            transports=["websocket"],
            auth={"inbox": widget["token"], "user_id": "42", "user_hash": "0" * 64},
        )
    unknown = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await unknown.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/widget"],
            transports=["websocket"],
            auth={"inbox": "no-such-inbox"},
        )
    good = Visitor(live_server.url)
    await good.connect(inbox=widget["token"], user_id="42", user_hash=identity_hash(widget["secret"], "42"))
    await good.send("logged in", "c-1")
    await good.sio.disconnect()
    # The same site user on another device sees the same conversation.
    other_device = Visitor(live_server.url)
    w = await other_device.connect(
        inbox=widget["token"], user_id="42", user_hash=identity_hash(widget["secret"], "42")
    )
    assert [x["body"] for x in w["messages"]] == ["logged in"]
    await other_device.sio.disconnect()


async def test_leaving_while_waiting_is_abandoned(live_server: LiveServer, widget: dict[str, Any]) -> None:
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    ack = await visitor.send("anyone?", "c-1")
    left = await visitor.sio.call("leave", {}, namespace="/widget", timeout=10)
    assert left == {"ok": True, "status": "abandoned"}
    async with live_server.services.db.transaction() as s:
        assert (await s.get_one(m.Conversation, ack["conversation_id"])).status == "abandoned"
    await visitor.sio.disconnect()


async def test_typing_both_ways_and_read_marks(live_server: LiveServer, widget: dict[str, Any]) -> None:
    op = OperatorClient(live_server.url, widget["op_token"])
    op_typing: list[dict[str, Any]] = []
    op.sio.on("typing", lambda data: op_typing.append(data), namespace="/operator")
    await op.connect()
    visitor = Visitor(live_server.url)
    visitor_typing: list[dict[str, Any]] = []
    visitor.sio.on("typing", lambda data: visitor_typing.append(data), namespace="/widget")
    await visitor.connect(inbox=widget["token"])
    ack = await visitor.send("hello", "c-1")
    conv_id = ack["conversation_id"]
    offer = await op.wait_for("conversation.offered", id=conv_id)
    await op.call("accept", {"offer_id": offer["data"]["offer_id"]})
    # The operator joins the conversation room by accepting; the customer's typing reaches them.
    await visitor.sio.emit("typing", {"typing": True}, namespace="/widget")
    assert (await op.call("typing", {"conversation_id": conv_id, "typing": True}))["ok"]
    reply = await op.call("send", {"conversation_id": conv_id, "body": "Let me check"})
    await until(lambda: visitor_typing and visitor.messages and op_typing, 5)
    assert visitor_typing == [{"who": "operator", "typing": True}]
    assert op_typing == [{"conversation_id": conv_id, "who": "customer", "typing": True}]
    seen = await visitor.sio.call(
        "seen", {"message_id": reply["message"]["id"], "state": "read"}, namespace="/widget"
    )
    assert seen == {"ok": True}
    await op.wait_for("message.delivery", message_id=reply["message"]["id"], delivery="read")
    forged = await visitor.sio.call(
        "seen", {"message_id": ack["message"]["id"], "state": "read"}, namespace="/widget"
    )
    assert forged["ok"] is False, "a visitor can only mark operator messages of their own conversation"
    await visitor.sio.disconnect()
    await op.sio.disconnect()


async def test_flooding_visitor_is_refused_with_a_clear_error(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    limit = live_server.settings.widget.messages_per_minute
    acks = [await visitor.send(f"m{i}", f"c-{i}") for i in range(limit + 2)]
    assert all(a["ok"] for a in acks[:limit])
    assert acks[limit] == {
        "ok": False,
        "error": "rate_limited",
        "detail": "too many messages, wait a minute",
        "retry": True,
        "retry_after": acks[limit]["retry_after"],
    }
    async with live_server.services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Message)) == limit
    await visitor.sio.disconnect()


async def test_waiting_visitors_hear_their_new_position(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    first, second = Visitor(live_server.url), Visitor(live_server.url)
    positions: list[dict[str, Any]] = []
    second.sio.on("position", lambda data: positions.append(data), namespace="/widget")
    await first.connect(inbox=widget["token"])
    await second.connect(inbox=widget["token"])
    await first.send("first in line", "c-1")
    ack = await second.send("second in line", "c-1")
    assert ack["position"] == 2
    await first.sio.call("leave", {}, namespace="/widget", timeout=10)
    await until(lambda: any(p["position"] == 1 for p in positions), 5)
    assert positions and positions[-1]["position"] == 1
    assert positions[-1]["conversation_id"] == ack["conversation_id"]
    await first.sio.disconnect()
    await second.sio.disconnect()


async def test_line_moves_within_the_push_interval_reach_waiting_visitors_as_one_push(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    """A queue's waiting visitors hear their position at most once per ``push_interval``
    (``POSITION_PUSH_SECONDS``): a burst of joins and leaves is told as one push, with the
    line as it stands, not one push per move to everyone waiting."""
    channel = live_server.services.adapters.get("widget")
    assert isinstance(channel, WidgetChannel)
    now = [1000.0]
    channel.clock = lambda: now[0]  # frozen: nothing falls due until the test moves it
    channel.push_interval = 3600.0  # and between moves the pusher sleeps, whatever the machine
    a, b, c, d, e = (Visitor(live_server.url) for _ in range(5))
    heard: dict[str, list[int]] = {"a": [], "c": [], "d": []}

    def listen(name: str, v: Visitor) -> None:
        v.sio.on("position", lambda data: heard[name].append(data["position"]), namespace="/widget")

    for name, v in (("a", a), ("c", c), ("d", d)):
        listen(name, v)
    for v in (a, b, c, d, e):
        await v.connect(inbox=widget["token"])
    await a.send("first", "c-1")
    await until(lambda: heard["a"] == [1], 5)  # the first move after a quiet interval: at once
    assert (await b.send("second", "c-1"))["position"] == 2
    assert (await c.send("third", "c-1"))["position"] == 3
    for v in (a, b):
        await v.sio.call("leave", {}, namespace="/widget", timeout=10)
    assert (await d.send("fourth", "c-1"))["position"] == 2
    now[0] += channel.push_interval  # the interval is over: the next move is told with the rest
    assert (await e.send("fifth", "c-1"))["position"] == 3
    await until(lambda: heard["d"] == [2], 5, what=f"d to hear its position: {heard}")
    assert heard["c"] == [1], "three joins, two leaves, a join: one push, the line as it stands"
    assert heard["a"] == [1]
    for v in (a, b, c, d, e):
        await v.sio.disconnect()


async def test_replies_to_a_batch_of_conversations_find_their_visitors_from_one_read(
    live_server: LiveServer, widget: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prefetch`` (the relay's ``OutboundDispatcher`` calls it per batch) reads the visitors'
    rooms of all the batch's conversations together; each send then finds its own without a
    look-up of its own, and every visitor gets their reply."""
    channel = live_server.services.adapters.get("widget")
    assert isinstance(channel, WidgetChannel)
    visitors = [Visitor(live_server.url) for _ in range(3)]
    conv_ids = []
    for i, v in enumerate(visitors):
        await v.connect(inbox=widget["token"])
        conv_ids.append((await v.send(f"hello {i}", f"c-{i}"))["conversation_id"])
    channel._room_cache.clear()
    looked_up: list[int] = []
    one_by_one = identities.conversation_identities

    async def counted(session: Any, conversation_id: int, kind: str) -> list[str]:
        looked_up.append(conversation_id)
        return await one_by_one(session, conversation_id, kind)

    monkeypatch.setattr(identities, "conversation_identities", counted)
    await channel.prefetch(conv_ids)
    for i, conv_id in enumerate(conv_ids):
        msg = OutboundMessage(
            message_id=9000 + i, conversation_id=conv_id, inbox_id=None, channel="widget",
            body=f"reply {i}", created_at="2026-12-02T12:00:00+00:00",
        )  # fmt: skip
        assert (await channel.send(msg)).state == "sent"
    for i, v in enumerate(visitors):
        await until(lambda v=v, i=i: any(m.get("id") == 9000 + i for m in v.messages), 5)
        assert [m["body"] for m in v.messages if m.get("id", 0) >= 9000] == [f"reply {i}"]
    assert looked_up == [], "each send found its visitor in what the batch read"
    for v in visitors:
        await v.sio.disconnect()


async def test_welcome_says_offline_until_someone_can_chat(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    nobody = Visitor(live_server.url)
    assert (await nobody.connect(inbox=widget["token"]))["online"] is False
    await nobody.sio.disconnect()
    op = OperatorClient(live_server.url, widget["op_token"])
    await op.connect()  # connecting makes the operator available
    staffed = Visitor(live_server.url)
    assert (await staffed.connect(inbox=widget["token"]))["online"] is True
    await staffed.sio.disconnect()
    await op.sio.disconnect()


async def test_admin_rotates_the_identity_secret(live_server: LiveServer, widget: dict[str, Any]) -> None:
    import httpx

    async with live_server.services.db.transaction() as s:
        await f.user(s, "boss", m.Role.ADMIN)
        inbox_id = await s.scalar(select(m.Inbox.id).where(m.Inbox.public_token == widget["token"]))
    admin_token = await token_for(live_server, "boss")
    async with httpx.AsyncClient(
        base_url=live_server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=HTTP_TIMEOUT
    ) as c:
        resp = await c.post(f"/api/v1/inboxes/{inbox_id}/secret")
        assert resp.status_code == 200
        body = resp.json()
        assert widget["token"] in body["install_snippet"] and "secret_encrypted" not in body
        again = await c.get(f"/api/v1/inboxes/{inbox_id}")
        assert "secret" not in again.json(), "the secret is shown once"
        async with live_server.services.db.transaction() as s:
            bot_inbox = await f.inbox(s, await s.get_one(m.Queue, 1), channel="telegram")
            bot_inbox.secret_encrypted = "stored-bot-token"
            bot_id = bot_inbox.id
        refused = await c.post(f"/api/v1/inboxes/{bot_id}/secret")
        assert refused.status_code == 422 and "only web chat inboxes" in refused.json()["detail"]
        async with live_server.services.db.transaction() as s:
            assert (await s.get_one(m.Inbox, bot_id)).secret_encrypted == "stored-bot-token"
    async with httpx.AsyncClient(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {widget['op_token']}"},
        timeout=HTTP_TIMEOUT,
    ) as c:
        assert (await c.post(f"/api/v1/inboxes/{inbox_id}/secret")).status_code == 403
    old = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await old.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/widget"],
            transports=["websocket"],
            auth={
                "inbox": widget["token"],
                "user_id": "7",
                "user_hash": identity_hash(widget["secret"], "7"),
            },
        )
    new = Visitor(live_server.url)
    await new.connect(inbox=widget["token"], user_id="7", user_hash=identity_hash(body["secret"], "7"))
    await new.sio.disconnect()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_attachments_limits_and_access(live_server: LiveServer, widget: dict[str, Any]) -> None:
    import httpx

    visitor = Visitor(live_server.url)
    welcome = await visitor.connect(inbox=widget["token"])
    form = {"inbox": widget["token"], "visitor": welcome["visitor"]}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as c:
        ok = await c.post("/api/v1/widget/files", data=form, files={"file": ("cat.png", PNG, "image/png")})
        assert ok.status_code == 201, ok.text
        fake = await c.post(
            "/api/v1/widget/files",
            data=form,
            files={"file": ("x.png", b"<script>alert(1)</script>", "image/png")},
        )
        assert fake.status_code == 422 and "not really a image/png" in fake.json()["detail"]
        exe = await c.post(
            "/api/v1/widget/files",
            data=form,
            files={"file": ("x.exe", b"MZ\x90\x00", "application/x-msdownload")},
        )
        assert exe.status_code == 422 and "not accepted" in exe.json()["detail"]
        big = b"%PDF-" + b"0" * (live_server.settings.widget.max_upload_bytes + 10)
        too_big = await c.post(
            "/api/v1/widget/files", data=form, files={"file": ("big.pdf", big, "application/pdf")}
        )
        assert too_big.status_code in (413, 422), too_big.text
        stranger = await c.post(
            "/api/v1/widget/files",
            data={**form, "visitor": "v:1:forged.abc"},
            files={"file": ("cat.png", PNG, "image/png")},
        )
        assert stranger.status_code == 401
    file_id = ok.json()["id"]
    ack = await visitor.sio.call(
        "message", {"client_id": "c-1", "body": "", "attachments": [file_id]}, namespace="/widget", timeout=10
    )
    assert ack["ok"], ack
    assert ack["message"]["attachments"][0]["name"] == "cat.png"
    reuse = await visitor.sio.call(
        "message", {"client_id": "c-2", "body": "", "attachments": [file_id]}, namespace="/widget", timeout=10
    )
    assert reuse["ok"] is False and reuse["field"] == "attachments"
    async with live_server.services.db.transaction() as s:
        await f.user(s, "outsider")
        assert await s.scalar(select(func.count()).select_from(m.StoredFile)) == 1
    outsider = await token_for(live_server, "outsider")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as c:
        mine = await c.get(f"/api/v1/widget/files/{file_id}", params=form)
        assert mine.status_code == 200 and mine.content == PNG
        assert mine.headers["x-content-type-options"] == "nosniff"
        staff = await c.get(
            f"/api/v1/files/{file_id}", headers={"Authorization": f"Bearer {widget['op_token']}"}
        )
        assert staff.status_code == 200
        other = await c.get(f"/api/v1/files/{file_id}", headers={"Authorization": f"Bearer {outsider}"})
        assert other.status_code == 404, "an operator outside the queue can't read it"
    await visitor.sio.disconnect()


async def test_widget_only_on_allowed_sites(live_server: LiveServer, widget: dict[str, Any]) -> None:
    async with live_server.services.db.transaction() as s:
        inbox = await s.scalar(select(m.Inbox).where(m.Inbox.public_token == widget["token"]))
        assert inbox is not None
        inbox.config = {"allowed_origins": ["https://shop.example"]}
    other_site = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await other_site.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/widget"],
            transports=["websocket"],
            auth={"inbox": widget["token"]},
            headers={"Origin": "https://copycat.example"},
        )
    shop = socketio.AsyncClient(reconnection=False)
    await shop.connect(
        live_server.url,
        wait_timeout=10,
        namespaces=["/widget"],
        transports=["websocket"],
        auth={"inbox": widget["token"]},
        headers={"Origin": "https://shop.example"},
    )
    assert shop.connected
    await shop.disconnect()


async def test_bot_buttons_reach_the_visitor_and_a_press_comes_back_with_its_id(
    live_server: LiveServer, widget: dict[str, Any]
) -> None:
    from omni.domain import automated
    from omni.domain.errors import InvalidInput

    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    ack = await visitor.send("hi", "c-1")
    buttons = [{"id": "billing", "label": "Billing"}, {"id": "tech", "label": "Technical <b>help</b>"}]
    async with live_server.services.db.transaction() as s:
        await automated.do_send_automated(s, ack["conversation_id"], "What is it about?", buttons=buttons)
        with pytest.raises(InvalidInput, match="unique"):
            await automated.do_send_automated(s, ack["conversation_id"], "x", buttons=buttons[:1] * 2)
    await until(lambda: visitor.messages, 5)
    assert visitor.messages[0]["body"] == "What is it about?"
    assert visitor.messages[0]["attachments"] == [{"kind": "buttons", "buttons": buttons}]

    pressed = await visitor.sio.call(
        "message",
        {"body": "Technical <b>help</b>", "client_id": "c-2", "button": "tech"},
        namespace="/widget",
        timeout=10,
    )
    assert pressed["ok"]
    async with live_server.services.db.transaction() as s:
        stored = await s.get(m.Message, pressed["message"]["id"])
        assert stored is not None and stored.body == "Technical <b>help</b>"
        assert stored.attachments == [{"kind": "button_reply", "id": "tech"}]
    too_long = await visitor.sio.call(
        "message", {"body": "x", "client_id": "c-3", "button": "b" * 65}, namespace="/widget", timeout=10
    )
    assert not too_long["ok"] and too_long["field"] == "button"
    await visitor.sio.disconnect()


async def test_a_message_the_server_could_not_store_is_refused_not_lost(
    live_server: LiveServer, widget: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the database fails once; the visitor is told, and the resend is stored once."""
    from sqlalchemy.exc import OperationalError

    from omni.domain import conversations

    real = conversations.do_ingest_inbound
    calls = 0

    async def flaky(session: Any, msg: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("INSERT", {}, Exception("QueuePool limit reached"))
        return await real(session, msg)

    monkeypatch.setattr(conversations, "do_ingest_inbound", flaky)
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=widget["token"])
    refused = await visitor.send("are you there?", "c-1")
    assert refused == {
        "ok": False,
        "error": "unavailable",
        "detail": "the server is busy; your message will be sent again",
        "retry": True,
    }
    stored = await visitor.send("are you there?", "c-1")
    assert stored["ok"] and not stored["duplicate"] and stored["position"] == 1
    async with live_server.services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Message)) == 1
    await visitor.sio.disconnect()
