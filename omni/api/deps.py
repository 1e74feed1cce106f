"""Request plumbing shared by controllers: the caller, the services, error mapping."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException

from omni.db import models as m
from omni.domain import auth
from omni.domain.auth import Principal
from omni.domain.errors import DomainError, NotAuthenticated
from omni.i18n import LANG_COOKIE, error_body, pick_language
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


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return Response(error_body(exc, request_language(request)), status_code=exc.status_code)


def validation_error_handler(
    _request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    return Response({"error": "invalid", "detail": exc.detail, "fields": exc.extra or []}, status_code=400)


def http_error_handler(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    return Response({"error": "http", "detail": exc.detail}, status_code=exc.status_code)


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""
