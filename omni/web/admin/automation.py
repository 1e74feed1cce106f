"""Admin sections for macros, automation rules (with the log of their runs) and operator
scripts with fields and POSTs (issue 18). Actions and conditions are edited as JSON (the
registry of ``omni.domain.automation.actions`` grows with other features' kinds); a refusal
names the action or condition it is about next to the field."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain.automation import ACTIONS, TRIGGERS, macros, rules, scripts
from omni.domain.automation.actions import MACRO, RULE
from omni.domain.errors import NotFound
from omni.web.admin.forms import ADMIN, AUDITOR, LIMIT, Cell, Field, Section, Table, queue_names, yes_no
from omni.web.admin.workspace import ScopedQueueItems


def _kinds(where: str) -> str:
    return ", ".join(k for k, spec in ACTIONS.items() if where in spec.where)


class Macros(ScopedQueueItems):
    slug = "macros"
    title = "adm.macros"

    async def table(self, session: AsyncSession) -> Table:
        names = await queue_names(session)
        rows = [
            [
                Cell(r.name, self.href(r.id)),
                self._queue_cell(names, r.queue_id),
                Cell(str(len(r.actions or []))),
                Cell(yes_no(self.ctx, r.active)),
            ]
            for r in await macros.list_macros(session, self.who, limit=LIMIT)
        ]
        return Table(
            [self.t(c) for c in ("adm.f.name", "adm.f.queue_id", "adm.f.actions", "adm.f.active")], rows
        )

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await macros.access_macro(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            await self._queue_field(session),
            Field("name", t("adm.f.name"), required=True),
            Field(
                "actions",
                t("adm.f.actions"),
                "json",
                help=t("adm.macro_actions_help", kinds=_kinds(MACRO)),
                rows=8,
            ),
            Field("active", t("adm.f.active"), "checkbox"),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"queue_id": None, "name": "", "actions": [], "active": True}
        return macros.macro_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await macros.check_create_macro(session, self.who, data)).id
        return (await macros.check_update_macro(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await macros.check_delete_macro(session, self.who, item_id)


class AutomationRules(Section):
    slug = "automation-rules"
    title = "adm.rules"
    view_roles = (ADMIN, AUDITOR)

    async def table(self, session: AsyncSession) -> Table:
        rows = [
            [
                Cell(r.name, self.href(r.id)),
                Cell(r.event),
                Cell(str(r.position)),
                Cell(yes_no(self.ctx, r.active)),
            ]
            for r in await rules.list_rules(session, self.who, limit=LIMIT)
        ]
        cols = ("adm.f.name", "adm.f.event", "adm.f.position", "adm.f.active")
        return Table(
            [self.t(c) for c in cols], rows, links=[Cell(self.t("adm.rule_runs"), "/admin/rule-runs")]
        )

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await rules.access_rule(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            Field("name", t("adm.f.name"), required=True),
            Field("event", t("adm.f.event"), "select", [(k, k) for k in TRIGGERS]),
            Field("conditions", t("adm.f.conditions"), "json", help=t("adm.rule_conditions_help"), rows=6),
            Field(
                "actions",
                t("adm.f.actions"),
                "json",
                help=t("adm.rule_actions_help", kinds=_kinds(RULE)),
                rows=8,
            ),
            Field("position", t("adm.f.position"), "number"),
            Field("active", t("adm.f.active"), "checkbox"),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {
                "name": "",
                "event": "message_in",
                "conditions": {},
                "actions": [],
                "position": 0,
                "active": True,
            }
        return rules.rule_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if data.get("conditions") is None:
            data["conditions"] = {}
        if item_id is None:
            return (await rules.check_create_rule(session, self.who, data)).id
        return (await rules.check_update_rule(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await rules.check_delete_rule(session, self.who, item_id)


class RuleRuns(Section):
    """What each rule did: read-only, newest first."""

    slug = "rule-runs"
    title = "adm.rule_runs"
    view_roles = (ADMIN, AUDITOR)
    create_roles = ()
    edit_roles = ()
    can_delete = False

    async def table(self, session: AsyncSession) -> Table:
        names = {r.id: r.name for r in await rules.list_rules(session, self.who, limit=LIMIT)}
        rows = [
            [
                Cell(str(run.created_at.strftime("%Y-%m-%d %H:%M:%S"))),
                Cell(names.get(run.rule_id, str(run.rule_id)), f"/admin/automation-rules/{run.rule_id}"),
                Cell(str(run.conversation_id or "")),
                Cell(", ".join(run.done or [])),
                Cell(
                    run.state + (f": {run.error}" if run.error else ""),
                    colour="#c62828" if run.state == "failed" else "",
                ),
            ]
            for run in await rules.list_rule_runs(session, self.who, limit=200)
        ]
        cols = ("adm.f.at", "adm.f.rule", "adm.f.conversation", "adm.f.done", "adm.f.state")
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        raise NotFound("rule runs are read in the list")


class OperatorScripts(ScopedQueueItems):
    slug = "operator-scripts"
    title = "adm.operator_scripts"

    async def table(self, session: AsyncSession) -> Table:
        names = await queue_names(session)
        rows = [
            [
                Cell(r.name, self.href(r.id)),
                self._queue_cell(names, r.queue_id),
                Cell(", ".join(r.fields or [])),
                Cell(" / ".join(u for u in (r.start_url, r.close_url) if u)),
            ]
            for r in await scripts.list_scripts(session, self.who, limit=LIMIT)
        ]
        cols = ("adm.f.name", "adm.f.queue_id", "adm.f.fields", "adm.f.urls")
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await scripts.access_script(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            await self._queue_field(session),
            Field("name", t("adm.f.name"), required=True),
            Field(
                "body",
                t("adm.f.body"),
                "textarea",
                required=True,
                help=t("adm.placeholders", names="{{contact.name}}, {{operator.name}}, {{queue.name}}"),
                rows=8,
            ),
            Field("fields", t("adm.f.fields"), "lines", help=t("adm.script_fields_help")),
            Field("start_url", t("adm.f.start_url"), help=t("adm.script_url_help")),
            Field("close_url", t("adm.f.close_url"), help=t("adm.script_url_help")),
            Field("active", t("adm.f.active"), "checkbox"),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {
                "queue_id": None,
                "name": "",
                "body": "",
                "fields": [],
                "start_url": "",
                "close_url": "",
                "active": True,
            }
        return scripts.script_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await scripts.check_create_script(session, self.who, data)).id
        return (await scripts.check_update_script(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await scripts.check_delete_script(session, self.who, item_id)
