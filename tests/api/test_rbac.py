"""Every role sees and does only what it may; bad input is a clear 4xx that changes nothing."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pypdf
import pytest
from litestar.routes import HTTPRoute
from sqlalchemy import func, select

from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, make_settings
from tests.helpers import HTTP_TIMEOUT, until


@dataclass
class World:
    server: LiveServer
    clients: dict[str, httpx.AsyncClient]
    ids: dict[str, int]


async def login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
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
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as anon:
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
        base_url=world.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    ) as crm:
        assert (await crm.get("/api/v1/me")).json()["username"] == "admin"
        events = (await crm.get("/api/v1/events", params={"after": 0})).json()
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        assert "conversation.created" in {e["type"] for e in events}


async def test_health_readiness_metrics_and_schema(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as anon:
        assert (await anon.get("/healthz")).json() == {"status": "ok"}
        ready = (await anon.get("/readyz")).json()
        assert ready == {"ready": True, "checks": {"database": "ok", "redis": "ok"}}
        metrics = (await anon.get("/metrics")).text
        assert 'omni_conversations{status="queued"} 2.0' in metrics
        schema = (await anon.get("/schema/openapi.json")).json()
        assert "/api/v1/conversations/{conversation_id}/close" in schema["paths"]


# --- scope of contacts, files, recordings, callbacks and events (issue 10, item 12) ---------


@dataclass
class Foreign:
    """Objects of group B that group A's operator and supervisor must not reach."""

    contact_a: int
    contact_b: int
    file_b: str
    callback_b: int
    offer_b: int
    scenario: int
    token_admin: int
    webhook: int
    delivery: int
    group_b: int
    skill: int
    status: int
    code: int
    canned: int
    card_field: int
    export_admin: int = 0
    """A report export of the admin's: nobody else reads or downloads it."""
    campaign_b: int = 0
    """A campaign of group B's queue, with a pending list import (``import_b``)."""
    import_b: int = 0
    dnc_entry: int = 0
    """A do-not-call entry of a campaign of group B's queue."""
    label_b: int = 0
    """A label of group B's queue."""
    view_b: int = 0
    """A saved view of group B's operator, shared with group B."""
    scorecard: int = 0
    """A quality scorecard (supervisors and admins build them)."""
    evaluation_b: int = 0
    """A quality evaluation of group B's conversation, grading group B's operator."""
    message_b: int = 0
    """A customer's message in group B's conversation."""


@pytest.fixture
def settings(pg_url: str, tmp_path: Path) -> Settings:
    s = make_settings(pg_url, data_dir=tmp_path)
    s.voice.recordings_dir = tmp_path / "recordings"
    return s


SCENARIO = {
    "name": "RBAC",
    "start": "bye",
    "nodes": [{"id": "bye", "type": "close", "result_code": "done"}],
}


@pytest.fixture
async def foreign(world: World) -> Foreign:
    ids = world.ids
    rec_dir = world.server.settings.voice.recordings_dir
    rec_dir.mkdir(parents=True, exist_ok=True)
    (rec_dir / "b.wav").write_bytes(b"RIFF....WAVEfmt ")
    admin = world.clients["admin"]
    async with world.server.services.db.transaction() as s:
        conv_a = await s.get_one(m.Conversation, ids["conv_a"])
        conv_b = await s.get_one(m.Conversation, ids["conv_b"])
        path = world.server.settings.data_dir / "file-b"
        path.write_bytes(b"secret of B")
        s.add(
            m.StoredFile(
                id="file-of-b",
                inbox_id=ids["ib_b"],
                owner="x",
                name="b.txt",
                content_type="text/plain",
                size=11,
                path=str(path),
                conversation_id=conv_b.id,
            )
        )
        cb = m.Callback(conversation_id=conv_b.id, contact_id=conv_b.contact_id, queue_id=ids["q_b"])
        offer = m.Offer(
            conversation_id=conv_b.id,
            user_id=ids["op_b"],
            queue_id=ids["q_b"],
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
        )
        s.add_all([cb, offer])
        s.add(m.Call(conversation_id=conv_b.id, linkedid="b-1", recording_path="b.wav"))
        skill = m.Skill(name="german")
        s.add(skill)
        await s.flush()
        contact_a, contact_b, cb_id, offer_id, skill_id = (
            conv_a.contact_id,
            conv_b.contact_id,
            cb.id,
            offer.id,
            skill.id,
        )
        group_b = await s.scalar(select(m.Group.id).where(m.Group.name == "B"))
        status_id = await s.scalar(select(m.OperatorStatus.id).limit(1))
        code = await f.result_code(s)
        code_id = code.id
        campaign_b = m.Campaign(name="RBAC DNC of B", queue_id=ids["q_b"])
        s.add(campaign_b)
        await s.flush()
        dnc_b = m.DncEntry(campaign_id=campaign_b.id, number="+79161234567")
        s.add(dnc_b)
        await s.flush()
        dnc_b_id = dnc_b.id
    made = {
        "scenario": await admin.post(
            "/api/v1/scenarios", json={"key": "rbac", "name": "RBAC", "document": SCENARIO}
        ),
        "token": await admin.post("/api/v1/me/tokens", json={"name": "rbac"}),
        "webhook": await admin.post(
            "/api/v1/webhooks", json={"name": "crm", "url": "https://crm.example/hook"}
        ),
        "canned": await admin.post(
            "/api/v1/canned-replies", json={"shortcut": "hi", "title": "Hi", "body": "Hello"}
        ),
        "field": await admin.post("/api/v1/card-fields", json={"key": "vip", "label": "VIP", "kind": "text"}),
        "campaign": await admin.post("/api/v1/campaigns", json={"name": "B calls", "queue_id": ids["q_b"]}),
    }
    for name, resp in made.items():
        assert resp.status_code in (200, 201), (name, resp.text)
    export = await admin.post("/api/v1/reports/contact_history/exports", params={"format": "csv"})
    assert export.status_code == 202, export.text
    async with world.server.services.db.transaction() as s:
        delivery = m.WebhookDelivery(subscription_id=made["webhook"].json()["id"], event_id=1)
        s.add(delivery)
        await s.flush()
        delivery_id = delivery.id
        campaign_b = m.Campaign(name="Campaign B", queue_id=ids["q_b"])
        s.add(campaign_b)
        await s.flush()
        list_b = m.CallList(campaign_id=campaign_b.id, name="b.csv")
        s.add(list_b)
        await s.flush()
        import_b = m.ListImport(list_id=list_b.id, filename="b.csv", sniffed={"columns": [{"index": 0}]})
        s.add(import_b)
        await s.flush()
        campaign_b_id, import_b_id = campaign_b.id, import_b.id
        label_b = m.Label(name="B only", queue_id=ids["q_b"])
        view_b = m.SavedView(owner_id=ids["op_b"], group_id=group_b, name="B's view", filters={})
        s.add_all([label_b, view_b])
        await s.flush()
        label_b_id, view_b_id = label_b.id, view_b.id
        card = m.QaScorecard(
            name="Card",
            items=[
                {
                    "key": "q1",
                    "text": "Polite?",
                    "kind": "yesno",
                    "weight": 1,
                    "critical": False,
                    "scale_max": None,
                }
            ],
        )
        s.add(card)
        await s.flush()
        evaluation_b = m.QaEvaluation(
            scorecard_id=card.id,
            conversation_id=ids["conv_b"],
            grader_id=ids["admin"],
            operator_id=ids["op_b"],
            queue_id=ids["q_b"],
            answers={"q1": True},
            score=100.0,
        )
        s.add(evaluation_b)
        await s.flush()
        card_id, evaluation_b_id = card.id, evaluation_b.id
        of_b = select(m.Message.id).where(m.Message.conversation_id == conv_b.id)
        message_b = await s.scalar(of_b.limit(1))
    return Foreign(
        scorecard=card_id,
        evaluation_b=evaluation_b_id,
        message_b=message_b or 0,
        label_b=label_b_id,
        view_b=view_b_id,
        campaign_b=campaign_b_id,
        import_b=import_b_id,
        contact_a=contact_a,
        contact_b=contact_b,
        file_b="file-of-b",
        callback_b=cb_id,
        offer_b=offer_id,
        scenario=made["scenario"].json()["id"],
        token_admin=made["token"].json()["id"],
        export_admin=export.json()["id"],
        webhook=made["webhook"].json()["id"],
        delivery=delivery_id,
        group_b=group_b or 0,
        skill=skill_id,
        status=status_id or 0,
        code=code_id,
        canned=made["canned"].json()["id"],
        card_field=made["field"].json()["id"],
        dnc_entry=dnc_b_id,
    )


