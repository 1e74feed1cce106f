"""Admin section for chat service levels (``omni.domain.sla``) at ``/admin/sla``: one policy per
queue, the row id being the queue's id (``/admin/sla/<queue_id>``), the twin of
``PUT /api/v1/admin/sla/{queue_id}``. Supervisors see and edit the queues they supervise."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import sla
from omni.domain.errors import InvalidInput, NotFound
from omni.web.admin.forms import (
    ADMIN,
    SUPERVISOR,
    Cell,
    Field,
    Section,
    Table,
    queue_names,
    queue_options,
    yes_no,
)


class SlaPolicies(Section):
    slug = "sla"
    title = "adm.sla"
    view_roles = (ADMIN, SUPERVISOR)
    edit_roles = (ADMIN, SUPERVISOR)
    create_roles = (ADMIN, SUPERVISOR)
    delete_roles = (ADMIN, SUPERVISOR)

    def heading(self, item: Any) -> str:
        return self.t("adm.sla.heading", queue=getattr(item, "queue_name", ""))

    def _seconds(self, value: int) -> str:
        return "—" if value <= 0 else self.t("adm.sla.seconds", n=value)

    async def table(self, session: AsyncSession) -> Table:
        names = await queue_names(session)
        rows = [
            [
                Cell(names.get(p.queue_id, str(p.queue_id)), self.href(p.queue_id)),
                Cell(self._seconds(p.first_response_seconds)),
                Cell(self._seconds(p.next_response_seconds)),
                Cell(f"{p.warning_percent}%"),
                Cell(yes_no(self.ctx, p.active)),
                Cell(yes_no(self.ctx, p.transcript_at_close)),
            ]
            for p in await sla.list_policies(session, self.who)
        ]
        cols = [
            self.t("adm.f.queue_id"),
            self.t("adm.sla.first"),
            self.t("adm.sla.next"),
            self.t("adm.sla.warning"),
            self.t("adm.f.active"),
            self.t("adm.sla.transcript"),
        ]
        return Table(cols, rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        policy = next((p for p in await sla.list_policies(session, self.who) if p.queue_id == item_id), None)
        if policy is None:
            raise NotFound("queue {queue_id} has no service level", queue_id=item_id)
        queue = await session.get(m.Queue, item_id)
        policy.queue_name = queue.name if queue is not None else str(item_id)  # type: ignore[attr-defined]
        return policy

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        fields = [
            Field("first_response_seconds", t("adm.sla.first"), "number", help=t("adm.sla.first_help")),
            Field("next_response_seconds", t("adm.sla.next"), "number", help=t("adm.sla.next_help")),
            Field("warning_percent", t("adm.sla.warning"), "number", help=t("adm.sla.warning_help")),
            Field("active", t("adm.f.active"), "checkbox"),
            Field(
                "transcript_at_close", t("adm.sla.transcript"), "checkbox", help=t("adm.sla.transcript_help")
            ),
        ]
        if item is None:
            options = await queue_options(session, self.who)
            fields.insert(
                0, Field("queue_id", t("adm.f.queue_id"), "select", options, required=True, numeric=True)
            )
        return fields

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if isinstance(item, m.SlaPolicy):
            return sla.policy_dict(item)
        return {
            "queue_id": None,
            "first_response_seconds": 60,
            "next_response_seconds": 120,
            "warning_percent": 75,
            "active": True,
            "transcript_at_close": False,
        }

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        data = dict(data)
        queue_id = item_id if item_id is not None else data.pop("queue_id", None)
        if not isinstance(queue_id, int):
            raise InvalidInput("choose a queue", field="queue_id")
        await sla.check_save_policy(session, self.who, queue_id, data)
        return queue_id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await sla.check_delete_policy(session, self.who, item_id)
