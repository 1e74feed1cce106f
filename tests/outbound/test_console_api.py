"""``GET /api/v1/campaigns/{id}/stats``: the live figures over REST, scoped like the live view."""

from __future__ import annotations

import io

import httpx
from openpyxl import load_workbook

from omni.db import models as m
from omni.db.models.outbound import Outcome, TargetState
from omni.domain.outbound.lifecycle import do_close_attempt, do_open_attempt
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.outbound import console_world
from tests.reports.test_exports import finished
from tests.test_realtime import OperatorClient, token_for


async def _login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def test_campaign_stats_over_rest_for_its_supervisor_only(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        w = await console_world.build(s, names=("A", "B"))
        await f.user(s, "sup_elsewhere", m.Role.SUPERVISOR)
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        attempt = await do_open_attempt(s, target)
        await do_close_attempt(s, attempt, Outcome.BUSY)
        target = await s.get_one(m.CampaignTarget, w.targets[1])
        attempt = await do_open_attempt(s, target, operator_id=w.operator_id)
        await do_close_attempt(s, attempt, Outcome.ANSWERED)
    sup, other, op = (
        await _login(live_server, "sup_console"),
        await _login(live_server, "sup_elsewhere"),
        await _login(live_server, "op_console"),
    )
    try:
        url = f"/api/v1/campaigns/{w.campaign_id}/stats"
        resp = await sup.get(url)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["name"], body["targets"], body["attempts"], body["answered"], body["contact_rate"]) == (
            "Debts",
            2,
            2,
            1,
            50.0,
        )
        assert (body["remaining"], body["scheduled_retries"], body["progress"]) == (2, 1, 0.0)
        assert body["outcomes"] == {"busy": 1, "answered": 1}
        assert (await other.get(url)).status_code == 404
        assert (await op.get(url)).status_code == 403
        assert (await sup.get("/api/v1/campaigns/999999/stats")).status_code == 404

        # The campaign report through the ordinary report export jobs, as XLSX.
        resp = await sup.post(
            "/api/v1/reports/campaign_outcomes/exports", params={"format": "xlsx", "preset": "today"}
        )
        assert resp.status_code == 202, resp.text
        job = await finished(sup, resp.json()["id"])
        content = (await sup.get(f"/api/v1/exports/{job['id']}/file")).content
        sheet = load_workbook(io.BytesIO(content)).active
        assert sheet is not None
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][:4] == ("Campaign", "Attempts", "Answered", "Contact rate")
        assert rows[1] == ("Debts", 2, 1, 50, 1, 1, *[0] * 9)  # attempts, answered, rate, answered, busy…
        assert rows[2] == (None, 2, 1, 50, 1, 1, *[0] * 9)  # the totals row
    finally:
        for client in (sup, other, op):
            await client.aclose()


async def test_preview_calls_over_the_socket_are_the_reserved_operators_and_a_dead_channel_says_so(
    live_server: LiveServer,
) -> None:
    """No channel can place the call on this server: the operator is told, and the customer is
    back in the list (nothing lost, no attempt used)."""
    async with live_server.services.db.transaction() as s:
        w = await console_world.build(s, names=("A", "B"))
    op = OperatorClient(live_server.url, await token_for(live_server, "op_console"))
    other = OperatorClient(live_server.url, await token_for(live_server, "op_other"))
    await op.connect()
    await other.connect()
    try:
        async with live_server.services.db.transaction() as s:
            for target_id in w.targets:
                target = await s.get_one(m.CampaignTarget, target_id)
                await do_open_attempt(s, target, operator_id=w.operator_id)
        started = await op.wait_for("campaign.attempt_started", target_id=w.targets[1])
        first = (await op.wait_for("campaign.attempt_started", target_id=w.targets[0]))["data"]["id"]
        second = started["data"]["id"]
        panel = await op.call("campaign_panel", {})
        assert panel["ok"] and [c["attempt_id"] for c in panel["previews"]] == [first, second]
        assert (await other.call("campaign_panel", {}))["previews"] == []

        refused = await other.call("preview_call", {"attempt_id": first})
        assert (refused["ok"], refused["error"]) == (False, "forbidden")
        dead = await op.call("preview_call", {"attempt_id": first})
        assert (dead["ok"], dead["error"]) == (False, "conflict")
        assert "could not be placed" in dead["detail"]
        past = await op.call("preview_reschedule", {"attempt_id": second, "at": "2020-01-01T00:00:00Z"})
        assert (past["ok"], past["field"]) == (False, "at")
        bad = await op.call("preview_reschedule", {"attempt_id": second, "at": "tomorrow"})
        assert (bad["ok"], bad["field"]) == (False, "at")
        skipped = await op.call("preview_skip", {"attempt_id": second})
        assert skipped == {"ok": True, "target_state": "pending"}
        async with live_server.services.db.transaction() as s:
            for target_id in w.targets:
                target = await s.get_one(m.CampaignTarget, target_id)
                assert (target.state, target.attempts) == (TargetState.PENDING, 0)
        assert (await op.call("campaign_panel", {}))["previews"] == []
    finally:
        await op.sio.disconnect()
        await other.sio.disconnect()
