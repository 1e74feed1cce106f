"""Admin section for the retention policies (``omni.domain.retention``): how many days messages,
attachments, recordings and the audit log are kept, at ``/admin/retention/1``. An empty field
keeps that kind forever; the list shows what the last scheduled pass removed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain import retention
from omni.domain.errors import NotFound
from omni.web.admin.forms import ADMIN, AUDITOR, Cell, Field, Section, Table


class Retention(Section):
    slug = "retention"
    title = "adm.retention"
    view_roles = (ADMIN, AUDITOR)
    create_roles = ()
    can_delete = False

    def heading(self, item: Any) -> str:
        return self.t("adm.retention")

    def _days(self, days: int | None) -> str:
        return self.t("adm.retention.forever") if days is None else self.t("adm.retention.days", days=days)

    async def table(self, session: AsyncSession) -> Table:
        policies, row = await retention.get_policies(session)
        counts = dict(row.last_counts or {}) if row else {}
        last = (
            row.last_run_at.strftime("%Y-%m-%d %H:%M UTC")
            if row is not None and row.last_run_at is not None
            else self.t("adm.retention.never_ran")
        )
        rows = [
            [
                Cell(self.t(f"adm.retention.{kind}"), self.href(retention.ROW_ID)),
                Cell(self._days(policies.days(kind))),
                Cell(str(counts.get(kind, "—")) if policies.days(kind) is not None else "—"),
            ]
            for kind in retention.KINDS
        ]
        cols = [
            self.t("adm.retention.kind"),
            self.t("adm.retention.keep"),
            self.t("adm.retention.last", when=last),
        ]
        return Table(cols, rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        if item_id != retention.ROW_ID:
            raise NotFound("no retention settings {item_id}", item_id=item_id)
        return (await retention.get_policies(session))[0]

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            Field(f"{kind}_days", t(f"adm.retention.{kind}"), "number", nullable=True,
                  help=t(f"adm.retention.{kind}_help", min=retention.MIN_DAYS, max=retention.MAX_DAYS))
            for kind in retention.KINDS
        ]  # fmt: skip

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        policies = (
            item if isinstance(item, retention.Policies) else (await retention.get_policies(session))[0]
        )
        return {f"{kind}_days": policies.days(kind) for kind in retention.KINDS}

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        await retention.check_update_policies(session, self.who, data)
        return retention.ROW_ID
