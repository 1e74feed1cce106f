"""Admin sections for the wall screen and the install: wallboard links, install settings.

Wallboards: create (the link is shown once, right after creation: ``revealed``), list with
last use and state, revoke (the row stays, marked revoked). A token's settings don't change
after creation: make a new link and revoke the old one.

Install settings: the one row of ``omni.domain.reports.config`` (time zone, short-abandon
grace, business days) at ``/admin/install/1``; errors show next to their fields.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import totp, wallboard
from omni.domain.errors import NotFound
from omni.domain.reports import config
from omni.web.admin.forms import ADMIN, AUDITOR, Cell, Field, Section, Table, queue_names

WEEKDAYS = range(7)


class Wallboards(Section):
    slug = "wallboards"
    title = "adm.wallboards"
    view_roles = (ADMIN,)
    delete_label = "adm.wb.revoke"

    def heading(self, item: Any) -> str:
        return str(item.name)

    def _state(self, row: m.WallboardToken) -> Cell:
        if row.revoked_at is not None:
            return Cell(self.t("adm.wb.revoked"), colour="#9e9e9e")
        if not wallboard.is_live(row, datetime.now(UTC)):
            return Cell(self.t("adm.wb.expired"), colour="#9e9e9e")
        return Cell(self.t("adm.wb.active"), colour="#2e7d32")

    def _when(self, value: datetime | None, empty: str) -> str:
        if value is None:
            return self.t(empty)
        return value.astimezone(self._tz).strftime("%Y-%m-%d %H:%M")

    async def _zone(self, session: AsyncSession) -> None:
        self._tz = (await config.get_config(session)).tz

    async def table(self, session: AsyncSession) -> Table:
        await self._zone(session)
        names = await queue_names(session)
        rows = []
        for r in await wallboard.list_tokens(session, self.who):
            queues = (
                self.t("adm.all_queues")
                if r.queue_ids is None
                else ", ".join(names.get(int(q), str(q)) for q in r.queue_ids)
            )
            rows.append(
                [
                    Cell(r.name, self.href(r.id)),
                    Cell(queues),
                    Cell(self._when(r.expires_at, "adm.wb.never")),
                    Cell(self._when(r.last_used_at, "adm.wb.unused")),
                    self._state(r),
                ]
            )
        cols = ["adm.f.name", "adm.f.queues", "adm.f.expires_at", "adm.f.last_used_at", "adm.f.state"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await wallboard.access_token(session, self.who, item_id)

    def editable(self, item: Any | None) -> bool:
        """New links are made here; an existing one can only be revoked (once)."""
        if item is not None and item.revoked_at is not None:
            return False
        return super().editable(item)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        await self._zone(session)
        t = self.t
        fixed = item is not None
        queues = [(str(k), v) for k, v in sorted((await queue_names(session)).items(), key=lambda kv: kv[1])]
        return [
            Field("name", t("adm.f.name"), required=True, readonly=fixed),
            Field("queue_ids", t("adm.f.queues"), "checks", queues, numeric=True, readonly=fixed,
                  help=t("adm.wb.queues_help")),
            Field("sl_target_pct", t("adm.f.sl_target_pct"), "number", readonly=fixed,
                  help=t("adm.wb.sl_help", margin=wallboard.SL_AMBER_MARGIN)),
            Field("expires_at", t("adm.f.expires_at"), nullable=True, readonly=fixed,
                  help=t("adm.wb.expires_help", zone=str(self._tz))),
        ]  # fmt: skip

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"name": "", "queue_ids": [], "sl_target_pct": 80, "expires_at": None}
        return {
            "name": item.name,
            "queue_ids": list(item.queue_ids or []),
            "sl_target_pct": item.sl_target_pct,
            "expires_at": self._when(item.expires_at, "adm.wb.never") if item.expires_at else None,
        }

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is not None:  # nothing of a link changes; the form shows it read-only
            return (await wallboard.access_token(session, self.who, item_id)).id
        await self._zone(session)
        data = dict(data)
        data["queue_ids"] = data.get("queue_ids") or None  # none ticked: every queue
        expires = data.get("expires_at")
        if expires:
            # A wall clock time in the install's zone; what doesn't parse goes on to the domain,
            # which refuses it together with every other field's problem.
            with contextlib.suppress(ValueError):
                when = datetime.fromisoformat(str(expires).strip().replace(" ", "T"))
                data["expires_at"] = when if when.tzinfo else when.replace(tzinfo=self._tz)
        made = await wallboard.check_create_token(session, self.who, data)
        url = f"{self.services.settings.public_base_url.rstrip('/')}/wallboard?token={made.secret}"
        self.revealed = {"wallboard_link": url}
        return made.row.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await wallboard.check_revoke_token(session, self.who, item_id)


class Install(Section):
    slug = "install"
    title = "adm.install"
    view_roles = (ADMIN, AUDITOR)
    create_roles = ()
    can_delete = False

    def heading(self, item: Any) -> str:
        return self.t("adm.install")

    async def table(self, session: AsyncSession) -> Table:
        cfg = await config.get_config(session)
        days = ", ".join(self.t(f"adm.day.{d}") for d in cfg.business_days)
        row = [
            Cell(cfg.timezone, self.href(config.ROW_ID)),
            Cell(str(cfg.short_abandon_seconds)),
            Cell(days),
        ]
        cols = ["adm.f.timezone", "adm.f.short_abandon_seconds", "adm.f.business_days"]
        return Table([self.t(c) for c in cols], [row])

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        if item_id != config.ROW_ID:
            raise NotFound("no install settings {item_id}", item_id=item_id)
        return await config.get_config(session)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            Field("timezone", t("adm.f.timezone"), "select", [(z, z) for z in config.zone_names()],
                  help=t("adm.install.timezone_help")),
            Field("short_abandon_seconds", t("adm.f.short_abandon_seconds"), "number",
                  help=t("adm.install.grace_help")),
            Field("business_days", t("adm.f.business_days"), "checks",
                  [(str(d), t(f"adm.day.{d}")) for d in WEEKDAYS], numeric=True),
            Field("totp_roles", t("adm.f.totp_roles"), "checks",
                  [(r.value, t(f"adm.role.{r.value}")) for r in m.Role], help=t("adm.install.totp_help")),
        ]  # fmt: skip

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        cfg = item if isinstance(item, config.ReportConfig) else await config.get_config(session)
        return {
            "timezone": cfg.timezone,
            "short_abandon_seconds": cfg.short_abandon_seconds,
            "business_days": list(cfg.business_days),
            "totp_roles": await totp.required_roles(session),
        }

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        await config.check_update_config(
            session,
            self.who,
            timezone=data.get("timezone"),
            short_abandon_seconds=data.get("short_abandon_seconds"),
            business_days=data.get("business_days") if "business_days" in data else None,
        )
        await totp.check_set_required_roles(session, self.who, list(data.get("totp_roles") or []))
        return config.ROW_ID
