"""Login attempts leave an audit trail, refused ones included."""

from __future__ import annotations

import httpx

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


async def test_failed_rest_login_leaves_a_denied_audit_row_the_auditor_sees(live_server: LiveServer) -> None:
    """The REST login recorded "denied" and then re-raised inside its transaction, which
    rolled the row back: refused logins never reached the audit log."""
    async with live_server.services.db.transaction() as s:
        await f.user(s, "auditor", m.Role.AUDITOR)
        await f.user(s, "victim")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as anonymous:
        wrong = await anonymous.post("/api/v1/auth/login", json={"username": "victim", "password": "guess-1"})
        assert wrong.status_code == 401, wrong.text
        unknown = await anonymous.post(
            "/api/v1/auth/login", json={"username": "nobody-" + "x" * 100, "password": "guess-2"}
        )
        assert unknown.status_code == 401, unknown.text
        assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as auditor:
        ok = await auditor.post("/api/v1/auth/login", json={"username": "auditor", "password": f.PASSWORD})
        assert ok.status_code == 200, ok.text
        log = await auditor.get("/api/v1/audit", params={"action": "auth.login"})
        assert log.status_code == 200, log.text
    rows = log.json()
    denied = [(r["object_id"], r["user_id"]) for r in rows if r["result"] == "denied"]
    assert ("victim", None) in denied
    assert ("nobody-" + "x" * 57, None) in denied, "a long username is cut to the column, not refused"
    assert any(r["result"] == "ok" for r in rows), "the successful login is there too"