async def test_contacts_of_another_group_are_not_found_and_not_writable(
    world: World, foreign: Foreign
) -> None:
    op_a, sup = world.clients["op_a"], world.clients["sup"]
    for client in (op_a, sup):
        found = {c["id"] for c in (await client.get("/api/v1/contacts", params={"q": "b"})).json()}
        assert foreign.contact_b not in found
        listed = {c["id"] for c in (await client.get("/api/v1/contacts")).json()}
        assert listed == {foreign.contact_a}
        hidden = await client.get(f"/api/v1/contacts/{foreign.contact_b}")
        assert hidden.status_code == 404 and "bob" not in hidden.text
        renamed = await client.patch(f"/api/v1/contacts/{foreign.contact_b}", json={"name": "Pwned"})
        assert renamed.status_code == 404
        blacklisted = await client.patch(f"/api/v1/contacts/{foreign.contact_b}", json={"blacklisted": True})
        assert blacklisted.status_code == 404
    own = await op_a.get(f"/api/v1/contacts/{foreign.contact_a}")
    assert own.status_code == 200 and own.json()["identities"][0]["value"] == "alice"
    assert (
        await op_a.patch(f"/api/v1/contacts/{foreign.contact_a}", json={"name": "Alice"})
    ).status_code == 200
    # The operator window's rule: operators blacklist, only supervisors lift it.
    assert (
        await op_a.patch(f"/api/v1/contacts/{foreign.contact_a}", json={"blacklisted": True})
    ).status_code == 200
    lift = await op_a.patch(f"/api/v1/contacts/{foreign.contact_a}", json={"blacklisted": False})
    assert lift.status_code == 403
    assert (
        await sup.patch(f"/api/v1/contacts/{foreign.contact_a}", json={"blacklisted": False})
    ).status_code == 200
    admin_sees = {c["id"] for c in (await world.clients["admin"].get("/api/v1/contacts")).json()}
    assert {foreign.contact_a, foreign.contact_b} <= admin_sees
    async with world.server.services.db.transaction() as s:
        contact_b = await s.get_one(m.Contact, foreign.contact_b)
        assert contact_b.name != "Pwned" and not contact_b.blacklisted
    assert (await world.clients["auditor"].get("/api/v1/contacts")).status_code == 403


async def test_contacts_merge_blacklist_and_export_follow_roles_and_scope(world: World) -> None:
    """The contacts workspace over REST (issue 16): supervisors merge and export within their
    groups, operators only blacklist, auditors none of it; refusals name the field."""
    c, ids = world.clients, world.ids
    convs = {}
    for who in ("alice", "alice-mobile"):
        resp = await c["admin"].post(
            f"/api/v1/inboxes/{ids['ib_a']}/messages",
            json={"identity_kind": "external", "identity_value": who, "body": "hi"},
        )
        assert resp.status_code == 201, resp.text
        convs[who] = resp.json()["conversation"]["id"]
    async with world.server.services.db.transaction() as s:
        alice = (await s.get_one(m.Conversation, ids["conv_a"])).contact_id
        mobile = (await s.get_one(m.Conversation, convs["alice-mobile"])).contact_id
        bob = (await s.get_one(m.Conversation, ids["conv_b"])).contact_id
    merge = f"/api/v1/contacts/{alice}/merge"
    for name in ("op_a", "auditor"):
        assert (await c[name].post(merge, json={"other_id": mobile})).status_code == 403, name
    for other in (bob, alice, 2**31 - 1):
        refused = await c["sup"].post(merge, json={"other_id": other})
        assert refused.status_code == 422 and refused.json()["field"] == "other_id", refused.text
    merged = await c["sup"].post(merge, json={"other_id": mobile})
    assert merged.status_code == 200, merged.text
    assert {i["value"] for i in merged.json()["identities"]} == {"alice", "alice-mobile"}
    assert (await c["admin"].get(f"/api/v1/contacts/{mobile}")).status_code == 404
    async with world.server.services.db.transaction() as s:
        assert (await s.get_one(m.Conversation, convs["alice-mobile"])).contact_id == alice

    blacklist = f"/api/v1/contacts/{alice}/blacklist"
    too_long = await c["op_a"].post(blacklist, json={"blacklisted": True, "reason": "x" * 257})
    assert too_long.status_code in (400, 422) and "reason" in too_long.text, too_long.text
    assert (await c["op_a"].post(blacklist, json={"reason": "insults"})).json()["blacklisted"] is True
    assert (await c["op_a"].post(blacklist, json={"blacklisted": False})).status_code == 403
    listed = (await c["sup"].get("/api/v1/contacts", params={"blacklisted": "true"})).json()
    assert [x["id"] for x in listed] == [alice]
    assert (await c["sup"].post(blacklist, json={"blacklisted": False})).json()["blacklisted"] is False

    started = await c["sup"].post("/api/v1/reports/contacts/exports", params={"format": "csv", "q": "alice"})
    assert started.status_code == 202, started.text
    export_id = started.json()["id"]

    async def done() -> bool:
        job = (await c["sup"].get(f"/api/v1/exports/{export_id}")).json()
        assert job["state"] in ("queued", "running", "done"), job
        return bool(job["state"] == "done")

    await until(done, 60, what="the contacts export to finish")
    text = (await c["sup"].get(f"/api/v1/exports/{export_id}/file")).text
    assert "external:alice" in text and "external:bob" not in text
    everyone = await c["admin"].get("/api/v1/reports/contacts", params={"q": "bob"})
    assert everyone.status_code == 200 and everyone.json()["total_rows"] == 1, everyone.text
    assert (await c["auditor"].get("/api/v1/reports/contacts")).status_code == 403
    auditor_list = await c["auditor"].get("/api/v1/reports")
    assert auditor_list.status_code == 200 and "contacts" not in {r["key"] for r in auditor_list.json()}


