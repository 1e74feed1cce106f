"""Admin pages: server-rendered lists and forms over the admin domain services.

Every section (users, groups, queues, statuses, result codes, inboxes, canned replies, card
fields, operator scripts) is a :class:`Section`: it lists rows, describes its form as
:class:`Field` objects, turns a posted form into the plain dict ``omni.domain.admin`` takes,
and calls it. Roles, scope and validation stay in the domain; a refusal comes back as a
:class:`DomainError` whose ``field`` puts the message next to the input it is about. A
successful POST redirects (POST-redirect-GET) and the page shows "Saved.".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import admin, visibility
from omni.domain.auth import Principal
from omni.domain.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from omni.domain.richtext import sanitize
from omni.services import Services
from omni.web.i18n import enum_label, enum_options
from omni.web.pages import PageContext, page_context, read_form

ADMIN, SUPERVISOR, AUDITOR = m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.AUDITOR
LIMIT = 1000
CHANNELS = ("widget", "telegram", "voice", "api")
PRECHAT_FIELDS = ("name", "email", "phone", "subject")
WIDGET_CONFIG_KEYS = ("greeting", "greeting_ru", "colour", "prechat", "allowed_origins")
"""Inbox ``config`` keys the widget reads (widget/README.md); other keys go in the JSON box."""
FORM_CONFIG_KEYS = (*WIDGET_CONFIG_KEYS, "scenario")
"""Every inbox ``config`` key the form has a field for (``scenario``: the bot that runs first)."""
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


# --- forms --------------------------------------------------------------------------------


@dataclass
class Field:
    """One input of a form: how it renders, and how its posted text becomes a domain value.

    ``kind``: text | password | number | checkbox | select | multi | checks | textarea | json |
    lines. Select values are ids when ``numeric``; ``nullable`` turns an empty entry into
    ``None``; ``omit_empty`` leaves the field out of the data when empty (a password kept).
    """

    name: str
    label: str
    kind: str = "text"
    options: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    nullable: bool = False
    numeric: bool = False
    omit_empty: bool = False
    readonly: bool = False
    help: str = ""
    rows: int = 4

    @property
    def many(self) -> bool:
        return self.kind in ("multi", "checks")

    def raw(self, form: Mapping[str, Any]) -> Any:
        """What the user sent, kept as text to show again when the form comes back with errors."""
        value = form.get(self.name)
        if self.many:
            if value is None:
                return []
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if self.kind == "checkbox":
            return value is not None
        if isinstance(value, list):
            value = value[-1]
        return "" if value is None else str(value)

    def show(self, value: Any) -> Any:
        """A domain value as form text."""
        if self.many:
            return [str(v) for v in value or []]
        if self.kind == "checkbox":
            return bool(value)
        if value is None:
            return ""
        if self.kind == "json":
            return json.dumps(value, ensure_ascii=False, indent=2)
        if self.kind == "lines":
            return "\n".join(str(v) for v in value)
        return str(value)

    def parse(self, raw: Any, t: Any) -> Any:
        """Form text as the domain value; a malformed entry raises :class:`InvalidInput`."""
        if self.many:
            return [self._number(v, t) for v in raw] if self.numeric else list(raw)
        if self.kind == "checkbox":
            return bool(raw)
        text: str = raw
        if self.kind == "lines":
            return [line.strip() for line in text.splitlines() if line.strip()]
        if not text.strip():
            if self.kind == "json" or self.nullable or (self.numeric and self.kind == "select"):
                return None
            if self.kind == "number":
                raise InvalidInput(t("adm.required"), field=self.name)
        if self.kind == "json":
            try:
                return json.loads(text)
            except ValueError as exc:
                raise InvalidInput(t("adm.invalid_json", error=str(exc)), field=self.name) from exc
        if self.kind == "number" or (self.kind == "select" and self.numeric):
            return self._number(text, t)
        return text

    def _number(self, text: str, t: Any) -> int:
        try:
            return int(text.strip())
        except ValueError as exc:
            raise InvalidInput(t("adm.invalid_number"), field=self.name) from exc


@dataclass
class Cell:
    text: str
    href: str = ""
    colour: str = ""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]


@dataclass
class Outcome:
    """What an extra action shows: the edit form again with these extras (or a redirect)."""

    extras: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] | None = None
    redirect: str = ""


def _defaults(model: type[m.Base]) -> dict[str, Any]:
    """A model's column defaults: what a new row's form starts with."""
    out: dict[str, Any] = {}
    for key, col in sa_inspect(model).columns.items():
        if isinstance(col.default, ScalarElementColumnDefault):
            value = col.default.arg
            out[key] = str(value) if isinstance(value, str) else value
    return out


def _yes(ctx: PageContext, value: bool) -> str:
    return ctx.t("adm.yes") if value else ctx.t("adm.no")


def _base_field(name: str | None) -> str:
    """``members[0].user_id`` → ``members``: the form field a nested domain error belongs to."""
    return re.split(r"[\[.]", name)[0] if name else ""


# --- sections -----------------------------------------------------------------------------


class Section:
    """One admin area; instantiated per request with the caller and the services."""

    slug: ClassVar[str]
    title: ClassVar[str]
    view_roles: ClassVar[tuple[m.Role, ...]] = (ADMIN, SUPERVISOR)
    edit_roles: ClassVar[tuple[m.Role, ...]] = (ADMIN,)
    create_roles: ClassVar[tuple[m.Role, ...]] = (ADMIN,)
    delete_roles: ClassVar[tuple[m.Role, ...]] = (ADMIN,)
    delete_label: ClassVar[str] = "form.delete"
    can_delete: ClassVar[bool] = True

    def __init__(self, ctx: PageContext, services: Services) -> None:
        self.ctx = ctx
        self.services = services
        self.t = ctx.t

    @property
    def who(self) -> Principal:
        return self.ctx.who

    @property
    def is_admin(self) -> bool:
        return bool(self.ctx.who.role == ADMIN)

    def href(self, item_id: int) -> str:
        return f"/admin/{self.slug}/{item_id}"

    async def table(self, session: AsyncSession) -> Table:
        raise NotImplementedError

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        raise NotImplementedError

    def heading(self, item: Any) -> str:
        return str(getattr(item, "name", item.id))

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        raise NotImplementedError

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        """Domain values of the fields (defaults for a new item)."""
        raise NotImplementedError

    def editable(self, item: Any | None) -> bool:
        roles = self.create_roles if item is None else self.edit_roles
        return self.ctx.who.role in roles

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        raise NotImplementedError

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        raise NotImplementedError

    def extras(self, item: Any | None) -> dict[str, Any]:
        return {}

    async def visibility(self, session: AsyncSession, item: Any | None) -> tuple[str, bool] | None:
        """Which supervisors see the item (text, ``True`` when it is a warning: nobody does)."""
        return None

    def _seen_by(self, names: list[str], nobody: str) -> tuple[str, bool]:
        if names:
            return self.t("adm.vis.seen_by", names=", ".join(names)), False
        return self.t(nobody), True

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        """``delete`` by default; sections add their own (rotate a secret, preview a script)."""
        if name == "delete" and self.can_delete:
            self.ctx.require(*self.delete_roles)
            await self.delete(session, item_id)
            return Outcome(redirect=f"/admin/{self.slug}?deleted=1")
        raise NotFound("no action '{name}'", name=name)


async def _queue_options(session: AsyncSession, who: Any) -> list[tuple[str, str]]:
    try:
        queues = await admin.list_queues(session, who, limit=LIMIT)
    except PermissionDenied:
        return []
    return [(str(q.id), q.name) for q in queues]


async def _scenario_keys(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(m.Scenario.key).order_by(m.Scenario.key)))


async def _queue_names(session: AsyncSession) -> dict[int, str]:
    return {qid: name for qid, name in (await session.execute(select(m.Queue.id, m.Queue.name))).all()}


class Users(Section):
    slug = "users"
    title = "adm.users"
    delete_label = "adm.deactivate"

    def heading(self, item: Any) -> str:
        return str(item.username)

    async def table(self, session: AsyncSession) -> Table:
        rows = [
            [
                Cell(u.username, self.href(u.id)),
                Cell(u.display_name),
                Cell(self.t(f"adm.role.{u.role}")),
                Cell(_yes(self.ctx, u.is_active)),
                Cell(u.email or ""),
            ]
            for u in await admin.list_users(session, self.who, limit=LIMIT)
        ]
        cols = ["adm.f.username", "adm.f.display_name", "adm.f.role", "adm.f.is_active", "adm.f.email"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.get_user(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        fields = [
            Field("username", t("adm.f.username"), required=True),
            Field("display_name", t("adm.f.display_name")),
            Field("email", t("adm.f.email"), nullable=True),
            Field("role", t("adm.f.role"), "select", [(r.value, t(f"adm.role.{r.value}")) for r in m.Role]),
            Field("language", t("adm.f.language"), "select", [("en", "English"), ("ru", "Русский")]),
            Field(
                "password",
                t("adm.f.password"),
                "password",
                required=item is None,
                omit_empty=item is not None,
                help="" if item is None else t("adm.password_keep"),
            ),
            Field("sip_extension", t("adm.f.sip_extension"), nullable=True),
            Field("handles_chat", t("adm.f.handles_chat"), "checkbox"),
            Field("handles_voice", t("adm.f.handles_voice"), "checkbox"),
            Field("capacity", t("adm.f.capacity"), "number"),
            Field("chat_weight", t("adm.f.chat_weight"), "number"),
            Field("voice_weight", t("adm.f.voice_weight"), "number"),
        ]
        groups = [(str(g.id), g.name) for g in await admin.list_groups(session, self.who, limit=LIMIT)]
        fields.append(Field("group_ids", t("adm.f.group_ids"), "multi", groups, numeric=True))
        if item is not None:
            fields.insert(6, Field("is_active", t("adm.f.is_active"), "checkbox"))
            if item.role == SUPERVISOR:
                queues = await _queue_options(session, self.who)
                fields.append(
                    Field("scope_group_ids", t("adm.f.scope_group_ids"), "multi", groups, numeric=True)
                )
                fields.append(
                    Field("scope_queue_ids", t("adm.f.scope_queue_ids"), "multi", queues, numeric=True)
                )
        return fields

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {**_defaults(m.User), "language": self.ctx.lang, "group_ids": []}
        body = await admin.user_detail(session, item)
        scope = body.pop("scope", {})
        body["scope_group_ids"] = scope.get("group_ids", [])
        body["scope_queue_ids"] = scope.get("queue_ids", [])
        return body

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        group_ids = data.pop("group_ids", [])
        scope = {
            "group_ids": data.pop("scope_group_ids", None),
            "queue_ids": data.pop("scope_queue_ids", None),
        }
        if item_id is None:
            user = await admin.create_user(session, self.who, data)
        else:
            user = await admin.update_user(session, self.who, item_id, data)
        await admin.set_user_groups(session, self.who, user.id, {"group_ids": group_ids})
        if user.role == SUPERVISOR and scope["group_ids"] is not None:
            try:
                await admin.set_supervisor_scope(session, self.who, user.id, scope)
            except DomainError as exc:
                exc.field = f"scope_{_base_field(exc.field)}" if exc.field else None
                raise
        return user.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.deactivate_user(session, self.who, item_id)

    async def visibility(self, session: AsyncSession, item: Any | None) -> tuple[str, bool] | None:
        if item is None:
            return self.t("adm.vis.operator_new"), False
        if item.role != m.Role.OPERATOR:
            return None
        return self._seen_by(
            await visibility.supervisors_of_operator(session, item.id), "adm.vis.operator_nobody"
        )


class Groups(Section):
    slug = "groups"
    title = "adm.groups"

    async def table(self, session: AsyncSession) -> Table:
        groups = await admin.group_dicts(session, await admin.list_groups(session, self.who, limit=LIMIT))
        rows = [[Cell(g["name"], self.href(g["id"])), Cell(str(len(g["user_ids"])))] for g in groups]
        return Table([self.t("adm.f.name"), self.t("adm.f.members_count")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        for group in await admin.list_groups(session, self.who, limit=LIMIT):
            if group.id == item_id:
                return group
        raise NotFound("group {item_id} not found", item_id=item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        return [Field("name", self.t("adm.f.name"), required=True)]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        return {"name": item.name if item is not None else ""}

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await admin.create_group(session, self.who, data)).id
        return (await admin.update_group(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.delete_group(session, self.who, item_id)

    async def visibility(self, session: AsyncSession, item: Any | None) -> tuple[str, bool] | None:
        if item is None:
            return self.t("adm.vis.group_new"), False
        return self._seen_by(await visibility.supervisors_of_group(session, item.id), "adm.vis.group_nobody")


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
        return await admin.get_queue(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        none = [("", t("adm.none"))]
        groups = [(str(g.id), g.name) for g in await admin.list_groups(session, self.who, limit=LIMIT)]
        if item is not None and item.group_id is not None and str(item.group_id) not in dict(groups):
            group = await session.get(m.Group, item.group_id)  # outside a supervisor's scope
            groups = [(str(item.group_id), group.name if group else str(item.group_id)), *groups]
        queues = [
            (v, n) for v, n in await _queue_options(session, self.who) if item is None or v != str(item.id)
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
            Field("auto_accept", t("adm.f.auto_accept"), "checkbox"),
            Field("manual_pick", t("adm.f.manual_pick"), "checkbox"),
            Field("chats_block_calls", t("adm.f.chats_block_calls"), "checkbox"),
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
                none + [(k, k) for k in await _scenario_keys(session)],
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
            return {**_defaults(m.Queue), "members": [], "result_code_ids": [], "business_hours": None}
        body = await admin.queue_detail(session, item)
        body["members"] = [mm["user_id"] for mm in body["members"]]
        return body

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        members: list[int] = data.pop("members", [])
        codes: list[int] = data.pop("result_code_ids", [])
        default = data.pop("default_result_code_id", None)
        if item_id is None:
            queue = await admin.create_queue(session, self.who, data)
            current: dict[int, dict[str, Any]] = {}
        else:
            queue = await admin.update_queue(session, self.who, item_id, data)
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
        await admin.set_queue_members(session, self.who, queue.id, {"members": rows})
        await admin.set_queue_result_codes(
            session, self.who, queue.id, {"result_code_ids": codes, "default_result_code_id": default}
        )
        return queue.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.delete_queue(session, self.who, item_id)

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
                Cell(_yes(self.ctx, s.selectable)),
                Cell(_yes(self.ctx, s.is_system)),
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
            Field("productive", t("adm.f.productive"), "checkbox", readonly=system),
            Field("selectable", t("adm.f.selectable"), "checkbox", readonly=system),
            Field("max_duration_seconds", t("adm.f.max_duration_seconds"), "number", nullable=True),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {**_defaults(m.OperatorStatus), "code": "", "name": "", "max_duration_seconds": None}
        return admin.status_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await admin.create_status(session, self.who, data)).id
        return (await admin.update_status(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.delete_status(session, self.who, item_id)


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
                Cell(_yes(self.ctx, c.active)),
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
            return {**_defaults(m.ResultCode), "code": "", "name": "", "name_ru": ""}
        return admin.result_code_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await admin.create_result_code(session, self.who, data)).id
        return (await admin.update_result_code(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.deactivate_result_code(session, self.who, item_id)


class Inboxes(Section):
    slug = "inboxes"
    title = "adm.inboxes"

    async def table(self, session: AsyncSession) -> Table:
        queues = await _queue_names(session)
        rows = [
            [
                Cell(i.name, self.href(i.id)),
                Cell(enum_label(self.ctx.lang, "channel", i.channel)),
                Cell(queues.get(i.queue_id, "") if i.queue_id else ""),
                Cell(_yes(self.ctx, i.active)),
            ]
            for i in await admin.list_inboxes(session, self.who, limit=LIMIT)
        ]
        return Table([self.t(f"adm.f.{c}") for c in ("name", "channel", "queue_id", "active")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.get_inbox(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        queues = [(str(qid), name) for qid, name in sorted((await _queue_names(session)).items())]
        prechat = [(v, t(f"adm.prechat.{v}")) for v in ("off", "optional", "required")]
        fields = [
            Field("name", t("adm.f.name"), required=True),
            Field("channel", t("adm.f.channel"), "select", enum_options(self.ctx.lang, "channel", CHANNELS)),
            Field("queue_id", t("adm.f.queue_id"), "select", [("", t("adm.none")), *queues], numeric=True),
            Field(
                "scenario",
                t("adm.f.scenario"),
                "select",
                [("", t("adm.none")), *((k, k) for k in await _scenario_keys(session))],
                help=t("adm.scenario_help"),
            ),
            Field("active", t("adm.f.active"), "checkbox"),
            Field("greeting", t("adm.f.greeting")),
            Field("greeting_ru", t("adm.f.greeting_ru")),
            Field("colour", t("adm.f.colour")),
            *(
                Field(f"prechat_{p}", t("adm.f.prechat", name=t(f"adm.prechat.f.{p}")), "select", prechat)
                for p in PRECHAT_FIELDS
            ),
            Field("allowed_origins", t("adm.f.allowed_origins"), "lines", help=t("adm.lines_help"), rows=3),
        ]
        if self.is_admin:
            fields.append(
                Field("config_extra", t("adm.f.config_extra"), "json", help=t("adm.config_help"), rows=3)
            )
        return fields

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            body: dict[str, Any] = {
                "name": "",
                "channel": "widget",
                "queue_id": None,
                "active": True,
                "config": {},
            }
        else:
            body = admin.inbox_dict(item, show_secrets=self.is_admin)
        config = dict(body.pop("config") or {})
        for key in ("greeting", "greeting_ru", "colour", "scenario"):
            body[key] = config.pop(key, "")
        asked = {p.get("name"): p for p in config.pop("prechat", None) or [] if isinstance(p, dict)}
        for p in PRECHAT_FIELDS:
            entry = asked.get(p)
            body[f"prechat_{p}"] = (
                "off" if entry is None else ("required" if entry.get("required") else "optional")
            )
        body["allowed_origins"] = config.pop("allowed_origins", None) or []
        body["config_extra"] = config or None
        return body

    def _config(self, data: dict[str, Any]) -> dict[str, Any]:
        extra = data.pop("config_extra", None)
        if extra is not None and not isinstance(extra, dict):
            raise InvalidInput(self.t("adm.json_object"), field="config_extra")
        config: dict[str, Any] = {k: v for k, v in (extra or {}).items() if k not in FORM_CONFIG_KEYS}
        for key in ("greeting", "greeting_ru", "scenario"):
            text = str(data.pop(key, "")).strip()
            if text:
                config[key] = text
        colour = str(data.pop("colour", "")).strip()
        if colour:
            if not _COLOUR.fullmatch(colour):
                raise InvalidInput(self.t("adm.invalid_colour"), field="colour")
            config["colour"] = colour.lower()
        prechat = []
        for p in PRECHAT_FIELDS:
            mode = data.pop(f"prechat_{p}", "off")
            if mode in ("optional", "required"):
                prechat.append({"name": p, "required": mode == "required"})
        if prechat:
            config["prechat"] = prechat
        origins: list[str] = data.pop("allowed_origins", [])
        for origin in origins:
            if not origin.startswith(("http://", "https://")) or any(ch.isspace() for ch in origin):
                raise InvalidInput(self.t("adm.invalid_origin", value=origin), field="allowed_origins")
        if origins:
            config["allowed_origins"] = [o.rstrip("/") for o in origins]
        return config

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        data["config"] = self._config(data)
        key = data["config"].get("scenario")
        if key and key not in await _scenario_keys(session):
            raise InvalidInput(self.t("adm.unknown_scenario", name=key), field="scenario")
        if item_id is None:
            return (await admin.create_inbox(session, self.who, data)).id
        return (await admin.update_inbox(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.delete_inbox(session, self.who, item_id)

    def extras(self, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {}
        out: dict[str, Any] = {"public_token": item.public_token}
        if item.channel == "widget":
            base = self.services.settings.public_base_url.rstrip("/")
            out["snippet"] = (
                f'<script src="{base}/widget/omni-widget.js" data-inbox="{item.public_token}" async></script>'
            )
        return out

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        if name == "secret":
            self.ctx.require(ADMIN)
            secret = await admin.rotate_inbox_secret(
                session, self.who, item_id, self.services.settings.effective_secret_key()
            )
            return Outcome(extras={"secret": secret})
        return await super().action(session, item_id, name, form)


class ScopedQueueItems(Section):
    """Canned replies and card fields: shared by every queue (admins) or per queue."""

    view_roles = (ADMIN, SUPERVISOR, AUDITOR)
    edit_roles = (ADMIN, SUPERVISOR)
    create_roles = (ADMIN, SUPERVISOR)
    delete_roles = (ADMIN, SUPERVISOR)

    def editable(self, item: Any | None) -> bool:
        if item is not None and item.queue_id is None and not self.is_admin:
            return False
        return super().editable(item)

    async def _queue_field(self, session: AsyncSession) -> Field:
        queues = await _queue_options(session, self.who) if self.who.role != AUDITOR else []
        if self.who.role == AUDITOR:
            queues = [(str(k), v) for k, v in sorted((await _queue_names(session)).items())]
        options = [("", self.t("adm.all_queues")), *queues] if self.who.role != SUPERVISOR else queues
        return Field("queue_id", self.t("adm.f.queue_id"), "select", options, numeric=True)

    def _queue_cell(self, names: Mapping[int, str], queue_id: int | None) -> Cell:
        return Cell(self.t("adm.all_queues") if queue_id is None else names.get(queue_id, str(queue_id)))


class CannedReplies(ScopedQueueItems):
    slug = "canned-replies"
    title = "adm.canned"

    def heading(self, item: Any) -> str:
        return f"/{item.shortcut}"

    async def table(self, session: AsyncSession) -> Table:
        names = await _queue_names(session)
        rows = [
            [Cell(f"/{r.shortcut}", self.href(r.id)), Cell(r.title), self._queue_cell(names, r.queue_id)]
            for r in await admin.list_canned_replies(session, self.who, limit=LIMIT)
        ]
        return Table([self.t(f"adm.f.{c}") for c in ("shortcut", "title", "queue_id")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.get_canned_reply(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        names = ", ".join(f"{{{{{p}}}}}" for p in admin.PLACEHOLDERS)
        return [
            await self._queue_field(session),
            Field("shortcut", t("adm.f.shortcut"), required=True),
            Field("title", t("adm.f.title"), required=True),
            Field(
                "body",
                t("adm.f.body"),
                "textarea",
                required=True,
                help=t("adm.placeholders", names=names),
                rows=6,
            ),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"queue_id": None, "shortcut": "", "title": "", "body": ""}
        return admin.canned_reply_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await admin.create_canned_reply(session, self.who, data)).id
        return (await admin.update_canned_reply(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.delete_canned_reply(session, self.who, item_id)


class CardFields(ScopedQueueItems):
    slug = "card-fields"
    title = "adm.card_fields"

    def heading(self, item: Any) -> str:
        return str(item.key)

    async def table(self, session: AsyncSession) -> Table:
        names = await _queue_names(session)
        rows = [
            [
                Cell(f.key, self.href(f.id)),
                Cell(f.label_ru if self.ctx.lang == "ru" and f.label_ru else f.label),
                Cell(enum_label(self.ctx.lang, "card_field_kind", f.kind)),
                self._queue_cell(names, f.queue_id),
                Cell(_yes(self.ctx, f.required)),
                Cell(str(f.position)),
            ]
            for f in await admin.list_card_fields(session, self.who, limit=LIMIT)
        ]
        cols = ("key", "label", "kind", "queue_id", "required", "position")
        return Table([self.t(f"adm.f.{c}") for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.get_card_field(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            await self._queue_field(session),
            Field("key", t("adm.f.key"), required=True, readonly=item is not None),
            Field("label", t("adm.f.label"), required=True),
            Field("label_ru", t("adm.f.label_ru")),
            Field(
                "kind",
                t("adm.f.kind"),
                "select",
                enum_options(self.ctx.lang, "card_field_kind", admin.CARD_FIELD_KINDS),
            ),
            Field("options", t("adm.f.options"), "lines", help=t("adm.lines_help")),
            Field("required", t("adm.f.required"), "checkbox"),
            Field("editable", t("adm.f.editable"), "checkbox"),
            Field("position", t("adm.f.position"), "number"),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {**_defaults(m.CardField), "queue_id": None, "key": "", "label": "", "options": []}
        return admin.card_field_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if data.get("kind") != "select":
            data.pop("options", None)  # left over from when it was a list; the domain clears them
        if item_id is None:
            return (await admin.create_card_field(session, self.who, data)).id
        return (await admin.update_card_field(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.delete_card_field(session, self.who, item_id)


class Scripts(Section):
    """The operator script of each queue: staff HTML, sanitised on save and when shown."""

    slug = "scripts"
    title = "adm.scripts"
    edit_roles = (ADMIN, SUPERVISOR)
    create_roles = ()
    can_delete = False

    async def table(self, session: AsyncSession) -> Table:
        rows = [
            [
                Cell(q.name, self.href(q.id)),
                Cell(self.t("adm.script_set") if q.script.strip() else self.t("adm.script_empty")),
            ]
            for q in await admin.list_queues(session, self.who, limit=LIMIT)
        ]
        return Table([self.t("adm.f.queue_id"), self.t("adm.f.script_state")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.get_queue(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        return [Field("script", self.t("adm.f.script"), "textarea", help=self.t("adm.script_help"), rows=14)]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        return {"script": item.script if item is not None else ""}

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            raise NotFound("scripts belong to queues")
        script = sanitize(str(data.get("script") or ""))
        return (await admin.update_queue(session, self.who, item_id, {"script": script})).id

    def extras(self, item: Any | None) -> dict[str, Any]:
        return {"preview": sanitize(item.script or "")} if item is not None else {}

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        if name == "preview":
            await self.load(session, item_id)
            text = form.get("script")
            text = text[-1] if isinstance(text, list) else str(text or "")
            return Outcome(extras={"preview": sanitize(text)}, values={"script": text})
        return await super().action(session, item_id, name, form)


SECTIONS: dict[str, type[Section]] = {
    s.slug: s
    for s in (Users, Groups, Queues, Statuses, ResultCodes, Inboxes, CannedReplies, CardFields, Scripts)
}


# --- pages --------------------------------------------------------------------------------


def _nav(ctx: PageContext) -> list[dict[str, str]]:
    return [
        {"slug": slug, "title": ctx.t(cls.title)}
        for slug, cls in SECTIONS.items()
        if ctx.who.role in cls.view_roles
    ]


def _section(ctx: PageContext, services: Services, slug: str, roles: str = "view") -> Section:
    cls = SECTIONS.get(slug)
    if cls is None:
        raise NotFound("no admin section '{slug}'", slug=slug)
    ctx.require(*getattr(cls, f"{roles}_roles"))
    return cls(ctx, services)


def _not_found(ctx: PageContext, exc: DomainError) -> Template:
    detail = exc.localized(ctx.lang)
    return ctx.template("error.html", status_code=404, message=f"{ctx.t('adm.not_found')} ({detail})")


def _forbidden(ctx: PageContext, exc: DomainError) -> Template:
    detail = exc.localized(ctx.lang)
    return ctx.template("error.html", status_code=403, message=f"{ctx.t('error.forbidden')} {detail}")


def _whole_page_refusal(ctx: PageContext, exc: DomainError) -> Template | None:
    """A refusal of the page itself (missing row, out of scope, role) rather than of a field."""
    if isinstance(exc, NotFound):
        return _not_found(ctx, exc)
    if isinstance(exc, PermissionDenied) and not exc.field:
        return _forbidden(ctx, exc)
    return None


async def _render_form(
    sec: Section,
    item_id: int | None,
    *,
    raw: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    extras: Mapping[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Template:
    ctx = sec.ctx
    async with sec.services.db.transaction() as session:
        item = await sec.load(session, item_id) if item_id is not None else None
        fields = await sec.fields(session, item)
        domain_values = await sec.values(session, item)
        seen = await sec.visibility(session, item) if ctx.who.role == ADMIN else None
    values = {f.name: f.show(domain_values.get(f.name)) for f in fields}
    if raw is not None:
        values.update({f.name: f.raw(raw) for f in fields if not f.readonly})
    editable = sec.editable(item)
    errors = dict(errors or {})
    top_error = errors.pop("_", "")
    names = {f.name for f in fields}
    for key in [k for k in errors if k not in names]:
        top_error = f"{top_error} {errors.pop(key)}".strip()
    can_delete = item is not None and sec.can_delete and ctx.who.role in sec.delete_roles and editable
    return ctx.template(
        "admin/form.html",
        status_code=status_code,
        nav=_nav(ctx),
        section={"slug": sec.slug, "title": ctx.t(sec.title)},
        heading=sec.heading(item) if item is not None else ctx.t("adm.new"),
        action=f"/admin/{sec.slug}/{item_id}" if item_id is not None else f"/admin/{sec.slug}/new",
        item_id=item_id,
        fields=fields,
        values=values,
        errors=errors,
        top_error=top_error,
        notice=notice,
        editable=editable,
        can_delete=can_delete,
        delete_label=ctx.t(sec.delete_label),
        extras={**sec.extras(item), **(extras or {})},
        visibility=seen,
    )


def _parse(
    fields: Sequence[Field], form: Mapping[str, Any], ctx: PageContext
) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.readonly:
            continue
        raw = f.raw(form)
        if f.omit_empty and not raw:
            continue
        try:
            data[f.name] = f.parse(raw, ctx.t)
        except InvalidInput as exc:
            errors[f.name] = exc.localized(ctx.lang, f.label)
    return data, errors


class _DiscardChecked(Exception):
    """Rolls back a save that ran only to check the fields (others had parse errors)."""


class AdminPages(Controller):
    path = "/admin"
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(SUPERVISOR, ADMIN, AUDITOR)
        return ctx.template("admin/index.html", nav=_nav(ctx))

    @get("/{slug:str}")
    async def listing(self, request: Request[Any, Any, Any], slug: str) -> Template:
        ctx = await page_context(request)
        try:
            sec = _section(ctx, services_of(request), slug)
            async with sec.services.db.transaction() as session:
                table = await sec.table(session)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal
        notice = ""
        if request.query_params.get("deleted"):
            notice = ctx.t("adm.deleted")
        elif request.query_params.get("saved"):
            notice = ctx.t("form.saved")
        return ctx.template(
            "admin/list.html",
            nav=_nav(ctx),
            section={"slug": sec.slug, "title": ctx.t(sec.title)},
            table=table,
            can_create=ctx.who.role in sec.create_roles,
            notice=notice,
        )

    @get("/{slug:str}/new")
    async def new(self, request: Request[Any, Any, Any], slug: str) -> Template:
        ctx = await page_context(request)
        try:
            return await _render_form(_section(ctx, services_of(request), slug, "create"), None)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal

    @get("/{slug:str}/{item_id:int}")
    async def edit(self, request: Request[Any, Any, Any], slug: str, item_id: int) -> Template:
        ctx = await page_context(request)
        notice = ctx.t("form.saved") if request.query_params.get("saved") else ""
        try:
            sec = _section(ctx, services_of(request), slug)
            return await _render_form(sec, item_id, notice=notice)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal

    @post("/{slug:str}/new", status_code=200)
    async def create(self, request: Request[Any, Any, Any], slug: str) -> Response[Any]:
        return await self._submit(request, slug, None)

    @post("/{slug:str}/{item_id:int}", status_code=200)
    async def update(self, request: Request[Any, Any, Any], slug: str, item_id: int) -> Response[Any]:
        return await self._submit(request, slug, item_id)

    async def _submit(self, request: Request[Any, Any, Any], slug: str, item_id: int | None) -> Response[Any]:
        ctx = await page_context(request)
        try:
            sec = _section(ctx, services_of(request), slug, "create" if item_id is None else "edit")
            form = await read_form(request, ctx)
            async with sec.services.db.transaction() as session:
                item = await sec.load(session, item_id) if item_id is not None else None
                if not sec.editable(item):
                    raise PermissionDenied("you can view this but not change it")
                fields = await sec.fields(session, item)
            data, errors = _parse(fields, form, ctx)
            try:
                async with sec.services.db.transaction() as session:
                    saved_id = await sec.save(session, item_id, data)
                    if errors:
                        # The fields that parsed were checked too (so every problem shows at
                        # once); nothing may be stored while some are wrong.
                        raise _DiscardChecked
            except _DiscardChecked:
                pass
            except DomainError as exc:
                if _whole_page_refusal(ctx, exc) is not None:
                    raise
                labels = {f.name: f.label for f in fields}
                for problem in exc.errors or [exc]:
                    label = labels.get(problem.field or "")  # nested fields keep their path
                    errors.setdefault(_base_field(problem.field) or "_", problem.localized(ctx.lang, label))
            if errors:
                return await _render_form(sec, item_id, raw=form, errors=errors, status_code=400)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal
        return Redirect(path=f"/admin/{sec.slug}/{saved_id}?saved=1")

    @post("/{slug:str}/{item_id:int}/{name:str}", status_code=200)
    async def act(self, request: Request[Any, Any, Any], slug: str, item_id: int, name: str) -> Response[Any]:
        """Delete, rotate a secret, preview a script: POST forms with the CSRF token."""
        ctx = await page_context(request)
        try:
            sec = _section(ctx, services_of(request), slug, "edit")
            form = await read_form(request, ctx)
            try:
                async with sec.services.db.transaction() as session:
                    outcome = await sec.action(session, item_id, name, form)
            except DomainError as exc:
                if _whole_page_refusal(ctx, exc) is not None:
                    raise
                return await _render_form(
                    sec, item_id, errors={"_": exc.localized(ctx.lang)}, status_code=400
                )
            if outcome.redirect:
                return Redirect(path=outcome.redirect)
            return await _render_form(sec, item_id, raw=outcome.values, extras=outcome.extras)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal


CONTROLLERS: list[type[Controller]] = [AdminPages]
