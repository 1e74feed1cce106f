"""What every HTTP route shares at the edge: the input guard and the documented refusals.

The guard catches what the declared types can't: a NUL in a path, a query string or anywhere
in a JSON body (PostgreSQL can't store U+0000, and ``dict``-typed bodies such as scenario
documents are not checked field by field), and JSON nested deeper than any document we accept
(msgspec raises ``RecursionError`` on a 100k-deep body, which would be a 500). Both answer
``400`` with the validation body, before a handler or a dependency runs.

``document_errors`` writes the refusals a route can answer into ``/schema/openapi.json`` once,
for every route, instead of repeating ``responses=`` on each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Litestar, Request, Response
from litestar.enums import MediaType
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec

from omni.api.contracts import ErrorBody, InvalidBody
from omni.i18n import _l

NUL_IN_PATH = _l("the path must not contain a NUL character")
NUL_IN_QUERY = _l("the query must not contain a NUL character")
NUL_IN_TEXT = _l("text must not contain a NUL character")
TOO_DEEP = _l("the JSON document is nested too deeply")
"""The guard's refusals: English here, in the caller's language in the 400 body (the
validation handler looks each up in the catalogs)."""

MAX_JSON_DEPTH = 64
"""Deeper than any scenario document or card the console sends; far below msgspec's limit."""

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _refuse(detail: str, source: str, key: str | None = None) -> ValidationException:
    return ValidationException(detail=detail, extra=[{"message": detail, "key": key, "source": source}])


def _depth_and_nul(value: Any) -> tuple[int, str | None]:
    """The nesting depth of a decoded JSON value and where the first string holding a NUL is
    (``name``, ``members.0.note``; ``""`` for the document itself), so the refusal names the
    field the way a type error would."""
    deepest, nul_at = 0, None
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if nul_at is None and "\x00" in item:
                nul_at = path
        elif isinstance(item, dict):
            deepest = max(deepest, depth)
            for key, inner in item.items():
                where = f"{path}.{key}" if path else str(key)
                if nul_at is None and "\x00" in key:
                    nul_at = path
                stack.append((inner, depth + 1, where))
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            for i, inner in enumerate(item):
                stack.append((inner, depth + 1, f"{path}.{i}" if path else str(i)))
    return deepest, nul_at


def _allow(request: Request[Any, Any, Any]) -> Response[None]:
    """``OPTIONS``: Litestar's generated answer lists only the methods of the first handler
    registered on a path (GET and POST on one path answer ``Allow: GET, OPTIONS``)."""
    template = request.scope.get("path_template")
    methods: set[str] = set()
    for route in request.app.routes:
        if route.path_format == template:
            methods |= set(route.methods)
    return Response(
        None, status_code=204, headers={"Allow": ", ".join(sorted(methods))}, media_type=MediaType.TEXT
    )


async def guard_input(request: Request[Any, Any, Any]) -> Response[None] | None:
    """``before_request`` for every route: refuse NUL and runaway nesting with a 400."""
    if request.method == "OPTIONS" and request.route_handler.handler_name == "options_handler":
        return _allow(request)
    if "\x00" in request.scope["path"]:
        raise _refuse(NUL_IN_PATH, "path")
    query = request.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        name = next((k for k, v in pairs if "\x00" in k or "\x00" in v), "")
        raise _refuse(NUL_IN_QUERY, "query", name.replace("\x00", "") or None)
    if request.method not in _WITH_BODY or "json" not in request.headers.get("content-type", ""):
        return None
    body = await request.body()  # cached by Litestar: the handler's decoding reuses it
    suspicious_nul = b"\\u0000" in body
    suspicious_depth = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    if not (suspicious_nul or suspicious_depth):
        return None
    try:
        value = msgspec.json.decode(body)
    except RecursionError as exc:
        raise _refuse(TOO_DEEP, "body") from exc
    except msgspec.DecodeError:
        return None  # the route's own decoding answers it, with its usual message
    depth, nul_at = _depth_and_nul(value)
    if depth > MAX_JSON_DEPTH:
        raise _refuse(TOO_DEEP, "body")
    if nul_at is not None:
        raise _refuse(NUL_IN_TEXT, "body", nul_at.replace("\x00", "") or None)
    return None


def _spec(description: str, container: type[ErrorBody] = ErrorBody) -> ResponseSpec:
    return ResponseSpec(data_container=container, description=description, generate_examples=False)


REFUSALS: Mapping[int, ResponseSpec] = {
    400: _spec("The request does not match the declared types (see `fields`)", InvalidBody),
    401: _spec("Not logged in, or the API token is not valid"),
    403: _spec("The caller's role or scope does not allow it (or a cross-site request)"),
    404: _spec("What the path names does not exist or is not visible to the caller"),
    409: _spec("The state changed: the action no longer applies"),
    413: _spec("The request body is larger than the server accepts"),
    422: _spec("The values are well formed but refused (`field` names the one)"),
    429: _spec("Too many attempts; wait and try again"),
}


def refusals_for(handler: HTTPRouteHandler, path: str) -> dict[int, ResponseSpec]:
    """The statuses a route can answer besides its success, from what it declares.

    Every API route validates (400) and runs domain checks (422); a route with a caller
    (``who``) can answer 401/403, and 404 for an id it is given that names nothing (or
    nothing the caller may see), as can a path parameter; an unsafe method
    meets CSRF (403) and state changes (409); a body can be too large (413). 429 is per route
    (``responses={429: REFUSALS[429]}``).
    """
    methods = set(handler.http_methods)
    codes = {400, 422}
    if "who" in handler.resolve_dependencies():
        codes |= {401, 403, 404}
    if "{" in path:
        codes.add(404)
    if methods - _SAFE:
        codes |= {403, 409}
    if methods & _WITH_BODY:
        codes.add(413)
    return {code: REFUSALS[code] for code in sorted(codes)}


def document_errors(app: Litestar) -> None:
    """Add the refusals to every documented ``/api/`` operation (a route's own ``responses``
    win). Called once after the app is built; the schema is generated on first request."""
    for route in app.routes:
        if not route.path.startswith("/api/"):
            continue
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler) and handler.resolve_include_in_schema():
                handler.responses = {**refusals_for(handler, route.path), **(handler.responses or {})}


__all__ = ["MAX_JSON_DEPTH", "REFUSALS", "document_errors", "guard_input", "refusals_for"]
