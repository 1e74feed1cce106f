"""Admin sections for routing: queues, operator statuses and result codes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin, visibility
from omni.domain.errors import NotFound
from omni.web.admin.forms import (
    ADMIN,
    AUDITOR,
    LIMIT,
    SUPERVISOR,
    Cell,
    Field,
    Section,
    Table,
    model_defaults,
    queue_options,
    scenario_keys,
    yes_no,
)
from omni.web.i18n import enum_label, enum_options


class Queues(Section):
    slug = "queues"
    title = "adm.queues"
    edit_roles = (ADMIN, SUPERVISOR)

    async def table(self, session: AsyncSession) -> Table:
        queues = await admin.queue_dicts(session, await admin.list_queues(session, self.who, limit=LIMIT))
        groups: dict[int, str] = {
            gid: name for gid, name in (await session.execute(select(m.Group.id, m.Group.name))).all()
        }
        rows = [
            [
                Cell(q["name"], self.href(q["id"])),
                Cell(groups.get(q["group_id"], "") if q["group_id"] else ""),
                Cell(enum_label(self.ctx.lang, "strategy", q["strategy"])),
                Cell(str(len(q["members"]))),
                Cell(str(q["sla_seconds"])),
            ]
            for q in queues
        ]
        cols = ["adm.f.name", "adm.f.group_id", "adm.f.strategy", "adm.f.members", "adm.f.sla_seconds"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.access_queue(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        none = [("", t("adm.none"))]
        groups = [(str(g.id), g.name) for g in await admin.list_groups(session, self.who, limit=LIMIT)]
        if item is not None and item.group_id is not None and str(item.group_id) not in dict(groups):
            group = await session.get(m.Group, item.group_id)  # outside a supervisor's scope
            groups = [(str(item.group_id), group.name if group else str(item.group_id)), *groups]
        queues = [
            (v, n) for v, n in await queue_options(session, self.who) if item is None or v != str(item.id)
        ]
        codes = [
            (str(c.id), f"{c.name_in(self.ctx.lang)} ({c.code})")
            for c in await admin.list_result_codes(session, self.who, limit=LIMIT)
            if c.active
        ]
        operators = [
            (str(u.id), u.display_name or u.username)
            for u in await admin.list_users(session, self.who, limit=LIMIT)
            if u.role == m.Role.OPERATOR
        ]
        return [
            Field("name", t("adm.f.name"), required=True),
            Field(
                "group_id",
                t("adm.f.group_id"),
                "select",
                none + groups,
                numeric=True,
                readonly=not self.is_admin,
            ),
            Field(
                "strategy", t("adm.f.strategy"), "select", enum_options(self.ctx.lang, "strategy", m.Strategy)
            ),
            Field("priority", t("adm.f.priority"), "number"),
            Field("queue_timeout_seconds", t("adm.f.queue_timeout_seconds"), "number"),
            Field("operator_timeout_seconds", t("adm.f.operator_timeout_seconds"), "number"),
            Field("sla_seconds", t("adm.f.sla_seconds"), "number"),
            Field("wrap_up_seconds", t("adm.f.wrap_up_seconds"), "number"),
            Field("idle_close_minutes", t("adm.f.idle_close_minutes"), "number"),
            Field("missed_offers_pause", t("adm.f.missed_offers_pause"), "number"),
            Field("auto_accept", t("adm.f.auto_accept"), "checkbox"),
            Field("manual_pick", t("adm.f.manual_pick"), "checkbox"),
            Field("chats_block_calls", t("adm.f.chats_block_calls"), "checkbox"),
            Field("affinity_seconds", t("adm.f.affinity_seconds"), "number", help=t("adm.affinity_help")),
            Field("affinity_skip_ivr", t("adm.f.affinity_skip_ivr"), "checkbox"),
            Field("blend_notice", t("adm.f.blend_notice"), "checkbox"),
            Field(
                "blend_reoffer_seconds", t("adm.f.blend_reoffer_seconds"), "number", help=t("adm.blend_help")
            ),
            Field(
                "overflow_action",
                t("adm.f.overflow_action"),
                "select",
                enum_options(self.ctx.lang, "overflow_action", admin.OVERFLOW_ACTIONS),
            ),
            Field("overflow_queue_id", t("adm.f.overflow_queue_id"), "select", none + queues, numeric=True),
            Field(
                "overflow_scenario",
                t("adm.f.overflow_scenario"),
                "select",
                none + [(k, k) for k in await scenario_keys(session)],
                help=t("adm.overflow_scenario_help"),
            ),
            Field(
                "default_result_code_id",
                t("adm.f.default_result_code_id"),
                "select",
                none + codes,
                numeric=True,
            ),
            Field("members", t("adm.f.members"), "multi", operators, numeric=True),
            Field("result_code_ids", t("adm.f.result_code_ids"), "checks", codes, numeric=True),
            Field("business_hours", t("adm.f.business_hours"), "json", help=t("adm.hours_help"), rows=5),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {**model_defaults(m.Queue), "members": [], "result_code_ids": [], "business_hours": None}
        body = await admin.queue_detail(session, item)
        body["members"] = [mm["user_id"] for mm in body["members"]]
        return body

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        members: list[int] = data.pop("members", [])
        codes: list[int] = data.pop("result_code_ids", [])
        default = data.pop("default_result_code_id", None)
        if item_id is None:
            queue = await admin.check_create_queue(session, self.who, data)
            current: dict[int, dict[str, Any]] = {}
        else:
            queue = await admin.check_update_queue(session, self.who, item_id, data)
            current = {mm["user_id"]: mm for mm in (await admin.queue_detail(session, queue))["members"]}
        # Members already in the queue keep their position and penalty; new ones go last.
        last = max((mm["position"] for mm in current.values()), default=-1)
        rows = []
        for uid in members:
            if uid in current:
                rows.append(
                    {"user_id": uid, "position": current[uid]["position"], "penalty": current[uid]["penalty"]}
                )
            else:
                last += 1
                rows.append({"user_id": uid, "position": last, "penalty": 0})
        await admin.check_set_queue_members(session, self.who, queue.id, {"members": rows})
        await admin.check_set_queue_result_codes(
            session, self.who, queue.id, {"result_code_ids": codes, "default_result_code_id": default}
        )
        return queue.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_delete_queue(session, self.who, item_id)

    async def visibility(self, session: AsyncSession, item: Any | None) -> tuple[str, bool] | None:
        if item is None:
            return self.t("adm.vis.queue_new"), False
        return self._seen_by(await visibility.supervisors_of_queue(session, item.id), "adm.vis.queue_nobody")


class Statuses(Section):
    slug = "statuses"
    title = "adm.statuses"
    view_roles = (ADMIN, SUPERVISOR, AUDITOR)

    async def table(self, session: AsyncSession) -> Table:
        rows = [
            [
                Cell(s.code, self.href(s.id)),
                Cell(s.name),
                Cell(s.name_ru),
                Cell(enum_label(self.ctx.lang, "status_kind", s.kind)),
                Cell(s.colour, colour=s.colour),
                Cell(yes_no(self.ctx, s.selectable)),
                Cell(yes_no(self.ctx, s.is_system)),
            ]
            for s in await admin.list_statuses(session, self.who, limit=LIMIT)
        ]
        cols = ["code", "name", "name_ru", "kind", "colour", "selectable", "system"]
        return Table([self.t(f"adm.f.{c}") for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        row = await session.get(m.OperatorStatus, item_id)
        if row is None:
            raise NotFound("status {item_id} not found", item_id=item_id)
        return row

    def heading(self, item: Any) -> str:
        return str(item.code)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        system = bool(item is not None and item.is_system)
        kinds = enum_options(self.ctx.lang, "status_kind", admin.ADMIN_STATUS_KINDS)
        if item is not None and item.kind not in dict(kinds):
            kinds = [*enum_options(self.ctx.lang, "status_kind", [item.kind]), *kinds]
        return [
            Field("code", t("adm.f.code"), required=True, readonly=item is not None),
            Field("name", t("adm.f.name"), required=True),
            Field("name_ru", t("adm.f.name_ru")),
            Field("colour", t("adm.f.colour")),
            Field("kind", t("adm.f.kind"), "select", kinds, readonly=system),
            Field("receives_voice", t("adm.f.receives_voice"), "checkbox", readonly=system),
            Field("receives_chats", t("adm.f.receives_chats"), "checkbox", readonly=system),
            Field("takes_outbound", t("adm.f.takes_outbound"), "checkbox"),
            Field("productive", t("adm.f.productive"), "checkbox", readonly=system),
            Field("selectable", t("adm.f.selectable"), "checkbox", readonly=system),
            Field("max_duration_seconds", t("adm.f.max_duration_seconds"), "number", nullable=True),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {**model_defaults(m.OperatorStatus), "code": "", "name": "", "max_duration_seconds": None}
        return admin.status_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await admin.check_create_status(session, self.who, data)).id
        return (await admin.check_update_status(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_delete_status(session, self.who, item_id)


class ResultCodes(Section):
    slug = "result-codes"
    title = "adm.result_codes"
    view_roles = (ADMIN, SUPERVISOR, AUDITOR)
    delete_label = "adm.deactivate"

    async def table(self, session: AsyncSession) -> Table:
        rows = [
            [
                Cell(c.code, self.href(c.id)),
                Cell(c.name),
                Cell(c.name_ru),
                Cell(c.colour, colour=c.colour),
                Cell(yes_no(self.ctx, c.active)),
            ]
            for c in await admin.list_result_codes(session, self.who, limit=LIMIT)
        ]
        return Table([self.t(f"adm.f.{c}") for c in ("code", "name", "name_ru", "colour", "active")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        row = await session.get(m.ResultCode, item_id)
        if row is None:
            raise NotFound("result code {item_id} not found", item_id=item_id)
        return row

    def heading(self, item: Any) -> str:
        return str(item.code)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            Field("code", t("adm.f.code"), required=True),
            Field("name", t("adm.f.name"), required=True),
            Field("name_ru", t("adm.f.name_ru")),
            Field("colour", t("adm.f.colour")),
            Field("active", t("adm.f.active"), "checkbox"),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {**model_defaults(m.ResultCode), "code": "", "name": "", "name_ru": ""}
        return admin.result_code_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await admin.check_create_result_code(session, self.who, data)).id
        return (await admin.check_update_result_code(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_deactivate_result_code(session, self.who, item_id)
