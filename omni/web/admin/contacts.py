"""The contacts workspace (admins and supervisors): search, the card with identities and tags,
edit, merge two contacts, export, the blacklist and erasing a contact's personal data.

One :class:`Section` over ``omni.domain.contacts``: the list searches (``?q=``: name, phone,
e-mail or an identity; ``?blacklisted=1``: the blacklist), the card is the usual form plus the
workspace's own actions (``merge``, ``blacklist``, ``erase``), whose refusals come back next to
their input. The export is the report exports' (``omni.domain.reports.contacts``): the list
links to the reports page with the search filled in, which runs the job and shows its progress.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import contacts, retention
from omni.domain.errors import DomainError, InvalidInput, PermissionDenied
from omni.web.admin.forms import ADMIN, SUPERVISOR, Cell, Field, Outcome, Section, Table, yes_no

LIMIT = 200
ERASED_KINDS = ("conversations", "messages", "attachments", "recordings", "events")


def _one(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[-1] if value else ""
    return "" if value is None else str(value)


class Contacts(Section):
    slug = "contacts"
    title = "adm.contacts"
    view_roles = (ADMIN, SUPERVISOR)
    edit_roles = (ADMIN, SUPERVISOR)
    create_roles = (ADMIN,)
    """A supervisor sees contacts through their groups' conversations, so one they created by
    hand (no conversation yet) would vanish from their view on save: admins create them."""
    can_delete = False
    form_template = "admin/contact_form.html"

    def heading(self, item: Any) -> str:
        return str(item.name or item.phone or item.email or f"#{item.id}")

    async def table(self, session: AsyncSession) -> Table:
        q = self.query("q").strip()
        only_blacklisted = self.query("blacklisted") == "1"
        rows = await contacts.search_contacts(
            session, self.who, q, limit=LIMIT, blacklisted=True if only_blacklisted else None
        )
        body = [
            [
                Cell(f"#{c.id}", self.href(c.id)),
                Cell(c.name or "—", self.href(c.id)),
                Cell(c.phone or ""),
                Cell(c.email or ""),
                Cell(", ".join(str(t) for t in c.tags or [])),
                Cell(yes_no(self.ctx, c.blacklisted)),
            ]
            for c in rows
        ]
        cols = [self.t(f"adm.contacts.{k}") for k in ("id", "name", "phone", "email", "tags", "blacklisted")]
        export = {"report": "contacts", **({"q": q} if q else {})}
        links = [
            Cell(self.t("adm.contacts.export"), f"/reports?{urlencode(export)}"),
            Cell(
                self.t("adm.contacts.all") if only_blacklisted else self.t("adm.contacts.blacklist_only"),
                "/admin/contacts" if only_blacklisted else "/admin/contacts?blacklisted=1",
            ),
        ]
        return Table(cols, body, search=q, links=links)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        contact = await contacts.access_admin_contact(session, self.who, item_id)
        identities = await session.scalars(
            select(m.ContactIdentity)
            .where(m.ContactIdentity.contact_id == contact.id)
            .order_by(m.ContactIdentity.id)
        )
        self._card = {
            "contact_id": contact.id,
            "identities": [(i.kind, i.value) for i in identities],
            "blacklisted": contact.blacklisted,
            "blacklist_reason": await contacts.blacklist_reason(session, contact.id)
            if contact.blacklisted
            else "",
            "erased": contact.erased_at is not None,
            "can_erase": self.is_admin and contact.erased_at is None,
        }
        return contact

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            Field("name", t("adm.contacts.name")),
            Field("phone", t("adm.contacts.phone"), nullable=True),
            Field("email", t("adm.contacts.email"), nullable=True),
            Field("tags", t("adm.contacts.tags"), "lines", help=t("adm.lines_help")),
            Field("custom_fields", t("adm.contacts.custom_fields"), "json", rows=5),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"name": "", "phone": None, "email": None, "tags": [], "custom_fields": {}}
        return contacts.contact_dict(item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if data.get("custom_fields") is None:
            data["custom_fields"] = {}
        if item_id is None:
            return (await contacts.check_create_contact(session, self.who, data)).id
        return (await contacts.check_update_contact(session, self.who, item_id, data)).id

    def extras(self, item: Any | None) -> dict[str, Any]:
        return dict(getattr(self, "_card", {})) if item is not None else {}

    def _refused(self, exc: DomainError, field: str, values: dict[str, str]) -> Outcome:
        """A refusal of one of the card's actions, shown next to its input (nothing was changed)."""
        if isinstance(exc, PermissionDenied) and not exc.field:
            raise exc
        return Outcome(extras={f"{field}_error": exc.localized(self.ctx.lang), **values})

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        if name == "merge":
            raw = _one(form, "other_id").strip().lstrip("#")
            try:
                if not raw.isdigit() or not 0 < int(raw) < 2**31:
                    raise InvalidInput("give the number of the contact to merge", field="other_id")
                await contacts.check_merge_contacts(session, self.who, item_id, int(raw))
            except DomainError as exc:
                return self._refused(exc, "merge", {"merge_other": raw})
            return Outcome(redirect=f"{self.href(item_id)}?saved=1")
        if name == "blacklist":
            reason = _one(form, "reason")
            on = _one(form, "blacklisted") == "1"
            try:
                await contacts.check_set_contact_blacklisted(
                    session, self.who, item_id, blacklisted=on, reason=reason
                )
            except DomainError as exc:
                return self._refused(exc, "blacklist", {"blacklist_reason_sent": reason})
            return Outcome(redirect=f"{self.href(item_id)}?saved=1")
        if name == "erase":
            counts = await retention.check_erase_contact(session, self.who, item_id, self.services.settings)
            shown = ", ".join(
                f"{self.t(f'adm.contacts.erased.{k}')}: {counts.get(k, 0)}" for k in ERASED_KINDS
            )
            return Outcome(extras={"erased_counts": shown})
        return await super().action(session, item_id, name, form)
