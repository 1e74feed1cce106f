"""Admin sections for what operators work with: canned replies, card fields, scripts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin
from omni.domain.errors import NotFound
from omni.domain.richtext import sanitize
from omni.web.admin.forms import (
    ADMIN,
    AUDITOR,
    LIMIT,
    SUPERVISOR,
    Cell,
    Field,
    Outcome,
    Section,
    Table,
    model_defaults,
    queue_names,
    queue_options,
    yes_no,
)
from omni.web.i18n import enum_label, enum_options


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
        queues = await queue_options(session, self.who) if self.who.role != AUDITOR else []
        if self.who.role == AUDITOR:
            queues = [(str(k), v) for k, v in sorted((await queue_names(session)).items())]
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
        names = await queue_names(session)
        rows = [
            [Cell(f"/{r.shortcut}", self.href(r.id)), Cell(r.title), self._queue_cell(names, r.queue_id)]
            for r in await admin.list_canned_replies(session, self.who, limit=LIMIT)
        ]
        return Table([self.t(f"adm.f.{c}") for c in ("shortcut", "title", "queue_id")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.access_canned_reply(session, self.who, item_id)

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
            return (await admin.check_create_canned_reply(session, self.who, data)).id
        return (await admin.check_update_canned_reply(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_delete_canned_reply(session, self.who, item_id)


class CardFields(ScopedQueueItems):
    slug = "card-fields"
    title = "adm.card_fields"

    def heading(self, item: Any) -> str:
        return str(item.key)

    async def table(self, session: AsyncSession) -> Table:
        names = await queue_names(session)
        rows = [
            [
                Cell(f.key, self.href(f.id)),
                Cell(f.label_ru if self.ctx.lang == "ru" and f.label_ru else f.label),
                Cell(enum_label(self.ctx.lang, "card_field_kind", f.kind)),
                self._queue_cell(names, f.queue_id),
                Cell(yes_no(self.ctx, f.required)),
                Cell(str(f.position)),
            ]
            for f in await admin.list_card_fields(session, self.who, limit=LIMIT)
        ]
        cols = ("key", "label", "kind", "queue_id", "required", "position")
        return Table([self.t(f"adm.f.{c}") for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.access_card_field(session, self.who, item_id)

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
            return {**model_defaults(m.CardField), "queue_id": None, "key": "", "label": "", "options": []}
        return admin.card_field_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if data.get("kind") != "select":
            data.pop("options", None)  # left over from when it was a list; the domain clears them
        if item_id is None:
            return (await admin.check_create_card_field(session, self.who, data)).id
        return (await admin.check_update_card_field(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_delete_card_field(session, self.who, item_id)


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
        return await admin.access_queue(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        return [Field("script", self.t("adm.f.script"), "textarea", help=self.t("adm.script_help"), rows=14)]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        return {"script": item.script if item is not None else ""}

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            raise NotFound("scripts belong to queues")
        script = sanitize(str(data.get("script") or ""))
        return (await admin.check_update_queue(session, self.who, item_id, {"script": script})).id

    def extras(self, item: Any | None) -> dict[str, Any]:
        return {"preview": sanitize(item.script or "")} if item is not None else {}

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        if name == "preview":
            await self.load(session, item_id)
            text = form.get("script")
            text = text[-1] if isinstance(text, list) else str(text or "")
            return Outcome(extras={"preview": sanitize(text)}, values={"script": text})
        return await super().action(session, item_id, name, form)
