"""The reports page: a Jinja2 shell around ``ui/src/reports.ts``.

The module reads everything else over REST (``/api/v1/reports``, ``/options``, one report, the
export jobs), so the page carries only boot data: ``strings`` (``rpt.*``, report and column
titles included), the period presets and groupings in the order the page offers them, the
install's time zone (datetimes read in the zone the reports count days in), and the address
of the mailing schedules page the "Schedule mailing" link opens.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import grants
from omni.domain.reports import Grouping, Preset, get_config
from omni.web.i18n import messages
from omni.web.pages import boot_data, page_context, require_grant

SCHEDULES_PATH = "/reports/schedules"
"""The mailing page (teammate "mailing"): opened with ``?report=<key>&<the filter>``."""


class ReportsPage(Controller):
    @get("/reports", include_in_schema=False)
    async def reports(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        await require_grant(request, ctx, grants.PAGE_REPORTS)  # operators only when widened
        async with services_of(request).db.transaction() as session:
            config = await get_config(session)
            grader = ctx.who.role in (m.Role.SUPERVISOR, m.Role.ADMIN) and await grants.allowed(
                session, ctx.who, grants.QA_GRADE
            )
        return ctx.template(
            "live.html",
            module="reports",
            boot=boot_data(
                ctx,
                strings=messages(ctx.lang, "rpt."),
                presets=[p.value for p in Preset],
                groupings=[g.value for g in Grouping],
                timezone=config.timezone,
                schedules_path=SCHEDULES_PATH,
                grade_path="/qa/grade" if grader else None,
            ),
        )
