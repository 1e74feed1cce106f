"""Form plumbing shared by every admin section: fields, tables, the Section base class.

A section describes its form as :class:`Field` objects and turns a posted form into the plain
dict ``omni.domain.admin`` takes; validation and scope stay in the domain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from omni.db import models as m
from omni.domain import admin
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.services import Services
from omni.web.pages import PageContext

ADMIN, SUPERVISOR, AUDITOR = m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.AUDITOR
LIMIT = 1000
CHANNELS = ("widget", "telegram", "voice", "api")
PRECHAT_FIELDS = ("name", "email", "phone", "subject")
WIDGET_CONFIG_KEYS = ("greeting", "greeting_ru", "colour", "prechat", "allowed_origins")
"""Inbox ``config`` keys the widget reads (widget/README.md); other keys go in the JSON box."""
FORM_CONFIG_KEYS = (*WIDGET_CONFIG_KEYS, "scenario", "welcome_prompt_id")
"""Every inbox ``config`` key the form has a field for (``scenario``: the bot that runs first;
``welcome_prompt_id``: a voice inbox's prompt played as the IVR answers)."""
COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


# --- forms --------------------------------------------------------------------------------


@dataclass
class Field:
    """One input of a form: how it renders, and how its posted text becomes a domain value.

    ``kind``: text | password | number | decimal | checkbox | select | multi | checks | textarea | json |
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
    warning: str = ""
    """Said next to the input as a warning (a choice that would not work on this server)."""

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
            if self.kind in ("number", "decimal"):
                raise InvalidInput(t("adm.required"), field=self.name)
        if self.kind == "json":
            try:
                return json.loads(text)
            except ValueError as exc:
                raise InvalidInput(t("adm.invalid_json", error=str(exc)), field=self.name) from exc
        if self.kind == "number" or (self.kind == "select" and self.numeric):
            return self._number(text, t)
        if self.kind == "decimal":
            try:
                return float(text.strip().replace(",", "."))
            except ValueError as exc:
                raise InvalidInput(t("adm.invalid_decimal"), field=self.name) from exc
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
    search: str | None = None
    """A section with a search box over its list (``?q=``): what was searched, ``""`` for none."""
    links: list[Cell] = field(default_factory=list)
    """Extra links above the list (an export of what is listed, a filter)."""


@dataclass
class Outcome:
    """What an extra action shows: the edit form again with these extras (or a redirect)."""

    extras: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] | None = None
    redirect: str = ""
    after: Callable[[], Awaitable[Outcome]] | None = None
    """Work for after the action's transaction ended (an outbound HTTP call must not hold it);
    its outcome is the one shown."""


def model_defaults(model: type[m.Base]) -> dict[str, Any]:
    """A model's column defaults: what a new row's form starts with."""
    out: dict[str, Any] = {}
    for key, col in sa_inspect(model).columns.items():
        if isinstance(col.default, ScalarElementColumnDefault):
            value = col.default.arg
            out[key] = str(value) if isinstance(value, str) else value
    return out


def yes_no(ctx: PageContext, value: bool) -> str:
    return ctx.t("adm.yes") if value else ctx.t("adm.no")


def base_field(name: str | None) -> str:
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
    form_template: ClassVar[str] = "admin/form.html"
    """A section whose form needs more than the shared inputs brings its own template."""

    def __init__(self, ctx: PageContext, services: Services) -> None:
        self.ctx = ctx
        self.services = services
        self.t = ctx.t
        self.revealed: dict[str, Any] = {}
        """Set by ``save`` when a creation has something to show once (a wallboard's link):
        the form is shown with it instead of the usual redirect."""

    def query(self, name: str) -> str:
        """A query parameter of the listing (``?q=``), empty when absent."""
        return str(self.ctx.extra.get("query", {}).get(name) or "")

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


async def queue_options(session: AsyncSession, who: Any) -> list[tuple[str, str]]:
    try:
        queues = await admin.list_queues(session, who, limit=LIMIT)
    except PermissionDenied:
        return []
    return [(str(q.id), q.name) for q in queues]


async def scenario_keys(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(m.Scenario.key).order_by(m.Scenario.key)))


async def queue_names(session: AsyncSession) -> dict[int, str]:
    return {qid: name for qid, name in (await session.execute(select(m.Queue.id, m.Queue.name))).all()}
