"""Embedded mode end to end: one process, SQLite file, in-process bus and Celery worker.

No PostgreSQL and no Redis: the settings name neither, so this test runs without
scripts/services.sh. An operator on Socket.IO gets an offer for a message posted through the
REST API, accepts, replies and closes it; a CRM webhook gets the conversation.closed event
from the in-process Celery worker (memory broker).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import socketio
from sqlalchemy import select

from omni.db import models as m
from omni.settings import Settings
from omni.worker import celery_app
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import until as wait_until
from tests.webhook_receiver import Receiver, check_signature


async def login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=10)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def settled_deliveries(admin: httpx.AsyncClient, hook_id: int) -> list[dict[str, Any]] | None:
    """The subscription's deliveries once none is pending any more (None while one is)."""
    resp = await admin.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows if rows and all(d["state"] != "pending" for d in rows) else None


async def test_embedded_mode_end_to_end(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="x" * 40, database_url="", redis_url="")
    assert settings.embedded and settings.is_sqlite
    crm = Receiver()
    await crm.start()
    server = LiveServer(settings)
    await server.start()
    sio = socketio.AsyncClient(reconnection=False)
    clients: list[httpx.AsyncClient] = []
    try:
        # The in-process worker's broker, and what the app publishes to, is memory, not Redis.
        assert celery_app.conf.broker_url == "memory://"
        with celery_app.producer_or_acquire() as producer:
            assert producer.connection.transport_cls == "memory", producer.connection.as_uri()
        assert (tmp_path / "omni.sqlite3").exists()

        async with server.services.db.transaction() as session:
            await f.user(session, "boss", role=m.Role.ADMIN)
            op = await f.user(session, "olga")
            q = await f.queue(session, "sales", members=[op])
            inbox = await f.inbox(session, q)
            rc = await f.result_code(session, "sold")
            op_id, queue_id, inbox_id, rc_id = op.id, q.id, inbox.id, rc.id

        admin = await login(server, "boss")
        clients.append(admin)
        operator = await login(server, "olga")
        clients.append(operator)
        resp = await operator.post("/api/v1/me/tokens", json={"name": "smoke"})
        assert resp.status_code == 201, resp.text
        token = resp.json()["token"]

        resp = await admin.post(
            "/api/v1/webhooks",
            json={"name": "crm", "url": crm.url, "event_types": ["conversation.closed"]},
        )
        assert resp.status_code == 201, resp.text
        hook = resp.json()

        events: list[dict[str, Any]] = []
        sio.on("event", events.append, namespace="/operator")
        await sio.connect(server.url, namespaces=["/operator"], auth={"token": token}, wait_timeout=10)

        async def available() -> bool:
            resp = await admin.get("/api/v1/presence/")
            rows = [p for p in resp.json() if p["user_id"] == op_id]
            return bool(rows) and rows[0].get("status") == "available"

        await wait_until(available, timeout=10, what="the operator to be available after connecting")

        resp = await admin.post(
            f"/api/v1/inboxes/{inbox_id}/messages",
            json={"identity_kind": "external", "identity_value": "crm-42", "body": "Where is my order?"},
        )
        assert resp.status_code == 201, resp.text
        conv_id = resp.json()["conversation"]["id"]

        offered = await wait_until(
            lambda: [e for e in events if e["type"] == "conversation.offered"],
            timeout=10,
            what="conversation.offered on the operator's socket",
        )
        assert len(offered) == 1
        offer = offered[0]["data"]
        assert offer["id"] == conv_id and offered[0]["user_id"] == op_id

        ack = await sio.call("accept", {"offer_id": offer["offer_id"]}, namespace="/operator", timeout=10)
        assert ack["ok"], ack
        assert ack["conversation"]["status"] == "active"
        ack = await sio.call(
            "send",
            {"conversation_id": conv_id, "body": "It ships today", "client_id": "c-1"},
            namespace="/operator",
            timeout=10,
        )
        assert ack["ok"], ack
        assert ack["message"]["body"] == "It ships today"
        ack = await sio.call(
            "close", {"conversation_id": conv_id, "result_code_id": rc_id}, namespace="/operator", timeout=10
        )
        assert ack["ok"], ack
        assert ack["conversation"]["status"] == "closed"

        async with server.services.db.transaction() as session:
            conv = await session.get(m.Conversation, conv_id)
            assert conv is not None
            assert conv.status == m.ConversationStatus.CLOSED
            assert conv.result_code_id == rc_id
            assert conv.assigned_user_id == op_id and conv.queue_id == queue_id
            assert conv.closed_at is not None
            msgs = list(
                await session.scalars(
                    select(m.Message).where(m.Message.conversation_id == conv_id).order_by(m.Message.id)
                )
            )
            assert [(x.direction, x.body) for x in msgs] == [
                ("in", "Where is my order?"),
                ("out", "It ships today"),
            ]
            outbox = list(
                await session.scalars(
                    select(m.Event).where(m.Event.conversation_id == conv_id).order_by(m.Event.id)
                )
            )
        assert [e.type for e in outbox] == [
            "conversation.created",
            "conversation.queued",
            "message.created",
            "conversation.offered",
            "conversation.accepted",
            "message.created",
            "conversation.wrap_up",
            "conversation.closed",
        ]
        assert [e.payload["direction"] for e in outbox if e.type == "message.created"] == ["in", "out"]

        # The operator's socket saw the same story, in sequence order.
        def seen() -> list[str]:
            return [e["type"] for e in events if e.get("conversation_id") == conv_id]

        await wait_until(
            lambda: "conversation.closed" in seen(), timeout=10, what="conversation.closed on the socket"
        )
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        assert seen() == [e.type for e in outbox]

        # The CRM gets conversation.closed from the in-process Celery worker, signed.
        closed = await wait_until(
            lambda: [h for h in crm.delivered() if h.event["type"] == "conversation.closed"],
            timeout=15,
            what="conversation.closed at the CRM",
        )
        assert len(closed) == 1
        hit = closed[0]
        check_signature(hook["secret"], hit.headers, hit.body)
        assert hit.event["seq"] == outbox[-1].id
        assert hit.event["data"]["result_code_id"] == rc_id
        assert {h.event["type"] for h in crm.hits} == {"conversation.closed"}
        # The CRM has the request before the worker has its answer, and the delivery is marked
        # succeeded only once the answer is back: wait for that state, not for the hit.
        rows = await wait_until(
            lambda: settled_deliveries(admin, hook["id"]), timeout=15, what="the delivery to settle"
        )
        assert [(d["state"], d["attempts"], d["event_id"]) for d in rows] == [("succeeded", 1, outbox[-1].id)]
    finally:
        if sio.connected:
            await sio.disconnect()
        for client in clients:
            await client.aclose()
        await server.stop()
        await crm.stop()


