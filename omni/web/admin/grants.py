"""Admin section for per-role grants and masking (``omni.domain.grants``), at ``/admin/grants``.

One row per editable role (supervisor, operator, auditor) with the grants it holds; its form is
a checkbox per grant, those the role can never hold shown but locked. The last row picks the
webhooks whose payloads carry masked phones and e-mails."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import grants
from omni.domain.errors import NotFound
from omni.i18n import Label, enum_label
from omni.web.admin.forms import ADMIN, Cell, Field, Section, Table

ROLE_IDS: dict[int, m.Role] = {i: role for i, role in enumerate(grants.ROLES, start=1)}
WEBHOOKS_ID = len(ROLE_IDS) + 1
"""The row of the masked-webhooks choice."""


def _form_name(grant: str) -> str:
    """``pii.view`` → ``grant_pii_view`` (a dot in a form name reads as a nested field)."""
    return "grant_" + grant.replace(".", "_")


def _scope_name(grant: str) -> str:
    return "scope_" + grant.replace(".", "_")


class Grants(Section):
    slug = "grants"
    title = "adm.grants"
    view_roles = (ADMIN,)
    create_roles = ()
    can_delete = False

    def heading(self, item: Any) -> str:
        if isinstance(item, m.Role):
            return self.t("adm.grants.of_role", role=enum_label(self.ctx.lang, "role", item.value))
        return self.t("adm.grants.masked_webhooks")

    def _held_label(self, role: m.Role, grant: str, scope: str) -> str:
        """``export reports`` or, when the scope may be chosen, ``export reports (own)``."""
        label = grants.grant_label(grant, self.ctx.lang)
        if grants.scopes_for(role, grant):
            return f"{label} ({Label('grant_scope', scope).show(self.ctx.lang)})"
        return label

    async def table(self, session: AsyncSession) -> Table:
        rows: list[list[Cell]] = []
        for item_id, role in ROLE_IDS.items():
            held = await grants.role_scopes(session, role)
            rows.append(
                [
                    Cell(enum_label(self.ctx.lang, "role", role.value), self.href(item_id)),
                    Cell(", ".join(self._held_label(role, g, held[g]) for g in grants.GRANTS if g in held)),
                ]
            )
        masked = await grants.masked_webhook_ids(session)
        names = list(
            await session.scalars(
                select(m.WebhookSubscription.name)
                .where(m.WebhookSubscription.id.in_(masked))
                .order_by(m.WebhookSubscription.name)
            )
        )
        rows.append(
            [
                Cell(self.t("adm.grants.masked_webhooks"), self.href(WEBHOOKS_ID)),
                Cell(", ".join(names) or "—"),
            ]
        )
        return Table([self.t("adm.f.role"), self.t("adm.grants.held")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        if item_id == WEBHOOKS_ID:
            return "webhooks"
        role = ROLE_IDS.get(item_id)
        if role is None:
            raise NotFound("no role row {item_id}", item_id=item_id)
        return role

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        if isinstance(item, m.Role):
            out: list[Field] = []
            for g in grants.GRANTS:
                widened = item not in grants.DEFAULTS[g] and grants.can_hold(item, g)
                out.append(
                    Field(
                        _form_name(g),
                        grants.grant_label(g, self.ctx.lang),
                        "checkbox",
                        readonly=not grants.can_hold(item, g),
                        help=self.t("adm.grants.widened") if widened else "",
                    )
                )
                choices = grants.scopes_for(item, g)
                if choices:
                    out.append(
                        Field(
                            _scope_name(g),
                            self.t("adm.grants.scope_of", permission=grants.grant_label(g, self.ctx.lang)),
                            "select",
                            options=[(c, Label("grant_scope", c).show(self.ctx.lang)) for c in choices],
                            readonly=len(choices) == 1,
                        )
                    )
            return out
        hooks = await session.scalars(select(m.WebhookSubscription).order_by(m.WebhookSubscription.name))
        return [
            Field(
                "masked_webhook_ids",
                self.t("adm.grants.masked_webhooks"),
                "checks",
                options=[(str(h.id), h.name) for h in hooks],
                numeric=True,
                help=self.t("adm.grants.masked_webhooks_help"),
            )
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if isinstance(item, m.Role):
            held = await grants.role_scopes(session, item)
            values: dict[str, Any] = {_form_name(g): g in held for g in grants.GRANTS}
            for g in grants.GRANTS:
                choices = grants.scopes_for(item, g)
                if choices:
                    values[_scope_name(g)] = held.get(g) or choices[-1]
            return values
        return {"masked_webhook_ids": sorted(await grants.masked_webhook_ids(session))}

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        assert item_id is not None  # no "new" row (create_roles is empty)
        item = await self.load(session, item_id)
        if isinstance(item, m.Role):
            changes = {g: bool(data.get(_form_name(g))) for g in grants.GRANTS if grants.can_hold(item, g)}
            scopes = {
                g: data[_scope_name(g)]
                for g in grants.GRANTS
                if changes.get(g) and len(grants.scopes_for(item, g)) > 1 and data.get(_scope_name(g))
            }
            await grants.check_set_role_grants(session, self.who, item.value, changes, scopes)
        else:
            ids = [int(i) for i in data.get("masked_webhook_ids") or []]
            await grants.check_set_masked_webhooks(session, self.who, ids)
        return item_id
