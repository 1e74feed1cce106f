"""REST of the integration admin (issue 16): a webhook's test send against a real loopback
receiver, the delivery log's filters and payload view, admin-issued API tokens, and the audit
log's entity and date filters. On the shared PostgreSQL live server: a cloned template database
starts in a second where migrating a fresh SQLite file takes far longer on a loaded CI box."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import csrf_of
from tests.webhook_receiver import Receiver, always, check_signature


@dataclass
class Api:
    server: LiveServer
    admin: httpx.AsyncClient
    operator: httpx.AsyncClient
    ids: dict[str, int]


async def _login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


@pytest.fixture
async def api(live_server: LiveServer) -> AsyncIterator[Api]:
    server = live_server
    async with server.services.db.transaction() as s:
        root = await f.user(s, "root", m.Role.ADMIN)
        op = await f.user(s, "op")
        gone = await f.user(s, "gone", is_active=False)
        await f.user(s, "aud", m.Role.AUDITOR)
        await f.user(s, "sup", m.Role.SUPERVISOR)
        ids = {"root": root.id, "op": op.id, "gone": gone.id}
    admin, operator = await _login(server, "root"), await _login(server, "op")
    try:
        yield Api(server, admin, operator, ids)
    finally:
        await admin.aclose()
        await operator.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    crm = Receiver()
    await crm.start()
    try:
        yield crm
    finally:
        await crm.stop()


async def test_webhook_test_send_reports_the_receivers_answer_and_is_audited(
    api: Api, receiver: Receiver
) -> None:
    # Subscribed to a type that never happens: the receiver sees only the test sends.
    body = {"name": "crm", "url": receiver.url, "event_types": ["never.happens"]}
    made = await api.admin.post("/api/v1/webhooks", json=body)
    assert made.status_code == 201, made.text
    hook = made.json()

    ok = await api.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"ok": True, "status_code": 200, "error": ""}
    [hit] = receiver.hits
    assert hit.headers["X-Omni-Event"] == "webhook.test"
    assert hit.event["type"] == "webhook.test" and hit.payload["test"] is True
    check_signature(hook["secret"], hit.headers, hit.body)

    receiver.respond = always(503)
    down = (await api.admin.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
    assert down["ok"] is False and down["status_code"] == 503
    assert down["error"].startswith("HTTP 503")

    await api.admin.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": "http://127.0.0.1:9/nothing"})
    refused = (await api.admin.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
    assert refused["ok"] is False and refused["status_code"] is None and refused["error"]

    missing = await api.admin.post("/api/v1/webhooks/999/test")
    assert missing.status_code == 404
    assert (await api.operator.post(f"/api/v1/webhooks/{hook['id']}/test")).status_code == 403
    async with api.server.services.db.transaction() as s:
        deliveries = (await s.scalars(select(m.WebhookDelivery))).all()
        test_events = (await s.scalars(select(m.Event).where(m.Event.type == "webhook.test"))).all()
        tests = (await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "webhook.test"))).all()
    assert deliveries == [] and test_events == []  # not a delivery: nothing is queued or retried
    assert [a.result for a in tests] == ["ok", "failed", "failed"]
    assert tests[1].input["status_code"] == 503


async def test_delivery_log_filters_pages_and_shows_the_payload(api: Api) -> None:
    quiet = {"url": "https://crm.example/h", "event_types": ["never.happens"]}
    hook = (await api.admin.post("/api/v1/webhooks", json={"name": "crm", **quiet})).json()
    async with api.server.services.db.transaction() as s:
        events = [
            m.Event(type=t, payload={"n": i}, queue_id=None, dispatched=True)
            for i, t in enumerate(["conversation.created", "conversation.closed", "offer.made"] * 2)
        ]
        s.add_all(events)
        await s.flush()
        rows = [
            m.WebhookDelivery(
                subscription_id=hook["id"], event_id=e.id, state="failed" if i % 2 else "succeeded"
            )
            for i, e in enumerate(events)
        ]
        s.add_all(rows)
        await s.flush()
        ids = [r.id for r in rows]
    base = f"/api/v1/webhooks/{hook['id']}/deliveries"
    every = (await api.admin.get(base)).json()
    assert [d["id"] for d in every] == ids[::-1]
    failed = (await api.admin.get(base, params={"state": "failed"})).json()
    assert [d["id"] for d in failed] == [ids[5], ids[3], ids[1]]
    convs = (await api.admin.get(base, params={"event_type": "conversation.*"})).json()
    assert [d["id"] for d in convs] == [ids[4], ids[3], ids[1], ids[0]]
    page = (await api.admin.get(base, params={"before_id": ids[3], "limit": 2})).json()
    assert [d["id"] for d in page] == [ids[2], ids[1]]
    bad = await api.admin.get(base, params={"state": "lost"})
    assert bad.status_code == 422 and bad.json()["field"] == "state"

    detail = await api.admin.get(f"/api/v1/webhook-deliveries/{ids[1]}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["event_type"] == "conversation.closed"
    assert body["event"]["type"] == "conversation.closed" and body["event"]["data"] == {"n": 1}
    assert (await api.admin.get("/api/v1/webhook-deliveries/99999")).status_code == 404
    assert (await api.operator.get(f"/api/v1/webhook-deliveries/{ids[1]}")).status_code == 403


async def test_admin_issues_a_token_for_a_user_shown_once_then_revoked(api: Api) -> None:
    empty = await api.admin.post("/api/v1/tokens", json={"name": "  ", "user_id": api.ids["op"]})
    assert empty.status_code == 422 and empty.json()["field"] == "name"
    inactive = await api.admin.post("/api/v1/tokens", json={"name": "crm", "user_id": api.ids["gone"]})
    assert inactive.status_code == 422 and inactive.json()["field"] == "user_id"
    nobody = await api.admin.post("/api/v1/tokens", json={"name": "crm", "user_id": 2**31 - 1})
    assert nobody.status_code == 422 and nobody.json()["field"] == "user_id"
    assert (
        await api.operator.post("/api/v1/tokens", json={"name": "x", "user_id": api.ids["op"]})
    ).status_code == 403

    made = await api.admin.post("/api/v1/tokens", json={"name": "crm sync", "user_id": api.ids["op"]})
    assert made.status_code == 201, made.text
    token = made.json()
    assert token["token"].startswith("omni_") and token["user_id"] == api.ids["op"]
    bearer = {"Authorization": f"Bearer {token['token']}"}
    async with httpx.AsyncClient(base_url=api.server.url, headers=bearer, timeout=HTTP_TIMEOUT) as crm:
        me = await crm.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["id"] == api.ids["op"]
        listed = (await api.admin.get("/api/v1/tokens")).json()
        assert [t["name"] for t in listed] == ["crm sync"] and "token" not in listed[0]
        assert (await api.admin.delete(f"/api/v1/tokens/{token['id']}")).json()["revoked"] is True
        assert (await crm.get("/api/v1/me")).status_code == 401
    async with api.server.services.db.transaction() as s:
        actions = list(
            await s.scalars(select(m.AuditLog.action).where(m.AuditLog.object_type == "api_token"))
        )
    assert actions == ["token.create", "token.revoke"]


async def test_audit_log_filters_by_entity_and_date_range(api: Api) -> None:
    for name in ("a", "b"):
        body = {"name": name, "url": "https://crm.example/h", "event_types": ["never.happens"]}
        await api.admin.post("/api/v1/webhooks", json=body)
    hooks = {h["name"]: h["id"] for h in (await api.admin.get("/api/v1/webhooks")).json()}
    await api.admin.patch(f"/api/v1/webhooks/{hooks['a']}", json={"active": False})
    one = (
        await api.admin.get("/api/v1/audit", params={"object_type": "webhook", "object_id": str(hooks["a"])})
    ).json()
    assert [a["action"] for a in one] == ["webhook.update", "webhook.create"]
    now = datetime.now(UTC)
    window = {
        "since": (now - timedelta(hours=1)).isoformat(),
        "until": (now + timedelta(hours=1)).isoformat(),
    }
    inside = (await api.admin.get("/api/v1/audit", params={"object_type": "webhook", **window})).json()
    assert len(inside) == 3
    later = {"since": (now + timedelta(hours=1)).isoformat()}
    assert (await api.admin.get("/api/v1/audit", params=later)).json() == []

    backwards = await api.admin.get(
        "/api/v1/audit", params={"since": window["until"], "until": window["since"]}
    )
    assert backwards.status_code == 422 and backwards.json()["field"] == "until"
    naive = await api.admin.get("/api/v1/audit", params={"since": "2026-11-30T09:00:00"})
    assert naive.status_code == 422 and naive.json()["field"] == "since"
    garbage = await api.admin.get("/api/v1/audit", params={"until": "yesterday"})
    assert garbage.status_code == 422 and garbage.json()["field"] == "until"
    extreme = await api.admin.get("/api/v1/audit", params={"since": "0001-01-01T00:00:00+14:00"})
    assert extreme.status_code == 422 and extreme.json()["field"] == "since"
    assert (await api.operator.get("/api/v1/audit")).status_code == 403


async def test_integration_pages_are_for_admins_and_the_audit_log_for_auditors_too(api: Api) -> None:
    auditor, supervisor = await _login(api.server, "aud"), await _login(api.server, "sup")
    try:
        assert (await auditor.get("/admin/audit")).status_code == 200
        index = await auditor.get("/admin")
        assert 'href="/admin/audit"' in index.text and 'href="/admin/webhooks"' not in index.text
        for path in ("/admin/webhooks", "/admin/tokens", "/admin/tokens/new", "/admin/webhook-deliveries"):
            assert (await auditor.get(path)).status_code == 403, path
        for path in ("/admin/audit", "/admin/webhooks", "/admin/tokens"):
            assert (await supervisor.get(path)).status_code == 403, path

        # The replay form needs the page's token, and a delivery that is gone is said so.
        forged = await api.admin.post("/admin/webhook-deliveries/1/replay", data={"_csrf": "0" * 40})
        assert forged.status_code == 403
        csrf = csrf_of((await api.admin.get("/admin/tokens/new")).text)  # one token per session
        gone = await api.admin.post("/admin/webhook-deliveries/424242/replay", data={"_csrf": csrf})
        assert gone.status_code == 400 and "webhook delivery 424242 not found" in gone.text

        # A queue ticked in the filter that is gone by the time the form is saved: the refusal
        # stands next to the queues, not as an unexplained line above the form.
        form = {"_csrf": csrf, "name": "crm", "url": "https://crm.example/h", "queue_ids": "424242"}
        refused = await api.admin.post("/admin/webhooks/new", data=form)
        assert refused.status_code == 400
        assert re.search(r'<span class="field-error" data-field="queue_ids"[^>]*>[^<]*424242', refused.text)
    finally:
        await auditor.aclose()
        await supervisor.aclose()
