"""The supervisor's bot scenario pages: ``/supervisor/bots`` (list, create, import) and
``/supervisor/bots/{id}`` (the visual builder), Jinja2 shells around ``ui/src/builder.ts``.

The pages only hand the module its boot data; everything else goes through the scenarios
REST API (``omni.api.bots``), which checks roles again. Supervisors and admins edit; auditors
get the same pages read-only (they may still test-run a scenario).

Boot data: ``view`` (``list`` or ``edit``), ``scenario_id``, ``readonly``, ``channels``,
``queues`` (``[{id, name}]`` for hand-off nodes), ``result_codes`` (codes for close nodes),
``scenario_keys`` (for goto nodes), ``prompts`` (``[{id, folder, name, audio_url}]``, the voice
prompt picker) and ``strings`` (``bld.*``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import grants
from omni.web.i18n import messages
from omni.web.pages import PageContext, boot_data, page_context, require_grant

CHANNELS = ("widget", "telegram", "voice", "api")
VIEWERS = (m.Role.SUPERVISOR, m.Role.ADMIN, m.Role.AUDITOR)


class BuilderPage(Controller):
    async def _page(self, request: Request[Any, Any, Any], ctx: PageContext, **values: Any) -> Template:
        async with services_of(request).db.transaction() as session:
            queues = [
                {"id": q.id, "name": q.name}
                for q in await session.scalars(select(m.Queue).order_by(m.Queue.name))
            ]
            codes = list(
                await session.scalars(
                    select(m.ResultCode.code).where(m.ResultCode.active.is_(True)).order_by(m.ResultCode.code)
                )
            )
            keys = list(await session.scalars(select(m.Scenario.key).order_by(m.Scenario.key)))
            can_edit = await grants.allowed(session, ctx.who, grants.SCENARIO_MANAGE)
            prompts = [
                {"id": p.id, "folder": p.folder, "name": p.name, "audio_url": f"/api/v1/prompts/{p.id}/audio"}
                for p in await session.scalars(select(m.Prompt).order_by(m.Prompt.folder, m.Prompt.name))
            ]
        boot = boot_data(
            ctx,
            strings=messages(ctx.lang, "bld."),
            readonly=ctx.who.role == m.Role.AUDITOR or not can_edit,
            channels=list(CHANNELS),
            queues=queues,
            result_codes=codes,
            scenario_keys=keys,
            prompts=prompts,
            **values,
        )
        return ctx.template("live.html", module="builder", boot=boot)

    @get("/supervisor/bots", include_in_schema=False)
    async def scenarios(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(*VIEWERS)
        await require_grant(request, ctx, grants.PAGE_BUILDER)
        return await self._page(request, ctx, view="list")

    @get("/supervisor/bots/{scenario_id:int}", include_in_schema=False)
    async def builder(self, request: Request[Any, Any, Any], scenario_id: int) -> Template:
        ctx = await page_context(request)
        ctx.require(*VIEWERS)
        await require_grant(request, ctx, grants.PAGE_BUILDER)
        async with services_of(request).db.transaction() as session:
            exists = await session.get(m.Scenario, scenario_id) is not None
        if not exists:
            return ctx.template("error.html", status_code=404, message=ctx.t("bld.not_found"))
        return await self._page(request, ctx, view="edit", scenario_id=scenario_id)


_PORTS = {
    "next": ("next", "далее"),
    "on_invalid": ("invalid answer", "неверный ответ"),
    "on_no_input": ("no input", "нет ответа"),
    "on_max_retries": ("out of retries", "попытки исчерпаны"),
    "true": ("yes", "да"),
    "false": ("no", "нет"),
    "on_error": ("error", "ошибка"),
    "on_no_agents": ("no agents", "нет операторов"),
    "on_closed": ("closed", "не рабочее время"),
}
_KINDS = {
    "message": ("Message", "Сообщение"),
    "menu": ("Menu", "Меню"),
    "ask": ("Ask", "Вопрос"),
    "condition": ("Condition", "Условие"),
    "set": ("Set variable", "Переменная"),
    "http": ("HTTP request", "HTTP-запрос"),
    "handoff": ("Hand off", "Оператору"),
    "goto_scenario": ("Go to scenario", "Другой сценарий"),
    "close": ("Close", "Завершить"),
    "survey": ("Survey", "Опрос"),
    "wait": ("Wait", "Пауза"),
}
_FACTS = {
    "channel": ("channel", "канал"),
    "time": ("time (HH:MM)", "время (ЧЧ:ММ)"),
    "weekday": ("weekday (1–7)", "день недели (1–7)"),
    "business_hours_open": ("business hours open", "рабочее время"),
    "agents_online": ("agents online", "операторов в сети"),
}
_OPS = {
    "eq": ("=", "="),
    "ne": ("≠", "≠"),
    "lt": ("<", "<"),
    "le": ("≤", "≤"),
    "gt": (">", ">"),
    "ge": ("≥", "≥"),
    "contains": ("contains", "содержит"),
    "in": ("in list", "в списке"),
    "empty": ("is empty", "пусто"),
    "not_empty": ("is not empty", "не пусто"),
    "matches": ("matches regex", "регулярное выражение"),
}
_INPUTS = {
    "text": ("text", "текст"),
    "number": ("number", "число"),
    "email": ("email", "e-mail"),
    "phone": ("phone", "телефон"),
    "date": ("date", "дата"),
    "choice": ("choice", "выбор"),
}
