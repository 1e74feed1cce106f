"""The administration REST API's typed edge (issue 11): numbers beyond their column and NUL bytes
are a 4xx naming the field, not a 500 from PostgreSQL, and nothing stored changes; responses are
the serializers' JSON exactly; ``/schema/openapi.json`` documents every body and refusal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.domain import admin, auth
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


@dataclass
class Api:
    server: LiveServer
    client: httpx.AsyncClient
    queue_id: int
    admin_id: int


@pytest.fixture
async def api(live_server: LiveServer) -> AsyncIterator[Api]:
    async with live_server.services.db.transaction() as s:
        root = await f.user(s, "root", m.Role.ADMIN)
        queue = await f.queue(s, "Sales")
        _, token = await auth.do_create_api_token(s, root, "contracts")
        ids = (queue.id, root.id)
    async with httpx.AsyncClient(
        base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    ) as client:
        yield Api(live_server, client, *ids)


def named_field(body: dict[str, Any]) -> str | None:
    """The field a refusal names: ``field``, or the first of the per-field problems."""
    if body.get("field"):
        return str(body["field"])
    for problem in body.get("errors") or body.get("fields") or []:
        name = problem.get("field") or problem.get("key")
        if name:
            return str(name)
    return None


async def queue_row(api: Api) -> dict[str, Any]:
    async with api.server.services.db.transaction() as s:
        queue = await s.get(m.Queue, api.queue_id)
        assert queue is not None
        return await admin.queue_detail(s, queue)


async def test_a_22_digit_queue_timeout_is_a_4xx_naming_the_field_not_a_500(api: Api) -> None:
    before = await queue_row(api)
    for timeout in (1234567890123456789012, 2**63, 2**31):
        resp = await api.client.patch(
            f"/api/v1/queues/{api.queue_id}", json={"queue_timeout_seconds": timeout, "name": "Renamed"}
        )
        assert 400 <= resp.status_code < 500, resp.text
        assert named_field(resp.json()) == "queue_timeout_seconds", resp.text
    assert await queue_row(api) == before, "a refused update changes nothing"


async def test_a_user_id_beyond_the_column_is_a_4xx_naming_the_field_not_a_500(api: Api) -> None:
    for user_id in ("99999999999999999999", str(2**63), str(2**31)):
        got = await api.client.get(f"/api/v1/users/{user_id}")
        assert 400 <= got.status_code < 500, got.text
        assert named_field(got.json()) == "user_id", got.text
        changed = await api.client.patch(f"/api/v1/users/{user_id}", json={"display_name": "Mallory"})
        assert 400 <= changed.status_code < 500, changed.text
    async with api.server.services.db.transaction() as s:
        names = set(await s.scalars(select(m.User.display_name)))
    assert "Mallory" not in names
    still = await api.client.get(f"/api/v1/users/{api.admin_id}")
    assert still.status_code == 200 and still.json()["username"] == "root"


async def test_a_nul_in_a_name_is_a_4xx_naming_the_field_not_a_500(api: Api) -> None:
    before = await queue_row(api)
    created = await api.client.post("/api/v1/groups", json={"name": "Night\u0000shift"})
    assert 400 <= created.status_code < 500, created.text
    assert named_field(created.json()) == "name", created.text
    renamed = await api.client.patch(f"/api/v1/queues/{api.queue_id}", json={"name": "Sa\u0000les"})
    assert 400 <= renamed.status_code < 500, renamed.text
    assert named_field(renamed.json()) == "name", renamed.text
    searched = await api.client.get("/api/v1/contacts", params={"q": "a\u0000b"})
    assert 400 <= searched.status_code < 500, searched.text
    assert named_field(searched.json()) == "q", searched.text
    async with api.server.services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Group)) == 0
    assert await queue_row(api) == before


async def test_admin_responses_are_the_serializers_json_exactly(api: Api) -> None:
    """The admin UI reads these bodies: typing them must not add, drop or reformat a key."""
    c = api.client
    sup = await c.post(
        "/api/v1/users", json={"username": "sup", "password": "a long password 1", "role": "supervisor"}
    )
    assert sup.status_code == 201, sup.text
    spill = await c.post("/api/v1/queues", json={"name": "Overflow"})
    assert spill.status_code == 201, spill.text
    hours = {"timezone": "Europe/Moscow", "days": {"0": [["09:00", "18:00"]]}}
    steps = [
        {"after_seconds": 30, "relax_levels": 1},
        {"after_seconds": 60, "add_queue_id": spill.json()["id"]},
    ]
    queue = await c.patch(
        f"/api/v1/queues/{api.queue_id}", json={"business_hours": hours, "escalation": steps}
    )
    assert queue.status_code == 200, queue.text
    hook = await c.post("/api/v1/webhooks", json={"name": "crm", "url": "https://crm.example/h"})
    assert hook.status_code == 201, hook.text
    inbox = await c.post("/api/v1/inboxes", json={"name": "site", "channel": "widget", "config": {}})
    assert inbox.status_code == 201, inbox.text
    secret = await c.post(f"/api/v1/inboxes/{inbox.json()['id']}/secret")
    assert secret.status_code == 200, secret.text
    contact = await c.post("/api/v1/contacts", json={"name": "Ann", "custom_fields": {"plan": "gold"}})
    assert contact.status_code == 201, contact.text

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value))

    async with api.server.services.db.transaction() as s:
        sup_row = await s.get(m.User, sup.json()["id"])
        queue_row_ = await s.get(m.Queue, api.queue_id)
        hook_row = await s.get(m.WebhookSubscription, hook.json()["id"])
        inbox_row = await s.get(m.Inbox, inbox.json()["id"])
        contact_row = await s.get(m.Contact, contact.json()["id"])
        assert sup_row and queue_row_ and hook_row and inbox_row and contact_row
        expected = {
            f"/api/v1/users/{sup_row.id}": plain(await admin.user_detail(s, sup_row)),
            f"/api/v1/queues/{api.queue_id}": plain(await admin.queue_detail(s, queue_row_)),
            f"/api/v1/inboxes/{inbox_row.id}": plain(admin.inbox_dict(inbox_row, show_secrets=True)),
            f"/api/v1/contacts/{contact_row.id}": plain(await admin.contact_detail(s, contact_row)),
        }
        hook_dict = plain(admin.webhook_dict(hook_row))
    assert "scope" in expected[f"/api/v1/users/{sup_row.id}"]
    for path, body in expected.items():
        resp = await c.get(path)
        assert resp.status_code == 200, resp.text
        assert resp.json() == body, path
    assert {k: v for k, v in hook.json().items() if k != "secret"} == hook_dict
    assert set(secret.json()) == {*expected[f"/api/v1/inboxes/{inbox_row.id}"], "secret", "install_snippet"}
    listed = await c.get("/api/v1/webhooks")
    assert listed.json() == [hook_dict]


async def test_openapi_documents_every_admin_body_and_refusal(api: Api) -> None:
    from omni.api.admin import CONTROLLERS

    prefixes = tuple(str(ctrl.path) for ctrl in CONTROLLERS)
    schema = (await api.client.get("/schema/openapi.json")).json()
    operations = [
        (method, path, op)
        for path, item in schema["paths"].items()
        if path.startswith(prefixes) and not path.endswith("/messages")
        for method, op in item.items()
    ]
    # + POST /api/v1/users/{id}/totp/reset and /password-reset; + /api/v1/contacts/{id}/merge and /blacklist
    # + POST /api/v1/tokens, POST /api/v1/webhooks/{id}/test, GET /api/v1/webhook-deliveries/{id}
    # + POST /api/v1/contacts/{id}/reveal
    assert len(operations) == 69
    for method, path, op in operations:
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        for status in ("400", "401", "403", "404", "422"):
            ref = responses[status]["content"]["application/json"]["schema"]
            assert ref == {"$ref": "#/components/schemas/ErrorBody"}, (where, status)
        if method in ("post", "patch", "put", "delete"):
            assert "409" in responses, (where, "a clash or a row still in use is a 409")
        ok = next(v for k, v in responses.items() if k.startswith("2"))
        body = ok["content"]["application/json"]["schema"]
        assert "$ref" in body or "$ref" in body.get("items", {}), (where, body)
        for param in op.get("parameters", []):
            if param["in"] == "path":
                assert param["schema"].get("maximum") in (2**31 - 1, 2**63 - 1), (where, param)
