"""Campaigns over HTTP: the REST round trip, refusals with the field, and the admin form."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import csrf_of, login


@dataclass
class Ids:
    queue: int
    other_queue: int
    voice: int
    code: int
    op: int


@pytest.fixture
async def ids(live_server: LiveServer) -> Ids:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
        other = await f.user(s, "op_b")
        q = await f.queue(s, "QA", [op])
        q_b = await f.queue(s, "QB", [other])
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=q.id))
        voice = await f.inbox(s, q, "voice", "Trunk")
        code = await f.result_code(s, "later")
        return Ids(q.id, q_b.id, voice.id, code.id, op.id)


async def api(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def test_rest_round_trip_create_read_update_start_pause_and_result_codes(
    live_server: LiveServer, ids: Ids
) -> None:
    admin = await api(live_server, "admin")
    sup = await api(live_server, "sup")
    op = await api(live_server, "op")
    try:
        made = await admin.post(
            "/api/v1/campaigns",
            json={
                "name": "Debts",
                "queue_id": ids.queue,
                "inbox_id": ids.voice,
                "dial_mode": "progressive",
                "schedule": {"1": [["09:00", "21:00"]]},
                "retry_rules": {"busy": "15;60;1440"},
                "caller_ids": [{"number": "+74951234567", "region": "RU-MOW"}],
                "predial_url": "https://crm.example/check",
                "predial_timeout_ms": 500,
                "predial_on_timeout": "later",
            },
        )
        assert made.status_code == 201, made.text
        body = made.json()
        cid = body["id"]
        assert body["state"] == "draft" and body["retry_rules"]["busy"] == [15, 60, 1440]
        assert body["caller_ids"] == [
            {"number": "+74951234567", "region": "RU-MOW", "active": True, "last_used_at": None}
        ]
        bad = await admin.post(
            "/api/v1/campaigns", json={"name": "X", "queue_id": ids.queue, "dial_mode": "robocall"}
        )
        assert bad.status_code == 422 and bad.json()["field"] == "dial_mode"
        many = await admin.put(f"/api/v1/campaigns/{cid}", json={"max_attempts": 0, "predial_timeout_ms": 5})
        assert many.status_code == 422
        assert {e["field"] for e in many.json()["errors"]} == {"max_attempts", "predial_timeout_ms"}

        updated = await admin.put(f"/api/v1/campaigns/{cid}", json={"priority": 7, "ring_seconds": 25})
        assert updated.status_code == 200 and updated.json()["priority"] == 7
        assert updated.json()["dial_mode"] == "progressive"  # untouched fields keep their values
        codes = await admin.put(
            f"/api/v1/campaigns/{cid}/result-codes",
            json={"result_codes": [{"result_code_id": ids.code, "action": "retry", "retry_minutes": 30}]},
        )
        assert codes.status_code == 200 and codes.json()[0]["retry_minutes"] == 30
        assert (await sup.get(f"/api/v1/campaigns/{cid}/result-codes")).json()[0]["action"] == "retry"

        assert (await sup.put(f"/api/v1/campaigns/{cid}", json={"priority": 1})).status_code == 403
        assert (await op.post(f"/api/v1/campaigns/{cid}/state", json={"state": "running"})).status_code == 403
        started = await sup.post(f"/api/v1/campaigns/{cid}/state", json={"state": "running"})
        assert started.status_code == 200 and started.json()["state"] == "running"
        again = await sup.post(f"/api/v1/campaigns/{cid}/state", json={"state": "running"})
        assert again.status_code == 409 and again.json()["field"] == "state"
        assert (await sup.post(f"/api/v1/campaigns/{cid}/state", json={"state": "paused"})).status_code == 200
        assert (await admin.delete(f"/api/v1/campaigns/{cid}")).status_code == 409

        listed = await op.get("/api/v1/campaigns", params={"state": "paused", "channel": "voice"})
        assert [c["id"] for c in listed.json()] == [cid]
        assert (await op.get("/api/v1/campaigns", params={"state": "running"})).json() == []
        assert (await op.get(f"/api/v1/campaigns/{cid}")).status_code == 200
        assert (await admin.get("/api/v1/campaigns", params={"state": "sleeping"})).status_code == 400
    finally:
        for c in (admin, sup, op):
            await c.aclose()
    async with live_server.services.db.transaction() as s:
        actions = list(
            await s.scalars(
                select(m.AuditLog.action).where(m.AuditLog.object_type == "campaign").order_by(m.AuditLog.id)
            )
        )
        assert actions == [
            "campaign.create",
            "campaign.update",
            "campaign.update",
            "campaign.state",
            "campaign.state",
        ]


async def test_a_supervisor_can_not_reach_campaigns_of_other_queues(
    live_server: LiveServer, ids: Ids
) -> None:
    admin = await api(live_server, "admin")
    sup = await api(live_server, "sup")
    try:
        made = await admin.post(
            "/api/v1/campaigns", json={"name": "Other", "queue_id": ids.other_queue, "inbox_id": ids.voice}
        )
        cid = made.json()["id"]
        assert (await sup.get(f"/api/v1/campaigns/{cid}")).status_code == 404
        assert (
            await sup.post(f"/api/v1/campaigns/{cid}/state", json={"state": "running"})
        ).status_code == 404
        assert (await sup.get("/api/v1/campaigns")).json() == []
    finally:
        await admin.aclose()
        await sup.aclose()


def _field_error(page: str, name: str) -> str:
    found = re.search(rf'data-field="{re.escape(name)}" id="err-{re.escape(name)}">([^<]*)<', page)
    assert found, f"no error shown next to {name}"
    return html.unescape(found.group(1))


async def test_admin_form_round_trip_with_schedule_retry_pool_and_result_codes(
    live_server: LiveServer, ids: Ids
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as c:
        await login(c, "admin")
        listing = await c.get("/admin/campaigns")
        assert listing.status_code == 200 and 'data-section="campaigns"' in listing.text
        page = await c.get("/admin/campaigns/new")
        assert page.status_code == 200
        assert 'name="schedule.1"' in page.text and 'name="retry_rules.busy"' in page.text
        assert f'name="rc.{ids.code}.action"' in page.text
        assert 'value="predictive"' in page.text and 'name="target_abandon_pct"' in page.text
        csrf = csrf_of(page.text)
        form = {
            "_csrf": csrf,
            "name": "Form campaign",
            "queue_id": str(ids.queue),
            "channel": "voice",
            "dial_mode": "preview",
            "inbox_id": str(ids.voice),
            "priority": "3",
            "schedule.1": "09:00-13:00, 14:00-21:00",
            "schedule.6": "10:00-16:00",
            "holidays": "2026-12-31\n2027-01-01",
            "starts_on": "2026-12-01",
            "ends_on": "",
            "timezone": "Europe/Moscow",
            "default_region": "RU",
            "max_attempts": "5",
            "max_concurrency": "4",
            "retry_rules.busy": "15;60;1440",
            "retry_rules.no_answer": "30",
            "caller_ids": "+74951234567, RU-MOW\n8 423 222-33-44",
            "preview_seconds": "20",
            "ring_seconds": "30",
            "script": "Hello",
            "message_template": "",
            "escalation": "",
            "predial_url": "",
            "predial_timeout_ms": "1000",
            "predial_on_timeout": "call",
            "target_abandon_pct": "2,5",
            "max_lines_per_operator": "3",
            "drop_seconds": "2",
            "machine_action": "retry",
            f"rc.{ids.code}.action": "retry",
            f"rc.{ids.code}.minutes": "90",
        }
        bad = await c.post(
            "/admin/campaigns/new",
            data={**form, "schedule.2": "9am-5pm", "retry_rules.busy": "15;soon", "predial_url": "ftp://x"},
        )
        assert bad.status_code == 400
        assert "9am" in _field_error(bad.text, "schedule")
        assert "soon" in _field_error(bad.text, "retry_rules")
        assert "ftp://x" in _field_error(bad.text, "predial_url")
        assert 'value="9am-5pm"' in bad.text  # what was typed comes back
        async with live_server.services.db.transaction() as s:
            assert (await s.scalars(select(m.Campaign))).all() == []

        saved = await c.post("/admin/campaigns/new", data=form)
        assert saved.status_code in (302, 303), saved.text[:2000]
        cid = int(saved.headers["location"].split("/")[-1].split("?")[0])
        async with live_server.services.db.transaction() as s:
            camp = await s.get_one(m.Campaign, cid)
            assert camp.schedule == {"1": [["09:00", "13:00"], ["14:00", "21:00"]], "6": [["10:00", "16:00"]]}
            assert camp.retry_rules == {"busy": [15, 60, 1440], "no_answer": [30]}
            assert camp.holidays == ["2026-12-31", "2027-01-01"] and camp.max_attempts == 5
            assert camp.target_abandon_pct == 2.5  # a decimal comma is read as a Russian user types it
            pool = list(
                await s.scalars(
                    select(m.CampaignCallerId.number).where(m.CampaignCallerId.campaign_id == cid)
                )
            )
            assert sorted(pool) == ["+74232223344", "+74951234567"]
            rc = await s.get_one(m.CampaignResultCode, (cid, ids.code))
            assert (rc.action, rc.retry_minutes) == ("retry", 90)

        edit = await c.get(f"/admin/campaigns/{cid}")
        assert 'value="09:00-13:00, 14:00-21:00"' in edit.text and 'value="15;60;1440"' in edit.text
        assert 'data-action="start"' in edit.text
        assert f'href="/campaigns/{cid}/lists"' in edit.text  # where its contacts are imported
        started = await c.post(f"/admin/campaigns/{cid}/start", data={"_csrf": csrf_of(edit.text)})
        assert started.status_code in (302, 303)
        running = await c.get(f"/admin/campaigns/{cid}")
        assert 'data-state="running"' in running.text and 'data-action="pause"' in running.text
        assert 'data-action="delete"' not in running.text

    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as c:
        await login(c, "sup")
        page = await c.get(f"/admin/campaigns/{cid}")
        assert page.status_code == 200 and "data-readonly" in page.text
        assert re.search(rf'<option value="{ids.voice}" selected>Trunk \(', page.text)  # what it calls from
        paused = await c.post(f"/admin/campaigns/{cid}/pause", data={"_csrf": csrf_of(page.text)})
        assert paused.status_code in (302, 303)
        edit = await c.post(f"/admin/campaigns/{cid}", data={"_csrf": csrf_of(page.text), "name": "Mine"})
        assert edit.status_code == 403
    async with live_server.services.db.transaction() as s:
        camp = await s.get_one(m.Campaign, cid)
        assert (camp.state, camp.name) == ("paused", "Form campaign")


async def test_the_russian_form_shows_labels_and_errors_in_russian(live_server: LiveServer, ids: Ids) -> None:
    async with live_server.services.db.transaction() as s:
        admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
        assert admin is not None
        admin.language = "ru"
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as c:
        await login(c, "admin")
        page = await c.get("/admin/campaigns/new", headers={"Accept-Language": "ru"})
        assert "Окна обзвона" in page.text and "Понедельник" in page.text and "занято" in page.text
        bad = await c.post(
            "/admin/campaigns/new",
            data={
                "_csrf": csrf_of(page.text),
                "name": "X",
                "queue_id": str(ids.queue),
                "dial_mode": "predictive",
                "max_lines_per_operator": "много",
            },
            headers={"Accept-Language": "ru"},
        )
        assert bad.status_code == 400
        assert "число" in _field_error(bad.text, "max_lines_per_operator")
