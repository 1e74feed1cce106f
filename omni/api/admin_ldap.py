"""REST for checking the LDAP sign-in settings (admins): ``POST /api/v1/admin/ldap/check``.

The settings themselves come from ``OMNI_LDAP_*`` (docs/auth.md); this looks a username up the
way a sign-in would — service account, user filter, groups, role mapping — without a password
and without touching any account, so an admin sees what a person will get before they sign in.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, post

from omni.api.admin_responses import READ
from omni.api.contracts import Name
from omni.api.core import DEPS
from omni.domain import ldap_auth
from omni.domain.auth import Principal
from omni.services import Services


class LdapCheckIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: Name
    """The sign-in name to look up (no password: nobody is signed in)."""


class LdapCheckOut(msgspec.Struct, kw_only=True):
    reachable: bool
    """Whether the directory answered and the service account could bind."""
    found: bool
    """Exactly one entry matches the user filter."""
    dn: str | None
    username: str | None
    """The account name a sign-in would use (``OMNI_LDAP_USERNAME_ATTRIBUTE``)."""
    display_name: str | None
    email: str | None
    groups: list[str]
    role: str | None
    """The role a sign-in would give; ``null``: in no mapped group, sign-in refused."""
    detail: str
    """Why the directory could not be asked; empty when it answered."""


class LdapController(Controller):
    path = "/api/v1/admin/ldap"
    dependencies = DEPS

    @post("/check", status_code=200, responses=READ)
    async def check_ldap(self, who: Principal, services: Services, data: LdapCheckIn) -> LdapCheckOut:
        result = await ldap_auth.check_lookup_user(who, services.settings.ldap, data.username)
        user = result.user
        return LdapCheckOut(
            reachable=result.reachable,
            found=user is not None,
            dn=user.dn if user else None,
            username=user.username if user else None,
            display_name=user.display_name if user else None,
            email=user.email if user else None,
            groups=list(user.groups) if user else [],
            role=user.role.value if user and user.role else None,
            detail=result.detail,
        )


CONTROLLERS: list[type[Controller]] = [LdapController]
