"""The typed vocabulary of every HTTP edge: bounded numbers, clean strings, the error body.

Litestar decodes request bodies, path and query parameters with msgspec; constraining the
*types* here is what keeps a 22-digit number or a NUL byte from ever reaching PostgreSQL
(which answers both with a 500). Routes use these aliases instead of bare ``int`` / ``str``
so the limits live in one place and appear in ``/schema/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.params import Parameter

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold U+0000; refuse it at the edge with a 4xx, not a 500 later."""


def between(low: int, high: int, description: str | None = None) -> Any:
    """A path/query parameter's bounds. Litestar renders ``ge``/``le`` as floats (2**63 - 1
    becomes 2**63); ``schema_extra`` states the exact integers, so clients and schemathesis
    see the real bounds."""
    return Parameter(ge=low, le=high, description=description, schema_extra={"minimum": low, "maximum": high})


# Each bound is stated twice: msgspec.Meta checks struct fields (request bodies), Litestar's
# Parameter checks path and query parameters (Litestar ignores msgspec.Meta there).
Id = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX), between(1, INT64_MAX)]
"""A row id (BIGINT on PostgreSQL)."""

IntId = Annotated[int, msgspec.Meta(ge=1, le=INT32_MAX), between(1, INT32_MAX)]
"""A row id in an INTEGER column: most tables (users, queues, inboxes, callbacks, scenarios and
revisions, result codes, statuses…). ``Id`` is for the BIGINT ones (conversations, messages,
offers, events, audit, webhook deliveries, calls)."""

Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX), between(0, INT64_MAX)]
"""An event sequence number or other non-negative BIGINT cursor."""

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=INT32_MAX), between(-(2**31), INT32_MAX)]
"""An INTEGER column."""

Count = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX), between(0, INT32_MAX)]
"""A non-negative INTEGER (timeouts, capacities, limits)."""

Text = Annotated[str, msgspec.Meta(max_length=10_000, pattern=NO_NUL), Parameter(max_length=10_000)]
"""Free text (a message body has its own, domain-checked limit)."""

Name = Annotated[str, msgspec.Meta(max_length=255, pattern=NO_NUL), Parameter(max_length=255)]
"""A short label: names, logins, codes."""


class FieldError(msgspec.Struct):
    field: str | None
    detail: str


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every refusal, from every route: a stable code, a sentence in the caller's language, and
    the field it is about when there is one (forms show it next to that field)."""

    error: str
    detail: str
    field: str | None = None
    errors: list[FieldError] = msgspec.field(default_factory=list)


class ValidationProblem(msgspec.Struct):
    """One item of Litestar's validation report, as API clients have always received it."""

    message: str
    key: str | None = None
    source: str | None = None


class InvalidBody(ErrorBody, omit_defaults=True):
    """``400``: the request did not decode into the route's declared types (a wrong type, a
    number out of its column's range, a NUL byte, nesting too deep). ``field``/``errors`` name
    the parameters like every other refusal; ``fields`` is the raw list this answer carried
    before issue 11 (kept so existing API clients keep working)."""

    fields: list[ValidationProblem] = msgspec.field(default_factory=list)


LongText = Annotated[str, msgspec.Meta(max_length=1_000_000, pattern=NO_NUL)]
"""Text the domain limits itself (a message body: 10,000 characters, answered 422 naming the
field); the edge bound only keeps megabytes out."""

OptId = Annotated[int | None, between(1, INT64_MAX)]
"""An optional id *parameter* (query): Litestar does not look inside ``Id | None`` for the
bounds, so a parameter states them on the union. In struct fields ``Id | None`` is right."""

OptIntId = Annotated[int | None, between(1, INT32_MAX)]
"""An optional ``IntId`` query parameter (see ``OptId``)."""

OptSeq = Annotated[int | None, between(0, INT64_MAX)]
"""An optional ``Seq`` query parameter (see ``OptId``)."""
