"""Masking of what customers write (issue 16, mask16): phones and e-mails inside message text
and bot variables reach a reader without ``pii.view`` masked — in live Socket.IO events, the
REST message list, the console's view and search snippets — while a supervisor who holds it
reads them in full, search by the full phone still finds the conversation, a reveal of one
message is audited, and an admin's grant change moves the live sockets at once."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import socketio
from sqlalchemy import select

from omni.db import models as m
from omni.domain.masking import mask_payload, mask_text
from omni.realtime import pii, rooms
from omni.realtime.live import FanoutManager
from tests import factories as f
from tests.conftest import REDIS_URL, LiveServer
from tests.helpers import HTTP_TIMEOUT, until
from tests.test_realtime import OperatorClient, token_for

PHONE = "+79161234512"
TEXT = "Call me at +7 916 123-45-12 or write to ivan.petrov@mail.ru, order 1500"
MASKED = "Call me at +7 916 ***-**-12 or write to i***@m***.ru, order 1500"


def test_phones_and_emails_inside_text_are_masked_and_the_rest_kept() -> None:
    assert mask_text(TEXT) == MASKED
    assert mask_text("my number 89161234512!") == "my number +7 916 ***-**-12!"
    assert mask_text("8 (495) 123 45 67") == "+7 495 ***-**-67"
    # Sums, dates and call ids are not phone numbers of the numbering plan: kept as written.
    for plain in ("order 1 500 000 rub", "on 2026-11-30 at 10:15", "linkedid 1700000000.123", ""):
        assert mask_text(plain) == plain
    message = {"direction": "in", "body": TEXT, "attachments": []}
    assert mask_payload(message) == {**message, "body": MASKED, "masked": True}
    mine = {"direction": "out", "body": TEXT}
    assert mask_payload(mine) == mine, "what staff wrote is theirs: not masked"
    conv = {"id": 1, "variables": {"callback_phone": "89161234512", "lang": "ru"}}
    assert mask_payload(conv)["variables"] == {"callback_phone": "+7 916 ***-**-12", "lang": "ru"}


@pytest.fixture
async def world(live_server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    """Operator ``op`` in queue ``chat`` (pii.view taken away from operators by the admin),
    supervisor ``sup`` over that queue (holds pii.view)."""
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        q = await f.queue(s, "chat", [op], operator_timeout_seconds=60)
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=q.id))
        inbox = await f.inbox(s, q)
        ids: dict[str, Any] = {"op": op.id, "q": q.id, "inbox": inbox.id}
    clients: dict[str, httpx.AsyncClient] = {}
    for name in ("admin", "op", "sup"):
        token = await token_for(live_server, name)
        ids[f"{name}_token"] = token
        clients[name] = httpx.AsyncClient(
            base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
        )
    ids["clients"] = clients
    try:
        yield ids
    finally:
        for c in clients.values():
            await c.aclose()


async def _set_pii_view(world: dict[str, Any], held: bool) -> None:
    resp = await world["clients"]["admin"].put(
        "/api/v1/admin/grants/operator", json={"grants": {"pii.view": held}}
    )
    assert resp.status_code == 200, resp.text


async def _customer_writes(world: dict[str, Any], body: str) -> dict[str, Any]:
    resp = await world["clients"]["admin"].post(
        f"/api/v1/inboxes/{world['inbox']}/messages",
        json={"identity_kind": "phone", "identity_value": PHONE, "body": body, "contact_name": "Ivan"},
    )
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def test_operator_without_pii_view_reads_customers_phones_masked_everywhere_supervisor_in_full(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    await _set_pii_view(world, False)
    op = OperatorClient(live_server.url, world["op_token"])
    sup = OperatorClient(live_server.url, world["sup_token"], namespace="/supervisor")
    await op.connect()
    await sup.connect()
    try:
        first = await _customer_writes(world, "hello")
        conv_id = first["conversation"]["id"]
        offer = await op.wait_for("conversation.offered", id=conv_id)
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]

        sent = await _customer_writes(world, TEXT)
        msg_id = sent["message"]["id"]
        assert sent["message"]["body"] == TEXT, "the channel's own answer is not a staff reader's"
        live = await op.wait_for("message.created", id=msg_id)
        assert live["data"]["body"] == MASKED and live["data"]["masked"] is True
        full = await sup.wait_for("message.created", id=msg_id)
        assert full["data"]["body"] == TEXT and "masked" not in full["data"]

        # The console's view of the conversation (page data over the socket) and the REST list.
        view = await op.call("open", {"conversation_id": conv_id})
        assert [x["body"] for x in view["messages"] if x["id"] == msg_id] == [MASKED]
        assert view["card"]["contact"]["can_reveal"] is True
        listed = (await world["clients"]["op"].get(f"/api/v1/conversations/{conv_id}")).json()
        assert [(x["body"], x["masked"]) for x in listed["messages"] if x["id"] == msg_id] == [(MASKED, True)]
        sup_listed = (await world["clients"]["sup"].get(f"/api/v1/conversations/{conv_id}")).json()
        assert [(x["body"], x["masked"]) for x in sup_listed["messages"] if x["id"] == msg_id] == [
            (TEXT, False)
        ]
        replay = await op.resume(after=0)
        assert [
            e["data"]["body"] for e in replay if e["type"] == "message.created" and e["data"]["id"] == msg_id
        ] == [MASKED]

        # Search by the full phone finds the conversation; the snippet shown is masked.
        found = await world["clients"]["op"].get("/api/v1/search", params={"q": "ivan.petrov@mail.ru"})
        assert found.status_code == 200, found.text
        hits = [h for h in found.json()["hits"] if h["message_id"] == msg_id]
        assert [h["conversation_id"] for h in hits] == [conv_id]
        snippet = "".join(s["text"] for s in hits[0]["snippet"])
        assert "i***@m***.ru" in snippet and "ivan.petrov" not in snippet, snippet
        by_phone = await world["clients"]["op"].get("/api/v1/search", params={"q": PHONE})
        assert conv_id in {h["conversation_id"] for h in by_phone.json()["hits"]}
        assert PHONE not in by_phone.text and "ivan.petrov" not in by_phone.text
    finally:
        await op.sio.disconnect()
        await sup.sio.disconnect()


async def test_reveal_of_a_message_is_the_reveal_grant_and_is_audited(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    await _set_pii_view(world, False)
    sent = await _customer_writes(world, TEXT)
    msg_id = sent["message"]["id"]
    op = world["clients"]["op"]
    revealed = await op.post(f"/api/v1/messages/{msg_id}/reveal")
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["body"] == TEXT and revealed.json()["masked"] is False
    async with live_server.services.db.transaction() as s:
        rows = list(await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "message.reveal")))
    assert [(r.user_id, r.object_type, r.object_id) for r in rows] == [(world["op"], "message", str(msg_id))]

    missing = await op.post("/api/v1/messages/999999/reveal")
    assert missing.status_code == 404, missing.text
    resp = await world["clients"]["admin"].put(
        "/api/v1/admin/grants/operator", json={"grants": {"pii.reveal": False}}
    )
    assert resp.status_code == 200, resp.text
    refused = await op.post(f"/api/v1/messages/{msg_id}/reveal")
    assert refused.status_code == 403 and "reveal" in refused.json()["detail"], refused.text
    async with live_server.services.db.transaction() as s:
        count = len(list(await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "message.reveal"))))
    assert count == 1, "a refused reveal shows nothing and records nothing"


async def test_a_grant_change_moves_connected_sockets_between_masked_and_full(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    op = OperatorClient(live_server.url, world["op_token"])
    await op.connect()
    try:
        first = await _customer_writes(world, TEXT)
        offer = await op.wait_for("conversation.offered", id=first["conversation"]["id"])
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        before = await _customer_writes(world, TEXT)
        assert (await op.wait_for("message.created", id=before["message"]["id"]))["data"]["body"] == TEXT

        # The socket stays connected; grants.changed precedes the next event in the stream.
        await _set_pii_view(world, False)
        masked = await _customer_writes(world, TEXT)
        assert (await op.wait_for("message.created", id=masked["message"]["id"]))["data"]["body"] == MASKED

        await _set_pii_view(world, True)
        after = await _customer_writes(world, TEXT)
        assert (await op.wait_for("message.created", id=after["message"]["id"]))["data"]["body"] == TEXT
        bodies = [e["data"]["body"] for e in op.events if e["type"] == "message.created"]
        assert bodies.count(MASKED) == 1, "each event reached the socket once, in one of its two forms"
    finally:
        await op.sio.disconnect()


async def test_across_nodes_each_twin_room_gets_its_own_form_of_the_event() -> None:
    """Two nodes on one Redis channel: node A's relay masks the event once and publishes both
    forms (``pii.emit_event`` inside ``FanoutManager.batched``); node B delivers the full
    form to its socket in the plain room and the masked form to its socket in the twin,
    without masking again."""
    channel = f"omni-test-{uuid.uuid4().hex[:8]}:socketio"
    a, b = FanoutManager(REDIS_URL, channel), FanoutManager(REDIS_URL, channel)
    sio_a = socketio.AsyncServer(async_mode="asgi", client_manager=a)
    sio_b = socketio.AsyncServer(async_mode="asgi", client_manager=b)
    got: dict[str, list[dict[str, Any]]] = {"eio-full": [], "eio-masked": []}

    async def send(eio_sid: str, pkt: Any) -> None:  # node B's sockets, without a transport
        text = str(pkt.data)
        name, wire = json.loads(text[text.index("[") :])
        assert name == "event"
        got[eio_sid].append(wire)

    sio_b._send_eio_packet = send
    probe = aioredis.Redis.from_url(REDIS_URL)
    b.initialize()
    try:
        full_sid = await b.connect("eio-full", "/operator")
        masked_sid = await b.connect("eio-masked", "/operator")
        await b.enter_room(full_sid, "/operator", rooms.queue(1))
        await b.enter_room(masked_sid, "/operator", pii.twin(rooms.queue(1), True))

        async def subscribed() -> bool:
            counts = dict(await probe.pubsub_numsub(channel))
            return int(counts.get(channel.encode(), 0)) >= 1

        await until(subscribed, what="node b's listener subscribed")
        wire = {"seq": 9, "type": "message.created", "queue_id": 1, "data": {"direction": "in", "body": TEXT}}
        plain = {"seq": 10, "type": "presence.changed", "queue_id": 1, "data": {"status": "available"}}
        async with a.batched():
            for event in (wire, plain):
                await pii.emit_event(sio_a, "/operator", event, pii.masked_wire(event), [rooms.queue(1)])

        await until(lambda: len(got["eio-full"]) == 2 and len(got["eio-masked"]) == 2, what="both forms on B")
        assert [w["data"].get("body") for w in got["eio-full"]] == [TEXT, None]
        assert [w["data"].get("body") for w in got["eio-masked"]] == [MASKED, None]
        assert got["eio-masked"][1] == plain, "an event with nothing to mask reaches both unchanged"
    finally:
        if b.thread is not None:
            b.thread.cancel()
        await probe.aclose()
