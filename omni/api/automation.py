"""REST API of macros, automation rules (and their run log) and operator scripts (issue 18).

* ``/api/v1/macros``, ``/api/v1/operator-scripts``: admins (global or any queue) and supervisors
  (their queues); auditors read. ``/api/v1/automation-rules`` (+ ``/runs``): admins write,
  auditors read.
* In a conversation (whoever may open it): ``GET …/macros`` (what may run here),
  ``POST …/macros/{macro_id}/run``, ``GET …/script`` and ``POST …/script/{step}`` (``start`` |
  ``close``: the values fill the card; a URL of the step gets the filled fields, signed).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import Document, Limit, OptionalRowId, RowId, Script, given
from omni.api.admin_responses import OK, READ, REMOVE, WRITE, OkOut, out, out_list
from omni.api.contracts import Id, Name
from omni.api.core import DEPS
from omni.domain.auth import Principal
from omni.domain.automation import macros, rules, scripts
from omni.services import Services


class MacroUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    queue_id: Id | UnsetType | None = UNSET
    actions: list[Document] | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class MacroCreate(MacroUpdate, kw_only=True):
    name: Name
    actions: list[Document]


class MacroOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    queue_id: int | None
    actions: list[dict[str, Any]]
    active: bool
    created_at: str | None


class MacroRunOut(msgspec.Struct, kw_only=True):
    ok: bool
    done: list[str]
    failed: str | None
    not_done: list[str]
    message: str
    """Empty when every action ran; else what stopped it, what was done and what not (translated)."""


class RuleUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    event: Name | UnsetType = UNSET
    conditions: Document | UnsetType = UNSET
    actions: list[Document] | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    position: int | UnsetType = UNSET


class RuleCreate(RuleUpdate, kw_only=True):
    name: Name
    event: Name
    actions: list[Document]


class RuleOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    event: str
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    active: bool
    position: int
    created_at: str | None


class RuleRunOut(msgspec.Struct, kw_only=True):
    id: int
    rule_id: int
    event_id: int
    conversation_id: int | None
    state: str
    done: list[str]
    error: str
    created_at: str | None


class ScriptUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    queue_id: Id | UnsetType | None = UNSET
    body: Script | UnsetType = UNSET
    fields: list[Name] | UnsetType = UNSET
    start_url: Script | UnsetType = UNSET
    close_url: Script | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ScriptCreate(ScriptUpdate, kw_only=True):
    name: Name
    body: Script


class ScriptOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    queue_id: int | None
    body: str
    fields: list[str]
    start_url: str
    close_url: str
    start_subscription_id: int | None
    """The webhook subscription whose secret signs the start POST (see docs/automation.md)."""
    close_subscription_id: int | None
    active: bool
    created_at: str | None


class ScriptFieldOut(msgspec.Struct, kw_only=True):
    key: str
    label: str
    kind: str
    value: Any


class ConversationScriptOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    text: str
    fields: list[ScriptFieldOut]


class ScriptStep(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    values: Document = msgspec.field(default_factory=dict)


class MacroController(Controller):
    path = "/api/v1/macros"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_macros(
        self, who: Principal, services: Services, queue_id: OptionalRowId = None, limit: Limit = 1000
    ) -> list[MacroOut]:
        async with services.db.transaction() as session:
            rows = await macros.list_macros(session, who, queue_id=queue_id, limit=limit)
            return out_list([macros.macro_dict(r) for r in rows], MacroOut)

    @post("/", responses=WRITE)
    async def create_macro(self, who: Principal, services: Services, data: MacroCreate) -> MacroOut:
        async with services.db.transaction() as session:
            return out(
                macros.macro_dict(await macros.check_create_macro(session, who, given(data))), MacroOut
            )

    @get("/{macro_id:int}", responses=READ)
    async def get_macro(self, who: Principal, services: Services, macro_id: RowId) -> MacroOut:
        async with services.db.transaction() as session:
            return out(macros.macro_dict(await macros.access_macro(session, who, macro_id)), MacroOut)

    @patch("/{macro_id:int}", responses=WRITE)
    async def update_macro(
        self, who: Principal, services: Services, macro_id: RowId, data: MacroUpdate
    ) -> MacroOut:
        async with services.db.transaction() as session:
            row = await macros.check_update_macro(session, who, macro_id, given(data))
            return out(macros.macro_dict(row), MacroOut)

    @delete("/{macro_id:int}", status_code=200, responses=REMOVE)
    async def delete_macro(self, who: Principal, services: Services, macro_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await macros.check_delete_macro(session, who, macro_id)
        return OK


class RuleController(Controller):
    path = "/api/v1/automation-rules"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_rules(self, who: Principal, services: Services, limit: Limit = 1000) -> list[RuleOut]:
        async with services.db.transaction() as session:
            return out_list(
                [rules.rule_dict(r) for r in await rules.list_rules(session, who, limit=limit)], RuleOut
            )

    @get("/runs", responses=READ)
    async def list_rule_runs(
        self, who: Principal, services: Services, rule_id: OptionalRowId = None, limit: Limit = 100
    ) -> list[RuleRunOut]:
        async with services.db.transaction() as session:
            rows = await rules.list_rule_runs(session, who, rule_id=rule_id, limit=limit)
            return out_list([rules.run_dict(r) for r in rows], RuleRunOut)

    @post("/", responses=WRITE)
    async def create_rule(self, who: Principal, services: Services, data: RuleCreate) -> RuleOut:
        async with services.db.transaction() as session:
            return out(rules.rule_dict(await rules.check_create_rule(session, who, given(data))), RuleOut)

    @get("/{rule_id:int}", responses=READ)
    async def get_rule(self, who: Principal, services: Services, rule_id: RowId) -> RuleOut:
        async with services.db.transaction() as session:
            return out(rules.rule_dict(await rules.access_rule(session, who, rule_id)), RuleOut)

    @patch("/{rule_id:int}", responses=WRITE)
    async def update_rule(
        self, who: Principal, services: Services, rule_id: RowId, data: RuleUpdate
    ) -> RuleOut:
        async with services.db.transaction() as session:
            return out(
                rules.rule_dict(await rules.check_update_rule(session, who, rule_id, given(data))), RuleOut
            )

    @delete("/{rule_id:int}", status_code=200, responses=REMOVE)
    async def delete_rule(self, who: Principal, services: Services, rule_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await rules.check_delete_rule(session, who, rule_id)
        return OK


class ScriptController(Controller):
    path = "/api/v1/operator-scripts"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_scripts(
        self, who: Principal, services: Services, queue_id: OptionalRowId = None, limit: Limit = 1000
    ) -> list[ScriptOut]:
        async with services.db.transaction() as session:
            rows = await scripts.list_scripts(session, who, queue_id=queue_id, limit=limit)
            return out_list([scripts.script_dict(r) for r in rows], ScriptOut)

    @post("/", responses=WRITE)
    async def create_script(self, who: Principal, services: Services, data: ScriptCreate) -> ScriptOut:
        async with services.db.transaction() as session:
            return out(
                scripts.script_dict(await scripts.check_create_script(session, who, given(data))), ScriptOut
            )

    @get("/{script_id:int}", responses=READ)
    async def get_script(self, who: Principal, services: Services, script_id: RowId) -> ScriptOut:
        async with services.db.transaction() as session:
            return out(scripts.script_dict(await scripts.access_script(session, who, script_id)), ScriptOut)

    @patch("/{script_id:int}", responses=WRITE)
    async def update_script(
        self, who: Principal, services: Services, script_id: RowId, data: ScriptUpdate
    ) -> ScriptOut:
        async with services.db.transaction() as session:
            row = await scripts.check_update_script(session, who, script_id, given(data))
            return out(scripts.script_dict(row), ScriptOut)

    @delete("/{script_id:int}", status_code=200, responses=REMOVE)
    async def delete_script(self, who: Principal, services: Services, script_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await scripts.check_delete_script(session, who, script_id)
        return OK


class ConversationAutomationController(Controller):
    """What the operator's window runs: the macros of this conversation and its script."""

    path = "/api/v1/conversations/{conversation_id:int}"
    dependencies = DEPS

    @get("/macros", responses=READ)
    async def conversation_macros(
        self, who: Principal, services: Services, conversation_id: Id
    ) -> list[MacroOut]:
        async with services.db.transaction() as session:
            rows = await macros.macros_for_conversation(session, who, conversation_id)
            return out_list([macros.macro_dict(r) for r in rows], MacroOut)

    @post("/macros/{macro_id:int}/run", status_code=200, responses=WRITE)
    async def run_macro(
        self, who: Principal, services: Services, conversation_id: Id, macro_id: RowId
    ) -> MacroRunOut:
        async with services.db.transaction() as session:
            return out(await macros.check_run_macro(session, who, conversation_id, macro_id), MacroRunOut)

    @get("/script", responses=READ)
    async def conversation_script(
        self, who: Principal, services: Services, conversation_id: Id
    ) -> ConversationScriptOut | None:
        async with services.db.transaction() as session:
            shown = await scripts.script_for_conversation(session, who, conversation_id)
            return out(shown, ConversationScriptOut) if shown is not None else None

    @post("/script/{step:str}", status_code=200, responses=WRITE)
    async def script_step(
        self, who: Principal, services: Services, conversation_id: Id, step: Name, data: ScriptStep
    ) -> ConversationScriptOut:
        async with services.db.transaction() as session:
            shown, deliveries = await scripts.check_script_step(
                session, who, conversation_id, step, data.values
            )
        if deliveries:
            from omni.worker import enqueue_deliveries  # the transport sends; the domain only records

            # The broker call blocks (Redis in production); keep it off the event loop.
            await asyncio.to_thread(enqueue_deliveries, deliveries)
        return out(shown, ConversationScriptOut)


CONTROLLERS = [MacroController, RuleController, ScriptController, ConversationAutomationController]
