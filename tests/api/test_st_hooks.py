"""The schemathesis hook of tests/api/test_schemathesis.py: the coverage phase's repeats of one
description are dropped, nothing else (tests/api/st_hooks.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.api import st_hooks


def _case(label: str, phase: str, mode: str, description: str) -> Any:
    meta = SimpleNamespace(
        phase=SimpleNamespace(
            name=SimpleNamespace(value=phase), data=SimpleNamespace(description=description)
        ),
        generation=SimpleNamespace(mode=SimpleNamespace(value=mode)),
    )
    return SimpleNamespace(operation=SimpleNamespace(label=label), meta=meta)


def test_one_coverage_case_per_operation_mode_and_description_and_every_fuzzed_case() -> None:
    st_hooks._seen.clear()
    sent = [
        st_hooks.filter_case(None, case)
        for case in (
            _case("POST /api/v1/campaigns", "coverage", "negative", "queue_id: Incorrect type"),
            _case("POST /api/v1/campaigns", "coverage", "negative", "queue_id: Incorrect type"),
            _case("POST /api/v1/campaigns", "coverage", "positive", "queue_id: Incorrect type"),
            _case("POST /api/v1/campaigns", "coverage", "negative", "name: Incorrect type"),
            _case("PUT /api/v1/campaigns/{campaign_id}", "coverage", "negative", "queue_id: Incorrect type"),
            _case("POST /api/v1/campaigns", "fuzzing", "negative", ""),
            _case("POST /api/v1/campaigns", "fuzzing", "negative", ""),
        )
    ]
    assert sent == [True, False, True, True, True, True, True]
    assert st_hooks.filter_case(None, SimpleNamespace(meta=None)) is True
