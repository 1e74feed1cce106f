"""Call lists over REST: upload → preview → start → progress → rejects; targets as JSON; refusals."""

from __future__ import annotations

from typing import Any

import httpx
import socketio

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT, until


async def _admin(server: LiveServer) -> tuple[httpx.AsyncClient, int]:
    async with server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        queue = m.Queue(name="Out")
        s.add(queue)
        await s.flush()
        campaign = m.Campaign(name="C", queue_id=queue.id)
        s.add(campaign)
        await s.flush()
        campaign_id = campaign.id
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT, headers={"X-Omni-CSRF": "1"})
    resp = await client.post("/api/v1/auth/login", json={"username": "admin", "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client, campaign_id


CSV = (
    b"phone,name,debt\n"
    b"+7 916 111-22-33,Anna,10\n"
    b"garbage,Boris,20\n"
    b"8 916 111 22 33,Anna again,30\n"
    b",,\n"
    b"+7 423 222-33-44,Vera,40\n"
)


async def test_upload_preview_start_follow_and_download_the_rejects(live_server: LiveServer) -> None:
    admin, campaign_id = await _admin(live_server)
    pushed: list[dict[str, Any]] = []
    sio = socketio.AsyncClient()
    sio.on("list_import", pushed.append, namespace="/supervisor")
    await sio.connect(
        live_server.url,
        namespaces=["/supervisor"],
        transports=["websocket"],
        headers={"Cookie": f"omni_session={admin.cookies['omni_session']}"},
    )
    try:
        up = await admin.post(
            f"/api/v1/campaigns/{campaign_id}/imports",
            params={"filename": "list.csv"},
            content=CSV,
            headers={"Content-Type": "text/csv"},
        )
        assert up.status_code == 201, up.text
        job = up.json()
        assert job["state"] == "pending" and job["header"] is True and job["delimiter"] == ","
        assert [c["title"] for c in job["columns"]] == ["phone", "name", "debt"]
        assert job["mapping"]["phones"] == [0] and job["mapping"]["name"] == 1
        mapping = {"phones": [0], "name": 1, "fields": {"debt": 2}}
        shown = await admin.post(f"/api/v1/list-imports/{job['id']}/preview", json=mapping)
        assert shown.status_code == 200, shown.text
        assert [r["ok"] for r in shown.json()["rows"]] == [True, False, True, False, True]
        assert shown.json()["rows"][1]["reason"] == "'garbage' is not a phone number"
        bad = await admin.post(f"/api/v1/list-imports/{job['id']}/start", json={"phones": [5]})
        assert bad.status_code == 422 and bad.json()["field"] == "phones"
        started = await admin.post(f"/api/v1/list-imports/{job['id']}/start", json=mapping)
        assert started.status_code == 202, started.text

        async def finished() -> dict[str, Any] | None:
            got = (await admin.get(f"/api/v1/list-imports/{job['id']}")).json()
            return got if got["state"] not in ("pending", "running") else None

        done = await until(finished, 60, what="the import to end")
        assert done["state"] == "done"
        assert (done["rows_read"], done["rows_imported"], done["rows_invalid"], done["rows_duplicate"]) == (
            5,
            2,
            2,
            1,
        )
        await until(lambda: pushed and pushed[-1]["state"] == "done", 30, what="the pushed end")
        assert pushed[-1]["rows_imported"] == 2 and pushed[-1]["bytes_done"] == pushed[-1]["bytes_total"]
        rejects = await admin.get(f"/api/v1/list-imports/{job['id']}/rejects")
        assert rejects.status_code == 200 and "attachment" in rejects.headers["content-disposition"]
        lines = rejects.content.decode("utf-8-sig").splitlines()
        assert lines[1:] == [
            "3,'garbage' is not a phone number,garbage,Boris,20",
            "4,duplicate: the number is already in this list,8 916 111 22 33,Anna again,30",
            "5,blank row,,,",
        ]
        again = await admin.post(f"/api/v1/list-imports/{job['id']}/start", json=mapping)
        assert again.status_code == 409
        lists = (await admin.get(f"/api/v1/campaigns/{campaign_id}/lists")).json()
        assert lists[0]["targets"] == 2 and lists[0]["by_state"] == {"pending": 2}
        page = (await admin.get(f"/api/v1/campaigns/{campaign_id}/targets", params={"limit": 1})).json()
        assert page["total"] == 2 and page["items"][0]["phone"] == "+79161112233"
        assert page["items"][0]["fields"] == {"debt": "10"}
    finally:
        await sio.disconnect()
        await admin.aclose()


async def test_targets_as_json_and_bad_uploads_are_clear_refusals(live_server: LiveServer) -> None:
    admin, campaign_id = await _admin(live_server)
    try:
        added = await admin.post(
            f"/api/v1/campaigns/{campaign_id}/targets",
            json={"targets": [{"phones": ["+79161112233"], "name": "A"}, {"phones": ["x"]}]},
        )
        assert added.status_code == 201, added.text
        assert added.json()["imported"] == 1 and added.json()["refused"][0]["index"] == 1
        again = await admin.post(
            f"/api/v1/campaigns/{campaign_id}/targets", json={"targets": [{"phones": ["8 916 111-22-33"]}]}
        )
        assert again.json()["duplicate"] == 1
        assert "already in the campaign" in again.json()["refused"][0]["reason"]
        empty = await admin.post(f"/api/v1/campaigns/{campaign_id}/imports", content=b"")
        assert empty.status_code == 422 and empty.json()["detail"] == "the file is empty"
        fake = await admin.post(
            f"/api/v1/campaigns/{campaign_id}/imports", params={"filename": "a.xlsx"}, content=b"hello"
        )
        assert fake.status_code == 422 and "XLSX" in fake.json()["detail"]
        missing = await admin.post("/api/v1/campaigns/999/imports", content=b"phone\n+79161112233\n")
        assert missing.status_code == 404
        by_state = await admin.get(f"/api/v1/campaigns/{campaign_id}/targets", params={"state": "nap"})
        assert by_state.status_code == 400
    finally:
        await admin.aclose()


async def test_a_list_larger_than_the_app_wide_body_limit_uploads(live_server: LiveServer) -> None:
    """The app caps request bodies at the widget's upload size (10 MB + 1 MB); a call list route
    has its own cap (``imports.MAX_BYTES``) and streams the body to disk."""
    admin, campaign_id = await _admin(live_server)
    line = b"+7 916 123-45-67,Somebody with a long name to fill the file up quickly,1\n"
    body = b"phone,name,n\n" + line * (12 * 1024 * 1024 // len(line) + 1)
    try:
        up = await admin.post(
            f"/api/v1/campaigns/{campaign_id}/imports", params={"filename": "big.csv"}, content=body
        )
        assert up.status_code == 201, up.text[:300]
        assert up.json()["bytes_total"] == len(body) > 12 * 1024 * 1024
    finally:
        await admin.aclose()
