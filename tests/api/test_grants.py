"""Per-role grants and field masking (issue 16, perm16): admins narrow what a role may do, a
role without ``pii.view`` sees phones and e-mails masked everywhere it reads them, a reveal is
a grant of its own and is audited, and searching by the full phone still finds the contact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain import grants, monitoring, webhooks
from omni.domain.auth import Principal
from omni.domain.errors import PermissionDenied
from omni.domain.masking import mask_email, mask_payload, mask_phone
from omni.settings import Settings, WebhookSettings
from tests import factories as f
from tests.conftest import LiveServer, copy_sqlite
from tests.helpers import HTTP_TIMEOUT
from tests.webhook_receiver import Receiver

PHONE = "+79161234512"
EMAIL = "ivan.petrov@mail.ru"


def test_phones_and_emails_are_masked_as_operators_see_them() -> None:
    assert mask_phone(PHONE) == "+7 916 ***-**-12"
    assert mask_phone("89161234512") == "+7 916 ***-**-12"
    assert mask_phone("+74951234567") == "+7 495 ***-**-67"
    assert mask_phone("101") == "*01"
    assert mask_phone(None) is None and mask_phone("") == ""
    assert mask_email(EMAIL) == "i***@m***.ru"
    assert mask_email("nobody") == "n***"
    doc = {"phone": PHONE, "a": [{"email": EMAIL}], "identities": [{"kind": "phone", "value": PHONE}]}
    assert mask_payload(doc) == {
        "phone": "+7 916 ***-**-12",
        "a": [{"email": "i***@m***.ru"}],
        "identities": [{"kind": "phone", "value": "+7 916 ***-**-12"}],
    }


@dataclass
class World:
    server: LiveServer
    clients: dict[str, httpx.AsyncClient]
    contact_id: int


@pytest.fixture
async def world(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[World]:
    """An SQLite install: admin, a supervisor of group A, an operator of queue A, and a contact
    (with phone and e-mail) who wrote to queue A."""
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    server = LiveServer(settings)
    await server.start()
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
            sup = await f.user(s, "sup", m.Role.SUPERVISOR)
            op = await f.user(s, "op")
            group = m.Group(name="A")
            s.add(group)
            await s.flush()
            s.add_all(
                [
                    m.GroupMember(group_id=group.id, user_id=op.id),
                    m.SupervisorScope(supervisor_id=sup.id, group_id=group.id),
                ]
            )
            queue = await f.queue(s, "QA", [op], group_id=group.id)
            inbox = await f.inbox(s, queue)
            inbox_id = inbox.id
        for name in ("admin", "sup", "op"):
            client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
            resp = await client.post("/api/v1/auth/login", json={"username": name, "password": f.PASSWORD})
            assert resp.status_code == 200, resp.text
            clients[name] = client
        resp = await clients["admin"].post(
            f"/api/v1/inboxes/{inbox_id}/messages",
            json={
                "identity_kind": "phone",
                "identity_value": PHONE,
                "body": "hi",
                "contact_email": EMAIL,
                "contact_name": "Ivan",
            },
        )
        assert resp.status_code == 201, resp.text
        contact_id = resp.json()["conversation"]["contact_id"]
        yield World(server, clients, contact_id)
    finally:
        for c in clients.values():
            await c.aclose()
        await server.stop()


async def audit_actions(world: World, action: str) -> list[m.AuditLog]:
    async with world.server.services.db.transaction() as s:
        return list(await s.scalars(select(m.AuditLog).where(m.AuditLog.action == action)))


async def test_operator_without_pii_view_sees_masked_data_finds_by_full_phone_and_reveals_audited(
    world: World,
) -> None:
    admin, sup, op = world.clients["admin"], world.clients["sup"], world.clients["op"]
    before = (await op.get(f"/api/v1/contacts/{world.contact_id}")).json()
    assert before["phone"] == PHONE, "by default the four roles behave as before grants existed"

    resp = await admin.put("/api/v1/admin/grants/operator", json={"grants": {"pii.view": False}})
    assert resp.status_code == 200, resp.text
    operator = next(r for r in resp.json()["roles"] if r["role"] == "operator")
    assert operator["grants"]["pii.view"] is False and operator["grants"]["pii.reveal"] is True
    assert [a.input for a in await audit_actions(world, "grants.update")] == [{"pii.view": False}]

    found = await op.get("/api/v1/contacts", params={"q": PHONE})
    assert found.status_code == 200, found.text
    assert [c["id"] for c in found.json()] == [world.contact_id], "search by the full phone still works"
    assert found.json()[0]["phone"] == "+7 916 ***-**-12"
    assert found.json()[0]["email"] == "i***@m***.ru"
    card = (await op.get(f"/api/v1/contacts/{world.contact_id}")).json()
    assert card["phone"] == "+7 916 ***-**-12"
    assert {i["value"] for i in card["identities"]} == {"+7 916 ***-**-12"}
    assert (await sup.get(f"/api/v1/contacts/{world.contact_id}")).json()["phone"] == PHONE

    revealed = await op.post(f"/api/v1/contacts/{world.contact_id}/reveal")
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["phone"] == PHONE and revealed.json()["email"] == EMAIL
    rows = await audit_actions(world, "contact.reveal")
    assert [(r.object_id, r.object_type) for r in rows] == [(str(world.contact_id), "contact")]

    resp = await admin.put("/api/v1/admin/grants/operator", json={"grants": {"pii.reveal": False}})
    assert resp.status_code == 200, resp.text
    refused = await op.post(f"/api/v1/contacts/{world.contact_id}/reveal")
    assert refused.status_code == 403, refused.text
    assert "reveal" in refused.json()["detail"]
    assert len(await audit_actions(world, "contact.reveal")) == 1

    back = await admin.put(
        "/api/v1/admin/grants/operator", json={"grants": {"pii.view": True, "pii.reveal": True}}
    )
    assert back.status_code == 200, back.text
    async with world.server.services.db.transaction() as s:
        assert list(await s.scalars(select(m.RoleGrant))) == [], "back at the default, no row stays"
    assert (await op.get(f"/api/v1/contacts/{world.contact_id}")).json()["phone"] == PHONE


async def test_grant_changes_are_checked_and_named_by_field(world: World) -> None:
    admin = world.clients["admin"]
    cases = [
        ("operator", {"call.barge": True}, 422, "call.barge"),
        ("operator", {"no.such": False}, 422, "no.such"),
        ("admin", {"pii.view": False}, 422, "role"),
        ("king", {"pii.view": False}, 422, "role"),
        ("operator", {}, 422, "grants"),
    ]
    for role, body, status, field in cases:
        resp = await admin.put(f"/api/v1/admin/grants/{role}", json={"grants": body})
        assert resp.status_code == status, (role, body, resp.text)
        assert resp.json()["field"] == field, resp.json()
    bad_type = await admin.put("/api/v1/admin/grants/operator", json={"grants": {"pii.view": "no"}})
    assert bad_type.status_code == 400, bad_type.text
    async with world.server.services.db.transaction() as s:
        assert list(await s.scalars(select(m.RoleGrant))) == []
    listing = (await admin.get("/api/v1/admin/grants")).json()
    assert [g["name"] for g in listing["grants"]] == list(grants.GRANTS)
    sup = next(r for r in listing["roles"] if r["role"] == "supervisor")
    assert sup["grants"]["call.barge"] is True and "call.barge" in sup["editable"]


async def test_a_supervisor_without_grants_is_refused_where_the_action_happens(world: World) -> None:
    admin, sup = world.clients["admin"], world.clients["sup"]
    scenario = {"key": "s1", "name": "S", "document": {"version": 1, "start": "a", "nodes": {}}}
    resp = await admin.put(
        "/api/v1/admin/grants/supervisor", json={"grants": {"report.export": False, "scenario.manage": False}}
    )
    assert resp.status_code == 200, resp.text
    export = await sup.post("/api/v1/reports/queue_summary/exports", params={"format": "csv"})
    assert export.status_code == 403, export.text
    created = await sup.post("/api/v1/scenarios", json=scenario)
    assert created.status_code == 403, created.text
    page = await sup.get("/supervisor/bots")
    assert page.status_code == 200 and '"readonly":true' in page.text.replace(" ", "")
    assert (
        await admin.post("/api/v1/reports/queue_summary/exports", params={"format": "csv"})
    ).status_code == 202

    resp = await admin.put(
        "/api/v1/admin/grants/supervisor", json={"grants": {"chat.whisper": False, "chat.take_over": False}}
    )
    assert resp.status_code == 200, resp.text
    async with world.server.services.db.transaction() as s:
        row = await s.scalar(select(m.User).where(m.User.username == "sup"))
        conv_id = await s.scalar(
            select(m.Conversation.id).where(m.Conversation.contact_id == world.contact_id)
        )
        assert row is not None and conv_id is not None
        who = Principal.of(row)
        with pytest.raises(PermissionDenied, match=r"chat\.take_over"):
            await monitoring.check_take_over(s, who, conv_id)
        with pytest.raises(PermissionDenied, match=r"chat\.whisper"):
            await monitoring.check_whisper(s, who, conv_id, "psst")
        assert await grants.allowed(s, who, grants.CALL_LISTEN), "the other grants stay"


async def test_masked_webhook_gets_masked_phone_and_email(world: World) -> None:
    admin = world.clients["admin"]
    crm = Receiver()
    await crm.start()
    try:
        hook = await admin.post(
            "/api/v1/webhooks", json={"name": "crm", "url": crm.url, "event_types": ["x.*"]}
        )
        plain = await admin.post(
            "/api/v1/webhooks", json={"name": "bi", "url": crm.url, "event_types": ["x.*"]}
        )
        assert hook.status_code == 201 and plain.status_code == 201, hook.text
        chosen = await admin.put("/api/v1/admin/masked-webhooks", json={"ids": [hook.json()["id"]]})
        assert chosen.status_code == 200 and chosen.json()["ids"] == [hook.json()["id"]]
        missing = await admin.put("/api/v1/admin/masked-webhooks", json={"ids": [99999]})
        assert missing.status_code == 404 and missing.json()["field"] == "masked_webhook_ids"
        db = world.server.services.db
        now = datetime.now(UTC)
        async with db.transaction() as s:
            event = m.Event(
                type="x.card",
                payload={"contact": {"phone": PHONE, "email": EMAIL}},
                created_at=now,
                dispatched=True,  # delivered below, not by the relay
            )
            s.add(event)
            await s.flush()
            rows = [
                m.WebhookDelivery(
                    subscription_id=sub,
                    event_id=event.id,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    last_error="",
                    created_at=now,
                )
                for sub in (hook.json()["id"], plain.json()["id"])
            ]
            s.add_all(rows)
            await s.flush()
            ids = [r.id for r in rows]
        for delivery_id in ids:
            assert (await webhooks.do_deliver(db, delivery_id, WebhookSettings())).delivered
        masked, full = (
            crm.delivered(sub)[0].event["data"]["contact"] for sub in (hook.json()["id"], plain.json()["id"])
        )
        assert masked == {"phone": "+7 916 ***-**-12", "email": "i***@m***.ru"}
        assert full == {"phone": PHONE, "email": EMAIL}
    finally:
        await crm.stop()
