"""A campaign's lists page: a Jinja2 shell around ``ui/src/lists.ts``.

The module reads and writes everything over REST (``/api/v1/campaigns/{id}/lists``, the import
endpoints of ``omni.api.lists``) and follows a running import over the ``/supervisor`` socket
(``list_import`` messages); the page carries only boot data: the campaign and ``strings``
(``lst.*``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain.errors import NotFound, PermissionDenied
from omni.domain.outbound import imports as im
from omni.web.i18n import messages
from omni.web.pages import PageForbidden, boot_data, page_context


class ListsPage(Controller):
    @get("/campaigns/{campaign_id:int}/lists", include_in_schema=False)
    async def lists(self, request: Request[Any, Any, Any], campaign_id: int) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN)
        async with services_of(request).db.transaction() as session:
            try:
                campaign = await im.access_campaign(session, ctx.who, campaign_id)
            except (NotFound, PermissionDenied) as exc:
                raise PageForbidden(ctx) from exc
            info = {"id": campaign.id, "name": campaign.name, "default_region": campaign.default_region}
        return ctx.template(
            "live.html",
            module="lists",
            boot=boot_data(ctx, strings=messages(ctx.lang, "lst."), campaign=info),
        )
