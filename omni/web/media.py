"""The prompt manager page (``/supervisor/prompts``) and the staff file area (``/files``): Jinja2
shells around ``ui/src/media.ts``, which does everything over ``omni.api.media``.

Boot data: ``view`` (``prompts`` | ``files``), ``manage`` (may upload, rename, move and delete:
supervisors and admins), ``roles`` (for a staff file's readers) and ``strings`` (``media.*``).
Auditors see the prompts read-only; every staff member opens the file area and sees what their
role may read.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from omni.db import models as m
from omni.web.i18n import messages
from omni.web.pages import boot_data, page_context

MANAGERS = (m.Role.SUPERVISOR, m.Role.ADMIN)


class MediaPages(Controller):
    @get("/supervisor/prompts", include_in_schema=False)
    async def prompts(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN, m.Role.AUDITOR)
        boot = boot_data(
            ctx,
            strings=messages(ctx.lang, "media."),
            view="prompts",
            manage=ctx.who.role in MANAGERS,
            roles=[],
        )
        return ctx.template("live.html", module="media", boot=boot)

    @get("/files", include_in_schema=False)
    async def files(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        boot = boot_data(
            ctx,
            strings=messages(ctx.lang, "media."),
            view="files",
            manage=ctx.who.role in MANAGERS,
            roles=[r.value for r in (m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.AUDITOR)],
        )
        return ctx.template("live.html", module="media", boot=boot)


CONTROLLERS = [MediaPages]
