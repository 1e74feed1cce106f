"""Every role sees and does only what it may; bad input is a clear 4xx that changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer


@dataclass
class World:
    server: LiveServer
    clients: dict[str, httpx.AsyncClient]
    ids: dict[str, int]


async def login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


@pytest.fixture
async def world(live_server: LiveServer) -> AsyncIterator[World]:
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        auditor = await f.user(s, "auditor", m.Role.AUDITOR)
        op_a = await f.user(s, "op_a")
        op_b = await f.user(s, "op_b")
        g_a = m.Group(name="A")
        g_b = m.Group(name="B")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=op_a.id),
                m.GroupMember(group_id=g_b.id, user_id=op_b.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
            ]
        )
        q_a = await f.queue(s, "QA", [op_a], group_id=g_a.id)
        q_b = await f.queue(s, "QB", [op_b], group_id=g_b.id)
        ib_a = await f.inbox(s, q_a)
        ib_b = await f.inbox(s, q_b)
        ids = {
            "admin": admin.id,
            "sup": sup.id,
            "op_a": op_a.id,
            "op_b": op_b.id,
            "q_a": q_a.id,
            "q_b": q_b.id,
            "ib_a": ib_a.id,
            "ib_b": ib_b.id,
            "auditor": auditor.id,
        }
    clients = {name: await login(live_server, name) for name in ("admin", "sup", "auditor", "op_a", "op_b")}
    for inbox, who in (("ib_a", "alice"), ("ib_b", "bob")):
        resp = await clients["admin"].post(
            f"/api/v1/inboxes/{ids[inbox]}/messages",
            json={"identity_kind": "external", "identity_value": who, "body": "hi"},
        )
        assert resp.status_code == 201, resp.text
        ids[f"conv_{inbox[-1]}"] = resp.json()["conversation"]["id"]
    try:
        yield World(live_server, clients, ids)
    finally:
        for c in clients.values():
            await c.aclose()


async def test_anonymous_is_refused_everywhere(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url) as anon:
        for path in (
            "/api/v1/conversations",
            "/api/v1/users",
            "/api/v1/queues",
            "/api/v1/audit",
            "/api/v1/events",
        ):
            resp = await anon.get(path)
            assert resp.status_code == 401, path
            assert resp.json()["detail"]
        bad = await anon.get("/api/v1/me", headers={"Authorization": "Bearer omni_not-a-token"})
        assert bad.status_code == 401


async def test_operator_sees_only_own_queue(world: World) -> None:
    op_a = world.clients["op_a"]
    listed = {c["id"] for c in (await op_a.get("/api/v1/conversations")).json()}
    assert listed == {world.ids["conv_a"]}
    assert (await op_a.get(f"/api/v1/conversations/{world.ids['conv_a']}")).status_code == 200
    other = await op_a.get(f"/api/v1/conversations/{world.ids['conv_b']}")
    assert other.status_code == 404
    queues = {q["id"] for q in (await op_a.get("/api/v1/queues")).json()}
    assert queues == {world.ids["q_a"]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/users", {"username": "x", "password": "longenough1", "role": "admin"}),
        ("post", "/api/v1/queues", {"name": "Q9"}),
        ("get", "/api/v1/audit", None),
        ("get", "/api/v1/webhooks", None),
        ("post", "/api/v1/statuses", {"code": "nap", "name": "Nap", "kind": "pause"}),
    ],
)
async def test_operator_cannot_administer(
    world: World, method: str, path: str, body: dict[str, object] | None
) -> None:
    resp = await getattr(world.clients["op_a"], method)(path, **({"json": body} if body else {}))
    assert resp.status_code == 403, resp.text
    assert resp.json()["detail"]


async def test_supervisor_is_pinned_to_their_groups(world: World) -> None:
    sup = world.clients["sup"]
    listed = {c["id"] for c in (await sup.get("/api/v1/conversations")).json()}
    assert listed == {world.ids["conv_a"]}
    assert (await sup.get(f"/api/v1/conversations/{world.ids['conv_b']}")).status_code == 404
    users = {u["id"] for u in (await sup.get("/api/v1/users")).json()}
    assert world.ids["op_b"] not in users and world.ids["op_a"] in users
    # Status of an operator outside the scope can't be changed; inside it needs a reason.
    outside = await sup.put(f"/api/v1/presence/{world.ids['op_b']}", json={"status": "pause", "reason": "x"})
    assert outside.status_code == 404
    no_reason = await sup.put(f"/api/v1/presence/{world.ids['op_a']}", json={"status": "pause"})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    ok = await sup.put(
        f"/api/v1/presence/{world.ids['op_a']}", json={"status": "pause", "reason": "coaching"}
    )
    assert ok.status_code == 200 and ok.json()["status"] == "pause"
    assert (
        await sup.post("/api/v1/users", json={"username": "x", "password": "longenough1", "role": "operator"})
    ).status_code == 403


async def test_auditor_reads_audit_log_only(world: World) -> None:
    auditor = world.clients["auditor"]
    log = await auditor.get("/api/v1/audit")
    assert log.status_code == 200
    assert any(row["action"] == "auth.login" for row in log.json())
    assert (await auditor.get("/api/v1/conversations")).status_code == 403
    assert (await auditor.get(f"/api/v1/conversations/{world.ids['conv_a']}")).status_code == 403
    assert (await auditor.get("/api/v1/events")).status_code == 403


async def test_bad_input_is_a_clear_4xx_and_stores_nothing(world: World) -> None:
    admin = world.clients["admin"]
    async with world.server.services.db.transaction() as s:
        queues_before = await s.scalar(select(func.count()).select_from(m.Queue))
    bad_strategy = await admin.post("/api/v1/queues", json={"name": "Q9", "strategy": "telepathy"})
    assert bad_strategy.status_code in (400, 422)
    assert "strategy" in bad_strategy.text
    wrong_type = await admin.post("/api/v1/queues", json={"name": "Q9", "queue_timeout_seconds": "soon"})
    assert wrong_type.status_code == 400
    dup = await admin.post("/api/v1/queues", json={"name": "QA"})
    assert dup.status_code == 422 and "already exists" in dup.json()["detail"]
    async with world.server.services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Queue)) == queues_before
    unknown_field = await admin.post(
        f"/api/v1/inboxes/{world.ids['ib_a']}/messages",
        json={"identity_kind": "external", "identity_value": "z", "bodyy": "typo"},
    )
    assert unknown_field.status_code == 400
    bad_phone = await admin.post(
        f"/api/v1/inboxes/{world.ids['ib_a']}/messages",
        json={"identity_kind": "phone", "identity_value": "call me maybe"},
    )
    assert bad_phone.status_code == 422 and bad_phone.json()["field"] == "phone"
    close_queued = await admin.post(
        f"/api/v1/conversations/{world.ids['conv_a']}/close", json={"result_code_id": 1}
    )
    assert close_queued.status_code == 409
    async with world.server.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, world.ids["conv_a"])
        assert conv.status in ("queued", "offered")


async def test_api_token_works_for_integrations(world: World) -> None:
    created = await world.clients["admin"].post("/api/v1/me/tokens", json={"name": "crm"})
    assert created.status_code == 201
    token = created.json()["token"]
    async with httpx.AsyncClient(
        base_url=world.server.url, headers={"Authorization": f"Bearer {token}"}
    ) as crm:
        assert (await crm.get("/api/v1/me")).json()["username"] == "admin"
        events = (await crm.get("/api/v1/events", params={"after": 0})).json()
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        assert "conversation.created" in {e["type"] for e in events}


async def test_health_readiness_metrics_and_schema(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url) as anon:
        assert (await anon.get("/healthz")).json() == {"status": "ok"}
        ready = (await anon.get("/readyz")).json()
        assert ready == {"ready": True, "checks": {"database": "ok", "redis": "ok"}}
        metrics = (await anon.get("/metrics")).text
        assert 'omni_conversations{status="queued"} 2.0' in metrics
        schema = (await anon.get("/schema/openapi.json")).json()
        assert "/api/v1/conversations/{conversation_id}/close" in schema["paths"]
