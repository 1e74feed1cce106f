"""Admin section for conversation labels (issue 18, docs/organise.md): global ones (admins)
and those of a queue (admins, and supervisors for the queues in their scope)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain import labels
from omni.web.admin.forms import ADMIN, LIMIT, SUPERVISOR, Cell, Field, Table, queue_names
from omni.web.admin.workspace import ScopedQueueItems


class Labels(ScopedQueueItems):
    slug = "labels"
    title = "adm.labels"
    view_roles = (ADMIN, SUPERVISOR)  # type: ignore[assignment]  # narrower than the base: auditors see no labels

    def heading(self, item: Any) -> str:
        return str(item.name)

    async def table(self, session: AsyncSession) -> Table:
        names = await queue_names(session)
        rows = [
            [Cell(x.name, self.href(x.id)), Cell(x.color), self._queue_cell(names, x.queue_id)]
            for x in (await labels.list_labels(session, self.who))[:LIMIT]
        ]
        return Table([self.t(f"adm.f.{c}") for c in ("name", "colour", "queue_id")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await labels.get_label(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        out = [
            Field("name", t("adm.f.name"), required=True),
            Field("color", t("adm.f.colour"), required=True, help="#1e88e5"),
        ]
        if item is None:  # the queue is chosen once: labelled conversations must keep fitting
            out.insert(0, await self._queue_field(session))
        return out

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"queue_id": None, "name": "", "color": "#64748b"}
        return labels.label_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await labels.check_create_label(session, self.who, data)).id
        data = {k: v for k, v in data.items() if k != "queue_id"}
        return (await labels.check_update_label(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await labels.check_delete_label(session, self.who, item_id)