async def test_webhook_delivery_reads_pending_until_the_crm_answered(tmp_path: Path) -> None:
    """The embedded smoke test once read the delivery right after the CRM got the request and
    sometimes found it still pending: the worker marks it succeeded only after the CRM's answer
    is back. The CRM here holds its answer, so that window is always open: the request is at the
    CRM and the delivery reads pending; once the CRM answers it reads succeeded, attempt 1."""
    settings = Settings(data_dir=tmp_path, secret_key="x" * 40, database_url="", redis_url="")
    answer = asyncio.Event()
    crm = Receiver(answer=answer)
    await crm.start()
    server = LiveServer(settings)
    await server.start()
    clients: list[httpx.AsyncClient] = []
    try:
        async with server.services.db.transaction() as session:
            await f.user(session, "boss", role=m.Role.ADMIN)
            op = await f.user(session, "olga")
            q = await f.queue(session, "sales", members=[op])
            inbox_id = (await f.inbox(session, q)).id
        admin = await login(server, "boss")
        clients.append(admin)
        resp = await admin.post(
            "/api/v1/webhooks",
            json={"name": "crm", "url": crm.url, "event_types": ["conversation.created"]},
        )
        assert resp.status_code == 201, resp.text
        hook_id = resp.json()["id"]
        resp = await admin.post(
            f"/api/v1/inboxes/{inbox_id}/messages",
            json={"identity_kind": "external", "identity_value": "crm-7", "body": "hello"},
        )
        assert resp.status_code == 201, resp.text
        conv_id = resp.json()["conversation"]["id"]

        hits = await wait_until(
            lambda: [h for h in crm.hits if h.event["type"] == "conversation.created"],
            timeout=15,
            what="conversation.created at the CRM",
        )
        assert hits[0].event["data"]["id"] == conv_id
        resp = await admin.get(f"/api/v1/webhooks/{hook_id}/deliveries")
        assert [d["state"] for d in resp.json()] == ["pending"], "not delivered before the CRM answered"

        answer.set()
        rows = await wait_until(
            lambda: settled_deliveries(admin, hook_id), timeout=15, what="the delivery to settle"
        )
        assert [(d["state"], d["attempts"], d["event_id"]) for d in rows] == [
            ("succeeded", 1, hits[0].event["seq"])
        ]
    finally:
        answer.set()
        for client in clients:
            await client.aclose()
        await server.stop()
        await crm.stop()


