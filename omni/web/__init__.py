"""Staff web pages (Jinja2) and the built live modules; wired by ``omni.app.create_app``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ExceptionHandlersMap

from omni.web import (
    account,
    admin,
    admin_logs,
    builder,
    dnc,
    lists,
    media,
    operator,
    qa,
    report_schedules,
    reports,
    search,
    supervisor,
    wallboard,
)
from omni.web.admin import menu as admin_menu
from omni.web.pages import (
    LoginRequired,
    PageController,
    PageForbidden,
    forbidden_handler,
    login_required_handler,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parent / "static"
UI_DIST = Path(__file__).resolve().parent / "ui" / "dist"
"""Built by the README's commands (npm ci + npm run build in omni/web/ui/)."""


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["admin_menu"] = admin_menu.grouped  # the admin layout's grouped menu
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(env))


def route_handlers() -> list[Any]:
    return [
        PageController,
        operator.OperatorPage,
        supervisor.SupervisorPage,
        search.SearchPage,
        builder.BuilderPage,
        reports.ReportsPage,
        wallboard.WallboardPage,
        lists.ListsPage,
        *qa.CONTROLLERS,
        *admin.CONTROLLERS,
        *report_schedules.CONTROLLERS,
        *dnc.CONTROLLERS,
        *admin_logs.CONTROLLERS,
        *media.CONTROLLERS,
        *account.CONTROLLERS,
        create_static_files_router(path="/static", directories=[STATIC], name="static"),
        create_static_files_router(path="/ui", directories=[UI_DIST], name="ui"),
    ]


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LoginRequired: login_required_handler,
    PageForbidden: forbidden_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "route_handlers", "template_config"]
