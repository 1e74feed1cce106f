"""The REST contract, checked by schemathesis against the running app (issue 11).

Every ``/api/v1`` operation in ``/schema/openapi.json`` is called with generated valid and
invalid input (all checks, a small seeded budget) as an admin with an API token: no answer may
be a 5xx, break its documented schema, or carry a status the schema doesn't list.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni.db import models as m
from omni.domain import auth
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT

ST = Path(sys.executable).with_name("st")

REVOKE = "DELETE /api/v1/tokens/{token_id}"
"""Revoking a token: run last and alone, because a generated ``token_id`` of 1 revokes the run's
own token, after which every other operation answers only 401 and goes untested (that happened:
76 of 174 operations were checked for nothing but 401)."""

PARTS = {
    "a-l": ["--include-path-regex", r"^/api/v1/[a-l]"],
    "m-z": ["--include-path-regex", r"^/api/v1/[m-z]", "--exclude-name", REVOKE],
    "revoke": ["--include-name", REVOKE],
}
"""The whole REST API in parts, so the two halves can run on different xdist workers."""

ASSERTED = ("ST101", "ST103", "ST108")
"""Server error, undocumented status code, response violates schema. The other checks
(e.g. ST202 "schema-valid request rejected": a generated id that names no row is a 404) are
reported in the output but not held at zero."""

MAX_EXAMPLES = int(os.environ.get("OMNI_ST_MAX_EXAMPLES", "3"))
PHASES = os.environ.get("OMNI_ST_PHASES", "coverage,fuzzing")
"""The suite's budget: the coverage phase (boundary values: int64 + 1, NUL, empty, too long)
and a few fuzzed examples per operation. ``OMNI_ST_PHASES=examples,coverage,fuzzing,stateful
OMNI_ST_MAX_EXAMPLES=30`` reproduces the issue's measurement (many minutes)."""
SEED = 11

HOOKS = Path(__file__).with_name("st_hooks.py")
"""One coverage-phase case per operation, generation mode and description (the phase's
repeats of one mutation in every wrong JSON type were 47 % of its 12,463 cases)."""

BOTH_MODES = (
    "POST /api/v1/campaigns",
    "PUT /api/v1/campaigns/{campaign_id}",
    "POST /api/v1/contacts",
    "PATCH /api/v1/contacts/{contact_id}",
)
"""Operations with large bodies that must still get valid and invalid input in the coverage phase."""


async def _seed(server: LiveServer) -> str:
    """An admin's API token, and something for the generated ids to find."""
    async with server.services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        q = await f.queue(s, "Q1", [op])
        await f.inbox(s, q)
        await f.result_code(s)
        _, token = await auth.do_create_api_token(s, admin, "schemathesis")
    return token


CONFIG = """
[phases.coverage]
# Two undeclared methods per path are enough to hold 405 + Allow (and OPTIONS) to the schema;
# the default eight make the coverage phase four times as long.
unexpected-methods = ["trace", "options"]
"""


def coverage_modes(ndjson: Path) -> dict[str, set[str]]:
    """Each operation's generation modes (``positive``: valid input, ``negative``: invalid) in
    the coverage phase, from the run's NDJSON event log. An operation whose coverage scenario
    ended in an error of schemathesis's own is left out: its value generation sometimes fails
    with Hypothesis's "FlakyFailure: Inconsistent results" (once in five runs here, on
    ``POST /api/v1/campaigns``), which the run reports but the test does not hold at zero."""
    seen: dict[str, set[str]] = {}
    for line in ndjson.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished or finished["phase"] != "coverage" or finished["status"] == "error":
            continue
        recorder = finished["recorder"]
        modes = seen.setdefault(recorder["label"], set())
        for node in recorder.get("cases", {}).values():
            modes.add(node["value"]["meta"]["generation"]["mode"])
    return seen


def run_schemathesis(url: str, token: str, scope: list[str], report: Path) -> dict[str, Any]:
    config = report.parent / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = [
        str(ST),
        "--config-file",
        str(config),
        "run",
        f"{url}/schema/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        PHASES,
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--no-shrink",
        "--continue-on-failure",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(report),
        "--report-ndjson-path",
        str(report.with_suffix(".ndjson")),
        "--no-color",
        "--workers",  # the server waits on PostgreSQL more than it computes: 3x faster
        os.environ.get("OMNI_ST_WORKERS", "2"),
        *scope,
    ]
    env = dict(os.environ)
    if not os.environ.get("OMNI_ST_EVERY_CASE"):  # set: the coverage phase's repeats run too
        env["SCHEMATHESIS_HOOKS"] = str(HOOKS)
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=3000, check=False, cwd=report.parent, env=env
    )
    (report.parent / "st-output.txt").write_text(done.stdout + done.stderr)
    if keep := os.environ.get("OMNI_ST_OUTPUT"):  # a directory to keep the report in
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{report.stem}-output.txt").write_text(done.stdout + done.stderr)
        (Path(keep) / report.name).write_bytes(report.read_bytes())
    result: dict[str, Any] = json.loads(report.read_text())
    return result


@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", ["a-l", "m-z+revoke"])
async def test_schemathesis_finds_no_server_error_schema_violation_or_undocumented_status(
    live_server: LiveServer, tmp_path: Path, part: str
) -> None:
    token = await _seed(live_server)
    # The app builds its OpenAPI document on the first request (seconds of CPU for ~190
    # operations); st gives up loading it after 10 s, which a busy CI machine exceeded.
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        assert (await client.get("/schema/openapi.json")).status_code == 200
    for name in part.split("+"):
        report = await asyncio.to_thread(
            run_schemathesis, live_server.url, token, PARTS[name], tmp_path / f"{name}.json"
        )
        counts = {item["code"]: item["count"] for item in report["failures"]}
        print(f"schemathesis {name}: {report['test_cases']['generated']} test cases,", counts)
        output = (tmp_path / "st-output.txt").read_text()
        assert report["complete"], output[-3000:]
        assert {code: counts.get(code, 0) for code in ASSERTED} == dict.fromkeys(ASSERTED, 0), output[-20000:]
        if name != "revoke":
            # Every operation ran as the admin: none saw only 401/403 (a lost token would).
            assert not report["warnings"].get("missing_auth"), report["warnings"]["missing_auth"]
        if name == "a-l":  # the hook still lets valid and invalid input through (BOTH_MODES)
            seen = coverage_modes(tmp_path / f"{name}.ndjson")
            checked = [op for op in BOTH_MODES if op in seen]
            assert checked, seen.keys()
            assert {op: sorted(seen[op]) for op in checked} == {
                op: ["negative", "positive"] for op in checked
            }
