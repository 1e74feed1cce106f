"""Decoding untrusted payloads (Socket.IO events, stored JSON) into typed structs.

HTTP bodies are decoded by Litestar; everything else that arrives as "some JSON" goes through
``decode`` so a wrong shape is refused with a domain error (an ack ``{ok: false, error,
detail, field}``) instead of an ``AttributeError`` in a handler or a Python repr in a row.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from omni.domain.errors import InvalidInput

T = TypeVar("T")

_PATH = re.compile(r"at `\$\.?([^`]*)`")


def decode(data: Any, type_: type[T]) -> T:
    """``data`` as a ``type_`` (a msgspec Struct), or ``InvalidInput`` naming the field.

    ``None`` stands for an event sent without a body, so a struct whose fields all have
    defaults still decodes.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("The request must be an object")
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _PATH.search(text)
        field = found.group(1) if found and found.group(1) else None
        problem = _PATH.sub("", text).rstrip(" -")
        if field is None and "missing required field" in problem:
            field = problem.rsplit("`", 2)[-2] if problem.count("`") >= 2 else None
        field = field or "request"
        raise InvalidInput("{field} is not valid: {problem}", field=field, problem=problem) from exc
