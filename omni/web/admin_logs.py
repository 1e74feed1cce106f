"""Two read-mostly admin pages with filters and paging: the audit log (``/admin/audit``) and the
webhook delivery log (``/admin/webhook-deliveries``, with replay).

Filters are a GET form, so a filtered view is a link an admin can send to a colleague; pages go
back with ``before`` (the oldest id shown), never with an offset that shifts as rows arrive.
A filter the domain refuses (a range that ends before it starts) comes back next to its input
with the rest of the form kept. The same filters exist in REST: ``GET /api/v1/audit`` and
``GET /api/v1/webhooks/{id}/deliveries``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import webhooks
from omni.domain.admin import tokens
from omni.domain.admin.checks import DELIVERY_STATES
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.reports.config import get_config
from omni.web.admin.audit_labels import action_label, entity_ref, object_label, result_label
from omni.web.admin.forms import ADMIN, AUDITOR
from omni.web.admin.integrations import delivery_row, pretty, when
from omni.web.admin.pages import _nav
from omni.web.pages import PageContext, page_context, read_form

PAGE_SIZE = 50
AUDIT_PATH = "/admin/audit"
LOG_PATH = "/admin/webhook-deliveries"
AUDIT_FILTERS = ("user", "object_type", "object_id", "action", "since", "until")
LOG_FILTERS = ("webhook", "state", "event_type")


def _id(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**63 else None


def _filters(params: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {n: str(params.get(n) or "").strip()[:255] for n in names}


def _link(path: str, filters: dict[str, str], **more: Any) -> str:
    query = {k: v for k, v in {**filters, **more}.items() if v not in (None, "")}
    return f"{path}?{urlencode(query)}" if query else path


def _day(field: str, text: str, tz: Any, *, end: bool) -> datetime | None:
    """A day of the install's calendar as the instant it starts (``end``: the next day's start,
    so "until 30 November" includes all of the 30th)."""
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d")  # noqa: DTZ007 - a calendar day, zone added below
    except ValueError as exc:
        raise InvalidInput("{field} must be a date like 2026-11-30", field=field) from exc
    start = day.replace(tzinfo=tz)
    return start + timedelta(days=1) if end else start


class LogPages(Controller):
    path = "/admin"
    include_in_schema = False

    # --- audit log ----------------------------------------------------------------------------

    @get("/audit")
    async def audit(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(ADMIN, AUDITOR)
        params = request.query_params
        filters = _filters(params, AUDIT_FILTERS)
        before = _id(params.get("before"))
        errors: dict[str, str] = {}
        labels = {n: ctx.t(f"adm.au.f.{n}") for n in AUDIT_FILTERS}
        async with services_of(request).db.transaction() as session:
            tz = (await get_config(session)).tz
            users = {
                uid: name for uid, name in (await session.execute(select(m.User.id, m.User.username))).all()
            }
            types = await tokens.audit_object_types(session, ctx.who)
            bounds: dict[str, datetime | None] = {}
            for name in ("since", "until"):
                try:
                    bounds[name] = _day(name, filters[name], tz, end=name == "until")
                except InvalidInput as exc:
                    errors[name] = exc.localized(ctx.lang, labels[name])
            found: list[m.AuditLog] = []
            if not errors:
                try:
                    found = await tokens.list_audit(
                        session,
                        ctx.who,
                        user_id=_id(filters["user"]),
                        action=filters["action"] or None,
                        object_type=filters["object_type"] or None,
                        object_id=filters["object_id"] or None,
                        since=bounds["since"],
                        until=bounds["until"],
                        before_id=before,
                        limit=PAGE_SIZE + 1,
                    )
                except InvalidInput as exc:
                    errors = {
                        e.field or "_": e.localized(ctx.lang, labels.get(e.field or ""))
                        for e in exc.errors or [exc]
                    }
            more = len(found) > PAGE_SIZE
            rows = [
                {
                    "id": a.id,
                    "at": when(a.created_at, tz),
                    "actor": users.get(a.user_id, str(a.user_id)) if a.user_id is not None else "—",
                    "action": a.action,
                    "action_label": action_label(ctx.lang, a.action),
                    "entity": entity_ref(ctx.lang, a.object_type, a.object_id)[0] if a.object_type else "",
                    "entity_link": _link(AUDIT_PATH, {"object_type": a.object_type, "object_id": a.object_id})
                    if entity_ref(ctx.lang, a.object_type, a.object_id)[1]
                    else "",
                    "result": a.result,
                    "result_label": result_label(ctx.lang, a.result),
                    "ip": a.ip,
                    "input": pretty(a.input) if a.input else "",
                }
                for a in found[:PAGE_SIZE]
            ]
        return ctx.template(
            "admin/audit.html",
            status_code=400 if errors else 200,
            nav=_nav(ctx),
            section={"slug": "audit", "title": ctx.t("adm.audit")},
            filters=filters,
            labels=labels,
            errors=errors,
            users=sorted(users.items(), key=lambda kv: kv[1]),
            types=[(v, object_label(ctx.lang, v)) for v in types],
            rows=rows,
            older_link=_link(AUDIT_PATH, filters, before=rows[-1]["id"]) if more and rows else "",
            newest_link=_link(AUDIT_PATH, filters) if before else "",
            zone=str(tz),
        )

    # --- webhook delivery log -----------------------------------------------------------------

    async def _log(
        self, ctx: PageContext, request: Request[Any, Any, Any], *, notice: str = "", error: str = ""
    ) -> Template:
        params = request.query_params
        filters = _filters(params, LOG_FILTERS)
        before = _id(params.get("before"))
        errors: dict[str, str] = {}
        async with services_of(request).db.transaction() as session:
            tz = (await get_config(session)).tz
            hooks = await webhooks.list_webhooks(session, ctx.who, limit=1000)
            names = {h.id: h.name for h in hooks}
            try:
                found = await webhooks.list_delivery_log(
                    session,
                    ctx.who,
                    webhook_id=_id(filters["webhook"]),
                    state=filters["state"] or None,
                    event_type=filters["event_type"] or None,
                    before_id=before,
                    limit=PAGE_SIZE + 1,
                )
            except NotFound as exc:
                errors["webhook"] = exc.localized(ctx.lang)
                found = []
            except InvalidInput as exc:
                errors[exc.field or "_"] = exc.localized(ctx.lang, ctx.t(f"adm.dl.f.{exc.field}"))
                found = []
        more = len(found) > PAGE_SIZE
        rows = [
            {**delivery_row(d, e, tz), "webhook": names.get(d.subscription_id, "")}
            for d, e in found[:PAGE_SIZE]
        ]
        return ctx.template(
            "admin/deliveries.html",
            status_code=400 if errors or error else 200,
            nav=_nav(ctx),
            section={"slug": "webhooks", "title": ctx.t("adm.webhooks")},
            filters=filters,
            errors=errors,
            error=error,
            notice=notice,
            hooks=[(str(h.id), h.name) for h in hooks],
            states=[(s, ctx.t(f"adm.dl.state.{s}")) for s in DELIVERY_STATES],
            rows=rows,
            older_link=_link(LOG_PATH, filters, before=rows[-1]["id"]) if more and rows else "",
            newest_link=_link(LOG_PATH, filters) if before else "",
        )

    @get("/webhook-deliveries")
    async def deliveries(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(ADMIN)
        notice = (
            ctx.t("adm.dl.replayed", id=request.query_params.get("replayed"))
            if _id(request.query_params.get("replayed"))
            else ""
        )
        return await self._log(ctx, request, notice=notice)

    @post("/webhook-deliveries/{delivery_id:int}/replay", status_code=200)
    async def replay(self, request: Request[Any, Any, Any], delivery_id: int) -> Response[Any]:
        """Marked pending in one transaction, enqueued after it commits (like the REST replay)."""
        from omni.worker import enqueue_deliveries

        ctx = await page_context(request)
        ctx.require(ADMIN)
        form = await read_form(request, ctx)
        back = _link(LOG_PATH, _filters(form, LOG_FILTERS), before=_id(form.get("before")) or "")
        try:
            async with services_of(request).db.transaction() as session:
                await webhooks.check_replay_delivery(session, ctx.who, delivery_id)
        except NotFound as exc:
            return await self._log(ctx, request, error=exc.localized(ctx.lang))
        await asyncio.to_thread(enqueue_deliveries, [delivery_id])
        sep = "&" if "?" in back else "?"
        return Redirect(path=f"{back}{sep}replayed={delivery_id}")


CONTROLLERS: list[type[Controller]] = [LogPages]
