"""Socket.IO: offers reach operators live, a reconnect replays what was missed, and a
client on one node receives events produced on another node (Redis fan-out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import socketio
from sqlalchemy import func, select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer, make_settings
from tests.helpers import HTTP_TIMEOUT, until


class OperatorClient:
    """A Socket.IO operator client that remembers the last ``seq`` it saw, like the UI."""

    def __init__(self, url: str, token: str, namespace: str = "/operator") -> None:
        self.url = url
        self.token = token
        self.ns = namespace
        self.events: list[dict[str, Any]] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("event", self._on_event, namespace=namespace)

    async def _on_event(self, data: dict[str, Any]) -> None:
        if all(e["seq"] != data["seq"] for e in self.events):
            self.events.append(data)

    @property
    def last_seq(self) -> int:
        return max((e["seq"] for e in self.events), default=0)

    async def connect(self) -> None:
        await self.sio.connect(
            self.url,
            wait_timeout=10,
            namespaces=[self.ns],
            auth={"token": self.token},
            transports=["websocket"],
        )

    async def resume(self, after: int | None = None) -> list[dict[str, Any]]:
        """Ask for everything after ``after`` (default: the last seq seen so far).

        After a reconnect pass the seq read when the new socket connected, as the operator
        page's connect handler does: the new socket may already have brought a newer live event
        (the router keeps offering), and resuming after that one skips every missed event."""
        if after is None:
            after = self.last_seq
        ack = await self.sio.call("resume", {"after": after}, namespace=self.ns)
        assert ack["ok"], ack
        for e in ack["events"]:
            await self._on_event(e)
        return list(ack["events"])

    async def call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.sio.call(event, data, namespace=self.ns, timeout=10)
        return result

    async def wait_for(self, type_: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for e in self.events:
                if e["type"] == type_ and all(e["data"].get(k) == v for k, v in match.items()):
                    return e
            return None

        try:
            event: dict[str, Any] = await until(found, timeout)
        except AssertionError:
            raise AssertionError(f"no {type_} {match} among {[e['type'] for e in self.events]}") from None
        return event


async def _all_dispatched(server: LiveServer) -> bool:
    """The outbox relay has handed every committed event to the sinks."""
    async with server.services.db.transaction() as s:
        pending = await s.scalar(
            select(func.count()).select_from(m.Event).where(m.Event.dispatched.is_(False))
        )
    return pending == 0


async def token_for(server: LiveServer, username: str) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
        assert resp.status_code == 200
        created = await client.post("/api/v1/me/tokens", json={"name": "socket"})
        token: str = created.json()["token"]
        return token


async def post_inbound(
    server: LiveServer, admin_token: str, inbox_id: int, who: str, body: str = "hi"
) -> int:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=HTTP_TIMEOUT
    ) as c:
        resp = await c.post(
            f"/api/v1/inboxes/{inbox_id}/messages",
            json={"identity_kind": "external", "identity_value": who, "body": body},
        )
        assert resp.status_code == 201, resp.text
        conv_id: int = resp.json()["conversation"]["id"]
        return conv_id


@pytest.fixture
async def seeded(live_server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        code = await f.result_code(s)
        q = await f.queue(s, "chat", [op], operator_timeout_seconds=60)
        q2 = await f.queue(s, "elsewhere", [other])
        ib = await f.inbox(s, q)
        ib2 = await f.inbox(s, q2)
        ids = {"op": op.id, "code": code.id, "inbox": ib.id, "inbox2": ib2.id}
    ids["admin_token"] = await token_for(live_server, "admin")
    ids["op_token"] = await token_for(live_server, "op")
    yield ids


async def test_operator_gets_offer_accepts_replies_and_closes(
    live_server: LiveServer, seeded: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, seeded["op_token"])
    await op.connect()
    try:
        presence_evt = await op.wait_for("presence.changed", status="available")
        assert presence_evt["user_id"] == seeded["op"]
        conv_id = await post_inbound(
            live_server, seeded["admin_token"], seeded["inbox"], "cust", "<img src=x onerror=alert(1)>"
        )
        offer = await op.wait_for("conversation.offered", id=conv_id)
        accepted = await op.call("accept", {"offer_id": offer["data"]["offer_id"]})
        assert accepted["ok"] and accepted["conversation"]["status"] == "active"
        sent = await op.call("send", {"conversation_id": conv_id, "body": "Hello!", "client_id": "c-1"})
        again = await op.call("send", {"conversation_id": conv_id, "body": "Hello!", "client_id": "c-1"})
        assert sent["message"]["id"] == again["message"]["id"], "a resent message is stored once"
        bad = await op.call("close", {"conversation_id": conv_id, "result_code_id": 99999})
        assert bad == {
            "ok": False,
            "error": "invalid",
            "detail": "result code 99999 does not exist or is inactive",
            "field": "result_code_id",
        }
        closed = await op.call("close", {"conversation_id": conv_id, "result_code_id": seeded["code"]})
        assert closed["ok"] and closed["conversation"]["status"] == "closed"
        inbound = await op.wait_for("message.created", direction="in")
        assert inbound["data"]["body"] == "<img src=x onerror=alert(1)>", "customer text is stored verbatim"
    finally:
        await op.sio.disconnect()


async def test_reconnect_replays_every_missed_event(live_server: LiveServer, seeded: dict[str, Any]) -> None:
    op = OperatorClient(live_server.url, seeded["op_token"])
    await op.connect()
    first = await post_inbound(live_server, seeded["admin_token"], seeded["inbox"], "c0")
    await op.wait_for("conversation.offered", id=first)
    await op.sio.disconnect()
    seen_before = {e["seq"] for e in op.events}
    # While the operator is away (within the offline grace period) the queue keeps moving.
    missed = [
        await post_inbound(live_server, seeded["admin_token"], seeded["inbox"], f"c{i}") for i in range(1, 4)
    ]
    await until(lambda: _all_dispatched(live_server), what="the relay to fan out what the operator missed")
    seen_up_to = op.last_seq
    op.sio = socketio.AsyncClient(reconnection=False)
    op.sio.on("event", op._on_event, namespace="/operator")
    await op.connect()
    replayed = await op.resume(after=seen_up_to)
    assert replayed, "resume returned nothing"
    assert not ({e["seq"] for e in replayed} & seen_before), "nothing seen before is sent again"
    created = {e["data"]["id"] for e in op.events if e["type"] == "conversation.created"}
    assert set(missed) <= created
    seqs = [e["seq"] for e in op.events]
    assert len(seqs) == len(set(seqs))
    snap = await op.call("snapshot", {})
    assert snap["ok"] and {c["id"] for c in snap["waiting"]} | {
        o["conversation_id"] for o in snap["offers"]
    } >= set(missed[:1])
    await op.sio.disconnect()


async def test_reconnect_replays_missed_events_when_a_live_event_arrives_before_resume(
    live_server: LiveServer, seeded: dict[str, Any]
) -> None:
    """test_reconnect_replays_every_missed_event failed 1 run in 4 under load: the router kept
    offering while the operator was away, one offer reached the new socket live before the
    client called ``resume``, and the client resumed after *that* seq, skipping everything it
    had missed. Here the live event always comes first; resuming from the seq seen before the
    reconnect (what the operator page reads in its connect handler) still brings every missed
    conversation, and no event twice."""
    op = OperatorClient(live_server.url, seeded["op_token"])
    await op.connect()
    first = await post_inbound(live_server, seeded["admin_token"], seeded["inbox"], "c0")
    await op.wait_for("conversation.offered", id=first)
    await op.sio.disconnect()
    seen_up_to = op.last_seq
    missed = [
        await post_inbound(live_server, seeded["admin_token"], seeded["inbox"], f"c{i}") for i in range(1, 4)
    ]
    await until(lambda: _all_dispatched(live_server), what="the relay to fan out what the operator missed")
    op.sio = socketio.AsyncClient(reconnection=False)
    op.sio.on("event", op._on_event, namespace="/operator")
    await op.connect()
    try:
        live = await post_inbound(live_server, seeded["admin_token"], seeded["inbox"], "after-reconnect")
        await op.wait_for("conversation.created", id=live)
        assert op.last_seq > seen_up_to
        replayed = await op.resume(after=seen_up_to)
        created = {e["data"]["id"] for e in replayed if e["type"] == "conversation.created"}
        assert set(missed) <= created, "every conversation created while away is replayed"
        assert all(e["seq"] > seen_up_to for e in replayed)
        seqs = [e["seq"] for e in op.events]
        assert len(seqs) == len(set(seqs))
    finally:
        await op.sio.disconnect()


async def test_operator_does_not_get_other_queues_events(
    live_server: LiveServer, seeded: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, seeded["op_token"])
    await op.connect()
    try:
        # "mine" comes after "theirs": once it arrived, "theirs" would have arrived before it.
        theirs = await post_inbound(live_server, seeded["admin_token"], seeded["inbox2"], "theirs")
        mine = await post_inbound(live_server, seeded["admin_token"], seeded["inbox"], "mine")
        await op.wait_for("conversation.created", id=mine)
        assert theirs not in {e["data"].get("id") for e in op.events if e["type"].startswith("conversation.")}
        replay = await op.call("resume", {"after": 0})
        assert theirs not in {
            e["data"].get("id") for e in replay["events"] if e["type"].startswith("conversation.")
        }
    finally:
        await op.sio.disconnect()


async def test_sockets_refuse_wrong_credentials_and_roles(
    live_server: LiveServer, seeded: dict[str, Any]
) -> None:
    anon = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await anon.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/operator"],
            auth={"token": "omni_nope"},
            transports=["websocket"],
        )
    op_on_sup = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await op_on_sup.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/supervisor"],
            auth={"token": seeded["op_token"]},
            transports=["websocket"],
        )


async def test_client_on_node_a_gets_events_from_node_b(
    live_server: LiveServer, seeded: dict[str, Any]
) -> None:
    node_b = LiveServer(
        make_settings(live_server.settings.database_url, redis_prefix=live_server.settings.redis_prefix)
    )
    await node_b.start()
    op = OperatorClient(live_server.url, seeded["op_token"])
    await op.connect()
    try:
        conv_id = await post_inbound(node_b, seeded["admin_token"], seeded["inbox"], "via-b")
        await op.wait_for("conversation.created", id=conv_id)
        offer = await op.wait_for("conversation.offered", id=conv_id)
        # The accept goes to node A; node B's API sees the result at once (one database).
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        async with httpx.AsyncClient(
            base_url=node_b.url,
            headers={"Authorization": f"Bearer {seeded['admin_token']}"},
            timeout=HTTP_TIMEOUT,
        ) as c:
            assert (await c.get(f"/api/v1/conversations/{conv_id}")).json()["status"] == "active"
    finally:
        await op.sio.disconnect()
        await node_b.stop()


async def test_cross_site_page_cannot_ride_the_operator_cookie(
    live_server: LiveServer, seeded: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": "op", "password": f.PASSWORD})
        cookie = f"omni_session={resp.cookies['omni_session']}"
    evil = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await evil.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/operator"],
            transports=["websocket"],
            headers={"Cookie": cookie, "Origin": "https://evil.example"},
        )
    same_site = socketio.AsyncClient(reconnection=False)
    await same_site.connect(
        live_server.url,
        wait_timeout=10,
        namespaces=["/operator"],
        transports=["websocket"],
        headers={"Cookie": cookie, "Origin": live_server.settings.public_base_url},
    )
    assert same_site.connected
    await same_site.disconnect()
