"""The operator single window page: a Jinja2 shell around the live module (``ui/src/operator.ts``).

The page hands the module its boot data (who, language, the ``op.*`` strings, the shared
statuses); everything else comes over the ``/operator`` Socket.IO namespace.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.runner import TECHNICAL_VARIABLES
from omni.api.deps import services_of
from omni.db import models as m
from omni.domain.auth import Principal, visible_queue_ids
from omni.web.i18n import messages
from omni.web.pages import boot_data, page_context


class OperatorPage(Controller):
    @get("/app", include_in_schema=False)
    async def window(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN)
        async with services_of(request).db.transaction() as session:
            rows = (await session.scalars(select(m.OperatorStatus).order_by(m.OperatorStatus.id))).all()
            statuses = [
                {
                    "code": s.code,
                    "name": (s.name_ru if ctx.lang == "ru" and s.name_ru else s.name),
                    "colour": s.colour,
                    "kind": s.kind,
                    "selectable": s.selectable
                    and s.kind not in (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP),
                    "receives_chats": s.receives_chats,
                    "receives_voice": s.receives_voice,
                    "max_duration_seconds": s.max_duration_seconds,
                }
                for s in rows
            ]
            voice_on = services_of(request).settings.voice.enabled
            dial_queues = await _dial_queues(session, ctx.who) if voice_on else []
        return ctx.template(
            "live.html",
            module="operator",
            boot=boot_data(
                ctx,
                strings=messages(ctx.lang, "op."),
                statuses=statuses,
                dial_queues=dial_queues,
                technical_variables=sorted(TECHNICAL_VARIABLES),
            ),
        )


async def _dial_queues(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """Queues the caller may place calls from (click-to-call): theirs, with an active voice line."""
    visible = await visible_queue_ids(session, who)
    stmt = (
        select(m.Queue.id, m.Queue.name)
        .join(m.Inbox, m.Inbox.queue_id == m.Queue.id)
        .where(m.Inbox.channel == "voice", m.Inbox.active.is_(True))
        .distinct()
        .order_by(m.Queue.name)
    )
    if visible is not None:
        stmt = stmt.where(m.Queue.id.in_(visible))
    return [{"id": qid, "name": name} for qid, name in (await session.execute(stmt)).all()]
