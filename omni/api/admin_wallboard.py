"""REST of the wallboard tokens and the install settings (admins), in ``omni.api.admin`` style.

* ``GET/POST /api/v1/admin/wallboards``, ``GET/DELETE /api/v1/admin/wallboards/{id}``: list
  (with last use), create (the only answer that carries the secret and the screen's link),
  read, revoke (``DELETE`` keeps the row, marked revoked, for the list and the audit log).
* ``GET/PUT /api/v1/admin/install``: time zone, short-abandon grace, business days
  (``omni.domain.reports.config``); ``PUT`` changes what it is given.

Handlers only translate HTTP to the domain, which checks the role and the input.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post, put
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import RowId, given
from omni.api.admin_responses import READ, REMOVE, WRITE, out, out_list
from omni.api.contracts import Int32, IntId, Name
from omni.api.core import DEPS
from omni.db import models as m
from omni.domain import totp, wallboard
from omni.domain.auth import Principal, check_role
from omni.domain.reports import config
from omni.services import Services

Weekday = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
"""0 = Monday … 6 = Sunday; the domain names the field when a day is out of range."""


class WallboardCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    queue_ids: Annotated[list[IntId], msgspec.Meta(max_length=1000)] | None = None
    """The queues the screen shows; omitted or ``null``: every queue."""
    expires_at: datetime | None = None
    """ISO 8601 with a zone; omitted: never expires."""
    sl_target_pct: Int32 = 80


class WallboardOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    queue_ids: list[int] | None
    sl_target_pct: int
    expires_at: str | None
    created_at: str | None
    created_by: int | None
    last_used_at: str | None
    revoked_at: str | None
    active: bool


class WallboardCreated(WallboardOut, kw_only=True):
    token: str
    """The secret, shown this once; only its digest is stored."""
    url: str
    """The screen's address (``/wallboard?token=…``) on this install."""


class InstallIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timezone: Name | UnsetType = UNSET
    short_abandon_seconds: Int32 | UnsetType = UNSET
    business_days: Annotated[list[Weekday], msgspec.Meta(max_length=7)] | UnsetType = UNSET
    totp_roles: Annotated[list[Name], msgspec.Meta(max_length=10)] | UnsetType = UNSET
    """Roles that must sign in with a second factor (TOTP)."""


class InstallOut(msgspec.Struct, kw_only=True):
    timezone: str
    short_abandon_seconds: int
    business_days: list[int]
    totp_roles: list[str]


def _install(cfg: config.ReportConfig, totp_roles: list[str]) -> InstallOut:
    return InstallOut(
        timezone=cfg.timezone,
        short_abandon_seconds=cfg.short_abandon_seconds,
        business_days=list(cfg.business_days),
        totp_roles=totp_roles,
    )


def wallboard_url(services: Services, secret: str) -> str:
    return f"{services.settings.public_base_url.rstrip('/')}/wallboard?token={secret}"


class WallboardController(Controller):
    path = "/api/v1/admin/wallboards"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_wallboards(self, who: Principal, services: Services) -> list[WallboardOut]:
        async with services.db.transaction() as session:
            rows = await wallboard.list_tokens(session, who)
            return out_list([wallboard.token_dict(r) for r in rows], WallboardOut)

    @post("/", responses=WRITE)
    async def create_wallboard(
        self, who: Principal, services: Services, data: WallboardCreate
    ) -> WallboardCreated:
        sent = given(data)
        sent["expires_at"] = data.expires_at  # the aware datetime itself, not its text
        async with services.db.transaction() as session:
            made = await wallboard.check_create_token(session, who, sent)
            body = wallboard.token_dict(made.row) | {
                "token": made.secret,
                "url": wallboard_url(services, made.secret),
            }
            return out(body, WallboardCreated)

    @get("/{wallboard_id:int}", responses=READ)
    async def get_wallboard(self, who: Principal, services: Services, wallboard_id: RowId) -> WallboardOut:
        async with services.db.transaction() as session:
            return out(
                wallboard.token_dict(await wallboard.access_token(session, who, wallboard_id)), WallboardOut
            )

    @delete("/{wallboard_id:int}", status_code=200, responses=REMOVE)
    async def revoke_wallboard(self, who: Principal, services: Services, wallboard_id: RowId) -> WallboardOut:
        async with services.db.transaction() as session:
            row = await wallboard.check_revoke_token(session, who, wallboard_id)
            return out(wallboard.token_dict(row), WallboardOut)


class InstallController(Controller):
    path = "/api/v1/admin/install"
    dependencies = DEPS

    @get("/", responses=READ)
    async def get_install(self, who: Principal, services: Services) -> InstallOut:
        check_role(who, m.Role.ADMIN, m.Role.AUDITOR)
        async with services.db.transaction() as session:
            return _install(await config.get_config(session), await totp.required_roles(session))

    @put("/", responses=WRITE)
    async def update_install(self, who: Principal, services: Services, data: InstallIn) -> InstallOut:
        sent = given(data)
        roles = sent.pop("totp_roles", None)
        async with services.db.transaction() as session:
            if sent or roles is None:
                await config.check_update_config(
                    session,
                    who,
                    timezone=sent.get("timezone"),
                    short_abandon_seconds=sent.get("short_abandon_seconds"),
                    business_days=sent.get("business_days"),
                )
            if roles is not None:
                await totp.check_set_required_roles(session, who, roles)
            return _install(await config.get_config(session), await totp.required_roles(session))


CONTROLLERS: list[type[Controller]] = [WallboardController, InstallController]
