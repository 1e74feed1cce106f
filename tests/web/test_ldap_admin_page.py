"""The LDAP admin page (issue 16, rest16) against the real slapd of tests/web/test_ldap.py: the
effective OMNI_LDAP_* settings read-only with the variable under each, the bind password never
shown, the group → role mapping, and "Check a user" (what a sign-in would give, errors next to
the field), in English and Russian; unconfigured, the page says which variable turns it on."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from omni.db import models as m
from omni.settings import Settings
from tests import factories as f
from tests import ldap_server as d
from tests.conftest import LiveServer, copy_sqlite
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_ldap import directory, slapd  # noqa: F401  (the module's slapd fixture)
from tests.web.test_pages import csrf_of, post_login


async def _check(client: httpx.AsyncClient, username: str) -> httpx.Response:
    csrf = csrf_of((await client.get("/admin/ldap/1")).text)
    return await client.post("/admin/ldap/1/check", data={"username": username, "_csrf": csrf})


async def test_admin_sees_effective_ldap_settings_without_the_password_and_checks_a_user(
    sqlite_template: Path,
    tmp_path: Path,
    slapd: d.Slapd,  # noqa: F811
) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40, ldap=directory(slapd.url))
    copy_sqlite(sqlite_template, settings.data_dir)
    server = LiveServer(settings)
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "root", m.Role.ADMIN)
            await f.user(s, "sup", m.Role.SUPERVISOR)
        async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as sup:
            assert (await post_login(sup, {"username": "sup", "password": f.PASSWORD})).status_code in (
                302,
                303,
            )
            assert (await sup.get("/admin/ldap/1")).status_code == 403
        async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as admin:
            assert (await post_login(admin, {"username": "root", "password": f.PASSWORD})).status_code in (
                302,
                303,
            )
            listing = await admin.get("/admin/ldap")
            assert listing.status_code == 200 and "127.0.0.1" in listing.text
            page = await admin.get("/admin/ldap/1")
            assert page.status_code == 200, page.text
            assert d.SERVICE_PASSWORD not in page.text, "the bind password is never shown"
            assert "set (never shown)" in page.text
            assert d.SERVICE_DN in page.text and "OMNI_LDAP_BIND_DN" in page.text
            assert f"{d.SUPERVISORS} → Supervisor" in page.text
            assert 'class="primary"' not in page.text, "read-only: no save button"

            found = await _check(admin, "bob")
            assert found.status_code == 200, found.text
            assert 'data-check-result="found"' in found.text
            assert "A sign-in would get the role: Supervisor" in found.text
            nobody = await _check(admin, "nina")
            assert "in no mapped group: sign-in refused" in nobody.text
            missing = await _check(admin, "ghost")
            assert 'data-check-result="not_found"' in missing.text
            empty = await _check(admin, "   ")
            assert '<span class="field-error" data-field="username"' in empty.text
            assert "Username must not be empty" in empty.text or "must not be empty" in empty.text

            admin.cookies.set("omni_lang", "ru")
            ru = await _check(admin, "bob")
            assert "При входе будет роль" in ru.text and "задан (не показывается)" in ru.text
            async with server.services.db.transaction() as s:
                users = set(await s.scalars(select(m.User.username)))
            assert users == {"root", "sup"}, "a check creates no account"
    finally:
        await server.stop()


async def test_unconfigured_ldap_page_names_the_variable_and_the_check_says_so(
    sqlite_template: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    server = LiveServer(settings)
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "root", m.Role.ADMIN)
        async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as admin:
            await post_login(admin, {"username": "root", "password": f.PASSWORD})
            assert "off (OMNI_LDAP_URL is empty)" in (await admin.get("/admin/ldap")).text
            page = await admin.get("/admin/ldap/1")
            assert "OMNI_LDAP_* environment variables" in page.text
            refused = await _check(admin, "bob")
            assert '<span class="field-error" data-field="username"' in refused.text
            assert "OMNI_LDAP_URL is empty" in refused.text
    finally:
        await server.stop()
