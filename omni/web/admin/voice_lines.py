"""Admin section for voice lines: a voice inbox with its number (DID → queue) and caller ID.

A voice line is an inbox with ``channel = "voice"`` (docs/voice.md): the number callers dial
(``config.did``) picks the inbox and so its queue, its scenario runs first (the IVR), and
``config.caller_id`` is what customers see when its queue calls out. The same rows and checks
as ``/api/v1/inboxes`` (``omni.domain.admin.check_*_inbox``), as a form instead of JSON.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin
from omni.domain.errors import DomainError, InvalidInput, NotFound
from omni.web.admin.forms import (
    LIMIT,
    Cell,
    Field,
    Section,
    Table,
    queue_names,
    scenario_keys,
    yes_no,
)

VOICE = "voice"
FORM_KEYS = ("did", "caller_id", "scenario", "welcome_prompt_id")


class VoiceLines(Section):
    slug = "voice-lines"
    title = "adm.voice"

    async def table(self, session: AsyncSession) -> Table:
        queues = await queue_names(session)
        rows = [
            [
                Cell(i.name, self.href(i.id)),
                Cell(str((i.config or {}).get("did", ""))),
                Cell(queues.get(i.queue_id, "") if i.queue_id else ""),
                Cell(str((i.config or {}).get("caller_id", ""))),
                Cell(yes_no(self.ctx, i.active)),
            ]
            for i in await admin.list_inboxes(session, self.who, limit=LIMIT)
            if i.channel == VOICE
        ]
        cols = ["adm.f.name", "adm.voice.did", "adm.f.queue_id", "adm.voice.caller_id", "adm.f.active"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        inbox = await admin.access_inbox(session, self.who, item_id)
        if inbox.channel != VOICE:
            raise NotFound("voice line {item_id} not found", item_id=item_id)
        return inbox

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        queues = [(str(qid), name) for qid, name in sorted((await queue_names(session)).items())]
        prompts = [
            (str(p.id), f"{p.folder}/{p.name}" if p.folder else p.name)
            for p in await session.scalars(
                select(m.Prompt).order_by(m.Prompt.folder, m.Prompt.name).limit(LIMIT)
            )
        ]
        return [
            Field("name", t("adm.f.name"), required=True),
            Field("did", t("adm.voice.did"), help=t("adm.voice.did_help")),
            Field("queue_id", t("adm.f.queue_id"), "select", [("", t("adm.none")), *queues], numeric=True),
            Field("caller_id", t("adm.voice.caller_id"), help=t("adm.voice.caller_id_help")),
            Field(
                "scenario",
                t("adm.f.scenario"),
                "select",
                [("", t("adm.none")), *((k, k) for k in await scenario_keys(session))],
                help=t("adm.voice.scenario_help"),
            ),
            Field(
                "welcome_prompt_id",
                t("adm.f.welcome_prompt"),
                "select",
                [("", t("adm.none")), *prompts],
                numeric=True,
                nullable=True,
            ),
            Field("active", t("adm.f.active"), "checkbox"),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"active": True}
        config = dict(item.config or {})
        return {
            "name": item.name,
            "queue_id": item.queue_id,
            "active": item.active,
            **{k: config.get(k) for k in FORM_KEYS},
        }

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        current: dict[str, Any] = {}
        if item_id is not None:
            current = dict((await self.load(session, item_id)).config or {})
        config = {k: v for k, v in current.items() if k not in FORM_KEYS}  # other keys kept
        for key in ("did", "caller_id", "scenario"):
            text = str(data.pop(key, "") or "").strip()
            if text:
                config[key] = text
        welcome = data.pop("welcome_prompt_id", None)
        if welcome is not None:
            config["welcome_prompt_id"] = welcome
        if config.get("scenario") and config["scenario"] not in await scenario_keys(session):
            raise InvalidInput("unknown scenario '{name}'", name=config["scenario"], field="scenario")
        data["config"] = config
        try:
            if item_id is None:
                return (await admin.check_create_inbox(session, self.who, {**data, "channel": VOICE})).id
            return (await admin.check_update_inbox(session, self.who, item_id, data)).id
        except DomainError as exc:
            for problem in exc.errors or [exc]:
                if problem.field and problem.field.startswith("config."):
                    problem.field = problem.field.removeprefix("config.")
            raise

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await self.load(session, item_id)
        await admin.check_delete_inbox(session, self.who, item_id)
