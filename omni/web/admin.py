"""Admin pages: server-rendered forms over the admin domain services."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from omni.db import models as m
from omni.web.pages import page_context


class AdminPages(Controller):
    path = "/admin"

    @get("/", include_in_schema=False)
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN, m.Role.AUDITOR)
        return ctx.template("error.html", message="")


CONTROLLERS: list[type[Controller]] = [AdminPages]
