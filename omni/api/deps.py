"""Request plumbing shared by controllers: the caller, the services, error mapping."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException

from omni.api.contracts import ErrorBody, FieldError, InvalidBody, ValidationProblem
from omni.db import models as m
from omni.domain import auth
from omni.domain.auth import Principal
from omni.domain.errors import DomainError, NotAuthenticated
from omni.i18n import LANG_COOKIE, error_body, gettext, pick_language
from omni.services import Services

log = logging.getLogger(__name__)

SESSION_COOKIE = "omni_session"


def services_of(conn: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = conn.app.state.services
    return services


async def principal_from(conn: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller, from the session cookie (browser) or ``Authorization: Bearer`` (API)."""
    services = services_of(conn)
    header = conn.headers.get("authorization", "")
    cookie = conn.cookies.get(SESSION_COOKIE)
    async with services.db.transaction() as session:
        user: m.User | None = None
        if header.lower().startswith("bearer "):
            user = await auth.user_for_api_token(session, header[7:].strip())
        elif cookie:
            user = await auth.user_for_session(session, cookie)
        if user is None:
            raise NotAuthenticated("log in or send a valid API token")
        conn.state.user_language = user.language
        chosen = conn.cookies.get(LANG_COOKIE) or user.language
        return dataclasses.replace(Principal.of(user), language=pick_language(chosen))


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return await principal_from(request)


async def provide_services(request: Request[Any, Any, Any]) -> Services:
    return services_of(request)


def request_language(request: Request[Any, Any, Any]) -> str:
    """The caller's language: the page's choice (cookie), the user's setting, ``Accept-Language``."""
    chosen = request.cookies.get(LANG_COOKIE) or getattr(request.state, "user_language", None)
    return pick_language(chosen, request.headers.get("accept-language", ""))


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[ErrorBody]:
    body = msgspec.convert(error_body(exc, request_language(request)), ErrorBody)
    return Response(body, status_code=exc.status_code)


def validation_error_handler(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[InvalidBody]:
    """400 with ``fields`` as before, and ``field``/``errors`` like every other refusal; texts
    the catalogs know (the edge guard's) in the caller's language, Litestar's own in English."""
    lang = request_language(request)
    problems = [
        ValidationProblem(
            message=gettext(lang, str(p.get("message", ""))), key=p.get("key"), source=p.get("source")
        )
        for p in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(p, dict)
    ]
    body = InvalidBody(
        error="invalid",
        detail=gettext(lang, exc.detail),
        field=next((p.key for p in problems if p.key), None),
        errors=[FieldError(field=p.key, detail=p.message) for p in problems],
        fields=problems,
    )
    return Response(body, status_code=400)


def http_error_handler(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's own refusals (404 route, 405 with its ``Allow`` header, 413) in the one body."""
    return Response(
        ErrorBody(error="http", detail=exc.detail), status_code=exc.status_code, headers=exc.headers or None
    )


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""
