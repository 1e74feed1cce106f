"""The operator single window page: a Jinja2 shell around the live module (``ui/src/operator.ts``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from omni.db import models as m
from omni.web.i18n import messages
from omni.web.pages import boot_data, page_context


class OperatorPage(Controller):
    @get("/app", include_in_schema=False)
    async def window(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN)
        return ctx.template(
            "live.html", module="operator", boot=boot_data(ctx, strings=messages(ctx.lang, "op."))
        )
