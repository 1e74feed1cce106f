"""Cross-site request forgery defence for everything a browser sends with our session cookie.

Browsers attach the ``omni_session`` cookie to a request another site makes them send (a
form, ``fetch`` with ``mode: "no-cors"``), and ``SameSite=Lax`` only stops some of those. So an
unsafe request (POST, PUT, PATCH, DELETE) that carries the session cookie must prove it comes
from one of our own pages:

* ``Origin`` (or, when a browser leaves it out, the ``Referer``'s origin) must be this
  install's (``OMNI_PUBLIC_BASE_URL``) or the request's own scheme and host;
* an API call (``/api/…``) must also be JSON (a cross-site form or ``no-cors`` fetch can't
  send ``application/json`` without a CORS preflight we never grant), carry the
  ``X-Omni-CSRF`` header (same reason), or have no body at all.

Requests with ``Authorization: Bearer …`` are integrations, not browsers: the cookie is not
what authenticates them, so they pass. A route that never reads the cookie opts out with
``opt={"csrf": "exempt"}`` (the widget's upload, Telegram webhooks); a route that *creates*
a session (the REST login) asks for the check even without a cookie with
``opt={"csrf": "always"}``, so another site can't log a browser into its own account.
The login form has its own token (``omni.web.pages``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.middleware import AbstractMiddleware
from litestar.types import Receive, Scope, Send

from omni.api.deps import SESSION_COOKIE
from omni.domain.errors import PermissionDenied
from omni.settings import Settings

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "x-omni-csrf"
"""Any value; a page on another site can't add a custom header without a CORS preflight."""


def normalised_origin(value: str) -> str | None:
    """``scheme://host[:port]`` lower-cased with the default port dropped; ``None`` when the
    value is not an http(s) URL (``null``, garbage)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}


def _has_session_cookie(cookie_header: str) -> bool:
    return any(part.strip().split("=", 1)[0] == SESSION_COOKIE for part in cookie_header.split(";") if part)


def refusal(scope: Scope, headers: dict[str, str], settings: Settings) -> str | None:
    """Why this request must be refused as possibly cross-site, or ``None`` to let it through."""
    method = str(scope.get("method", "GET")).upper()
    if method in SAFE_METHODS:
        return None
    handler: Any = scope.get("route_handler")  # absent for a 404/405: then no route acts
    opt: dict[str, Any] = getattr(handler, "opt", None) or {}
    mode = str(opt.get("csrf", "session"))
    if mode == "exempt":
        return None
    if headers.get("authorization", "").lower().startswith("bearer "):
        return None
    if mode != "always" and not _has_session_cookie(headers.get("cookie", "")):
        return None
    allowed = {normalised_origin(settings.public_base_url)}
    host = headers.get("host", "")
    if host:
        allowed.add(normalised_origin(f"{scope.get('scheme', 'http')}://{host}"))
    allowed.discard(None)
    origin = headers.get("origin")
    referer = headers.get("referer")
    if origin is not None:
        if normalised_origin(origin) not in allowed:
            return f"cross-site request refused (Origin {origin[:100]})"
    elif referer and normalised_origin(referer) not in allowed:
        return "cross-site request refused (Referer of another site)"
    if str(scope.get("path", "")).startswith("/api/"):
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        bodyless = not content_type and headers.get("content-length", "0") == "0"
        if not (is_json or CSRF_HEADER in headers or bodyless):
            return (
                "send the request as application/json (or with the X-Omni-CSRF header) "
                "when you use the session cookie"
            )
    return None


class CsrfMiddleware(AbstractMiddleware):
    """Refuses (403) a cookie-authenticated unsafe request that can't show it is same-origin."""

    scopes = {ScopeType.HTTP}  # noqa: RUF012 - Litestar declares it mutable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings: Settings = scope["litestar_app"].state.settings
        headers = _headers(scope)
        reason = refusal(scope, headers, settings)
        if reason is not None:
            log.warning("refused %s %s: %s", scope.get("method"), scope.get("path"), reason.split(" (", 1)[0])
            raise PermissionDenied(reason)
        await self.app(scope, receive, send)


__all__ = ["CSRF_HEADER", "CsrfMiddleware", "normalised_origin", "refusal"]
