"""The admin pages controller: one listing/form/action route set over every section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from omni.api.deps import services_of
from omni.domain.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from omni.services import Services
from omni.web.admin.automation import AutomationRules, Macros, OperatorScripts, RuleRuns
from omni.web.admin.calendars import Calendars
from omni.web.admin.campaigns import Campaigns
from omni.web.admin.contacts import Contacts
from omni.web.admin.crm import Crm
from omni.web.admin.forms import (
    ADMIN,
    AUDITOR,
    SUPERVISOR,
    Field,
    Section,
    base_field,
)
from omni.web.admin.grants import Grants
from omni.web.admin.inboxes import Inboxes
from omni.web.admin.integrations import ApiTokens, AuditLog, Webhooks
from omni.web.admin.labels import Labels
from omni.web.admin.ldap import Ldap
from omni.web.admin.people import Groups, Users
from omni.web.admin.queues import Queues, ResultCodes, Statuses
from omni.web.admin.retention import Retention
from omni.web.admin.schedules import Escalation, Hours
from omni.web.admin.skills import Skills
from omni.web.admin.sla import SlaPolicies
from omni.web.admin.telegram_bots import TelegramBots
from omni.web.admin.voice_lines import VoiceLines
from omni.web.admin.wallboard import Install, Wallboards
from omni.web.admin.workspace import CannedReplies, CardFields, Scripts
from omni.web.pages import PageContext, page_context, read_form

SECTIONS: dict[str, type[Section]] = {
    s.slug: s
    for s in (Users, Groups, Queues, Statuses, ResultCodes, Inboxes, CannedReplies, CardFields, Scripts)
}
SECTIONS.update({s.slug: s for s in (Wallboards, Install, Retention)})
SECTIONS[Campaigns.slug] = Campaigns
SECTIONS.update({s.slug: s for s in (Webhooks, ApiTokens, AuditLog)})
SECTIONS[Contacts.slug] = Contacts
SECTIONS[Crm.slug] = Crm
SECTIONS.update({s.slug: s for s in (Skills, Hours, Escalation, TelegramBots, VoiceLines)})
SECTIONS[Grants.slug] = Grants
SECTIONS.update({s.slug: s for s in (Macros, AutomationRules, RuleRuns, OperatorScripts)})
SECTIONS[SlaPolicies.slug] = SlaPolicies
SECTIONS[Labels.slug] = Labels
SECTIONS[Ldap.slug] = Ldap
SECTIONS[Calendars.slug] = Calendars


# --- pages --------------------------------------------------------------------------------


def _nav(ctx: PageContext) -> list[dict[str, str]]:
    return [
        {"slug": slug, "title": ctx.t(cls.title)}
        for slug, cls in SECTIONS.items()
        if ctx.who.role in cls.view_roles
    ]


def _section(ctx: PageContext, services: Services, slug: str, roles: str = "view") -> Section:
    cls = SECTIONS.get(slug)
    if cls is None:
        raise NotFound("no admin section '{slug}'", slug=slug)
    ctx.require(*getattr(cls, f"{roles}_roles"))
    return cls(ctx, services)


def _not_found(ctx: PageContext, exc: DomainError) -> Template:
    detail = exc.localized(ctx.lang)
    return ctx.template("error.html", status_code=404, message=f"{ctx.t('adm.not_found')} ({detail})")


def _forbidden(ctx: PageContext, exc: DomainError) -> Template:
    detail = exc.localized(ctx.lang)
    return ctx.template("error.html", status_code=403, message=f"{ctx.t('error.forbidden')} {detail}")


def _whole_page_refusal(ctx: PageContext, exc: DomainError) -> Template | None:
    """A refusal of the page itself (missing row, out of scope, role) rather than of a field."""
    if isinstance(exc, NotFound):
        return _not_found(ctx, exc)
    if isinstance(exc, PermissionDenied) and not exc.field:
        return _forbidden(ctx, exc)
    return None


async def _render_form(
    sec: Section,
    item_id: int | None,
    *,
    raw: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    extras: Mapping[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Template:
    ctx = sec.ctx
    async with sec.services.db.transaction() as session:
        item = await sec.load(session, item_id) if item_id is not None else None
        fields = await sec.fields(session, item)
        domain_values = await sec.values(session, item)
        seen = await sec.visibility(session, item) if ctx.who.role == ADMIN else None
    values = {f.name: f.show(domain_values.get(f.name)) for f in fields}
    if raw is not None:
        values.update({f.name: f.raw(raw) for f in fields if not f.readonly})
    editable = sec.editable(item)
    errors = dict(errors or {})
    top_error = errors.pop("_", "")
    names = {f.name for f in fields}
    for key in [k for k in errors if k not in names]:
        top_error = f"{top_error} {errors.pop(key)}".strip()
    can_delete = item is not None and sec.can_delete and ctx.who.role in sec.delete_roles and editable
    return ctx.template(
        sec.form_template,
        status_code=status_code,
        nav=_nav(ctx),
        section={"slug": sec.slug, "title": ctx.t(sec.title)},
        heading=sec.heading(item) if item is not None else ctx.t("adm.new"),
        action=f"/admin/{sec.slug}/{item_id}" if item_id is not None else f"/admin/{sec.slug}/new",
        item_id=item_id,
        fields=fields,
        values=values,
        errors=errors,
        top_error=top_error,
        notice=notice,
        editable=editable,
        can_delete=can_delete,
        delete_label=ctx.t(sec.delete_label),
        extras={**sec.extras(item), **(extras or {})},
        visibility=seen,
    )


def _parse(
    fields: Sequence[Field], form: Mapping[str, Any], ctx: PageContext
) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.readonly:
            continue
        raw = f.raw(form)
        if f.omit_empty and not raw:
            continue
        try:
            data[f.name] = f.parse(raw, ctx.t)
        except InvalidInput as exc:
            errors[f.name] = exc.localized(ctx.lang, f.label)
    return data, errors


class _DiscardChecked(Exception):
    """Rolls back a save that ran only to check the fields (others had parse errors)."""


class AdminPages(Controller):
    path = "/admin"
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(SUPERVISOR, ADMIN, AUDITOR)
        return ctx.template("admin/index.html", nav=_nav(ctx))

    @get("/{slug:str}")
    async def listing(self, request: Request[Any, Any, Any], slug: str) -> Template:
        ctx = await page_context(request)
        try:
            sec = _section(ctx, services_of(request), slug)
            ctx.extra["query"] = {key: request.query_params.get(key) for key in request.query_params}
            async with sec.services.db.transaction() as session:
                table = await sec.table(session)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal
        notice = ""
        if request.query_params.get("deleted"):
            notice = ctx.t("adm.deleted")
        elif request.query_params.get("saved"):
            notice = ctx.t("form.saved")
        return ctx.template(
            "admin/list.html",
            nav=_nav(ctx),
            section={"slug": sec.slug, "title": ctx.t(sec.title)},
            table=table,
            can_create=ctx.who.role in sec.create_roles,
            notice=notice,
        )

    @get("/{slug:str}/new")
    async def new(self, request: Request[Any, Any, Any], slug: str) -> Template:
        ctx = await page_context(request)
        try:
            return await _render_form(_section(ctx, services_of(request), slug, "create"), None)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal

    @get("/{slug:str}/{item_id:int}")
    async def edit(self, request: Request[Any, Any, Any], slug: str, item_id: int) -> Template:
        ctx = await page_context(request)
        notice = ctx.t("form.saved") if request.query_params.get("saved") else ""
        try:
            sec = _section(ctx, services_of(request), slug)
            return await _render_form(sec, item_id, notice=notice)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal

    @post("/{slug:str}/new", status_code=200)
    async def create(self, request: Request[Any, Any, Any], slug: str) -> Response[Any]:
        return await self._submit(request, slug, None)

    @post("/{slug:str}/{item_id:int}", status_code=200)
    async def update(self, request: Request[Any, Any, Any], slug: str, item_id: int) -> Response[Any]:
        return await self._submit(request, slug, item_id)

    async def _submit(self, request: Request[Any, Any, Any], slug: str, item_id: int | None) -> Response[Any]:
        ctx = await page_context(request)
        try:
            sec = _section(ctx, services_of(request), slug, "create" if item_id is None else "edit")
            form = await read_form(request, ctx)
            async with sec.services.db.transaction() as session:
                item = await sec.load(session, item_id) if item_id is not None else None
                if not sec.editable(item):
                    raise PermissionDenied("you can view this but not change it")
                fields = await sec.fields(session, item)
            data, errors = _parse(fields, form, ctx)
            try:
                async with sec.services.db.transaction() as session:
                    saved_id = await sec.save(session, item_id, data)
                    if errors:
                        # The fields that parsed were checked too (so every problem shows at
                        # once); nothing may be stored while some are wrong.
                        raise _DiscardChecked
            except _DiscardChecked:
                pass
            except DomainError as exc:
                if _whole_page_refusal(ctx, exc) is not None:
                    raise
                labels = {f.name: f.label for f in fields}
                for problem in exc.errors or [exc]:
                    label = labels.get(problem.field or "")  # nested fields keep their path
                    errors.setdefault(base_field(problem.field) or "_", problem.localized(ctx.lang, label))
            if errors:
                return await _render_form(sec, item_id, raw=form, errors=errors, status_code=400)
            if sec.revealed:  # shown once: a redirect would lose it
                return await _render_form(sec, saved_id, extras=sec.revealed, notice=ctx.t("form.saved"))
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal
        return Redirect(path=f"/admin/{sec.slug}/{saved_id}?saved=1")

    @post("/{slug:str}/{item_id:int}/{name:str}", status_code=200)
    async def act(self, request: Request[Any, Any, Any], slug: str, item_id: int, name: str) -> Response[Any]:
        """Delete, rotate a secret, preview a script: POST forms with the CSRF token."""
        ctx = await page_context(request)
        try:
            sec = _section(ctx, services_of(request), slug, "edit")
            form = await read_form(request, ctx)
            try:
                async with sec.services.db.transaction() as session:
                    outcome = await sec.action(session, item_id, name, form)
                if outcome.after is not None:
                    outcome = await outcome.after()
            except DomainError as exc:
                if _whole_page_refusal(ctx, exc) is not None:
                    raise
                return await _render_form(
                    sec, item_id, errors={"_": exc.localized(ctx.lang)}, status_code=400
                )
            if outcome.redirect:
                return Redirect(path=outcome.redirect)
            return await _render_form(sec, item_id, raw=outcome.values, extras=outcome.extras)
        except DomainError as exc:
            refusal = _whole_page_refusal(ctx, exc)
            if refusal is None:
                raise
            return refusal


CONTROLLERS: list[type[Controller]] = [AdminPages]