async def test_files_recordings_and_callbacks_of_another_group_are_not_found(
    world: World, foreign: Foreign
) -> None:
    conv_b = world.ids["conv_b"]
    for name in ("op_a", "sup"):
        client = world.clients[name]
        assert (await client.get(f"/api/v1/files/{foreign.file_b}")).status_code == 404
        assert (await client.get(f"/api/v1/conversations/{conv_b}/recording")).status_code == 404
        assert foreign.callback_b not in {c["id"] for c in (await client.get("/api/v1/callbacks")).json()}
        assert (await client.post(f"/api/v1/callbacks/{foreign.callback_b}/claim")).status_code == 404
    admin = world.clients["admin"]
    assert (await admin.get(f"/api/v1/files/{foreign.file_b}")).content == b"secret of B"
    assert (await admin.get(f"/api/v1/conversations/{conv_b}/recording")).status_code == 200
    op_b = world.clients["op_b"]
    assert (await op_b.get(f"/api/v1/files/{foreign.file_b}")).status_code == 200
    assert (await op_b.post(f"/api/v1/callbacks/{foreign.callback_b}/claim")).status_code == 200


async def test_search_finds_only_what_the_caller_may_open(world: World) -> None:
    """Both groups' customers wrote "hi": each operator and group A's supervisor find their
    own conversation only, the admin both; auditors are refused; bad filters are a 422."""
    found = {}
    for name in ("op_a", "op_b", "sup", "admin"):
        resp = await world.clients[name].get("/api/v1/search", params={"q": "hi", "kind": "message"})
        assert resp.status_code == 200, resp.text
        found[name] = {h["conversation_id"] for h in resp.json()["hits"]}
        assert all(seg["hit"] for h in resp.json()["hits"] for seg in h["snippet"] if seg["text"] == "hi")
    conv_a, conv_b = world.ids["conv_a"], world.ids["conv_b"]
    assert found == {"op_a": {conv_a}, "op_b": {conv_b}, "sup": {conv_a}, "admin": {conv_a, conv_b}}
    assert (await world.clients["auditor"].get("/api/v1/search", params={"q": "hi"})).status_code == 403
    bad = await world.clients["op_a"].get("/api/v1/search", params={"q": "hi", "label": "vip"})
    assert bad.status_code == 422 and bad.json()["field"] == "label"
    empty = await world.clients["op_a"].get("/api/v1/search")
    assert empty.status_code == 422 and empty.json()["field"] == "q"
    recs = await world.clients["op_a"].get("/api/v1/search/recordings", params={"phone": "abc"})
    assert recs.status_code == 422 and recs.json()["field"] == "phone"


async def test_staff_download_the_transcript_pdf_of_what_they_may_see(world: World) -> None:
    conv_a, conv_b = world.ids["conv_a"], world.ids["conv_b"]
    resp = await world.clients["op_a"].get(f"/api/v1/conversations/{conv_a}/transcript.pdf")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    assert resp.headers["content-disposition"] == f'attachment; filename="transcript-{conv_a}.pdf"'
    pages = pypdf.PdfReader(io.BytesIO(resp.content)).pages
    assert "hi" in " ".join(p.extract_text() for p in pages).split()
    hidden = await world.clients["op_a"].get(f"/api/v1/conversations/{conv_b}/transcript.pdf")
    assert hidden.status_code == 404


async def test_event_feed_is_scoped_like_the_socket_resume(world: World, foreign: Foreign) -> None:
    conv_a, conv_b = world.ids["conv_a"], world.ids["conv_b"]
    everything = (await world.clients["admin"].get("/api/v1/events")).json()
    assert {conv_a, conv_b} <= {e["conversation_id"] for e in everything}
    for name in ("op_a", "sup"):
        feed = (await world.clients[name].get("/api/v1/events")).json()
        assert feed, name
        convs = {e.get("conversation_id") for e in feed}
        assert conv_a in convs and conv_b not in convs, name
        assert not any("bob" in str(e) for e in feed)


PUBLIC, SELF, STAFF, ADMIN_ONLY, SCOPED, PAGE, ADMIN_PAGE = (
    "public",
    "self",
    "staff",
    "admin",
    "scoped",
    "page",
    "admin-page",
)
"""public: no login (health, the widget, webhooks in, static files, the login itself);
self: any logged-in person, about themselves; staff: shared catalogues any staff member reads;
admin: administrators (and supervisors where the route says so), never operators (403);
scoped: an object of another group is 403/404;
page / admin-page: HTML pages (no login → the login form; admin pages refuse operators)."""

