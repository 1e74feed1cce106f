"""Do-not-call over HTTP: the REST round trip (a CRM's API token), roles and scope, the admin page."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
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
class World:
    server: LiveServer
    campaign: int
    other_campaign: int


@pytest.fixture
async def world(live_server: LiveServer) -> World:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        ru_sup = await f.user(s, "ru_sup", m.Role.SUPERVISOR, language="ru")
        op = await f.user(s, "op")
        mine = await f.queue(s, "Debts", [op])
        theirs = await f.queue(s, "Sales", [])
        s.add_all(
            [
                m.SupervisorScope(supervisor_id=sup.id, queue_id=mine.id),
                m.SupervisorScope(supervisor_id=ru_sup.id, queue_id=mine.id),
            ]
        )
        c1 = m.Campaign(name="Debts", queue_id=mine.id)
        c2 = m.Campaign(name="Sales", queue_id=theirs.id)
        s.add_all([c1, c2])
        await s.flush()
        return World(live_server, c1.id, c2.id)


async def api_client(server: LiveServer, username: str) -> httpx.AsyncClient:
    """A client holding ``username``'s API token, as a CRM integration does."""
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    token = (await client.post("/api/v1/me/tokens", json={"name": "crm"})).json()["token"]
    await client.aclose()
    return httpx.AsyncClient(
        base_url=server.url, timeout=HTTP_TIMEOUT, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
async def clients(world: World) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    made = {name: await api_client(world.server, name) for name in ("admin", "sup", "op")}
    try:
        yield made
    finally:
        for c in made.values():
            await c.aclose()


async def test_rest_round_trip_add_check_search_upload_delete(
    world: World, clients: dict[str, httpx.AsyncClient]
) -> None:
    crm = clients["admin"]
    added = await crm.post("/api/v1/dnc", json={"number": "8 (916) 123-45-67", "reason": "asked"})
    assert added.status_code == 201, added.text
    entry = added.json()["entries"][0]
    assert (entry["number"], entry["pattern"], entry["campaign_id"], entry["reason"]) == (
        "+79161234567",
        "+79161234567",
        None,
        "asked",
    )
    again = await crm.post("/api/v1/dnc", json={"number": "+79161234567"})
    assert again.status_code == 422
    assert again.json()["field"] == "number"
    assert again.json()["detail"] == "+79161234567 is already on this do-not-call list"
    bad = await crm.post("/api/v1/dnc", json={"number": "7495*"})
    assert bad.status_code == 422 and "international form, like +7495*" in bad.json()["detail"]

    bulk = await crm.post(
        "/api/v1/dnc",
        json={"campaign": world.campaign, "numbers": ["+7495*", "+79161234567", "+7495*", "junk"]},
    )
    assert bulk.status_code == 201, bulk.text
    body = bulk.json()
    assert (body["added"], body["duplicates"], body["invalid"]) == (2, 1, 1)
    assert body["rejected"] == [{"line": 4, "text": "junk", "detail": "'junk' is not a phone number"}]

    check = await crm.get(
        "/api/v1/dnc/check", params={"number": "+7 495 123-45-67", "campaign": world.campaign}
    )
    assert check.status_code == 200
    assert check.json()["call"] is False and check.json()["entry"]["pattern"] == "+7495*"
    elsewhere = await crm.get(
        "/api/v1/dnc/check", params={"number": "+7 495 123-45-67", "campaign": world.other_campaign}
    )
    assert elsewhere.json() == {"number": "+74951234567", "call": True, "entry": None}
    unparsable = await crm.get("/api/v1/dnc/check", params={"number": "call me"})
    assert unparsable.status_code == 422 and unparsable.json()["field"] == "number"

    upload = await crm.post(
        "/api/v1/dnc/upload",
        params={"campaign": world.campaign},
        files={"file": ("refusals.csv", b"phone,name\n+79167654321,A\n+79161234567,B\nnope,C\n", "text/csv")},
        data={"reason": "letter"},
    )
    assert upload.status_code == 201, upload.text
    counts = upload.json()
    assert (counts["added"], counts["duplicates"], counts["invalid"]) == (1, 1, 1)
    assert counts["rejected"][0]["line"] == 4

    page = await crm.get("/api/v1/dnc", params={"campaign": world.campaign, "q": "916"})
    listed = page.json()
    assert listed["total"] == 2
    assert [e["pattern"] for e in listed["entries"]] == ["+79167654321", "+79161234567"]
    assert listed["entries"][0]["reason"] == "letter"

    gone = await crm.delete(f"/api/v1/dnc/{entry['id']}")
    assert gone.status_code == 200
    after = await crm.get("/api/v1/dnc/check", params={"number": "+79161234567"})
    assert after.json()["call"] is True
    assert (await crm.delete(f"/api/v1/dnc/{entry['id']}")).status_code == 404
    async with world.server.services.db.transaction() as s:
        actions = list(await s.scalars(select(m.AuditLog.action).where(m.AuditLog.action.like("dnc.%"))))
    assert sorted(actions) == ["dnc.add", "dnc.add", "dnc.remove", "dnc.upload"]


async def test_supervisors_manage_their_campaigns_and_operators_only_check(
    world: World, clients: dict[str, httpx.AsyncClient]
) -> None:
    sup, op = clients["sup"], clients["op"]
    glob = await sup.post("/api/v1/dnc", json={"number": "+79161234567"})
    assert glob.status_code == 403 and glob.json()["field"] == "campaign"
    other = await sup.post("/api/v1/dnc", json={"campaign": world.other_campaign, "number": "+79161234567"})
    assert other.status_code == 404
    own = await sup.post("/api/v1/dnc", json={"campaign": world.campaign, "number": "+79161234567"})
    assert own.status_code == 201
    assert (await sup.get("/api/v1/dnc")).status_code == 200  # reads the global list
    assert (await sup.get("/api/v1/dnc", params={"campaign": world.other_campaign})).status_code == 404
    upload = await sup.post("/api/v1/dnc/upload", files={"file": ("x.txt", b"+79161234567\n", "text/plain")})
    assert upload.status_code == 403

    assert (
        await op.post("/api/v1/dnc", json={"campaign": world.campaign, "number": "+79161234568"})
    ).status_code == 403
    assert (await op.get("/api/v1/dnc", params={"campaign": world.campaign})).status_code == 403
    checked = await op.get("/api/v1/dnc/check", params={"number": "+79161234567", "campaign": world.campaign})
    assert checked.status_code == 200 and checked.json()["call"] is False
    foreign = await op.get(
        "/api/v1/dnc/check", params={"number": "+79161234567", "campaign": world.other_campaign}
    )
    assert foreign.status_code == 404
    entry_id = own.json()["entries"][0]["id"]
    assert (await op.delete(f"/api/v1/dnc/{entry_id}")).status_code == 403
    async with world.server.services.db.transaction() as s:
        numbers = list(await s.scalars(select(m.DncEntry.number)))
    assert numbers == ["+79161234567"]


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def test_admin_page_lists_adds_with_errors_next_to_the_field_uploads_and_deletes(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as browser:
        await login(browser, "admin")
        page = await browser.get("/admin/dnc")
        assert page.status_code == 200 and 'data-dnc-list="global"' in page.text
        assert "No numbers on this list." in page.text
        token = csrf_of(page.text)

        bad = await browser.post("/admin/dnc", data={"_csrf": token, "campaign": "", "number": "call me"})
        assert bad.status_code == 400
        error = re.search(r'<span class="field-error" data-field="number"[^>]*>([^<]+)</span>', bad.text)
        assert error and html.unescape(error.group(1)) == "'call me' is not a phone number"
        assert 'value="call me"' in bad.text  # what was typed is kept

        ok = await browser.post("/admin/dnc", data={"_csrf": token, "campaign": "", "number": "+7 495*"})
        assert ok.status_code in (302, 303)
        listed = await browser.get(ok.headers["location"])
        assert "Added to the list." in listed.text and "+7495*" in listed.text

        dup = await browser.post("/admin/dnc", data={"_csrf": token, "campaign": "", "number": "+7495*"})
        assert dup.status_code == 400 and "+7495* is already on this do-not-call list" in _text(dup.text)

        uploaded = await browser.post(
            "/admin/dnc/upload",
            data={"_csrf": token, "campaign": str(world.campaign)},
            files={"file": ("list.txt", b"+79161234567\n89161234567\nhello\n+7812*\n", "text/plain")},
        )
        assert uploaded.status_code == 200
        result = re.search(
            r'data-upload-result data-added="(\d+)" data-duplicates="(\d+)" data-invalid="(\d+)"',
            uploaded.text,
        )
        assert result and result.groups() == ("2", "1", "1")
        assert 'data-line="3"' in uploaded.text and "'hello' is not a phone number" in _text(uploaded.text)

        campaign_page = await browser.get("/admin/dnc", params={"campaign": world.campaign, "q": "812"})
        rows = re.findall(r'<tr data-entry="(\d+)">', campaign_page.text)
        assert len(rows) == 1 and "+7812*" in campaign_page.text
        deleted = await browser.post(f"/admin/dnc/{rows[0]}/delete", data={"_csrf": token})
        assert deleted.status_code in (302, 303)
        assert deleted.headers["location"] == f"/admin/dnc?campaign={world.campaign}&deleted=1"
        after = await browser.get(deleted.headers["location"])
        assert "+7812*" not in after.text and "+79161234567" in after.text


async def test_admin_page_for_a_supervisor_in_russian(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as browser:
        await login(browser, "ru_sup")
        page = await browser.get("/admin/dnc")
        assert page.status_code == 200
        assert "Общий список" in page.text and "Debts" in page.text and "Sales" not in page.text
        assert 'data-form="add"' not in page.text  # the global list is read-only for supervisors
        token = csrf_of(page.text)
        refused = await browser.post(
            "/admin/dnc", data={"_csrf": token, "campaign": "", "number": "+79161234567"}
        )
        assert refused.status_code == 403
        assert "общий список «Не звонить» меняют только администраторы" in _text(refused.text)
        own = await browser.get("/admin/dnc", params={"campaign": world.campaign})
        assert 'data-form="add"' in own.text and "Добавить номер или префикс" in own.text
        bad = await browser.post(
            "/admin/dnc", data={"_csrf": token, "campaign": str(world.campaign), "number": "8495*"}
        )
        assert bad.status_code == 400 and "в международном виде" in _text(bad.text)
        foreign = await browser.get("/admin/dnc", params={"campaign": world.other_campaign})
        assert foreign.status_code == 404
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as browser:
        await login(browser, "op")
        assert (await browser.get("/admin/dnc")).status_code == 403
