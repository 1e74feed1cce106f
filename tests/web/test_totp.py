"""Two-factor sign-in with TOTP: enrolment forced by role at sign-in, codes once only, REST login
with ``otp``, the account page, and an admin's reset (issue 16; HTTP against a real server)."""

from __future__ import annotations

import html
import re
import time

import httpx
import pyotp
from sqlalchemy import select

from omni import crypto
from omni.db import models as m
from omni.domain import totp
from omni.domain.errors import NotAuthenticated
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import csrf_of, post_login


def secret_of(page: str) -> str:
    found = re.search(r"data-secret>([A-Z2-7]+)<", page)
    assert found, "the enrolment page shows no secret"
    return found.group(1)


def pending_of(page: str) -> str:
    found = re.search(r'name="pending" value="([^"]+)"', page)
    assert found, "the code step carries no pending token"
    return html.unescape(found.group(1))


def code_at(secret: str, step_offset: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + step_offset * totp.STEP_SECONDS)


async def send_code(client: httpx.AsyncClient, page: str, code: str) -> httpx.Response:
    return await client.post(
        "/login/code", data={"pending": pending_of(page), "code": code, "next": "", "_csrf": csrf_of(page)}
    )


async def require_for(server: LiveServer, *roles: str) -> None:
    async with server.services.db.transaction() as s:
        admin = await s.scalar(select(m.User).where(m.User.role == m.Role.ADMIN))
        assert admin is not None
        await totp.check_set_required_roles(s, f.who(admin), list(roles))


