"""The supervisor's live monitoring page: a Jinja2 shell around ``ui/src/supervisor.ts``.

Boot data: ``strings`` (``sv.*``) and ``statuses`` — every operator status with its localised
name and colour; ``settable`` marks the ones a supervisor may choose (not the derived
ringing / talking / wrap-up); ``spy`` — which listen / whisper / barge buttons to offer on whose
calls (``omni.domain.grants.spy_rights``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import grants
from omni.web.i18n import messages
from omni.web.pages import boot_data, page_context, require_grant

DERIVED = (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP)


class SupervisorPage(Controller):
    @get("/supervisor", include_in_schema=False)
    async def monitor(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN)
        await require_grant(request, ctx, grants.PAGE_SUPERVISOR)
        async with services_of(request).db.transaction() as session:
            rows = (await session.scalars(select(m.OperatorStatus).order_by(m.OperatorStatus.id))).all()
            statuses = [
                {
                    "code": s.code,
                    "name": (s.name_ru or s.name) if ctx.lang == "ru" else s.name,
                    "colour": s.colour,
                    "settable": s.kind not in DERIVED,
                    "max_duration_seconds": s.max_duration_seconds,
                }
                for s in rows
            ]
            spy = await grants.spy_rights(session, ctx.who)
            grader = await grants.allowed(session, ctx.who, grants.QA_GRADE)
        return ctx.template(
            "live.html",
            module="supervisor",
            # The softphone (omni/web/ui/src/operator/softphone.ts) speaks the operator's words.
            boot=boot_data(
                ctx,
                strings=messages(ctx.lang, "sv.") | messages(ctx.lang, "op.softphone"),
                statuses=statuses,
                spy=spy,
                grade_path="/qa/grade" if grader else None,
            ),
        )
