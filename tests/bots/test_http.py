# ruff: noqa: E501  (scenario documents read best one node per line)
"""The scenarios REST API end to end: draft → refused publish naming nodes → fix → publish →
revisions, rollback, diff, export/import, stats, test runs; roles."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from omni.db import models as m
from tests import factories as f
from tests.api.test_rbac import login
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT

DOC: dict[str, Any] = {
    "name": "Desk",
    "start": "hello",
    "variables": [{"name": "topic"}],
    "nodes": [
        {"id": "hello", "type": "message", "content": {"text": "Hi!"}, "ports": {"next": "menu"}},
        {"id": "menu", "type": "menu", "content": {"text": "What about?"},
         "options": [{"id": "billing", "label": "Billing", "dtmf": "1"}, {"id": "tech", "label": "Tech", "dtmf": "2"}],
         "ports": {"opt:billing": "remember", "on_max_retries": "agent"}},
        {"id": "remember", "type": "set", "assign": [{"variable": "topic", "value": "{{last_input}}"}], "ports": {"next": "agent"}},
        {"id": "agent", "type": "handoff", "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
        {"id": "bye", "type": "close", "result_code": "done"},
    ],
}  # fmt: skip


@pytest.fixture
async def clients(live_server: LiveServer) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "sup", m.Role.SUPERVISOR)
        await f.user(s, "auditor", m.Role.AUDITOR)
        await f.user(s, "op")
    out = {name: await login(live_server, name) for name in ("sup", "auditor", "op")}
    try:
        yield out
    finally:
        for c in out.values():
            await c.aclose()


async def test_scenario_lifecycle(clients: dict[str, httpx.AsyncClient]) -> None:
    sup = clients["sup"]
    resp = await sup.post("/api/v1/scenarios", json={"key": "desk", "name": "Desk", "document": DOC})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    sid = created["id"]
    assert created["active_revision"] is None
    assert [p["node"] for p in created["problems"]] == ["menu"]

    # A shape error is a 422 naming the node; nothing is stored.
    broken = copy.deepcopy(DOC)
    broken["nodes"][4]["ports"] = {"next": "hello"}
    resp = await sup.put(f"/api/v1/scenarios/{sid}/draft", json={"document": broken})
    assert resp.status_code == 422
    assert resp.json()["problems"][0]["node"] == "bye"

    resp = await sup.post(f"/api/v1/scenarios/{sid}/publish", json={})
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "invalid"
    assert {
        "node": "menu",
        "code": "port_unconnected",
        "message": "node 'menu': port 'opt:tech' is not connected",
        "port": "opt:tech",
    } in body["problems"]

    fixed = copy.deepcopy(DOC)
    fixed["nodes"][1]["ports"]["opt:tech"] = "agent"
    resp = await sup.put(f"/api/v1/scenarios/{sid}/draft", json={"document": fixed})
    assert resp.status_code == 200, resp.text
    assert resp.json()["problems"] == []
    resp = await sup.post(f"/api/v1/scenarios/{sid}/publish", json={"note": "first"})
    assert resp.status_code == 200, resp.text
    rev1 = resp.json()
    assert rev1["number"] == 1

    second = copy.deepcopy(fixed)
    second["nodes"][0]["content"]["text"] = "Hello!"
    second["layout"] = {"hello": {"x": 10, "y": 20}}
    assert (await sup.put(f"/api/v1/scenarios/{sid}/draft", json={"document": second})).status_code == 200
    rev2 = (await sup.post(f"/api/v1/scenarios/{sid}/publish")).json()
    assert rev2["number"] == 2

    revs = (await sup.get(f"/api/v1/scenarios/{sid}/revisions")).json()
    assert [(r["number"], r["active"]) for r in revs] == [(2, True), (1, False)]
    one = (await sup.get(f"/api/v1/scenarios/{sid}/revisions/{rev1['id']}")).json()
    assert one["document"]["nodes"][0]["content"]["text"] == "Hi!"

    diff = (await sup.get(f"/api/v1/scenarios/{sid}/diff", params={"a": rev1["id"], "b": rev2["id"]})).json()
    assert diff["changed"] == [{"node": "hello", "fields": {"content": {
        "from": {"text": "Hi!", "text_ru": "", "channels": {}, "prompt": ""},
        "to": {"text": "Hello!", "text_ru": "", "channels": {}, "prompt": ""}}}}]  # fmt: skip
    assert diff["added"] == diff["removed"] == []

    resp = await sup.post(f"/api/v1/scenarios/{sid}/rollback", json={"revision_id": rev1["id"]})
    assert resp.json()["active_revision_id"] == rev1["id"]
    detail = (await sup.get(f"/api/v1/scenarios/{sid}")).json()
    assert detail["active_revision"]["number"] == 1
    assert detail["draft"]["layout"]["hello"] == {"x": 10.0, "y": 20.0}

    # Export, then import under another key: a new scenario with the same draft.
    resp = await sup.get(f"/api/v1/scenarios/{sid}/export")
    assert resp.headers["content-disposition"] == 'attachment; filename="scenario-desk.json"'
    exported = resp.json()
    assert exported["key"] == "desk"
    copy_in = exported | {"key": "desk2", "name": "Desk copy"}
    resp = await sup.post("/api/v1/scenarios/import", json=copy_in)
    assert resp.status_code == 201, resp.text
    assert resp.json()["draft"] == exported["document"]
    # The same key again replaces that scenario's draft.
    copy_in["document"]["nodes"][0]["content"]["text"] = "Imported"
    resp = await sup.post("/api/v1/scenarios/import", json=copy_in)
    assert resp.json()["draft"]["nodes"][0]["content"]["text"] == "Imported"
    keys = [s["key"] for s in (await sup.get("/api/v1/scenarios")).json()]
    assert sorted(keys) == ["desk", "desk2"]

    stats = (await sup.get(f"/api/v1/scenarios/{sid}/stats", params={"channel": "widget"})).json()
    assert stats == {"revision_id": rev1["id"], "channel": "widget", "nodes": {}}


async def test_test_run_returns_a_transcript(clients: dict[str, httpx.AsyncClient]) -> None:
    sup = clients["sup"]
    sid = (await sup.post("/api/v1/scenarios", json={"key": "desk", "name": "Desk", "document": DOC})).json()[
        "id"
    ]
    case = {"channel": "widget", "inputs": [{"button": "billing"}], "handoff": "no_agents"}
    resp = await sup.post(f"/api/v1/scenarios/{sid}/test-run", json={"document": DOC, "case": case})
    assert resp.status_code == 200, resp.text
    run = resp.json()
    assert run["path"] == ["hello", "menu", "remember", "agent", "bye"]
    assert run["says"][1] == {"node": "menu", "text": "What about?", "buttons": [
        {"id": "billing", "label": "Billing"}, {"id": "tech", "label": "Tech"}]}  # fmt: skip
    assert run["variables"]["topic"] == "billing"
    assert run["handoff"] is not None
    assert run["closed"] == "done"

    # Voice: DTMF picks the option; its port is not connected yet, so the run ends there.
    voice = await sup.post(
        f"/api/v1/scenarios/{sid}/test-run",
        json={"document": DOC, "case": {"channel": "voice", "inputs": [{"dtmf": "2"}]}},
    )
    assert voice.json()["steps"][-1] == {"node": "menu", "outcome": "left:opt:tech"}
    assert voice.json()["status"] == "ended"

    file = {"cases": [
        {"name": "billing", "inputs": [{"button": "billing"}], "expect": {"variables": {"topic": "billing"}}},
        {"name": "wrong", "inputs": [{"button": "billing"}], "expect": {"closed": "other"}},
    ]}  # fmt: skip
    resp = await sup.post(f"/api/v1/scenarios/{sid}/run-tests", json={"document": DOC, "file": file})
    body = resp.json()
    assert body["passed"] is False
    assert [(r["name"], r["passed"]) for r in body["results"]] == [("billing", True), ("wrong", False)]

    resp = await sup.post(f"/api/v1/scenarios/{sid}/test-run", json={"document": {"nodes": []}, "case": {}})
    assert resp.status_code == 422
    assert resp.json()["problems"]


async def test_roles(clients: dict[str, httpx.AsyncClient]) -> None:
    sup, auditor, op = clients["sup"], clients["auditor"], clients["op"]
    fixed = copy.deepcopy(DOC)
    fixed["nodes"][1]["ports"]["opt:tech"] = "agent"
    sid = (
        await sup.post("/api/v1/scenarios", json={"key": "desk", "name": "Desk", "document": fixed})
    ).json()["id"]

    assert (await auditor.get("/api/v1/scenarios")).status_code == 200
    assert (await auditor.get(f"/api/v1/scenarios/{sid}")).status_code == 200
    assert (await auditor.get(f"/api/v1/scenarios/{sid}/export")).status_code == 200
    assert (await auditor.post(f"/api/v1/scenarios/{sid}/publish", json={})).status_code == 403
    assert (await auditor.put(f"/api/v1/scenarios/{sid}/draft", json={"document": fixed})).status_code == 403
    resp = await auditor.post("/api/v1/scenarios", json={"key": "x", "name": "X", "document": fixed})
    assert resp.status_code == 403

    assert (await op.get("/api/v1/scenarios")).status_code == 403
    assert (await op.get(f"/api/v1/scenarios/{sid}")).status_code == 403
    resp = await op.post(f"/api/v1/scenarios/{sid}/test-run", json={"document": fixed, "case": {}})
    assert resp.status_code == 403
    anonymous = httpx.AsyncClient(base_url=str(sup.base_url), timeout=HTTP_TIMEOUT)
    async with anonymous:
        assert (await anonymous.get("/api/v1/scenarios")).status_code == 401


async def test_builder_pages(clients: dict[str, httpx.AsyncClient]) -> None:
    sup, auditor, op = clients["sup"], clients["auditor"], clients["op"]
    created = await sup.post("/api/v1/scenarios", json={"key": "desk", "name": "Desk", "document": DOC})
    sid = created.json()["id"]
    listing = await sup.get("/supervisor/bots")
    assert listing.status_code == 200
    assert '<script src="/ui/builder.js" defer></script>' in listing.text
    assert '"view": "list"' in listing.text and '"readonly": false' in listing.text
    page = await sup.get(f"/supervisor/bots/{sid}")
    assert f'"scenario_id": {sid}' in page.text and '"scenario_keys": ["desk"]' in page.text
    assert '"readonly": true' in (await auditor.get(f"/supervisor/bots/{sid}")).text
    assert (await sup.get("/supervisor/bots/999999")).status_code == 404
    assert (await op.get("/supervisor/bots")).status_code == 403
