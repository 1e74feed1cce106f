"""The do-not-call page, ``/admin/dnc``: one list at a time (the global one or a campaign's),
searched and paged, with a form to add a number or a ``+7495*`` prefix (a refusal shows next
to the field, what was typed kept), a file upload that answers with its counts and the refused
lines, and a delete button per entry.

Supervisors see the campaigns of their queues and read the global list; only administrators
change the global list (``omni.domain.outbound.dnc`` decides, the page only hides buttons).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect, Template

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain.errors import DomainError, InvalidInput, NotFound
from omni.domain.outbound import dnc
from omni.domain.reports.config import get_config
from omni.services import Services
from omni.web.admin.pages import _nav
from omni.web.pages import PageContext, page_context, read_form

PATH = "/admin/dnc"
PAGE_SIZE = 50


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


def _link(campaign: int | None, **params: Any) -> str:
    query = {k: v for k, v in {"campaign": campaign, **params}.items() if v not in (None, "", 0)}
    return f"{PATH}?{urlencode(query)}" if query else PATH


class DncPage(Controller):
    path = PATH
    include_in_schema = False

    async def _page(
        self,
        ctx: PageContext,
        services: Services,
        *,
        campaign: int | None,
        q: str = "",
        offset: int = 0,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        upload: dnc.AddResult | None = None,
        notice: str = "",
        status_code: int = 200,
    ) -> Template:
        t = ctx.t
        try:
            async with services.db.transaction() as session:
                rows, total = await dnc.list_dnc(
                    session, ctx.who, campaign, q=q, offset=offset, limit=PAGE_SIZE
                )
                campaigns = await dnc.visible_campaigns(session, ctx.who)
                tz = (await get_config(session)).tz
        except NotFound as exc:
            return ctx.template("error.html", status_code=404, message=exc.localized(ctx.lang))
        can_manage = campaign is not None or ctx.who.role == m.Role.ADMIN
        listing = [
            {
                "id": r.id,
                "pattern": dnc.pattern_of(r),
                "prefix": r.prefix,
                "reason": r.reason,
                "created_at": r.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            }
            for r in rows
        ]
        return ctx.template(
            "admin/dnc.html",
            status_code=status_code,
            nav=_nav(ctx),
            rows=listing,
            total=total,
            q=q,
            campaign=campaign,
            lists=[("", t("dnc.global"))] + [(str(c.id), c.name) for c in campaigns],
            can_manage=can_manage,
            values=values or {"number": "", "reason": ""},
            errors=errors or {},
            upload=upload,
            rejected=[
                (r.line, r.text, r.error.localized(ctx.lang)) for r in (upload.invalid if upload else [])
            ],
            notice=notice,
            prev_link=_link(campaign, q=q, offset=max(offset - PAGE_SIZE, 0)) if offset > 0 else "",
            next_link=_link(campaign, q=q, offset=offset + PAGE_SIZE) if offset + PAGE_SIZE < total else "",
            first=offset + 1 if total else 0,
            last=min(offset + PAGE_SIZE, total),
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(*dnc.MANAGERS)
        params = request.query_params
        notice = ""
        for flag in ("added", "deleted"):
            if params.get(flag):
                notice = ctx.t(f"dnc.notice.{flag}")
        return await self._page(
            ctx,
            services_of(request),
            campaign=_int(params.get("campaign")),
            q=str(params.get("q") or "")[:64],
            offset=min(_int(params.get("offset")) or 0, 10_000_000),
            notice=notice,
        )

    @post("/", status_code=200)
    async def add(self, request: Request[Any, Any, Any]) -> Response[Any]:
        ctx = await page_context(request)
        ctx.require(*dnc.MANAGERS)
        form = await read_form(request, ctx)
        services = services_of(request)
        campaign = _int(form.get("campaign"))
        values = {"number": str(form.get("number") or "")[:64], "reason": str(form.get("reason") or "")}
        try:
            async with services.db.transaction() as session:
                await dnc.check_add_dnc(
                    session, ctx.who, campaign, [values["number"]], reason=values["reason"], strict=True
                )
        except InvalidInput as exc:
            labels = {"number": ctx.t("dnc.f.number"), "reason": ctx.t("dnc.f.reason")}
            errors = {
                e.field or "number": e.localized(ctx.lang, labels.get(e.field or ""))
                for e in exc.errors or [exc]
            }
            return await self._page(
                ctx, services, campaign=campaign, values=values, errors=errors, status_code=400
            )
        except DomainError as exc:
            return ctx.template("error.html", status_code=exc.status_code, message=exc.localized(ctx.lang))
        return Redirect(path=_link(campaign, added=1))

    @post("/upload", status_code=200)
    async def upload(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(*dnc.MANAGERS)
        form = await read_form(request, ctx)
        services = services_of(request)
        campaign = _int(form.get("campaign"))
        file = form.get("file")
        try:
            if not isinstance(file, UploadFile) or not file.filename:
                raise InvalidInput("choose a file to upload", field="file")
            data = await file.read()
            async with services.db.transaction() as session:
                result = await dnc.check_upload_dnc(
                    session,
                    ctx.who,
                    campaign,
                    data,
                    filename=file.filename[:256],
                    reason=str(form.get("upload_reason") or ""),
                )
        except InvalidInput as exc:
            return await self._page(
                ctx,
                services,
                campaign=campaign,
                errors={"file": exc.localized(ctx.lang)},
                status_code=400,
            )
        except DomainError as exc:
            return ctx.template("error.html", status_code=exc.status_code, message=exc.localized(ctx.lang))
        return await self._page(ctx, services, campaign=campaign, upload=result)

    @post("/{entry_id:int}/delete", status_code=200)
    async def remove(self, request: Request[Any, Any, Any], entry_id: int) -> Response[Any]:
        ctx = await page_context(request)
        ctx.require(*dnc.MANAGERS)
        await read_form(request, ctx)
        try:
            async with services_of(request).db.transaction() as session:
                entry = await dnc.check_remove_dnc(session, ctx.who, entry_id)
        except DomainError as exc:
            return ctx.template("error.html", status_code=exc.status_code, message=exc.localized(ctx.lang))
        return Redirect(path=_link(entry.campaign_id, deleted=1))


CONTROLLERS: list[type[Controller]] = [DncPage]
