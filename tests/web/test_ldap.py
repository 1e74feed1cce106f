"""Sign-in with LDAP against a real OpenLDAP slapd on loopback (issue 16): search + bind,
group → role mapping refreshed at each sign-in, local accounts as the fallback while the
directory is down, and the refusals a user sees. One slapd and one SQLite app per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server
from sqlalchemy import select

from omni.db import models as m
from omni.domain import auth, ldap_auth, passwords
from omni.domain.errors import InvalidInput, PermissionDenied
from omni.services import Services, build_services
from omni.settings import LdapSettings, Settings
from tests import factories as f
from tests import ldap_server as d
from tests.conftest import LiveServer, copy_sqlite, free_port
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import post_login


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[d.Slapd]:
    yield from d.run_slapd(tmp_path_factory.mktemp("slapd"), free_port())


def directory(url: str) -> LdapSettings:
    return LdapSettings(
        url=url,
        bind_dn=d.SERVICE_DN,
        bind_password=d.SERVICE_PASSWORD,
        user_base_dn=d.PEOPLE,
        group_base_dn=d.GROUPS,
        role_map={d.ADMINS: "admin", d.SUPERVISORS: "supervisor", d.OPERATORS: "operator"},
        timeout_seconds=3,
    )


@pytest_asyncio.fixture(scope="module")
async def services(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("omni"), secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    svc = build_services(settings, run_background=False)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def login(svc: Services, cfg: LdapSettings, username: str, password: str) -> auth.LoginResult:
    async with svc.db.transaction() as s:
        return await auth.do_login(s, username, password, ip="127.0.0.1", max_age_seconds=60, directory=cfg)


async def account(svc: Services, username: str) -> m.User | None:
    async with svc.db.transaction() as s:
        return await s.scalar(select(m.User).where(m.User.username == username))


async def user_count(svc: Services) -> int:
    async with svc.db.transaction() as s:
        return len((await s.scalars(select(m.User.id))).all())


def set_group(slapd: d.Slapd, group: str, uid: str, *, member: bool) -> None:
    conn = Connection(Server(slapd.url), d.ROOT_DN, d.ROOT_PASSWORD, auto_bind=True)
    try:
        op = MODIFY_ADD if member else MODIFY_DELETE
        assert conn.modify(group, {"member": [(op, [f"uid={uid},{d.PEOPLE}"])]}), conn.result
    finally:
        conn.unbind()


async def test_a_directory_user_signs_in_gets_the_strongest_mapped_role_and_it_follows_the_groups(
    slapd: d.Slapd, services: Services
) -> None:
    cfg = directory(slapd.url)
    first = await login(services, cfg, "alice", d.USER_PASSWORD)
    assert first.refused is None and first.token
    alice = await account(services, "alice")
    assert alice is not None and alice.auth_source == "ldap"
    assert alice.role == m.Role.ADMIN  # admins + operators: the strongest wins
    assert alice.display_name == "Alice Directory" and alice.email == "alice@omni.test"
    assert not auth.verify_password(alice.password_hash, d.USER_PASSWORD)  # no local password kept
    async with services.db.transaction() as s:
        actions = set(await s.scalars(select(m.AuditLog.action).where(m.AuditLog.user_id == alice.id)))
    assert {"user.ldap_create", "auth.login"} <= actions

    set_group(slapd, d.ADMINS, "alice", member=False)
    try:
        again = await login(services, cfg, "alice", d.USER_PASSWORD)
        assert again.refused is None
        alice = await account(services, "alice")
        assert alice is not None and alice.role == m.Role.OPERATOR  # same account, role from the groups
    finally:
        set_group(slapd, d.ADMINS, "alice", member=True)

    bob = await login(services, cfg, "Bob", d.USER_PASSWORD)  # the directory's spelling names the account
    assert bob.user is not None and bob.user.username == "bob" and bob.user.role == m.Role.SUPERVISOR

    async with services.db.transaction() as s:  # a reset link would set a password never asked for
        admin = f.who(await f.user(s, "resetter", m.Role.ADMIN))
        with pytest.raises(InvalidInput, match="directory"):
            await passwords.check_issue_reset(s, admin, alice.id)


async def test_the_directory_refuses_wrong_passwords_unknown_names_and_users_in_no_mapped_group(
    slapd: d.Slapd, services: Services
) -> None:
    cfg = directory(slapd.url)
    wrong = await login(services, cfg, "olga", "not-her-password")
    assert wrong.refused is not None and wrong.refused.message == "wrong username or password"
    assert (await login(services, cfg, "nobody", d.USER_PASSWORD)).refused is not None
    outsider = await login(services, cfg, "nina", d.USER_PASSWORD)
    assert outsider.refused is not None and "no group allowed" in outsider.refused.message
    assert await account(services, "nina") is None
    # A filter metacharacter is escaped, not a wildcard matching every person.
    assert (await login(services, cfg, "*", d.USER_PASSWORD)).refused is not None
    # With a default role, the outsider may sign in as that role.
    with_default = cfg.model_copy(update={"default_role": "auditor"})
    nina = await login(services, with_default, "nina", d.USER_PASSWORD)
    assert nina.user is not None and nina.user.role == m.Role.AUDITOR


async def test_empty_password_is_not_an_anonymous_bind_that_signs_anyone_in(
    slapd: d.Slapd, services: Services
) -> None:
    """RFC 4513: a bind with a DN and no password is an unauthenticated bind that succeeds."""
    result = await login(services, directory(slapd.url), "olga", "")
    assert result.refused is not None and result.token is None


async def test_local_accounts_keep_their_password_and_a_deactivated_directory_account_stays_out(
    slapd: d.Slapd, services: Services
) -> None:
    cfg = directory(slapd.url)
    async with services.db.transaction() as s:
        await f.user(s, "olga", m.Role.OPERATOR)  # a local account with the directory's name
    local = await login(services, cfg, "olga", f.PASSWORD)
    assert local.refused is None and local.user is not None and local.user.auth_source == "local"
    assert (await login(services, cfg, "olga", d.USER_PASSWORD)).refused is not None  # no takeover

    assert (await login(services, cfg, "bob", d.USER_PASSWORD)).refused is None
    async with services.db.transaction() as s:
        bob = await s.scalar(select(m.User).where(m.User.username == "bob"))
        assert bob is not None
        bob.is_active = False
    assert (await login(services, cfg, "bob", d.USER_PASSWORD)).refused is not None


async def test_an_admin_checks_what_a_username_gets_without_signing_anyone_in(
    slapd: d.Slapd, services: Services
) -> None:
    cfg = directory(slapd.url)
    async with services.db.transaction() as s:
        root = f.who(await f.user(s, "checker", m.Role.ADMIN))
        sup = f.who(await f.user(s, "checker-sup", m.Role.SUPERVISOR))
    users_before = await user_count(services)
    seen = await ldap_auth.check_lookup_user(root, cfg, "olga")
    assert seen.reachable and seen.user is not None
    assert (seen.user.dn, seen.user.role) == (f"uid=olga,{d.PEOPLE}", m.Role.OPERATOR)
    assert d.OPERATORS in seen.user.groups
    nina = await ldap_auth.check_lookup_user(root, cfg, "nina")
    assert nina.user is not None and nina.user.role is None  # would be refused: in no mapped group
    assert (await ldap_auth.check_lookup_user(root, cfg, "nobody")).user is None
    assert await user_count(services) == users_before  # nobody was signed in or created
    with pytest.raises(PermissionDenied):
        await ldap_auth.check_lookup_user(sup, cfg, "olga")
    with pytest.raises(InvalidInput):
        await ldap_auth.check_lookup_user(root, LdapSettings(), "olga")  # not configured


async def test_directory_down_local_admin_still_signs_in_and_directory_users_are_told_why(
    sqlite_template: Path,
    tmp_path: Path,
) -> None:
    """The local admin fallback, through the sign-in form: nothing listens on the directory port."""
    settings = Settings(
        data_dir=tmp_path, secret_key="s" * 40, ldap=directory(f"ldap://127.0.0.1:{free_port()}")
    )
    copy_sqlite(sqlite_template, settings.data_dir)
    server = LiveServer(settings)
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "root", m.Role.ADMIN)
        async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as browser:
            refused = await post_login(browser, {"username": "alice", "password": d.USER_PASSWORD})
            assert refused.status_code == 401
            assert "The sign-in directory (LDAP)" in refused.text
            admin = await post_login(browser, {"username": "root", "password": f.PASSWORD})
            assert admin.status_code in (302, 303) and "omni_session" in browser.cookies
        async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as api:
            rest = await api.post("/api/v1/auth/login", json={"username": "alice", "password": "x" * 8})
            assert rest.status_code == 401 and rest.json()["error"] == "directory_unavailable"
            signed = await api.post("/api/v1/auth/login", json={"username": "root", "password": f.PASSWORD})
            assert signed.status_code == 200, signed.text
            check = await api.post("/api/v1/admin/ldap/check", json={"username": "alice"})
            assert check.status_code == 200, check.text
            assert check.json()["reachable"] is False and "can't be reached" in check.json()["detail"]
            empty = await api.post("/api/v1/admin/ldap/check", json={"username": "  "})
            assert empty.status_code == 422 and empty.json()["field"] == "username"
    finally:
        await server.stop()
    spelled = d.SUPERVISORS.upper().replace(",", ", ")  # as AD prints it, or an admin types it
    assert ldap_auth.role_for(directory("ldap://x"), (spelled,)) == m.Role.SUPERVISOR
