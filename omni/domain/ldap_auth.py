"""Sign-in against LDAP / Active Directory, with local accounts as the fallback.

Who is checked where (``check_credentials`` asks ``uses_directory`` first):
- a username with a **local** account (``auth_source = "local"``: everyone created by an admin
  or before LDAP was turned on) signs in with its local password, whether or not the directory
  is up — that is the fallback that lets an admin in while the directory is down;
- any other username is looked up in the directory: search (service account) → bind as the
  user's DN with the typed password → groups → role by ``OMNI_LDAP_ROLE_MAP``. The first
  successful sign-in creates the account (``auth_source = "ldap"``, no usable local
  password); every later one refreshes its role, name and e-mail from the directory, so
  removing someone from the mapped groups takes effect at their next sign-in.
An admin deactivating a directory account locks it out even if the directory still says yes.

ldap3 is synchronous: every directory round trip runs in a worker thread with the configured
timeout, so a hung server blocks one sign-in, never the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.errors import InvalidInput, NotAuthenticated
from omni.i18n import _l
from omni.settings import LdapSettings, normalize_dn

if TYPE_CHECKING:
    from omni.domain.auth import Principal

log = logging.getLogger(__name__)

LOCAL = "local"
LDAP = "ldap"
ROLE_STRENGTH = (m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.OPERATOR, m.Role.AUDITOR)
"""The strongest role wins when a user is in several mapped groups."""
NO_PASSWORD = "!ldap"  # noqa: S105 - a marker that is no hash, not a password
"""``password_hash`` of a directory account: no argon2 hash, so no local password matches."""
MAX_USERNAME = 64
UNREACHABLE = _l("the sign-in directory (LDAP) can't be reached; local accounts still work")


class DirectoryUnavailable(NotAuthenticated):
    """The directory can't be reached (or refuses the service account): directory users can't
    sign in now; local accounts still can."""

    code = "directory_unavailable"


class NoMappedGroup(NotAuthenticated):
    """The directory knows the user and the password, but no group of theirs maps to a role."""

    code = "no_mapped_group"


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    dn: str
    username: str
    display_name: str
    email: str | None
    groups: tuple[str, ...]
    role: m.Role | None
    """``None``: in no mapped group and no default role — not allowed to sign in."""


def role_for(cfg: LdapSettings, groups: tuple[str, ...]) -> m.Role | None:
    """The strongest role any of the groups maps to (DNs compared case-insensitively)."""
    keys = [normalize_dn(g) for g in groups]
    mapped = {m.Role(cfg.role_map[k]) for k in keys if k in cfg.role_map}
    for role in ROLE_STRENGTH:
        if role in mapped:
            return role
    return m.Role(cfg.default_role) if cfg.default_role else None


def _connection(cfg: LdapSettings, user: str | None, password: str | None) -> Connection:
    """An open connection to the first server that answers, in the configured order (a
    refused port fails at once; ldap3's ``ServerPool`` would pause 10 s between rounds)."""
    tls = Tls(ca_certs_file=cfg.ca_file or None, validate=ssl.CERT_REQUIRED)
    failure: LDAPException | None = None
    for url in cfg.url.split():
        conn = Connection(
            Server(url, connect_timeout=cfg.timeout_seconds, get_info=NONE, tls=tls),
            user=user,
            password=password,
            receive_timeout=max(1, math.ceil(cfg.timeout_seconds)),  # ldap3 packs it as an int
            raise_exceptions=False,
            read_only=True,
        )
        try:
            conn.open()
        except LDAPException as exc:
            failure = exc
            continue
        if cfg.start_tls and not conn.start_tls():
            conn.unbind()
            raise DirectoryUnavailable(UNREACHABLE)
        return conn
    raise failure or DirectoryUnavailable(UNREACHABLE)


def _first(entry: dict[str, Any], attribute: str) -> str:
    value = entry.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").strip()


def _find_user(cfg: LdapSettings, username: str, password: str | None) -> DirectoryUser | None:
    """The blocking part: search, bind as the user, read groups. ``None`` = wrong username or
    password (the directory says no); ``DirectoryUnavailable`` = no answer. ``password=None``
    only looks the user up (the admin's check), never binds as them."""
    unavailable = DirectoryUnavailable(UNREACHABLE)
    try:
        service = _connection(cfg, cfg.bind_dn or None, cfg.bind_password or None)
        try:
            if not service.bind():
                log.error("LDAP: the service account %r can't bind: %s", cfg.bind_dn, service.result)
                raise unavailable
            name_attr = cfg.display_name_attribute
            wanted = {name_attr, cfg.email_attribute, cfg.username_attribute, "memberOf"}
            attributes = [a for a in wanted if a]
            found = service.search(
                cfg.user_base_dn,
                cfg.user_filter.replace("{username}", escape_filter_chars(username)),
                search_scope=SUBTREE,
                attributes=attributes,
                size_limit=2,
            )
            if service.result.get("result") not in (0, 4, 32):  # success, size limit, no such object
                log.error("LDAP: user search failed: %s", service.result)
                raise unavailable
            entries = [e for e in (service.response or []) if e.get("type") == "searchResEntry"]
            if not found or len(entries) != 1:
                if len(entries) > 1:
                    log.warning("LDAP: %d entries match username %r; refused", len(entries), username)
                return None
            entry = entries[0]
            attrs: dict[str, Any] = dict(entry.get("attributes") or {})
            dn = str(entry["dn"])
            groups = [str(g) for g in (attrs.get("memberOf") or [])]
            if cfg.group_base_dn:
                service.search(
                    cfg.group_base_dn,
                    cfg.group_filter.replace("{dn}", escape_filter_chars(dn)),
                    search_scope=SUBTREE,
                    attributes=NONE_ATTRIBUTES,
                )
                groups += [str(e["dn"]) for e in service.response or [] if e.get("type") == "searchResEntry"]
        finally:
            service.unbind()
        if password is not None:
            as_user = _connection(cfg, dn, password)
            try:
                if not as_user.bind():
                    return None
            finally:
                as_user.unbind()
    except LDAPException as exc:
        log.warning("LDAP: %s unreachable: %s", cfg.url, exc)
        raise unavailable from exc
    canonical = _first(attrs, cfg.username_attribute) or username
    email = _first(attrs, cfg.email_attribute) or None
    unique_groups = tuple(dict.fromkeys(groups))
    return DirectoryUser(
        dn=dn,
        username=canonical[:MAX_USERNAME],
        display_name=_first(attrs, name_attr)[:128],
        email=email[:254] if email else None,
        groups=unique_groups,
        role=role_for(cfg, unique_groups),
    )


NONE_ATTRIBUTES = ["1.1"]
"""RFC 4511's "no attributes": only the DN of each group is wanted."""


async def authenticate(cfg: LdapSettings, username: str, password: str) -> DirectoryUser | None:
    """Check a username and password against the directory (in a worker thread).

    An empty password is refused here: LDAP treats a bind with a DN and no password as an
    anonymous bind that *succeeds* (RFC 4513 §5.1.2), which would let anyone in."""
    if not password or not username.strip() or len(username) > MAX_USERNAME:
        return None
    return await asyncio.to_thread(_find_user, cfg, username.strip(), password)


def uses_directory(cfg: LdapSettings | None, user: m.User | None) -> bool:
    """Whether this sign-in goes to the directory: it is configured and the username has no
    local account (see the module docstring)."""
    return cfg is not None and cfg.enabled and (user is None or user.auth_source == LDAP)


async def do_directory_login(
    session: AsyncSession, cfg: LdapSettings, username: str, password: str
) -> m.User:
    """Sign a directory user in: the local account is created or refreshed from the directory."""
    from omni.domain import audit  # audit imports auth, which imports this module
    from omni.domain.admin.changes import _changed
    from omni.domain.auth import Principal

    wrong = NotAuthenticated("wrong username or password")
    found = await authenticate(cfg, username, password)
    if found is None:
        raise wrong
    if found.role is None:
        raise NoMappedGroup(_l("your directory account is in no group allowed to sign in to Omni"))
    user = await session.scalar(select(m.User).where(m.User.username == found.username))
    if user is not None and user.auth_source != LDAP:
        # The directory's spelling of the name is a local account: never let the directory
        # take a local account over.
        raise wrong
    if user is None:
        user = m.User(
            username=found.username,
            display_name=found.display_name,
            email=found.email,
            password_hash=NO_PASSWORD,
            role=found.role,
            auth_source=LDAP,
        )
        session.add(user)
        await session.flush()
        audit.record(
            session,
            Principal.of(user),
            "user.ldap_create",
            object_type="user",
            object_id=user.id,
            data={"role": found.role.value, "dn": found.dn},
        )
        _changed(session, "user", user.id, "created")
        return user
    if not user.is_active:
        raise wrong
    changes: dict[str, Any] = {}
    if user.role != found.role:
        changes["role"] = found.role.value
    if found.display_name and user.display_name != found.display_name:
        changes["display_name"] = found.display_name
    if found.email and user.email != found.email:
        changes["email"] = found.email
    if changes:
        for key, value in changes.items():
            setattr(user, key, value)
        audit.record(
            session, Principal.of(user), "user.ldap_sync", object_type="user", object_id=user.id, data=changes
        )
        _changed(session, "user", user.id, "updated")
    return user


@dataclass(frozen=True, slots=True)
class DirectoryCheck:
    """What the directory says of a username, for an admin checking the settings."""

    reachable: bool
    user: DirectoryUser | None
    detail: str
    """Why the directory could not be asked (English; empty when it answered)."""


async def check_lookup_user(who: Principal, cfg: LdapSettings, username: str) -> DirectoryCheck:
    """Look a username up as a sign-in would (service account, groups, role), without a
    password and without creating or changing an account: an admin checks the filters and the
    group mapping before telling people to sign in."""
    from omni.domain.auth import check_role

    check_role(who, m.Role.ADMIN)
    if not cfg.enabled:
        raise InvalidInput("sign-in with LDAP is not configured (OMNI_LDAP_URL is empty)")
    name = username.strip()
    if not name:
        raise InvalidInput("{field} must not be empty", field="username")
    if len(name) > MAX_USERNAME:
        raise InvalidInput(
            "{field} must be at most {max_len} characters", max_len=MAX_USERNAME, field="username"
        )
    try:
        found = await asyncio.to_thread(_find_user, cfg, name, None)
    except DirectoryUnavailable as exc:
        return DirectoryCheck(reachable=False, user=None, detail=exc.message)
    return DirectoryCheck(reachable=True, user=found, detail="")
