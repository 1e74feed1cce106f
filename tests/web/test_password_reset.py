"""Password reset by an admin-issued one-time link (issue 16; HTTP against a real server)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import csrf_of, post_login


async def admin_api(server: LiveServer) -> httpx.AsyncClient:
    api = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await api.post("/api/v1/auth/login", json={"username": "admin", "password": f.PASSWORD})
    assert resp.status_code == 200
    return api


async def test_a_link_sets_a_new_password_once_and_ends_the_old_sessions(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        olga = await f.user(s, "olga")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as old_browser:
        await post_login(old_browser, {"username": "olga", "password": f.PASSWORD})
        assert (await old_browser.get("/app")).status_code == 200
        api = await admin_api(live_server)
        try:
            first = (await api.post(f"/api/v1/users/{olga.id}/password-reset")).json()
            issued = await api.post(f"/api/v1/users/{olga.id}/password-reset")
            assert issued.status_code == 201
            link = issued.json()["url"]
        finally:
            await api.aclose()
        path = "/" + link.split("/", 3)[3]
        async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
            # a newer link voids the older one
            stale = await browser.get("/" + first["url"].split("/", 3)[3])
            assert stale.status_code == 404 and "not valid any more" in stale.text
            page = await browser.get(path)
            assert page.status_code == 200 and 'name="password"' in page.text
            short = await browser.post(
                path, data={"password": "short", "repeat": "short", "_csrf": csrf_of(page.text)}
            )
            assert short.status_code == 422 and "8 to 256" in short.text
            differ = await browser.post(
                path,
                data={"password": "correct horse", "repeat": "correct horsE", "_csrf": csrf_of(page.text)},
            )
            assert differ.status_code == 422 and "differ" in differ.text
            done = await browser.post(
                path,
                data={"password": "correct horse", "repeat": "correct horse", "_csrf": csrf_of(page.text)},
            )
            assert done.status_code in (302, 303) and done.headers["location"] == "/login?reset=1"
            assert "Your password was changed" in (await browser.get("/login?reset=1")).text
            again = await browser.get(path)
            assert again.status_code == 404  # once only
            old = await post_login(browser, {"username": "olga", "password": f.PASSWORD})
            assert old.status_code == 401
            new = await post_login(browser, {"username": "olga", "password": "correct horse"})
            assert new.status_code in (302, 303)
        # whoever was signed in with the old password is out
        assert (await old_browser.get("/app")).status_code in (302, 303)
    async with live_server.services.db.transaction() as s:
        actions = (
            await s.scalars(select(m.AuditLog.action).where(m.AuditLog.object_id == str(olga.id)))
        ).all()
        assert actions.count("user.password_reset_issued") == 2 and "user.password_reset" in actions


async def test_an_expired_link_or_a_forged_one_does_nothing(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        ivan = await f.user(s, "ivan")
    api = await admin_api(live_server)
    try:
        link = (await api.post(f"/api/v1/users/{ivan.id}/password-reset")).json()["url"]
        assert (await api.post("/api/v1/users/999999/password-reset")).status_code == 404
    finally:
        await api.aclose()
    async with live_server.services.db.transaction() as s:
        await s.execute(update(m.PasswordReset).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        before = await s.scalar(select(m.User.password_hash).where(m.User.id == ivan.id))
    path = "/" + link.split("/", 3)[3]
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
        assert (await browser.get(path)).status_code == 404
        for target in (path, "/reset/" + "x" * 43):
            resp = await browser.post(
                target, data={"password": "a" * 10, "repeat": "a" * 10, "_csrf": "0" * 40}
            )
            assert resp.status_code in (403, 404)
    async with live_server.services.db.transaction() as s:
        assert await s.scalar(select(m.User.password_hash).where(m.User.id == ivan.id)) == before
        assert (
            await s.scalar(
                select(func.count()).select_from(m.PasswordReset).where(m.PasswordReset.used_at.is_not(None))
            )
            == 0
        )


async def test_the_admin_user_form_shows_the_link_once(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        petr = await f.user(s, "petr")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
        await post_login(browser, {"username": "admin", "password": f.PASSWORD})
        form = await browser.get(f"/admin/users/{petr.id}")
        assert 'name="issue_reset_link"' in form.text
        fields = dict(
            re.findall(
                r'name="(username|role|language|capacity|chat_weight|voice_weight)" value="([^"]*)"',
                form.text,
            )
        )
        data = {"_csrf": csrf_of(form.text), "username": "petr", "role": "operator", "language": "en",
                "capacity": "3", "chat_weight": "1", "voice_weight": "3", "is_active": "on",
                "handles_chat": "on", "handles_voice": "on", "phone_endpoint": "desk",
                "issue_reset_link": "on", **fields}  # fmt: skip
        saved = await browser.post(f"/admin/users/{petr.id}", data=data)
        assert saved.status_code == 200, saved.text[:500]
        found = re.search(r"data-reset-link>([^<]+)<", saved.text)
        assert found and "/reset/" in found.group(1)
        assert "data-reset-link" not in (await browser.get(f"/admin/users/{petr.id}")).text
