"""Run a scenario without a conversation: the builder's test run and declarative scenario tests.

The same engine as production (``bots.engine.advance``); only the world around it is played:
HTTP answers come from stubs, hand-off outcomes and facts from the test, timers fire on demand.

A scenario test file is JSON::

    {"scenario": {...document...},            # or "key": "<scenario key>" when run in the app
     "cases": [{
        "name": "billing customer reaches an agent",
        "channel": "widget", "lang": "en",
        "facts": {"business_hours_open": true, "agents_online": 2, "time": "10:30", "weekday": 2},
        "variables": {"tier": "gold"},                       # preset (e.g. from the CRM)
        "http": [{"url": "crm.example", "status": 200, "body": {"tier": "gold"}}],
        "handoff": "queued",                                  # or no_agents / closed
        "inputs": [{"text": "hi"}, {"button": "billing"}, {"dtmf": "1"}, {"no_input": true},
                   {"timeout": true}, {"record": "reply.wav"}],   # a record node's recording
                                                                  # ("" = nothing recorded)
        "expect": {"path": ["hello", "menu", "handoff"], "variables": {"order": 42},
                   "says": ["Hi!"], "handoff": {"queue_id": 3}, "closed": "done", "status": "handed_off"}
     }]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bots import engine as e
from bots.scenario import Scenario, load


@dataclass
class Transcript:
    """What happened: the bot's messages, the nodes passed, variables, and the ending."""

    says: list[dict[str, Any]] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    steps: list[dict[str, str]] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    http: list[dict[str, Any]] = field(default_factory=list)
    handoff: dict[str, Any] | None = None
    closed: str | None = None
    goto: str | None = None
    status: str = "running"
    waiting: str = ""
    node: str | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "says": self.says,
            "path": self.path,
            "steps": self.steps,
            "variables": self.variables,
            "http": self.http,
            "handoff": self.handoff,
            "closed": self.closed,
            "goto": self.goto,
            "status": self.status,
            "waiting": self.waiting,
            "node": self.node,
            "error": self.error,
        }


def _facts(case: dict[str, Any]) -> e.Facts:
    raw = case.get("facts") or {}
    now = None
    if raw.get("time"):
        hour, minute = (int(x) for x in str(raw["time"]).split(":"))
        day = 2 + (int(raw.get("weekday", 1)) - 1)  # 2026-11-02 is a Monday
        now = datetime(2026, 11, day, hour, minute)  # noqa: DTZ001 - local wall time of the queue
    return e.Facts(
        channel=str(case.get("channel", "widget")),
        lang=str(case.get("lang", "en")),
        now=now,
        business_hours_open=bool(raw.get("business_hours_open", True)),
        agents_online=int(raw.get("agents_online", 1)),
        builtins={"contact.name": raw.get("contact_name", "Test customer"), "conversation.id": 0},
    )


def _http_stub(stubs: list[dict[str, Any]], call: e.CallHttp) -> e.HttpResult:
    for stub in stubs:
        if re.search(str(stub.get("url", "")), call.url):
            if stub.get("error"):
                return e.HttpResult(error=str(stub["error"]))
            return e.HttpResult(status=int(stub.get("status", 200)), body=stub.get("body"))
    return e.HttpResult(error=f"no stubbed answer for {call.method} {call.url}")


def _input(item: dict[str, Any]) -> e.Event:
    if "button" in item:
        return e.Text(str(item.get("text", item["button"])), button=str(item["button"]))
    if "dtmf" in item:
        return e.Dtmf(str(item["dtmf"]))
    if "record" in item:
        return e.Recorded(file_id=str(item["record"] or ""))
    if item.get("no_input"):
        return e.NoInput()
    if item.get("timeout"):
        return e.TimerFired()
    return e.Text(str(item.get("text", "")))


def run_case(scenario: Scenario, case: dict[str, Any]) -> Transcript:
    """Start the scenario and feed the case's inputs, answering HTTP and hand-offs in between."""
    facts = _facts(case)
    out = Transcript()
    state = e.State(variables=dict(case.get("variables") or {}))
    pending: list[e.Event] = [e.Start(), *(_input(i) for i in case.get("inputs") or [])]
    while pending:
        event = pending.pop(0)
        outcome = e.advance(scenario, state, event, facts)
        state = outcome.state
        for step in outcome.steps:
            out.steps.append({"node": step.node, "outcome": step.outcome})
            if step.outcome == "entered":
                out.path.append(step.node)
        follow: list[e.Event] = []
        for action in outcome.actions:
            if isinstance(action, e.Say):
                out.says.append({"node": action.node, "text": action.text, "buttons": action.buttons})
            elif isinstance(action, e.CallHttp):
                out.http.append({"method": action.method, "url": action.url, "body": action.body})
                follow.append(_http_stub(case.get("http") or [], action))
            elif isinstance(action, e.Handoff):
                out.handoff = {
                    "queue_id": action.queue_id, "priority": action.priority, "skills": action.skills,
                    "note": action.note,
                }  # fmt: skip
                follow.append(e.HandoffResult(str(case.get("handoff", "queued"))))
            elif isinstance(action, e.Close):
                out.closed = action.result_code
            elif isinstance(action, e.GotoScenario):
                out.goto = action.scenario
        pending[:0] = follow  # answers come before the customer's next input
    out.variables = {k: v for k, v in state.variables.items() if k != "last_input"}
    out.status, out.waiting, out.node, out.error = state.status, state.waiting, state.node, state.error
    return out


def check_case(transcript: Transcript, expect: dict[str, Any]) -> list[str]:
    """Differences from the expectations, as sentences (empty = the case passes)."""
    failures: list[str] = []
    if "path" in expect and transcript.path != list(expect["path"]):
        failures.append(f"path: expected {expect['path']}, got {transcript.path}")
    for name, value in (expect.get("variables") or {}).items():
        if transcript.variables.get(name) != value:
            failures.append(f"variable {name}: expected {value!r}, got {transcript.variables.get(name)!r}")
    if "says" in expect:
        said = [s["text"] for s in transcript.says]
        missing = [x for x in expect["says"] if x not in said]
        if missing:
            failures.append(f"says: {missing} not among {said}")
    if "handoff" in expect:
        want = expect["handoff"]
        got = transcript.handoff
        if want is None and got is not None:
            failures.append(f"handoff: expected none, got {got}")
        elif want is not None and (got is None or any(got.get(k) != v for k, v in want.items())):
            failures.append(f"handoff: expected {want}, got {got}")
    if "closed" in expect and transcript.closed != expect["closed"]:
        failures.append(f"closed: expected {expect['closed']!r}, got {transcript.closed!r}")
    if "status" in expect and transcript.status != expect["status"]:
        failures.append(f"status: expected {expect['status']!r}, got {transcript.status!r}")
    return failures


def run_file(data: dict[str, Any], scenario: Scenario | None = None) -> list[dict[str, Any]]:
    """Every case of a test file: name, passed, failures, transcript."""
    scenario = scenario or load(data["scenario"])
    results = []
    for i, case in enumerate(data.get("cases") or []):
        transcript = run_case(scenario, case)
        failures = check_case(transcript, case.get("expect") or {})
        results.append(
            {"name": case.get("name", f"case {i + 1}"), "passed": not failures, "failures": failures,
             "transcript": transcript.as_dict()}
        )  # fmt: skip
    return results
