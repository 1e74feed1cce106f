"""REST of the shared holiday calendars (issue 16): the twin of Admin → Holiday calendars —
admins create and change them, bad days are a 422 naming the field, a followed calendar is not
deleted (409), queues and campaigns refuse unknown calendar ids."""

from __future__ import annotations

import httpx

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


async def _login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def test_calendars_over_rest_validate_follow_and_refuse_deleting_what_is_followed(
    live_server: LiveServer,
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        await f.user(s, "sup", m.Role.SUPERVISOR)
        queue = await f.queue(s, "Support")
    admin = await _login(live_server, "admin")
    sup = await _login(live_server, "sup")
    try:
        bad = await admin.post(
            "/api/v1/admin/calendars", json={"name": "Russia 2027", "dates": [{"date": "2027-13-01"}]}
        )
        assert bad.status_code == 422 and bad.json()["field"] == "dates[0]", bad.text
        made = await admin.post(
            "/api/v1/admin/calendars",
            json={
                "name": "Russia 2027",
                "dates": [{"date": "2027-01-07", "name": "Christmas"}, {"date": "2027-01-01"}],
                "yearly": [{"date": "05-09", "name": "Victory Day"}],
            },
        )
        assert made.status_code == 201, made.text
        cal = made.json()
        assert cal["dates"] == [
            {"date": "2027-01-01", "name": ""},
            {"date": "2027-01-07", "name": "Christmas"},
        ]
        assert (await sup.post("/api/v1/admin/calendars", json={"name": "x"})).status_code == 403
        assert [c["name"] for c in (await sup.get("/api/v1/admin/calendars")).json()] == ["Russia 2027"]

        unknown = await admin.patch(
            f"/api/v1/queues/{queue.id}",
            json={
                "business_hours": {"timezone": "UTC", "days": {"0": [["09:00", "18:00"]]}, "calendars": [999]}
            },
        )
        assert unknown.status_code == 422 and unknown.json()["field"] == "business_hours.calendars"
        follow = await admin.patch(
            f"/api/v1/queues/{queue.id}",
            json={
                "business_hours": {
                    "timezone": "UTC",
                    "days": {"0": [["09:00", "18:00"]]},
                    "calendars": [cal["id"]],
                }
            },
        )
        assert follow.status_code == 200 and follow.json()["business_hours"]["calendars"] == [cal["id"]]

        renamed = await admin.patch(f"/api/v1/admin/calendars/{cal['id']}", json={"name": "Russia 2027-28"})
        assert renamed.status_code == 200 and renamed.json()["yearly"] == [
            {"date": "05-09", "name": "Victory Day"}
        ]
        followed = await admin.delete(f"/api/v1/admin/calendars/{cal['id']}")
        assert followed.status_code == 409 and "Support" in followed.json()["detail"], followed.text
        await admin.patch(f"/api/v1/queues/{queue.id}", json={"business_hours": None})
        assert (await admin.delete(f"/api/v1/admin/calendars/{cal['id']}")).status_code == 200
        assert (await admin.get(f"/api/v1/admin/calendars/{cal['id']}")).status_code == 404
    finally:
        await admin.aclose()
        await sup.aclose()
