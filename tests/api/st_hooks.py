"""schemathesis hooks for tests/api/test_schemathesis.py (loaded by ``st`` through
``SCHEMATHESIS_HOOKS``): one coverage-phase case per operation, generation mode and
description.

The coverage phase sends, for every property of a body, the same mutation once per wrong JSON
type ("queue_id: Incorrect type" six times) and every subset of optional properties ("Object
with all required and a subset of optional properties" 34 times for ``POST /campaigns``): 12,463
cases, 47 % of them repeating a description already sent for that operation. Every distinct
valid and invalid case still runs: each property's wrong type, bound, missing value, format and
each undeclared method. The fuzzing phase is not filtered."""

from __future__ import annotations

import threading
from typing import Any

import schemathesis

_seen: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    meta = case.meta
    if meta is None or meta.phase.name.value != "coverage":
        return True
    key = (case.operation.label, meta.generation.mode.value, getattr(meta.phase.data, "description", ""))
    with _lock:
        if key in _seen:
            return False
        _seen.add(key)
    return True
