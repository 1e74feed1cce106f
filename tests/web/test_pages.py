"""Login, logout, language and the role gates of the staff pages (HTTP, real server)."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


def csrf_of(html: str) -> str:
    found = re.search(r'name="_csrf" value="([0-9a-f]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


async def post_login(
    client: httpx.AsyncClient, data: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    """Post the login form as a browser does: from the page, with its token and cookie."""
    form = await client.get("/login", headers=headers)
    return await client.post("/login", data={**data, "_csrf": csrf_of(form.text)}, headers=headers)


async def login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await post_login(client, {"username": username, "password": f.PASSWORD})


async def test_login_lands_on_the_role_home_and_pages_need_a_session(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "olga")
        await f.user(s, "sam", role=m.Role.SUPERVISOR)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        anonymous = await client.get("/app")
        assert anonymous.status_code in (302, 303) and anonymous.headers["location"] == "/login?next=/app"

        wrong = await post_login(client, {"username": "olga", "password": "nope"})
        assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
        assert "omni_session" not in client.cookies

        ok = await login(client, "olga")
        assert ok.status_code in (302, 303) and ok.headers["location"] == "/app"
        page = await client.get("/app")
        assert page.status_code == 200
        assert 'id="omni-boot"' in page.text and "/ui/operator.js" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]

        monitoring = await client.get("/supervisor")
        assert monitoring.status_code == 403 and "do not have access" in monitoring.text

    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        ok = await login(client, "sam")
        assert ok.headers["location"] == "/supervisor"
        assert (await client.get("/supervisor")).status_code == 200


async def test_login_next_never_leaves_the_site(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "olga")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        response = await post_login(
            client, {"username": "olga", "password": f.PASSWORD, "next": "//evil.example/x"}
        )
        assert response.headers["location"] == "/app"


async def test_logout_and_language_need_the_form_token(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        user = await f.user(s, "olga")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        await login(client, "olga")
        page = await client.get("/app")
        forged = await client.post("/language", data={"lang": "ru", "_csrf": "0" * 40})
        assert forged.status_code == 403 and "form has expired" in forged.text

        switched = await client.post("/language", data={"lang": "ru", "_csrf": csrf_of(page.text)})
        assert switched.status_code in (302, 303)
        async with live_server.services.db.transaction() as s:
            assert (await s.get(m.User, user.id)).language == "ru"  # type: ignore[union-attr]
        russian = await client.get("/app")
        assert "Выйти" in russian.text

        out = await client.post("/logout", data={"_csrf": csrf_of(russian.text)})
        assert out.headers["location"] == "/login"
        assert (await client.get("/app")).status_code in (302, 303)


async def test_login_page_speaks_the_browser_language(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        page = await client.get("/login", headers={"accept-language": "ru-RU,ru;q=0.9"})
        assert "Войти" in page.text
        empty = await post_login(client, {"username": "", "password": ""}, headers={"accept-language": "ru"})
        assert empty.status_code == 400 and "Введите логин и пароль" in empty.text


async def test_guessing_passwords_is_throttled_on_the_form_and_the_api(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "olga")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        for _ in range(10):
            wrong = await post_login(client, {"username": "olga", "password": "guess"})
            assert wrong.status_code == 401
        # Even the right password is refused until the window passes: guessing can't go on.
        blocked = await login(client, "olga")
        assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text
        api = await client.post("/api/v1/auth/login", json={"username": "olga", "password": f.PASSWORD})
        assert api.status_code == 429 and api.json()["error"] == "rate_limited"
        async with live_server.services.db.transaction() as s:
            denied = await s.scalar(
                select(func.count()).select_from(m.AuditLog).where(m.AuditLog.result == "denied")
            )
        assert denied == 10, "every failed attempt is in the audit log"
