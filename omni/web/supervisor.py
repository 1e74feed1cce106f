"""The supervisor's live monitoring page: a Jinja2 shell around ``ui/src/supervisor.ts``."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from omni.db import models as m
from omni.web.i18n import messages
from omni.web.pages import boot_data, page_context


class SupervisorPage(Controller):
    @get("/supervisor", include_in_schema=False)
    async def monitor(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN)
        return ctx.template(
            "live.html", module="supervisor", boot=boot_data(ctx, strings=messages(ctx.lang, "sv."))
        )