RBAC: dict[tuple[str, str], tuple[str, dict[str, object] | None]] = {
    ("GET", "/healthz"): (PUBLIC, None),
    ("GET", "/readyz"): (PUBLIC, None),
    ("GET", "/metrics"): (PUBLIC, None),
    ("GET", "/leases"): (PUBLIC, None),
    ("POST", "/api/v1/auth/login"): (PUBLIC, None),
    ("POST", "/api/v1/auth/logout"): (PUBLIC, None),
    ("GET", "/api/v1/me"): (SELF, None),
    ("PUT", "/api/v1/me/status"): (SELF, {"status": "available"}),
    ("POST", "/api/v1/me/tokens"): (SELF, {"name": "x"}),
    ("GET", "/api/v1/me/stats"): (SELF, None),
    ("GET", "/api/v1/search"): (SELF, {"q": "hi"}),
    ("GET", "/api/v1/search/recordings"): (SELF, None),
    ("GET", "/api/v1/campaigns/{campaign_id:int}/stats"): (SCOPED, None),
    ("GET", "/api/v1/presence"): (SELF, None),
    ("PUT", "/api/v1/presence/{user_id:int}"): (SCOPED, {"status": "pause", "reason": "x"}),
    ("GET", "/api/v1/conversations"): (SELF, None),
    ("GET", "/api/v1/conversations/{conversation_id:int}"): (SCOPED, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/messages"): (SCOPED, {"body": "x"}),
    ("POST", "/api/v1/conversations/{conversation_id:int}/hold"): (SCOPED, None),
    # Organise the work (issue 18): labels (admins, supervisors for their queues), labelling,
    # snooze and bulk on conversations in scope, saved views (own or shared with the group).
    # tests/domain/test_organise.py checks who may within scope; here: nobody outside it.
    ("GET", "/api/v1/labels"): (STAFF, None),
    ("POST", "/api/v1/labels"): (ADMIN_ONLY, {"name": "x"}),
    ("PATCH", "/api/v1/labels/{label_id:int}"): (SCOPED, {"name": "x"}),
    ("DELETE", "/api/v1/labels/{label_id:int}"): (SCOPED, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/labels"): (SCOPED, {"add": []}),
    ("POST", "/api/v1/conversations/{conversation_id:int}/snooze"): (SCOPED, {"until_customer": True}),
    ("POST", "/api/v1/conversations/{conversation_id:int}/unsnooze"): (SCOPED, None),
    ("POST", "/api/v1/conversations/bulk"): (
        STAFF,
        {"conversation_ids": [1], "action": "close", "result_code_id": 1},
    ),
    ("GET", "/api/v1/views"): (STAFF, None),
    ("POST", "/api/v1/views"): (STAFF, {"name": "x"}),
    ("PATCH", "/api/v1/views/{view_id:int}"): (SCOPED, {"name": "x"}),
    ("DELETE", "/api/v1/views/{view_id:int}"): (SCOPED, None),
    ("GET", "/api/v1/views/{view_id:int}/conversations"): (SCOPED, None),
    # Quality assessment (issue 18): scorecards are built by holders of qa.scorecards
    # (supervisors, admins); grading needs qa.grade and the conversation in scope; operators
    # read only their own evaluations (tests/domain/test_qa.py checks the rest).
    ("GET", "/api/v1/qa/scorecards"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/qa/scorecards"): (ADMIN_ONLY, {"name": "x", "items": [{"text": "q"}]}),
    ("GET", "/api/v1/qa/scorecards/{scorecard_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/qa/scorecards/{scorecard_id:int}"): (ADMIN_ONLY, {"name": "y"}),
    ("GET", "/api/v1/qa/evaluations"): (SELF, None),
    ("POST", "/api/v1/qa/evaluations"): (
        SCOPED,
        {"scorecard_id": 1, "conversation_id": 2**31, "answers": {"q1": True}},
    ),
    ("GET", "/api/v1/qa/evaluations/{evaluation_id:int}"): (SCOPED, None),
    ("POST", "/api/v1/qa/evaluations/{evaluation_id:int}/comment"): (SCOPED, {"comment": "x"}),
    ("GET", "/qa/scorecards"): (ADMIN_PAGE, None),
    ("POST", "/qa/scorecards"): (ADMIN_PAGE, None),
    ("GET", "/qa/scorecards/{scorecard_id:int}"): (ADMIN_PAGE, None),
    ("POST", "/qa/scorecards/{scorecard_id:int}"): (ADMIN_PAGE, None),
    ("GET", "/qa/grade/{conversation_id:int}"): (ADMIN_PAGE, None),
    ("POST", "/qa/grade/{conversation_id:int}"): (ADMIN_PAGE, None),
    ("GET", "/qa/evaluations"): (PAGE, None),
    ("GET", "/qa/evaluations/{evaluation_id:int}"): (PAGE, None),
    ("POST", "/qa/evaluations/{evaluation_id:int}/comment"): (PAGE, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/unhold"): (SCOPED, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/end"): (SCOPED, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/close"): (SCOPED, {"result_code_id": 1}),
    ("POST", "/api/v1/conversations/{conversation_id:int}/transfer"): (SCOPED, {"to_queue_id": 1}),
    ("POST", "/api/v1/conversations/{conversation_id:int}/callbacks"): (SCOPED, {"note": "x"}),
    ("GET", "/api/v1/conversations/{conversation_id:int}/recording"): (SCOPED, None),
    ("GET", "/api/v1/conversations/{conversation_id:int}/crm-card"): (SCOPED, None),
    # macros, automation rules, operator scripts (issue 18)
    ("GET", "/api/v1/macros"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/macros"): (
        ADMIN_ONLY,
        {"name": "x", "actions": [{"kind": "close", "result_code_id": 1}]},
    ),
    ("GET", "/api/v1/macros/{macro_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/macros/{macro_id:int}"): (ADMIN_ONLY, {"name": "y"}),
    ("DELETE", "/api/v1/macros/{macro_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/automation-rules"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/automation-rules/runs"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/automation-rules"): (
        ADMIN_ONLY,
        {"name": "x", "event": "queued", "actions": [{"kind": "priority", "priority": 1}]},
    ),
    ("GET", "/api/v1/automation-rules/{rule_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/automation-rules/{rule_id:int}"): (ADMIN_ONLY, {"name": "y"}),
    ("DELETE", "/api/v1/automation-rules/{rule_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/operator-scripts"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/operator-scripts"): (ADMIN_ONLY, {"name": "x", "body": "x"}),
    ("GET", "/api/v1/operator-scripts/{script_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/operator-scripts/{script_id:int}"): (ADMIN_ONLY, {"name": "y"}),
    ("DELETE", "/api/v1/operator-scripts/{script_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/conversations/{conversation_id:int}/macros"): (SCOPED, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/macros/{macro_id:int}/run"): (SCOPED, None),
    ("GET", "/api/v1/conversations/{conversation_id:int}/script"): (SCOPED, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/script/{step:str}"): (SCOPED, {"values": {}}),
    ("GET", "/api/v1/admin/crm"): (ADMIN_ONLY, None),
    ("PUT", "/api/v1/admin/crm"): (ADMIN_ONLY, {"fetch_timeout_ms": 500}),
    ("POST", "/api/v1/inboxes/{inbox_id:int}/messages"): (
        ADMIN_ONLY,
        {"identity_kind": "external", "identity_value": "mallory", "body": "x"},
    ),
    ("GET", "/api/v1/files/{file_id:str}"): (SCOPED, None),
    ("GET", "/api/v1/widget/files/{file_id:str}"): (PUBLIC, None),
    ("POST", "/api/v1/widget/files"): (PUBLIC, None),
    ("GET", "/api/v1/widget/transcript"): (PUBLIC, None),
    ("POST", "/api/v1/telegram/webhook/{token:str}"): (PUBLIC, None),
    ("GET", "/api/v1/telegram/bots"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/telegram/bots"): (ADMIN_ONLY, {"token": "1:x", "queue_id": 1}),
    ("GET", "/api/v1/telegram/bots/{inbox_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/telegram/bots/{inbox_id:int}"): (ADMIN_ONLY, {"name": "x"}),
    ("DELETE", "/api/v1/telegram/bots/{inbox_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/widget/{file_path:path}"): (PUBLIC, None),
    ("HEAD", "/widget/{file_path:path}"): (PUBLIC, None),
    ("POST", "/api/v1/offers/{offer_id:int}/accept"): (SCOPED, None),
    ("POST", "/api/v1/offers/{offer_id:int}/decline"): (SCOPED, None),
    ("GET", "/api/v1/callbacks"): (SELF, None),
    ("POST", "/api/v1/callbacks/{callback_id:int}/claim"): (SCOPED, None),
    ("POST", "/api/v1/callbacks/{callback_id:int}/done"): (SCOPED, {"note": "x"}),
    ("POST", "/api/v1/callbacks/{callback_id:int}/release"): (SCOPED, None),
    ("GET", "/api/v1/events"): (SELF, None),
    ("GET", "/api/v1/reports"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/reports/{key:str}"): (ADMIN_ONLY, {"queue": 1}),
    ("POST", "/api/v1/reports/{key:str}/exports"): (ADMIN_ONLY, {"format": "csv"}),
    ("GET", "/api/v1/exports"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/exports/{export_id:int}"): (SCOPED, None),
    ("GET", "/api/v1/exports/{export_id:int}/file"): (SCOPED, None),
    ("GET", "/api/v1/report-schedules"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/campaigns/{campaign_id:int}/imports"): (SCOPED, None),
    ("GET", "/api/v1/campaigns/{campaign_id:int}/lists"): (SCOPED, None),
    ("GET", "/api/v1/campaigns/{campaign_id:int}/targets"): (SCOPED, None),
    ("POST", "/api/v1/campaigns/{campaign_id:int}/targets"): (
        SCOPED,
        {"targets": [{"phones": ["+79161234567"]}]},
    ),
    ("GET", "/api/v1/list-imports/{import_id:int}"): (SCOPED, None),
    ("POST", "/api/v1/list-imports/{import_id:int}/preview"): (SCOPED, {"phones": [0]}),
    ("POST", "/api/v1/list-imports/{import_id:int}/start"): (SCOPED, {"phones": [0]}),
    ("POST", "/api/v1/list-imports/{import_id:int}/cancel"): (SCOPED, None),
    ("GET", "/api/v1/list-imports/{import_id:int}/rejects"): (SCOPED, None),
    ("POST", "/api/v1/report-schedules"): (
        ADMIN_ONLY,
        {"report_key": "queue_summary", "recipients": ["a@example.com"]},
    ),
    ("GET", "/api/v1/report-schedules/{schedule_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/report-schedules/{schedule_id:int}"): (ADMIN_ONLY, {"active": False}),
    ("DELETE", "/api/v1/report-schedules/{schedule_id:int}"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/report-schedules/{schedule_id:int}/send"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/reports/options"): (ADMIN_ONLY, None),
    ("GET", "/reports"): (ADMIN_PAGE, None),
    ("GET", "/api/v1/admin/wallboards"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/admin/wallboards"): (ADMIN_ONLY, {"name": "x"}),
    ("GET", "/api/v1/admin/wallboards/{wallboard_id:int}"): (ADMIN_ONLY, None),
    ("DELETE", "/api/v1/admin/wallboards/{wallboard_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/admin/install"): (ADMIN_ONLY, None),
    ("PUT", "/api/v1/admin/install"): (ADMIN_ONLY, {"timezone": "Europe/Moscow"}),
    ("POST", "/api/v1/users/{user_id:int}/totp/reset"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/admin/ldap/check"): (ADMIN_ONLY, {"username": "x"}),
    ("POST", "/api/v1/users/{user_id:int}/password-reset"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/admin/retention"): (ADMIN_ONLY, None),
    ("PUT", "/api/v1/admin/retention"): (ADMIN_ONLY, {"audit_days": 1}),
    ("POST", "/api/v1/admin/contacts/{contact_id:int}/erase"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/admin/grants"): (ADMIN_ONLY, None),
    # Shared holiday calendars (issue 16): supervisors and auditors read, admins change.
    ("GET", "/api/v1/admin/calendars"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/admin/calendars"): (ADMIN_ONLY, {"name": "x"}),
    ("GET", "/api/v1/admin/calendars/{calendar_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/admin/calendars/{calendar_id:int}"): (ADMIN_ONLY, {"name": "y"}),
    ("DELETE", "/api/v1/admin/calendars/{calendar_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/admin/sla"): (ADMIN_ONLY, None),
    ("PUT", "/api/v1/admin/sla/{queue_id:int}"): (SCOPED, {"first_response_seconds": 60}),
    ("DELETE", "/api/v1/admin/sla/{queue_id:int}"): (SCOPED, None),
    ("GET", "/api/v1/sla/open"): (SELF, None),
    ("POST", "/api/v1/conversations/{conversation_id:int}/transcript"): (SCOPED, {"email": "a@example.com"}),
    ("GET", "/api/v1/conversations/{conversation_id:int}/transcript.pdf"): (SCOPED, None),
    ("PUT", "/api/v1/admin/grants/{role:str}"): (ADMIN_ONLY, {"grants": {"call.barge": True}}),
    ("GET", "/api/v1/admin/masked-webhooks"): (ADMIN_ONLY, None),
    ("PUT", "/api/v1/admin/masked-webhooks"): (ADMIN_ONLY, {"ids": []}),
    ("POST", "/api/v1/contacts/{contact_id:int}/reveal"): (SCOPED, None),
    ("POST", "/api/v1/messages/{message_id:int}/reveal"): (SCOPED, None),
    ("GET", "/api/v1/users"): (SELF, None),
    ("POST", "/api/v1/users"): (ADMIN_ONLY, {"username": "x", "password": "longenough1", "role": "admin"}),
    ("GET", "/api/v1/users/{user_id:int}"): (SCOPED, None),
    ("PATCH", "/api/v1/users/{user_id:int}"): (SCOPED, {"display_name": "x"}),
    ("DELETE", "/api/v1/users/{user_id:int}"): (SCOPED, None),
    ("PUT", "/api/v1/users/{user_id:int}/groups"): (SCOPED, {"group_ids": []}),
    ("PUT", "/api/v1/users/{user_id:int}/scope"): (SCOPED, {"group_ids": [], "queue_ids": []}),
    ("PUT", "/api/v1/users/{user_id:int}/skills"): (SCOPED, {"skills": []}),
    ("GET", "/api/v1/groups"): (SELF, None),
    ("POST", "/api/v1/groups"): (ADMIN_ONLY, {"name": "x"}),
    ("PATCH", "/api/v1/groups/{group_id:int}"): (SCOPED, {"name": "x"}),
    ("DELETE", "/api/v1/groups/{group_id:int}"): (SCOPED, None),
    ("GET", "/api/v1/skills"): (STAFF, None),
    ("POST", "/api/v1/skills"): (ADMIN_ONLY, {"name": "x"}),
    ("PATCH", "/api/v1/skills/{skill_id:int}"): (ADMIN_ONLY, {"name": "y"}),
    ("DELETE", "/api/v1/skills/{skill_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/queues"): (SELF, None),
    ("POST", "/api/v1/queues"): (ADMIN_ONLY, {"name": "x"}),
    ("GET", "/api/v1/queues/{queue_id:int}"): (SCOPED, None),
    ("PATCH", "/api/v1/queues/{queue_id:int}"): (SCOPED, {"name": "x"}),
    ("DELETE", "/api/v1/queues/{queue_id:int}"): (SCOPED, None),
    ("PUT", "/api/v1/queues/{queue_id:int}/members"): (SCOPED, {"members": []}),
    ("PUT", "/api/v1/queues/{queue_id:int}/result-codes"): (SCOPED, {"result_code_ids": []}),
    ("PUT", "/api/v1/queues/{queue_id:int}/skills"): (SCOPED, {"skills": []}),
    ("GET", "/api/v1/campaigns"): (SELF, None),
    ("POST", "/api/v1/campaigns"): (ADMIN_ONLY, {"name": "x", "queue_id": 1}),
    ("GET", "/api/v1/campaigns/{campaign_id:int}"): (SCOPED, None),
    ("PUT", "/api/v1/campaigns/{campaign_id:int}"): (SCOPED, {"priority": 1}),
    ("DELETE", "/api/v1/campaigns/{campaign_id:int}"): (SCOPED, None),
    ("POST", "/api/v1/campaigns/{campaign_id:int}/state"): (SCOPED, {"state": "running"}),
    ("GET", "/api/v1/campaigns/{campaign_id:int}/result-codes"): (SCOPED, None),
    ("PUT", "/api/v1/campaigns/{campaign_id:int}/result-codes"): (SCOPED, {"result_codes": []}),
    ("GET", "/api/v1/statuses"): (STAFF, None),
    ("POST", "/api/v1/statuses"): (ADMIN_ONLY, {"code": "nap", "name": "Nap", "kind": "pause"}),
    ("PATCH", "/api/v1/statuses/{status_id:int}"): (ADMIN_ONLY, {"name": "x"}),
    ("DELETE", "/api/v1/statuses/{status_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/result-codes"): (STAFF, None),
    ("POST", "/api/v1/result-codes"): (ADMIN_ONLY, {"code": "x", "name": "x"}),
    ("PATCH", "/api/v1/result-codes/{code_id:int}"): (ADMIN_ONLY, {"name": "x"}),
    ("DELETE", "/api/v1/result-codes/{code_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/contacts"): (SELF, None),
    ("POST", "/api/v1/contacts"): (SELF, {"name": "x"}),
    ("GET", "/api/v1/contacts/{contact_id:int}"): (SCOPED, None),
    ("PATCH", "/api/v1/contacts/{contact_id:int}"): (SCOPED, {"name": "x"}),
    ("POST", "/api/v1/contacts/{contact_id:int}/merge"): (SCOPED, {"other_id": 1}),
    ("POST", "/api/v1/contacts/{contact_id:int}/blacklist"): (SCOPED, {"blacklisted": True, "reason": "x"}),
    ("GET", "/api/v1/inboxes"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/inboxes"): (ADMIN_ONLY, {"name": "x", "channel": "api"}),
    ("GET", "/api/v1/inboxes/{inbox_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/inboxes/{inbox_id:int}"): (ADMIN_ONLY, {"name": "x"}),
    ("DELETE", "/api/v1/inboxes/{inbox_id:int}"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/inboxes/{inbox_id:int}/secret"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/webhooks"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/webhooks"): (ADMIN_ONLY, {"name": "x", "url": "https://x.example/h"}),
    ("PATCH", "/api/v1/webhooks/{webhook_id:int}"): (ADMIN_ONLY, {"active": False}),
    ("DELETE", "/api/v1/webhooks/{webhook_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/webhooks/{webhook_id:int}/deliveries"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/webhook-deliveries/{delivery_id:int}/replay"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/audit"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/tokens"): (SELF, None),
    ("POST", "/api/v1/tokens"): (ADMIN_ONLY, {"name": "x", "user_id": 1}),
    ("POST", "/api/v1/webhooks/{webhook_id:int}/test"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/webhook-deliveries/{delivery_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/admin/audit"): (ADMIN_PAGE, None),
    ("GET", "/admin/webhook-deliveries"): (ADMIN_PAGE, None),
    ("POST", "/admin/webhook-deliveries/{delivery_id:int}/replay"): (ADMIN_PAGE, None),
    ("DELETE", "/api/v1/tokens/{token_id:int}"): (SCOPED, None),
    ("GET", "/api/v1/canned-replies"): (STAFF, None),
    ("POST", "/api/v1/canned-replies"): (ADMIN_ONLY, {"shortcut": "x", "title": "x", "body": "x"}),
    ("GET", "/api/v1/canned-replies/{reply_id:int}"): (STAFF, None),
    ("PATCH", "/api/v1/canned-replies/{reply_id:int}"): (ADMIN_ONLY, {"title": "y"}),
    ("DELETE", "/api/v1/canned-replies/{reply_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/card-fields"): (STAFF, None),
    ("POST", "/api/v1/card-fields"): (ADMIN_ONLY, {"key": "x", "label": "x", "kind": "text"}),
    ("GET", "/api/v1/card-fields/{field_id:int}"): (STAFF, None),
    ("PATCH", "/api/v1/card-fields/{field_id:int}"): (ADMIN_ONLY, {"label": "y"}),
    ("DELETE", "/api/v1/card-fields/{field_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/scenarios"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/scenarios"): (ADMIN_ONLY, {"key": "x", "name": "x", "document": SCENARIO}),
    ("GET", "/api/v1/scenarios/{scenario_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/scenarios/{scenario_id:int}/diff"): (ADMIN_ONLY, {"a": 1, "b": 1}),
    ("GET", "/api/v1/scenarios/{scenario_id:int}/export"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/scenarios/import"): (ADMIN_ONLY, {"key": "y", "name": "y", "document": SCENARIO}),
    ("POST", "/api/v1/scenarios/{scenario_id:int}/publish"): (ADMIN_ONLY, {}),
    ("GET", "/api/v1/scenarios/{scenario_id:int}/revisions"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/scenarios/{scenario_id:int}/revisions/{revision_id:int}"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/scenarios/{scenario_id:int}/rollback"): (ADMIN_ONLY, {"revision_id": 1}),
    ("POST", "/api/v1/scenarios/{scenario_id:int}/run-tests"): (
        ADMIN_ONLY,
        {"document": SCENARIO, "file": {}},
    ),
    ("PUT", "/api/v1/scenarios/{scenario_id:int}/draft"): (ADMIN_ONLY, {"document": {}}),
    ("GET", "/api/v1/scenarios/{scenario_id:int}/stats"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/scenarios/{scenario_id:int}/test-run"): (ADMIN_ONLY, {"document": SCENARIO}),
    ("GET", "/api/v1/dnc"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/dnc"): (ADMIN_ONLY, {"number": "+79161234567"}),
    ("POST", "/api/v1/dnc/upload"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/dnc/check"): (STAFF, {"number": "+79161234567"}),
    ("DELETE", "/api/v1/dnc/{entry_id:int}"): (SCOPED, None),
    ("GET", "/admin/dnc"): (ADMIN_PAGE, None),
    ("GET", "/api/v1/prompts"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/prompts"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/prompts/folders"): (ADMIN_ONLY, None),
    ("POST", "/api/v1/prompts/folders"): (ADMIN_ONLY, {"path": "x"}),
    ("PATCH", "/api/v1/prompts/folders"): (ADMIN_ONLY, {"path": "x", "new": "y"}),
    ("DELETE", "/api/v1/prompts/folders"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/prompts/{prompt_id:int}"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/prompts/{prompt_id:int}"): (ADMIN_ONLY, {"name": "x"}),
    ("DELETE", "/api/v1/prompts/{prompt_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/prompts/{prompt_id:int}/audio"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/prompts/{prompt_id:int}/original"): (ADMIN_ONLY, None),
    ("GET", "/supervisor/prompts"): (ADMIN_PAGE, None),
    # Staff files: every staff member lists and downloads what their role may read
    # (tests/media/test_media_api.py checks a restricted file is 404 to an operator).
    ("GET", "/api/v1/staff-files"): (STAFF, None),
    ("POST", "/api/v1/staff-files"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/staff-files/folders"): (STAFF, None),
    ("POST", "/api/v1/staff-files/folders"): (ADMIN_ONLY, {"path": "x"}),
    ("PATCH", "/api/v1/staff-files/folders"): (ADMIN_ONLY, {"path": "x", "new": "y"}),
    ("DELETE", "/api/v1/staff-files/folders"): (ADMIN_ONLY, None),
    ("PATCH", "/api/v1/staff-files/{staff_file_id:int}"): (ADMIN_ONLY, {"name": "x"}),
    ("DELETE", "/api/v1/staff-files/{staff_file_id:int}"): (ADMIN_ONLY, None),
    ("GET", "/api/v1/staff-files/{staff_file_id:int}/download"): (STAFF, None),
    ("GET", "/files"): (PAGE, None),
    ("GET", "/search"): (PAGE, None),
    ("GET", "/search/conversations/{conversation_id:int}"): (PAGE, None),
    ("POST", "/admin/dnc"): (ADMIN_PAGE, None),
    ("POST", "/admin/dnc/upload"): (ADMIN_PAGE, None),
    ("POST", "/admin/dnc/{entry_id:int}/delete"): (ADMIN_PAGE, None),
    ("GET", "/"): (PAGE, None),
    ("POST", "/language"): (PAGE, None),
    ("GET", "/login"): (PUBLIC, None),
    ("POST", "/login"): (PUBLIC, None),
    ("POST", "/login/code"): (PUBLIC, None),
    ("GET", "/reset/{token:str}"): (PUBLIC, None),
    ("POST", "/reset/{token:str}"): (PUBLIC, None),
    ("GET", "/account/security"): (PAGE, None),
    ("POST", "/account/security"): (PAGE, None),
    ("POST", "/logout"): (PAGE, None),
    ("GET", "/app"): (PAGE, None),
    ("GET", "/supervisor"): (ADMIN_PAGE, None),
    # No login: a wallboard token or a 403 (tests/test_wallboard.py checks the refusals).
    ("GET", "/wallboard"): (PUBLIC, None),
    ("GET", "/supervisor/bots"): (ADMIN_PAGE, None),
    ("GET", "/supervisor/bots/{scenario_id:int}"): (ADMIN_PAGE, None),
    ("GET", "/admin"): (ADMIN_PAGE, None),
    ("GET", "/admin/{slug:str}"): (ADMIN_PAGE, None),
    ("GET", "/admin/{slug:str}/new"): (ADMIN_PAGE, None),
    ("POST", "/admin/{slug:str}/new"): (ADMIN_PAGE, None),
    ("GET", "/admin/{slug:str}/{item_id:int}"): (ADMIN_PAGE, None),
    ("POST", "/admin/{slug:str}/{item_id:int}"): (ADMIN_PAGE, None),
    ("POST", "/admin/{slug:str}/{item_id:int}/{name:str}"): (ADMIN_PAGE, None),
    ("GET", "/reports/schedules"): (ADMIN_PAGE, None),
    ("GET", "/campaigns/{campaign_id:int}/lists"): (ADMIN_PAGE, None),
    ("POST", "/reports/schedules"): (ADMIN_PAGE, None),
    ("GET", "/reports/schedules/{schedule_id:int}"): (ADMIN_PAGE, None),
    ("POST", "/reports/schedules/{schedule_id:int}"): (ADMIN_PAGE, None),
    ("POST", "/reports/schedules/{schedule_id:int}/delete"): (ADMIN_PAGE, None),
    ("POST", "/reports/schedules/{schedule_id:int}/send"): (ADMIN_PAGE, None),
    ("GET", "/static/{file_path:path}"): (PUBLIC, None),
    ("HEAD", "/static/{file_path:path}"): (PUBLIC, None),
    ("GET", "/ui/{file_path:path}"): (PUBLIC, None),
    ("HEAD", "/ui/{file_path:path}"): (PUBLIC, None),
    ("GET", "/schema"): (PUBLIC, None),
    ("GET", "/schema/swagger"): (PUBLIC, None),
    ("GET", "/schema/{path:str}"): (PUBLIC, None),
    ("GET", "/schema/openapi.json"): (PUBLIC, None),
    ("GET", "/schema/oauth2-redirect.html"): (PUBLIC, None),
}


def app_routes(server: LiveServer) -> set[tuple[str, str]]:
    """Every (method, path) the Litestar app serves, from its route table (OPTIONS are CORS
    preflights Litestar answers itself)."""
    found: set[tuple[str, str]] = set()
    for route in server.app.other_asgi_app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                found |= {(meth, route.path) for meth in handler.http_methods if meth != "OPTIONS"}
    return found


def fill(path: str, world: World, foreign: Foreign) -> str:
    """The path with every parameter pointing at group B's objects (or an admin's)."""
    values: dict[str, object] = {
        "conversation_id": world.ids["conv_b"],
        "message_id": foreign.message_b,
        "contact_id": foreign.contact_b,
        "file_id": foreign.file_b,
        "callback_id": foreign.callback_b,
        "offer_id": foreign.offer_b,
        "user_id": world.ids["op_b"],
        "queue_id": world.ids["q_b"],
        "inbox_id": world.ids["ib_b"],
        "group_id": foreign.group_b,
        "skill_id": foreign.skill,
        "status_id": foreign.status,
        "code_id": foreign.code,
        "reply_id": foreign.canned,
        "field_id": foreign.card_field,
        "campaign_id": foreign.campaign_b,
        "webhook_id": foreign.webhook,
        "delivery_id": foreign.delivery,
        "token_id": foreign.token_admin,
        "export_id": foreign.export_admin,
        "entry_id": foreign.dnc_entry,
        "prompt_id": 1,
        "label_id": foreign.label_b,
        "view_id": foreign.view_b,
        "scorecard_id": foreign.scorecard,
        "evaluation_id": foreign.evaluation_b,
        "staff_file_id": 1,
        "import_id": foreign.import_b,
        "wallboard_id": 1,
        "scenario_id": foreign.scenario,
        "revision_id": 1,
        "slug": "queues",
        "item_id": world.ids["q_b"],
        "name": "delete",
        "token": "not-a-bot",
        "key": "queue_summary",
        "schedule_id": 1,
        "macro_id": 1,
        "calendar_id": 1,
        "rule_id": 1,
        "script_id": 1,
        "step": "close",
        "role": "supervisor",
        "file_path": "x",
        "path": "x",
    }
    for name, value in values.items():
        path = re.sub(r"\{" + name + r":\w+\}", str(value), path)
    assert "{" not in path, path
    return path


async def test_every_route_has_an_rbac_expectation_and_meets_it(world: World, foreign: Foreign) -> None:
    """A new route fails here until someone states who may call it; every stated rule is
    then checked against the running app with group B's objects and group A's people."""
    routes = app_routes(world.server)
    missing = sorted(routes - RBAC.keys())
    assert not missing, f"routes without an RBAC expectation (add them to RBAC): {missing}"
    stale = sorted(RBAC.keys() - routes)
    assert not stale, f"RBAC lists routes the app no longer has: {stale}"
    op_a, sup = world.clients["op_a"], world.clients["sup"]
    wrong: list[str] = []
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as anon:
        for (method, path), (rule, body) in sorted(RBAC.items()):
            if rule == PUBLIC:
                continue
            url = fill(path, world, foreign)
            kwargs: dict[str, object] = {}
            if body is not None:
                kwargs = {"params": body} if method == "GET" else {"json": body}
            anon_resp = await anon.request(method, url, **kwargs)  # type: ignore[arg-type]
            if rule in (PAGE, ADMIN_PAGE):
                ok = anon_resp.status_code in (302, 303) and "/login" in anon_resp.headers.get("location", "")
            else:
                ok = anon_resp.status_code == 401
            if not ok:
                wrong.append(f"anonymous {method} {url} -> {anon_resp.status_code}")
            if rule in (ADMIN_ONLY, SCOPED, ADMIN_PAGE):
                resp = await op_a.request(method, url, **kwargs)  # type: ignore[arg-type]
                allowed = {403} if rule in (ADMIN_ONLY, ADMIN_PAGE) else {403, 404}
                if resp.status_code not in allowed:
                    wrong.append(f"op_a {method} {url} -> {resp.status_code} {resp.text[:120]}")
            if rule == SCOPED:  # group A's supervisor can't reach group B's objects either
                resp = await sup.request(method, url, **kwargs)  # type: ignore[arg-type]
                if resp.status_code not in (403, 404):
                    wrong.append(f"sup {method} {url} -> {resp.status_code} {resp.text[:120]}")
    assert not wrong, "\n".join(wrong)
    async with world.server.services.db.transaction() as s:
        conv_b = await s.get_one(m.Conversation, world.ids["conv_b"])
        assert conv_b.status in ("queued", "offered") and conv_b.assigned_user_id is None
        assert (await s.get_one(m.Contact, foreign.contact_b)).name != "x"
        assert (await s.get_one(m.User, world.ids["op_b"])).is_active
