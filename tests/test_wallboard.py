"""Wallboards: a token's life (create → live numbers → revoke → dropped and refused), the
refusals of unknown and expired tokens, a payload free of customer data, and the admin's
REST and forms for tokens and install settings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import socketio
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer, make_settings
from tests.helpers import HTTP_TIMEOUT, until
from tests.test_realtime import OperatorClient, post_inbound, token_for
from tests.web.test_admin_pages import field_error, form_of, post_form
from tests.web.test_pages import login

QUEUE_KEYS = {
    "id",
    "name",
    "sla_seconds",
    "waiting",
    "longest_wait_seconds",
    "longest_wait_since",
    "longest_wait_level",
    "thresholds",
    "in_service",
    "available",
    "answered_today",
    "abandoned_today",
    "service_level_pct",
    "service_level_level",
    "asa_seconds",
}
BOARD_KEYS = {"name", "now", "day_start", "timezone", "sl_target_pct", "queues"}
CUSTOMER = "alice.secret@example.com"
BODY = "my card is 4111 1111 1111 1111"


class Screen:
    """A wall screen's socket: every board it was sent, and whether it was told it is revoked."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.boards: list[dict[str, Any]] = []
        self.revoked = False
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("board", self._on_board, namespace="/wallboard")
        self.sio.on("revoked", self._on_revoked, namespace="/wallboard")

    async def _on_board(self, data: dict[str, Any]) -> None:
        self.boards.append(data)

    async def _on_revoked(self, data: Any = None) -> None:
        self.revoked = True

    async def connect(self) -> None:
        await self.sio.connect(
            self.url,
            wait_timeout=10,
            namespaces=["/wallboard"],
            auth={"token": self.token},
            transports=["websocket"],
        )

    async def ask(self) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call("board", {}, namespace="/wallboard", timeout=10)
        assert ack["ok"], ack
        self.boards.append(ack["board"])
        return dict(ack["board"])

    def queue(self, board: dict[str, Any], name: str) -> dict[str, Any]:
        return next(q for q in board["queues"] if q["name"] == name)

    async def until_queue(self, name: str, what: str, **expected: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for board in reversed(self.boards):
                q = self.queue(board, name)
                if all(q[k] == v for k, v in expected.items()):
                    return q
            return None

        queue: dict[str, Any] = await until(found, what=what)
        return queue


async def screen_page(url: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
        return await client.get("/wallboard", params={"token": token})


async def refused(url: str, token: str) -> bool:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(
            url, wait_timeout=10, namespaces=["/wallboard"], auth={"token": token}, transports=["websocket"]
        )
    except socketio.exceptions.ConnectionError:
        return True
    await client.disconnect()
    return False


@pytest.fixture
async def floor(live_server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        await f.result_code(s)
        chat = await f.queue(s, "chat", [op], operator_timeout_seconds=60)
        hidden = await f.queue(s, "hidden", [other])
        ids: dict[str, Any] = {
            "op": op.id,
            "chat": chat.id,
            "hidden": hidden.id,
            "inbox": (await f.inbox(s, chat)).id,
            "hidden_inbox": (await f.inbox(s, hidden)).id,
        }
    ids["admin_token"] = await token_for(live_server, "admin")
    ids["op_token"] = await token_for(live_server, "op")
    async with httpx.AsyncClient(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {ids['admin_token']}"},
        timeout=HTTP_TIMEOUT,
    ) as admin:
        ids["admin"] = admin
        yield ids


async def test_wallboard_token_life_create_live_updates_revoke(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    admin: httpx.AsyncClient = floor["admin"]
    made = await admin.post(
        "/api/v1/admin/wallboards", json={"name": "Floor 2", "queue_ids": [floor["chat"]]}
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["url"].endswith(f"/wallboard?token={token}")
    # Shown once: the list and the row never carry the secret, only its digest is stored.
    listed = (await admin.get("/api/v1/admin/wallboards")).json()
    assert [w["name"] for w in listed] == ["Floor 2"] and "token" not in listed[0]
    assert listed[0]["last_used_at"] is None and listed[0]["active"] is True
    async with live_server.services.db.transaction() as s:
        row = await s.scalar(select(m.WallboardToken))
        assert row is not None and row.token_hash == hashlib.sha256(token.encode()).hexdigest()

    page = await screen_page(live_server.url, token)
    assert page.status_code == 200 and "/ui/wallboard.js" in page.text
    assert page.headers["cache-control"] == "no-store"

    op = OperatorClient(live_server.url, floor["op_token"])
    screen = Screen(live_server.url, token)
    await screen.connect()
    try:
        first = await screen.ask()
        assert [q["name"] for q in first["queues"]] == ["chat"], "only the token's queues"
        assert screen.queue(first, "chat")["waiting"] == 0
        await op.connect()
        await screen.until_queue("chat", "the operator to show as available", available=1)

        conv_id = await post_inbound(live_server, floor["admin_token"], floor["inbox"], CUSTOMER, BODY)
        await screen.until_queue("chat", "the queued conversation to show", waiting=1)
        offer = await op.wait_for("conversation.offered", id=conv_id)
        accepted = await op.call("accept", {"offer_id": offer["data"]["offer_id"]})
        assert accepted["ok"], accepted
        chat = await screen.until_queue(
            "chat", "the answer to show", waiting=0, in_service=1, answered_today=1
        )
        assert chat["service_level_pct"] == 100.0 and chat["service_level_level"] == "green"
        assert chat["asa_seconds"] is not None

        # Names and numbers only: no conversation, customer, message or operator in any payload.
        for board in screen.boards:
            assert set(board) == BOARD_KEYS
            for q in board["queues"]:
                assert set(q) == QUEUE_KEYS
        everything = json.dumps(screen.boards).lower()
        for secret in (CUSTOMER, "alice", "4111", '"op"'):
            assert secret not in everything, secret

        last_used = (await admin.get(f"/api/v1/admin/wallboards/{made.json()['id']}")).json()["last_used_at"]
        assert last_used is not None

        revoked = await admin.delete(f"/api/v1/admin/wallboards/{made.json()['id']}")
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        await until(lambda: screen.revoked and not screen.sio.connected, what="the revoked screen to drop")
    finally:
        await op.sio.disconnect()
        if screen.sio.connected:
            await screen.sio.disconnect()
    assert await refused(live_server.url, token)
    again = await screen_page(live_server.url, token)
    assert again.status_code == 403 and "wallboard.js" not in again.text and "Floor 2" not in again.text


async def test_expired_and_unknown_wallboard_tokens_are_refused(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    admin: httpx.AsyncClient = floor["admin"]
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    made = await admin.post("/api/v1/admin/wallboards", json={"name": "Lobby", "expires_at": soon})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert not await refused(live_server.url, token), "a live token connects"
    async with live_server.services.db.transaction() as s:
        row = await s.get_one(m.WallboardToken, made.json()["id"])
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert await refused(live_server.url, token)
    for bad in (token, "wb_unknown", "", "x" * 5000):
        page = await screen_page(live_server.url, bad)
        assert page.status_code == 403, bad[:20]
    assert await refused(live_server.url, "wb_unknown")
    assert await refused(live_server.url, "")


async def test_wallboard_rest_refuses_bad_input_with_the_field_named(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    admin: httpx.AsyncClient = floor["admin"]
    bad = await admin.post(
        "/api/v1/admin/wallboards",
        json={"name": " ", "queue_ids": [999999], "expires_at": "2001-01-01T00:00:00Z", "sl_target_pct": 0},
    )
    assert bad.status_code == 422, bad.text
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"name", "queue_ids", "expires_at", "sl_target_pct"}
    naive = await admin.post(
        "/api/v1/admin/wallboards", json={"name": "x", "expires_at": "2999-01-01T00:00:00"}
    )
    assert naive.status_code == 422 and naive.json()["field"] == "expires_at"
    async with live_server.services.db.transaction() as s:
        assert await s.scalar(select(m.WallboardToken)) is None, "a refused create stores nothing"
    op = httpx.AsyncClient(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {floor['op_token']}"},
        timeout=HTTP_TIMEOUT,
    )
    assert (await op.post("/api/v1/admin/wallboards", json={"name": "mine"})).status_code == 403
    assert (await op.put("/api/v1/admin/install", json={"timezone": "UTC"})).status_code == 403


async def test_install_settings_rest_saves_and_refuses_a_bad_zone(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    admin: httpx.AsyncClient = floor["admin"]
    assert (await admin.get("/api/v1/admin/install")).json() == {
        "timezone": "UTC",
        "short_abandon_seconds": 5,
        "business_days": [0, 1, 2, 3, 4],
        "totp_roles": [],
    }
    bad = await admin.put("/api/v1/admin/install", json={"timezone": "Mars/Olympus", "business_days": [9]})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"timezone", "business_days"}
    ok = await admin.put(
        "/api/v1/admin/install", json={"timezone": "Europe/Moscow", "short_abandon_seconds": 10}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "timezone": "Europe/Moscow",
        "short_abandon_seconds": 10,
        "business_days": [0, 1, 2, 3, 4],
        "totp_roles": [],
    }
    assert (await admin.get("/api/v1/admin/install")).json()["timezone"] == "Europe/Moscow"


async def test_install_settings_form_saves_and_shows_a_bad_zone_next_to_the_field(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as c:
        assert (await login(c, "admin")).status_code in (302, 303)
        listing = await c.get("/admin/install")
        assert listing.status_code == 200 and 'href="/admin/install/1"' in listing.text
        page = await c.get("/admin/install/1")
        assert page.status_code == 200 and form_of(page.text)["timezone"] == "UTC"
        bad = await post_form(
            c, "/admin/install/1", "/admin/install/1", timezone="Mars/Olympus", business_days=[]
        )
        assert bad.status_code == 400
        assert "Mars/Olympus" in (field_error(bad.text, "timezone") or "")
        assert field_error(bad.text, "business_days")
        block = bad.text.split('data-name="timezone"')[1].split('<div class="field')[0]
        assert 'data-field="timezone"' in block, "the error sits with the time zone picker"
        saved = await post_form(
            c, "/admin/install/1", "/admin/install/1", timezone="Asia/Tokyo", business_days=["0", "5"]
        )
        assert saved.status_code in (302, 303), saved.text
        shown = form_of((await c.get("/admin/install/1")).text)
        assert shown["timezone"] == "Asia/Tokyo" and shown["business_days"] == ["0", "5"]
        assert (await c.get("/admin/install/new")).status_code == 403


async def test_wallboard_admin_form_shows_the_link_once_and_revokes(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as c:
        assert (await login(c, "admin")).status_code in (302, 303)
        bad = await post_form(c, "/admin/wallboards/new", "/admin/wallboards/new", name="", expires_at="soon")
        assert bad.status_code == 400
        assert field_error(bad.text, "name") and field_error(bad.text, "expires_at")
        made = await post_form(
            c, "/admin/wallboards/new", "/admin/wallboards/new", name="Hall", queue_ids=[str(floor["chat"])]
        )
        assert made.status_code == 200, made.text
        link = made.text.split("data-wallboard-link>")[1].split("<")[0]
        token = link.split("token=")[1]
        assert link.endswith(f"/wallboard?token={token}")
        assert (await c.get("/wallboard", params={"token": token})).status_code == 200
        async with live_server.services.db.transaction() as s:
            row = await s.scalar(select(m.WallboardToken).where(m.WallboardToken.name == "Hall"))
            assert row is not None and row.queue_ids == [floor["chat"]]
        edit = await c.get(f"/admin/wallboards/{row.id}")
        assert token not in edit.text, "the link is shown once"
        listing = await c.get("/admin/wallboards")
        assert "Hall" in listing.text and token not in listing.text
        csrf = form_of(edit.text)["_csrf"]
        gone = await c.post(f"/admin/wallboards/{row.id}/delete", data={"_csrf": csrf})
        assert gone.status_code in (302, 303)
        assert await refused(live_server.url, token)


async def test_screen_on_one_node_follows_a_queue_and_a_revocation_made_on_another(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    node_b = LiveServer(
        make_settings(live_server.settings.database_url, redis_prefix=live_server.settings.redis_prefix)
    )
    await node_b.start()
    screen: Screen | None = None
    try:
        async with httpx.AsyncClient(
            base_url=node_b.url,
            headers={"Authorization": f"Bearer {floor['admin_token']}"},
            timeout=HTTP_TIMEOUT,
        ) as admin_b:
            made = await admin_b.post("/api/v1/admin/wallboards", json={"name": "Node A screen"})
            assert made.status_code == 201, made.text
            screen = Screen(live_server.url, made.json()["token"])
            await screen.connect()
            await screen.ask()
            await post_inbound(node_b, floor["admin_token"], floor["hidden_inbox"], "via-b")
            await screen.until_queue("hidden", "node B's conversation on node A's screen", waiting=1)
            assert (await admin_b.delete(f"/api/v1/admin/wallboards/{made.json()['id']}")).status_code == 200
            await until(lambda: screen is not None and screen.revoked and not screen.sio.connected)
    finally:
        if screen is not None and screen.sio.connected:
            await screen.sio.disconnect()
        await node_b.stop()


async def test_board_call_refuses_bad_input_with_an_ack(
    live_server: LiveServer, floor: dict[str, Any]
) -> None:
    admin: httpx.AsyncClient = floor["admin"]
    made = (await admin.post("/api/v1/admin/wallboards", json={"name": "Ru"})).json()
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        live_server.url,
        wait_timeout=10,
        namespaces=["/wallboard"],
        auth={"token": made["token"]},
        transports=["websocket"],
        headers={"Accept-Language": "ru"},
    )
    try:
        bad = await client.call("board", "not an object", namespace="/wallboard", timeout=10)
        assert bad["ok"] is False and bad["error"] == "invalid" and bad["detail"]
        good = await client.call("board", {}, namespace="/wallboard", timeout=10)
        assert good["ok"] is True and [q["name"] for q in good["board"]["queues"]] == ["chat", "hidden"]
    finally:
        await client.disconnect()
