"""Admin section for inboxes (channel entry points and the widget's settings)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin
from omni.domain.errors import InvalidInput
from omni.web.admin.forms import (
    ADMIN,
    CHANNELS,
    COLOUR,
    FORM_CONFIG_KEYS,
    LIMIT,
    PRECHAT_FIELDS,
    Cell,
    Field,
    Outcome,
    Section,
    Table,
    queue_names,
    scenario_keys,
    yes_no,
)
from omni.web.i18n import enum_label, enum_options


async def _prompt_options(session: AsyncSession) -> list[tuple[str, str]]:
    """The prompt manager's prompts as ``folder/name`` (a voice inbox's welcome prompt)."""
    rows = await session.scalars(select(m.Prompt).order_by(m.Prompt.folder, m.Prompt.name).limit(LIMIT))
    return [(str(p.id), f"{p.folder}/{p.name}" if p.folder else p.name) for p in rows]


class Inboxes(Section):
    slug = "inboxes"
    title = "adm.inboxes"

    async def table(self, session: AsyncSession) -> Table:
        queues = await queue_names(session)
        rows = [
            [
                Cell(i.name, self.href(i.id)),
                Cell(enum_label(self.ctx.lang, "channel", i.channel)),
                Cell(queues.get(i.queue_id, "") if i.queue_id else ""),
                Cell(yes_no(self.ctx, i.active)),
            ]
            for i in await admin.list_inboxes(session, self.who, limit=LIMIT)
        ]
        return Table([self.t(f"adm.f.{c}") for c in ("name", "channel", "queue_id", "active")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.access_inbox(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        queues = [(str(qid), name) for qid, name in sorted((await queue_names(session)).items())]
        prechat = [(v, t(f"adm.prechat.{v}")) for v in ("off", "optional", "required")]
        fields = [
            Field("name", t("adm.f.name"), required=True),
            Field("channel", t("adm.f.channel"), "select", enum_options(self.ctx.lang, "channel", CHANNELS)),
            Field("queue_id", t("adm.f.queue_id"), "select", [("", t("adm.none")), *queues], numeric=True),
            Field(
                "scenario",
                t("adm.f.scenario"),
                "select",
                [("", t("adm.none")), *((k, k) for k in await scenario_keys(session))],
                help=t("adm.scenario_help"),
            ),
            Field("active", t("adm.f.active"), "checkbox"),
            Field(
                "welcome_prompt_id",
                t("adm.f.welcome_prompt"),
                "select",
                [("", t("adm.none")), *await _prompt_options(session)],
                numeric=True,
                nullable=True,
                help=t("adm.welcome_prompt_help"),
            ),
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
        body["welcome_prompt_id"] = config.pop("welcome_prompt_id", None)
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
        welcome = data.pop("welcome_prompt_id", None)
        if welcome is not None:
            config["welcome_prompt_id"] = int(welcome)
        colour = str(data.pop("colour", "")).strip()
        if colour:
            if not COLOUR.fullmatch(colour):
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
        if key and key not in await scenario_keys(session):
            raise InvalidInput(self.t("adm.unknown_scenario", name=key), field="scenario")
        welcome = data["config"].get("welcome_prompt_id")
        if welcome is not None and await session.get(m.Prompt, welcome) is None:
            raise InvalidInput(self.t("adm.unknown_prompt", id=welcome), field="welcome_prompt_id")
        if item_id is None:
            return (await admin.check_create_inbox(session, self.who, data)).id
        return (await admin.check_update_inbox(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_delete_inbox(session, self.who, item_id)

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
            secret = await admin.check_rotate_inbox_secret(
                session, self.who, item_id, self.services.settings.effective_secret_key()
            )
            return Outcome(extras={"secret": secret})
        return await super().action(session, item_id, name, form)