async def test_a_required_role_enrols_at_sign_in_then_signs_in_with_a_code_each_accepted_once(
    live_server: LiveServer,
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        await f.user(s, "sveta", m.Role.SUPERVISOR)
    await require_for(live_server, "supervisor")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
        step = await post_login(browser, {"username": "sveta", "password": f.PASSWORD})
        assert step.status_code == 200 and "omni_session" not in browser.cookies
        assert "<svg" in step.text and "authenticator" in step.text
        secret = secret_of(step.text)
        # a wrong code: the same enrolment page again, with the error, still no session
        wrong = await send_code(browser, step.text, "000000" if code_at(secret) != "000000" else "111111")
        assert wrong.status_code == 401 and "Wrong or expired code" in wrong.text
        assert secret_of(wrong.text) == secret and "omni_session" not in browser.cookies
        done = await send_code(browser, wrong.text, code_at(secret))
        assert done.status_code in (302, 303) and done.headers["location"] == "/supervisor"
        assert "omni_session" in browser.cookies
    async with live_server.services.db.transaction() as s:
        user = await s.scalar(select(m.User).where(m.User.username == "sveta"))
        assert user is not None and user.totp_enabled_at is not None
        assert user.totp_secret and secret not in user.totp_secret  # stored encrypted
        actions = (await s.scalars(select(m.AuditLog.action).where(m.AuditLog.user_id == user.id))).all()
        assert "auth.totp.enable" in actions and "auth.login" in actions

    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
        step = await post_login(browser, {"username": "sveta", "password": f.PASSWORD})
        assert (
            'name="code"' in step.text and "<svg" not in step.text and "omni_session" not in browser.cookies
        )
        # the code that finished the enrolment was used: it can't sign in again (no replay)
        replay = await send_code(browser, step.text, code_at(secret))
        assert replay.status_code == 401 and "omni_session" not in browser.cookies
        # the next step's code (one step of clock drift is allowed) signs in
        ok = await send_code(browser, replay.text, code_at(secret, 1))
        assert ok.status_code in (302, 303) and "omni_session" in browser.cookies
        # a forged or stale pending token never signs anyone in
        forged = await browser.post(
            "/login/code", data={"pending": "1:9999999999:x.y", "code": "123456", "_csrf": csrf_of(step.text)}
        )
        assert forged.status_code == 401 and "took too long" in forged.text


async def test_rest_login_needs_the_otp_for_an_enrolled_user_and_refuses_a_required_one_not_enrolled(
    live_server: LiveServer,
) -> None:
    secret = pyotp.random_base32()
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        user = await f.user(s, "olga")
        user.totp_secret = crypto.encrypt(live_server.services.settings.effective_secret_key(), secret)
        totp.do_confirm_enrolment(
            s, user, code_at(secret), live_server.services.settings.effective_secret_key()
        )
        await f.user(s, "petr", m.Role.SUPERVISOR)
    await require_for(live_server, "supervisor")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as api:
        creds = {"username": "olga", "password": f.PASSWORD}
        resp = await api.post("/api/v1/auth/login", json=creds)
        assert resp.status_code == 401 and resp.json()["error"] == "otp_required"
        resp = await api.post("/api/v1/auth/login", json={**creds, "otp": "12345"})
        assert resp.status_code == 401 and resp.json()["error"] == "not_authenticated"
        resp = await api.post("/api/v1/auth/login", json={**creds, "otp": code_at(secret, 1)})
        assert resp.status_code == 200 and "omni_session" in api.cookies
        resp = await api.post("/api/v1/auth/login", json={"username": "petr", "password": f.PASSWORD})
        assert resp.status_code == 403 and "second factor" in resp.json()["detail"]


async def test_the_account_page_turns_it_on_and_off_and_an_admin_resets_it(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        ivan = await f.user(s, "ivan")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as browser:
        await post_login(browser, {"username": "ivan", "password": f.PASSWORD})
        page = await browser.get("/account/security")
        assert 'data-totp-state="off"' in page.text
        begun = await browser.post("/account/security", data={"action": "begin", "_csrf": csrf_of(page.text)})
        secret = secret_of(begun.text)
        on = await browser.post(
            "/account/security",
            data={"action": "confirm", "code": code_at(secret), "_csrf": csrf_of(begun.text)},
        )
        assert on.status_code in (302, 303)
        page = await browser.get(on.headers["location"])
        assert 'data-totp-state="on"' in page.text and "Two-factor sign-in is on." in page.text
        wrong = await browser.post(
            "/account/security", data={"action": "off", "code": "12", "_csrf": csrf_of(page.text)}
        )
        assert wrong.status_code == 422 and 'data-totp-state="on"' in wrong.text
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as api:
        await api.post("/api/v1/auth/login", json={"username": "admin", "password": f.PASSWORD})
        resp = await api.get(f"/api/v1/users/{ivan.id}")
        assert resp.json()["two_factor"] is True
        resp = await api.post(f"/api/v1/users/{ivan.id}/totp/reset")
        assert resp.status_code == 200 and resp.json()["two_factor"] is False
        resp = await api.put("/api/v1/admin/install", json={"totp_roles": ["admin", "boss"]})
        assert resp.status_code == 422 and "boss" in resp.text
        resp = await api.put("/api/v1/admin/install", json={"totp_roles": ["admin"]})
        assert resp.status_code == 200 and resp.json()["totp_roles"] == ["admin"]
    async with live_server.services.db.transaction() as s:
        assert (await s.get_one(m.User, ivan.id)).totp_secret is None
        assert await s.scalar(select(m.AuditLog.id).where(m.AuditLog.action == "auth.totp.reset")) is not None


def test_a_code_is_accepted_within_one_step_of_drift_and_only_once() -> None:
    key = "k" * 32
    user = m.User(username="u", password_hash="h" * 40)
    secret = pyotp.random_base32()
    user.totp_secret = crypto.encrypt(key, secret)
    now = 1_800_000_000.0
    gen = pyotp.TOTP(secret)
    totp.check_code(user, gen.at(now - 30), key, now)  # the previous step: accepted
    for code in (gen.at(now - 30), gen.at(now - 60), gen.at(now + 90), "12 34", "abcdef"):
        try:
            totp.check_code(user, code, key, now)
        except NotAuthenticated:
            continue
        raise AssertionError(f"{code} was accepted")
    totp.check_code(user, gen.at(now + 30)[:3] + " " + gen.at(now + 30)[3:], key, now)  # spaces are fine
