"""The report mailings page, ``/reports/schedules``: the caller's schedules and a form for one.

The reports page links here with its current filters (``?report=<key>&preset=…&queue=…``, the
query names of ``GET /api/v1/reports/{key}``), so "mail me this" starts from what is on screen.
Roles, ownership and every field are checked by ``omni.domain.reports.schedules``; a refusal
comes back next to the field it is about, with what was typed kept (as the admin forms do).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import reports
from omni.domain.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from omni.domain.reports import Grouping, Preset
from omni.domain.reports import mailing as mail
from omni.domain.reports import schedules as sched
from omni.domain.reports.config import get_config
from omni.domain.reports.filters import REPORT_OPTIONS
from omni.domain.reports.writers import Format
from omni.i18n import LANGUAGES, keyed
from omni.services import Services
from omni.web.admin.forms import queue_options
from omni.web.i18n import enum_options
from omni.web.pages import PageContext, page_context, read_form

PATH = "/reports/schedules"
OPTIONS = tuple(REPORT_OPTIONS)
"""A report's own settings (staffing's ``target_sl``…): one value each, kept from the link."""
PASSED_ON = ("group", "operator", "channel", "inbox", "result_code", *OPTIONS)
"""Filters the form doesn't offer as inputs but keeps (hidden) from the reports page's link."""
FILTER_KEYS = {
    "queue": "queue_ids",
    "group": "group_ids",
    "operator": "user_ids",
    "channel": "channels",
    "inbox": "inbox_ids",
    "result_code": "result_code_ids",
}


def _many(form: Mapping[str, Any], name: str) -> list[str]:
    value = form.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [str(v) for v in values if str(v).strip()]


def _one(form: Mapping[str, Any], name: str, default: str = "") -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return default if value is None else str(value)


def _query(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The query string as the form would post it (repeated names become lists)."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getall(key)
        out[key] = values if len(values) > 1 else values[0]
    return out


def values_of_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """What the template shows: the posted (or linked) text, unchanged."""
    values: dict[str, Any] = {
        "report_key": _one(form, "report_key") or _one(form, "report"),
        "preset": _one(form, "preset"),
        "since": _one(form, "since"),
        "until": _one(form, "until"),
        "grouping": _one(form, "grouping", Grouping.DAY.value),
        "format": _one(form, "format", Format.XLSX.value),
        "frequency": _one(form, "frequency", sched.Frequency.DAILY.value),
        "weekday": _one(form, "weekday"),
        "day_of_month": _one(form, "day_of_month"),
        "send_time": _one(form, "send_time", "08:00"),
        "recipients": _one(form, "recipients"),
        "language": _one(form, "language"),
        "active": form.get("active") is not None,
    }
    for name in FILTER_KEYS:
        values[name] = _many(form, name)
    for name in OPTIONS:
        values[name] = _many(form, name)[-1:]
    return values


def values_of_row(row: m.ReportSchedule) -> dict[str, Any]:
    filters = row.filters
    values: dict[str, Any] = {
        "report_key": row.report_key,
        "preset": filters.get("preset") or "",
        "since": filters.get("since") or "",
        "until": filters.get("until") or "",
        "grouping": filters.get("grouping") or Grouping.DAY.value,
        "format": row.format,
        "frequency": row.frequency,
        "weekday": "" if row.weekday is None else str(row.weekday),
        "day_of_month": "" if row.day_of_month is None else str(row.day_of_month),
        "send_time": row.send_time,
        "recipients": "\n".join(row.recipients),
        "language": row.language,
        "active": row.active,
    }
    for name, key in FILTER_KEYS.items():
        values[name] = [str(v) for v in filters.get(key) or []]
    for name in OPTIONS:
        values[name] = [] if filters.get(name) is None else [str(filters[name])]
    return values


def data_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """Form text as the plain dict the domain validates (it names every bad field)."""
    filters: dict[str, Any] = {
        "preset": values["preset"] or None,
        "since": values["since"] or None,
        "until": values["until"] or None,
        "grouping": values["grouping"] or None,
    }
    for name, key in FILTER_KEYS.items():
        filters[key] = list(values[name])
    for name in OPTIONS:
        filters[name] = values[name][0] if values[name] else None
    return {
        "report_key": values["report_key"],
        "filters": filters,
        "format": values["format"],
        "frequency": values["frequency"],
        "weekday": values["weekday"] or None,
        "day_of_month": values["day_of_month"] or None,
        "send_time": values["send_time"],
        "recipients": values["recipients"],
        "language": values["language"],
        "active": values["active"],
    }


class ReportSchedulesPage(Controller):
    path = PATH
    include_in_schema = False

    async def _page(
        self,
        ctx: PageContext,
        services: Services,
        *,
        editing: int | None,
        values: dict[str, Any],
        errors: Mapping[str, str] | None = None,
        notice: str = "",
        status_code: int = 200,
    ) -> Template:
        t = ctx.t
        async with services.db.transaction() as session:
            rows = await sched.list_schedules(session, ctx.who)
            tz = (await get_config(session)).tz
            owners = dict(
                (
                    await session.execute(
                        select(m.User.id, m.User.username).where(m.User.id.in_({r.owner_id for r in rows}))
                    )
                ).all()
            )
            queues = await queue_options(session, ctx.who)

        def local(at: datetime | None) -> str:
            return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else ""

        def when(row: m.ReportSchedule) -> str:
            base = t(f"rs.freq.{row.frequency}")
            if row.frequency == sched.Frequency.WEEKLY and row.weekday is not None:
                base = f"{base}, {t(f'rs.weekday.{row.weekday}')}"
            if row.frequency == sched.Frequency.MONTHLY and row.day_of_month is not None:
                base = f"{base}, {t('rs.day', day=row.day_of_month)}"
            return f"{base}, {row.send_time}"

        listing = [
            {
                "id": r.id,
                "report": keyed(ctx.lang, f"rpt.{r.report_key}") or r.report_key,
                "when": when(r),
                "format": r.format.upper(),
                "recipients": ", ".join(r.recipients),
                "owner": owners.get(r.owner_id, ""),
                "active": r.active,
                "next": local(r.retry_at or r.next_run_at) if r.active else "",
                "last_sent": local(r.last_sent_at),
                "last_error": r.last_error or "",
                "mine": r.owner_id == ctx.who.id or ctx.who.role == m.Role.ADMIN,
            }
            for r in rows
        ]
        if not values.get("language"):
            values["language"] = ctx.lang
        selected_queues = set(values["queue"])
        # A queue the link named but the caller can't see is kept (the mail will skip it).
        known = {v for v, _ in queues}
        queue_choices = queues + [(q, q) for q in sorted(selected_queues - known)]
        errors = dict(errors or {})
        top = errors.pop("_", "")
        fields = {"report_key", "filters", "format", "frequency", "weekday", "day_of_month"}
        fields |= {"send_time", "recipients", "language", "active"}
        for key in [k for k in errors if k not in fields]:
            top = f"{top} {errors.pop(key)}".strip()
        return ctx.template(
            "reports/schedules.html",
            status_code=status_code,
            rows=listing,
            editing=editing,
            can_edit=ctx.who.role in sched.MANAGERS,
            values=values,
            errors=errors,
            top_error=top,
            notice=notice,
            mail_off=not services.settings.smtp.host,
            zone=str(tz),
            options={
                "report_key": [(s.key, keyed(ctx.lang, f"rpt.{s.key}") or s.key) for s in reports.ordered()],
                "preset": [("", t("rs.preset.none")), *enum_options(ctx.lang, "preset", Preset)],
                "grouping": enum_options(ctx.lang, "grouping", Grouping),
                "format": [(x.value, x.value.upper()) for x in Format],
                "frequency": [(x.value, t(f"rs.freq.{x.value}")) for x in sched.Frequency],
                "weekday": [("", "—"), *((str(d), t(f"rs.weekday.{d}")) for d in range(7))],
                "language": [(lang, t(f"rs.lang.{lang}")) for lang in LANGUAGES],
                "queue": queue_choices,
            },
            passed_on=[(name, v) for name in PASSED_ON for v in values[name]],
        )

    def _notice(self, ctx: PageContext, request: Request[Any, Any, Any]) -> str:
        for flag in ("saved", "deleted", "sent", "failed"):
            if request.query_params.get(flag):
                return ctx.t(f"rs.notice.{flag}")
        return ""

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(*sched.READERS)
        values = values_of_form(_query(request))
        values["active"] = True
        if not (values["preset"] or values["since"] or values["until"]):
            values["preset"] = Preset.YESTERDAY.value  # a mailed report is most often yesterday's
        return await self._page(
            ctx, services_of(request), editing=None, values=values, notice=self._notice(ctx, request)
        )

    @get("/{schedule_id:int}")
    async def edit(self, request: Request[Any, Any, Any], schedule_id: int) -> Template:
        ctx = await page_context(request)
        ctx.require(*sched.READERS)
        services = services_of(request)
        try:
            async with services.db.transaction() as session:
                row = await sched.access_schedule(session, ctx.who, schedule_id)
                values = values_of_row(row)
        except NotFound as exc:
            return ctx.template("error.html", status_code=404, message=exc.localized(ctx.lang))
        return await self._page(
            ctx, services, editing=schedule_id, values=values, notice=self._notice(ctx, request)
        )

    @post("/", status_code=200)
    async def create(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return await self._submit(request, None)

    @post("/{schedule_id:int}", status_code=200)
    async def update(self, request: Request[Any, Any, Any], schedule_id: int) -> Response[Any]:
        return await self._submit(request, schedule_id)

    async def _submit(self, request: Request[Any, Any, Any], schedule_id: int | None) -> Response[Any]:
        ctx = await page_context(request)
        ctx.require(*sched.MANAGERS)
        form = await read_form(request, ctx)
        services = services_of(request)
        values = values_of_form(form)
        now = datetime.now(UTC)
        try:
            async with services.db.transaction() as session:
                if schedule_id is None:
                    await sched.check_create_schedule(session, ctx.who, data_of(values), now)
                else:
                    await sched.check_update_schedule(session, ctx.who, schedule_id, data_of(values), now)
        except NotFound as exc:
            return ctx.template("error.html", status_code=404, message=exc.localized(ctx.lang))
        except PermissionDenied as exc:
            return ctx.template("error.html", status_code=403, message=exc.localized(ctx.lang))
        except InvalidInput as exc:
            labels = {name: ctx.t(f"rs.f.{name}") for name in sched.FIELDS}
            errors: dict[str, str] = {}
            for problem in exc.errors or [exc]:
                errors.setdefault(
                    problem.field or "_", problem.localized(ctx.lang, labels.get(problem.field or ""))
                )
            return await self._page(
                ctx, services, editing=schedule_id, values=values, errors=errors, status_code=400
            )
        return Redirect(path=f"{PATH}?saved=1")

    @post("/{schedule_id:int}/delete", status_code=200)
    async def delete(self, request: Request[Any, Any, Any], schedule_id: int) -> Response[Any]:
        ctx = await page_context(request)
        ctx.require(*sched.MANAGERS)
        await read_form(request, ctx)
        try:
            async with services_of(request).db.transaction() as session:
                await sched.check_delete_schedule(session, ctx.who, schedule_id)
        except DomainError as exc:
            return ctx.template("error.html", status_code=exc.status_code, message=exc.localized(ctx.lang))
        return Redirect(path=f"{PATH}?deleted=1")

    @post("/{schedule_id:int}/send", status_code=200)
    async def send(self, request: Request[Any, Any, Any], schedule_id: int) -> Response[Any]:
        """ "Send now": the report as of now to the schedule's recipients; the calendar is kept."""
        ctx = await page_context(request)
        ctx.require(*sched.MANAGERS)
        await read_form(request, ctx)
        services = services_of(request)
        settings = services.settings
        try:
            outcome = await mail.check_send_now(
                services.db, settings.smtp, settings.public_base_url, ctx.who, schedule_id
            )
        except DomainError as exc:
            return ctx.template("error.html", status_code=exc.status_code, message=exc.localized(ctx.lang))
        return Redirect(path=f"{PATH}?{'sent' if outcome.sent else 'failed'}=1")


CONTROLLERS: list[type[Controller]] = [ReportSchedulesPage]