async def test_a_stopped_embedded_server_lets_this_process_wait_for_task_results(tmp_path: Path) -> None:
    """The embedded worker flags the whole process as a Celery worker ("Never call result.get()
    within a task!") and left the flag set when it stopped: in CI a test waiting for the
    ``omni.reports.catch_up`` task failed whenever an embedded-mode test had run before it on
    the same pytest worker. Stopped, the embedded server leaves no worker behind."""
    from celery._state import task_join_will_block

    accumulate = celery_app.tasks["celery.accumulate"]
    assert accumulate.apply(args=(1, 2)).get() == (1, 2)
    server = LiveServer(Settings(data_dir=tmp_path, secret_key="x" * 40, database_url="", redis_url=""))
    await server.start()
    try:
        await wait_until(task_join_will_block, timeout=15, what="the embedded Celery worker to be up")
    finally:
        await server.stop()
    assert accumulate.apply(args=(1, 2)).get() == (1, 2)


def test_the_public_address_follows_the_port_unless_it_is_set(monkeypatch: Any) -> None:
    """`OMNI_PORT=8779 scripts/run.sh` served the consoles, but their sockets were refused as
    cross-site (the public address still said :8000): the operator saw "connection lost"."""
    for name in ("OMNI_PUBLIC_BASE_URL", "OMNI_HOST", "OMNI_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().public_base_url == "http://127.0.0.1:8000"
    assert Settings(port=8779).public_base_url == "http://127.0.0.1:8779"
    assert Settings(host="0.0.0.0", port=9000).public_base_url == "http://127.0.0.1:9000"
    assert (
        Settings(port=8779, public_base_url="https://omni.example").public_base_url == "https://omni.example"
    )


def test_serve_port_on_the_command_line_moves_the_public_address_too(
    monkeypatch: Any, tmp_path: Path
) -> None:
    """`omni serve --port 8791` listened there but the consoles' sockets were refused (the
    public address said :8000), as with OMNI_PORT before; a set public address still wins."""
    import argparse

    import uvicorn

    import omni.app
    from omni import cli

    for name in ("OMNI_PUBLIC_BASE_URL", "OMNI_HOST", "OMNI_PORT", "OMNI_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMNI_DATA_DIR", str(tmp_path))
    served: list[Settings] = []
    monkeypatch.setattr(omni.app, "create_app", lambda settings: served.append(settings))
    monkeypatch.setattr(cli, "server_config", lambda *a, **kw: None)
    monkeypatch.setattr(uvicorn, "Server", lambda config: argparse.Namespace(run=lambda: None))
    args = argparse.Namespace(host=None, port=8791, workers=None)
    cli.get_settings.cache_clear()
    try:
        assert cli.cmd_serve(args, cli.get_settings()) == 0
        assert served[-1].port == 8791 and served[-1].public_base_url == "http://127.0.0.1:8791"
        monkeypatch.setenv("OMNI_PUBLIC_BASE_URL", "https://omni.example")
        cli.get_settings.cache_clear()
        assert cli.cmd_serve(args, cli.get_settings()) == 0
        assert served[-1].public_base_url == "https://omni.example"
    finally:
        cli.get_settings.cache_clear()  # the next test reads its own environment
