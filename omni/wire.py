"""Decoding untrusted payloads (Socket.IO events, stored JSON) into typed structs.

HTTP bodies are decoded by Litestar; everything else that arrives as "some JSON" goes through
``decode`` so a wrong shape is refused with a domain error (an ack ``{ok: false, error,
detail, field}``) instead of an ``AttributeError`` in a handler or a Python repr in a row.

``dumps``/``loads`` (``WIRE_JSON``) are the JSON text itself for Socket.IO packets, the Redis
fan-out and the JSON columns: msgspec, with the standard module behind it for what msgspec
refuses, so that everything written before still reads.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
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


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def dumps(obj: Any, **_options: Any) -> str:
    """``json.dumps`` for the wire: compact UTF-8 (no ``\\uXXXX`` for Cyrillic), NaN as
    ``null`` (a browser's ``JSON.parse`` refuses ``NaN``). The options the libraries pass
    (``separators``) are what this writes anyway. msgspec, because every Socket.IO packet,
    Redis fan-out message and JSON column goes through here: the standard module was about 5 %
    of a node's CPU at 150 msg/s (bench/README.md, "json15").

    What msgspec refuses and the standard module writes (a lone surrogate, which only the
    standard module's own decoding makes; a float dict key) is written by the standard module,
    escaped to ASCII as before, so nothing that could be sent or stored before fails now."""
    try:
        return _encoder.encode(obj).decode()
    except (TypeError, ValueError):
        return json.dumps(obj, separators=(",", ":"))


def loads(text: str | bytes, **_options: Any) -> Any:
    """``json.loads`` for the wire. What msgspec refuses goes to the standard module, which
    reads everything it wrote before this module existed (rows stored with ``\\ud800``
    escapes, ``NaN``, ``1e400``) and raises ``ValueError`` on a malformed text, as it did."""
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


WIRE_JSON = SimpleNamespace(dumps=dumps, loads=loads)
"""What python-socketio and python-engineio take as their ``json`` module."""
