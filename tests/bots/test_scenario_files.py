"""Declarative scenario tests (``tests/bots/scenarios/*.json``), the same format the builder runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bots.checks import check
from bots.scenario import load
from bots.simulate import run_file

FILES = sorted((Path(__file__).parent / "scenarios").glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_file(path: Path) -> None:
    data = json.loads(path.read_text())
    scenario = load(data["scenario"])
    assert check(scenario) == [], "scenario files must hold publishable scenarios"
    results = run_file(data, scenario)
    failed = {r["name"]: r["failures"] for r in results if not r["passed"]}
    assert not failed


def test_a_wrong_expectation_is_reported() -> None:
    data = json.loads(FILES[0].read_text())
    case = dict(data["cases"][0], expect={"path": ["hours", "closed"], "variables": {"order": 13}})
    [result] = run_file({**data, "cases": [case]})
    assert not result["passed"]
    assert result["failures"][0].startswith("path: expected ['hours', 'closed']")
    assert "variable order: expected 13, got 12" in result["failures"][1]
