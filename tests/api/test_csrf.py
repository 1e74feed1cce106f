"""Cross-site request forgery: a page on another site must not act with a staff member's
session cookie, nor log their browser into another account (issue 10, item 13)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import csrf_of

EVIL = "https://evil.example"


async def admin_client(server: LiveServer) -> httpx.AsyncClient:
    async with server.services.db.transaction() as s:
        await f.user(s, "root", m.Role.ADMIN)
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": "root", "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def count(server: LiveServer, model: type[m.User] | type[m.ApiToken]) -> int:
    async with server.services.db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_cross_site_text_plain_post_with_the_session_cookie_is_refused(live_server: LiveServer) -> None:
    """The field report: a form on evil.example posting JSON as text/plain made an admin."""
    admin = await admin_client(live_server)
    users, tokens = await count(live_server, m.User), await count(live_server, m.ApiToken)
    body = json.dumps({"username": "mallory", "password": "longenough1", "role": "admin"})
    for headers in (
        {"Origin": EVIL, "Content-Type": "text/plain"},
        {"Origin": EVIL, "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Referer": f"{EVIL}/page", "Content-Type": "application/json"},
        {"Content-Type": "text/plain"},  # no Origin/Referer at all: an API call must be JSON
        {"Content-Type": "application/x-www-form-urlencoded"},
    ):
        resp = await admin.post("/api/v1/users", content=body, headers=headers)
        assert resp.status_code == 403, (headers, resp.text)
        assert resp.json()["detail"]
        token = await admin.post("/api/v1/me/tokens", content='{"name": "x"}', headers=headers)
        assert token.status_code == 403, (headers, token.text)
    assert (await admin.delete("/api/v1/users/1", headers={"Origin": EVIL})).status_code == 403
    assert await count(live_server, m.User) == users
    assert await count(live_server, m.ApiToken) == tokens
    await admin.aclose()


async def test_same_origin_json_and_bearer_tokens_still_work(live_server: LiveServer) -> None:
    admin = await admin_client(live_server)
    own = {"Origin": live_server.url}
    made = await admin.post(
        "/api/v1/users",
        json={"username": "olga", "password": "longenough1", "role": "operator"},
        headers=own,
    )
    assert made.status_code == 201, made.text
    # The configured public address counts as ours too (behind a proxy the Host differs).
    public = {"Origin": live_server.settings.public_base_url, "X-Omni-CSRF": "1"}
    token = await admin.post("/api/v1/me/tokens", content='{"name": "crm"}', headers=public)
    assert token.status_code == 201, token.text
    # A bodyless action with no Origin (a script, not a browser form) is fine.
    assert (await admin.post("/api/v1/auth/logout")).status_code == 200
    # Integrations authenticate with the bearer token, which no other site can make a browser send.
    bearer = {
        "Authorization": f"Bearer {token.json()['token']}",
        "Origin": EVIL,
        "Content-Type": "text/plain",
    }
    async with httpx.AsyncClient(base_url=live_server.url, headers=bearer, timeout=HTTP_TIMEOUT) as crm:
        created = await crm.post(
            "/api/v1/users",
            content=json.dumps({"username": "crm-made", "password": "longenough1", "role": "operator"}),
        )
        assert created.status_code == 201, created.text
    await admin.aclose()


async def test_login_csrf_another_site_cannot_log_the_browser_in(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "attacker")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
        # A form on another site posting straight to /login: no token from our page.
        forged = await browser.post(
            "/login", data={"username": "attacker", "password": f.PASSWORD}, headers={"Origin": EVIL}
        )
        assert forged.status_code == 403 and "omni_session" not in browser.cookies
        assert "form has expired" in forged.text
        stale = await browser.post(
            "/login", data={"username": "attacker", "password": f.PASSWORD, "_csrf": "0" * 40}
        )
        assert stale.status_code == 403 and "omni_session" not in browser.cookies
        # The REST login too: a text/plain post from another site is refused.
        rest = await browser.post(
            "/api/v1/auth/login",
            content=json.dumps({"username": "attacker", "password": f.PASSWORD}),
            headers={"Origin": EVIL, "Content-Type": "text/plain"},
        )
        assert rest.status_code == 403 and "omni_session" not in browser.cookies
        # From our own page the same login works (the refusal showed a fresh form).
        ok = await browser.post(
            "/login", data={"username": "attacker", "password": f.PASSWORD, "_csrf": csrf_of(forged.text)}
        )
        assert ok.status_code in (302, 303) and "omni_session" in browser.cookies


async def test_cross_site_page_form_post_is_refused_even_with_a_token(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "olga")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
        form = await browser.get("/login")
        await browser.post(
            "/login", data={"username": "olga", "password": f.PASSWORD, "_csrf": csrf_of(form.text)}
        )
        page = await browser.get("/app")
        token = csrf_of(page.text)
        evil = await browser.post("/language", data={"lang": "ru", "_csrf": token}, headers={"Origin": EVIL})
        assert evil.status_code == 403
        ours = await browser.post(
            "/language", data={"lang": "ru", "_csrf": token}, headers={"Origin": live_server.url}
        )
        assert ours.status_code in (302, 303)
