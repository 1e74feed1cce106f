"""Grants widen as well as narrow, with a scope (issue 16, rest16): an admin gives operators
the reports and their export limited to their own conversations; they then read and export
only their own rows, only the reports whose rows are one operator's, and lose it again when
the grant is taken back (403 naming the permission). Supervisors can be narrowed to ``own``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain.errors import PermissionDenied
from omni.domain.reports import FilterParams, mailing
from omni.domain.reports.filters import OWN_REPORTS
from omni.domain.reports.writers import Format
from tests import factories as f
from tests.api.test_grants import World, world  # noqa: F401  (the fixture: admin, sup, op, queue A)
from tests.helpers import HTTP_TIMEOUT, until

HISTORY = "/api/v1/reports/contact_history"
TODAY = {"preset": "today"}


async def _conversation_ids(client: httpx.AsyncClient) -> list[int]:
    resp = await client.get(HISTORY, params=TODAY)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    col = [c["key"] for c in body["columns"]].index("conversation_id")
    return sorted(int(r[col]) for r in body["rows"])


async def _finished(client: httpx.AsyncClient, export_id: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job: dict[str, Any] = (await client.get(f"/api/v1/exports/{export_id}")).json()
        assert job["state"] in ("queued", "running", "done"), job
        return job if job["state"] == "done" else None

    result: dict[str, Any] = await until(done, 120, what=f"export {export_id} to finish")
    return result


async def test_operator_export_widened_to_own_conversations_then_narrowed_again(
    world: World,  # noqa: F811
) -> None:
    admin, sup, op = world.clients["admin"], world.clients["sup"], world.clients["op"]
    async with world.server.services.db.transaction() as s:
        inbox = await s.scalar(select(m.Inbox))
        assert inbox is not None
        inbox_id = inbox.id
        op_user = await s.scalar(select(m.User).where(m.User.username == "op"))
        assert op_user is not None
        op_id = op_user.id
        other = await f.user(s, "op2")
        other_id = other.id
    conv_ids: list[int] = []
    for phone in ("+79160000001", "+79160000002"):
        resp = await admin.post(
            f"/api/v1/inboxes/{inbox_id}/messages",
            json={"identity_kind": "phone", "identity_value": phone, "body": "hi"},
        )
        assert resp.status_code == 201, resp.text
        conv_ids.append(resp.json()["conversation"]["id"])
    async with world.server.services.db.transaction() as s:
        for conv_id, user_id in zip(conv_ids, (op_id, other_id), strict=True):
            conv = await s.get(m.Conversation, conv_id)
            assert conv is not None
            conv.assigned_user_id = user_id
            conv.accepted_at = conv.created_at
    mine = conv_ids[0]

    assert (await op.get("/api/v1/reports")).status_code == 403, "operators read no reports by default"
    assert (await op.get("/reports")).status_code == 403
    assert 'data-nav="reports"' not in (await op.get("/search")).text, "no link to a page they can't open"

    widened = await admin.put(
        "/api/v1/admin/grants/operator", json={"grants": {"page.reports": True, "report.export": True}}
    )
    assert widened.status_code == 200, widened.text
    operator = next(r for r in widened.json()["roles"] if r["role"] == "operator")
    assert operator["grants"]["report.export"] is True
    assert operator["scopes"] == {"page.reports": "own", "report.export": "own"}
    assert operator["scope_choices"]["report.export"] == ["own"]

    listed = await op.get("/api/v1/reports")
    assert listed.status_code == 200, listed.text
    assert {r["key"] for r in listed.json()} == OWN_REPORTS
    assert (await op.get("/reports")).status_code == 200
    assert 'data-nav="reports"' in (await op.get("/search")).text, "the header links the reports now"
    assert await _conversation_ids(op) == [mine], "only the operator's own conversations"
    assert len(await _conversation_ids(admin)) == 3
    asked_other = await op.get(HISTORY, params={**TODAY, "operator": str(other_id)})
    assert asked_other.status_code == 200 and asked_other.json()["rows"] == []
    summary = await op.get("/api/v1/reports/queue_summary", params=TODAY)
    assert summary.status_code == 403, summary.text
    assert "not limited to your own conversations" in summary.json()["detail"]

    started = await op.post(f"{HISTORY}/exports", params={**TODAY, "format": "csv"})
    assert started.status_code == 202, started.text
    job = await _finished(op, started.json()["id"])
    assert job["rows_total"] == 1
    text = (await op.get(f"/api/v1/exports/{job['id']}/file")).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 2 and str(mine) in rows[1], rows

    too_wide = await admin.put(
        "/api/v1/admin/grants/operator",
        json={"grants": {"report.export": True}, "scopes": {"report.export": "all"}},
    )
    assert too_wide.status_code == 422, too_wide.text
    assert too_wide.json()["field"] == "report.export"

    narrowed = await admin.put("/api/v1/admin/grants/operator", json={"grants": {"report.export": False}})
    assert narrowed.status_code == 200, narrowed.text
    refused = await op.post(f"{HISTORY}/exports", params={**TODAY, "format": "csv"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == "your role has no permission to export reports"
    assert await _conversation_ids(op) == [mine], "the report itself is still granted"

    async with world.server.services.db.transaction() as s:
        audited = list(await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "grants.update")))
    assert [a.input for a in audited] == [
        {"page.reports": True, "report.export": True},
        {"report.export": False},
    ]

    await admin.put("/api/v1/admin/grants/operator", json={"grants": {"page.reports": False}})
    assert (await op.get("/api/v1/reports")).status_code == 403
    async with world.server.services.db.transaction() as s:
        assert list(await s.scalars(select(m.RoleGrant))) == [], "back at the defaults, no row stays"

    narrowed_sup = await admin.put(
        "/api/v1/admin/grants/supervisor", json={"scopes": {"page.reports": "own"}}
    )
    assert narrowed_sup.status_code == 200, narrowed_sup.text
    assert await _conversation_ids(sup) == [], "a supervisor narrowed to own has no conversations"
    sup_reports = {r["key"] for r in (await sup.get("/api/v1/reports")).json()}
    assert sup_reports == OWN_REPORTS
    async with world.server.services.db.transaction() as s:  # a scheduled mail reads as the page
        sup_user = await s.scalar(select(m.User).where(m.User.username == "sup"))
        assert sup_user is not None
        with pytest.raises(PermissionDenied, match="not limited to your own conversations"):
            await mailing.render(
                s, f.who(sup_user), "queue_summary", FilterParams(), Format.CSV, "en", datetime.now(UTC)
            )


async def test_a_supervisor_cannot_be_widened_past_their_groups(world: World) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as anon:
        assert (await anon.get("/api/v1/admin/grants")).status_code == 401
    resp = await world.clients["admin"].put(
        "/api/v1/admin/grants/supervisor", json={"scopes": {"page.reports": "all"}}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "page.reports"
    resp = await world.clients["admin"].put(
        "/api/v1/admin/grants/supervisor", json={"scopes": {"call.barge": "own"}}
    )
    assert resp.status_code == 422 and resp.json()["field"] == "call.barge", resp.text
