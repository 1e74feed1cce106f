"""The typed vocabulary of every HTTP edge: bounded numbers, clean strings, the error body.

Litestar decodes request bodies, path and query parameters with msgspec; constraining the
*types* here is what keeps a 22-digit number or a NUL byte from ever reaching PostgreSQL
(which answers both with a 500). Routes use these aliases instead of bare ``int`` / ``str``
so the limits live in one place and appear in ``/schema/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold U+0000; refuse it at the edge with a 4xx, not a 500 later."""

Id = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
"""A row id (BIGINT on PostgreSQL)."""

Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
"""An event sequence number or other non-negative BIGINT cursor."""

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=INT32_MAX)]
"""An INTEGER column."""

Count = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
"""A non-negative INTEGER (timeouts, capacities, limits)."""

Text = Annotated[str, msgspec.Meta(max_length=10_000, pattern=NO_NUL)]
"""Free text (a message body has its own, domain-checked limit)."""

Name = Annotated[str, msgspec.Meta(max_length=255, pattern=NO_NUL)]
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
