"""Admin sections for people: users and groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin, passwords, softphone, totp, visibility
from omni.domain.errors import DomainError, NotFound
from omni.web.admin.forms import (
    LIMIT,
    SUPERVISOR,
    Cell,
    Field,
    Section,
    Table,
    base_field,
    model_defaults,
    queue_options,
    yes_no,
)


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
                Cell(yes_no(self.ctx, u.is_active)),
                Cell(u.email or ""),
            ]
            for u in await admin.list_users(session, self.who, limit=LIMIT)
        ]
        cols = ["adm.f.username", "adm.f.display_name", "adm.f.role", "adm.f.is_active", "adm.f.email"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.access_user(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        webrtc = softphone.webrtc_ready(self.services.settings)
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
            Field(
                "phone_endpoint",
                t("adm.f.phone_endpoint"),
                "select",
                [(e.value, t(f"adm.phone_endpoint.{e.value}")) for e in m.PhoneEndpoint],
                help=t("adm.phone_endpoint_help"),
                warning="" if webrtc else t("adm.phone_endpoint_no_webrtc"),
            ),
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
            fields.insert(
                7,
                Field(
                    "issue_reset_link",
                    t("adm.f.issue_reset_link"),
                    "checkbox",
                    help=t("adm.users.reset_link_help", hours=passwords.RESET_HOURS),
                ),
            )
            if item.totp_enabled_at is not None or item.totp_secret:
                # Shown only while the user has a factor: a lost phone is the admin's to reset.
                fields.insert(
                    7, Field("reset_totp", t("adm.f.reset_totp"), "checkbox", help=t("adm.users.totp_help"))
                )
            if item.role == SUPERVISOR:
                queues = await queue_options(session, self.who)
                fields.append(
                    Field("scope_group_ids", t("adm.f.scope_group_ids"), "multi", groups, numeric=True)
                )
                fields.append(
                    Field("scope_queue_ids", t("adm.f.scope_queue_ids"), "multi", queues, numeric=True)
                )
        return fields

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {**model_defaults(m.User), "language": self.ctx.lang, "group_ids": []}
        body = await admin.user_detail(session, item)
        scope = body.pop("scope", {})
        body["scope_group_ids"] = scope.get("group_ids", [])
        body["scope_queue_ids"] = scope.get("queue_ids", [])
        body["reset_totp"] = False
        body["issue_reset_link"] = False
        return body

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        reset_totp = bool(data.pop("reset_totp", False))
        issue_link = bool(data.pop("issue_reset_link", False))
        if reset_totp and item_id is not None:
            await totp.check_reset(session, self.who, item_id)
        group_ids = data.pop("group_ids", [])
        scope = {
            "group_ids": data.pop("scope_group_ids", None),
            "queue_ids": data.pop("scope_queue_ids", None),
        }
        if item_id is None:
            user = await admin.check_create_user(session, self.who, data)
        else:
            user = await admin.check_update_user(session, self.who, item_id, data)
        await admin.check_set_user_groups(session, self.who, user.id, {"group_ids": group_ids})
        if user.role == SUPERVISOR and scope["group_ids"] is not None:
            try:
                await admin.check_set_supervisor_scope(session, self.who, user.id, scope)
            except DomainError as exc:
                exc.field = f"scope_{base_field(exc.field)}" if exc.field else None
                raise
        if issue_link and item_id is not None:
            issued = await passwords.check_issue_reset(session, self.who, user.id)
            self.revealed = {"reset_link": issued.url(self.services.settings.public_base_url)}
        return user.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_deactivate_user(session, self.who, item_id)

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
            return (await admin.check_create_group(session, self.who, data)).id
        return (await admin.check_update_group(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_delete_group(session, self.who, item_id)

    async def visibility(self, session: AsyncSession, item: Any | None) -> tuple[str, bool] | None:
        if item is None:
            return self.t("adm.vis.group_new"), False
        return self._seen_by(await visibility.supervisors_of_group(session, item.id), "adm.vis.group_nobody")
