# ruff: noqa: E501  (scenario documents read best one node per line)
"""The engine, node kind by node kind and port by port, with no database or transport."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bots.engine import (
    CallHttp,
    Close,
    Dtmf,
    Facts,
    GotoScenario,
    Handoff,
    HandoffResult,
    HttpResult,
    NoInput,
    SaveAnswer,
    SaveContactField,
    Say,
    Start,
    StartTimer,
    State,
    Text,
    TimerFired,
    advance,
)
from bots.scenario import Scenario, load

CHAT = Facts(channel="widget", builtins={"contact.name": "Ann"})
VOICE = Facts(channel="voice")


def scenario(
    *nodes: dict[str, Any], start: str | None = None, variables: list[dict[str, Any]] | None = None
) -> Scenario:
    return load({"name": "t", "start": start or nodes[0]["id"], "nodes": list(nodes),
                 "variables": variables or []})  # fmt: skip


def says(actions: list[Any]) -> list[str]:
    return [a.text for a in actions if isinstance(a, Say)]


BYE = {"id": "bye", "type": "close", "result_code": "done", "message": {"text": "Bye {{contact.name}}"}}
OOPS = {"id": "oops", "type": "close", "result_code": "failed"}


def test_message_then_close_renders_templates_and_ends() -> None:
    s = scenario({"id": "hi", "type": "message", "content": {"text": "Hi {{contact.name}}", "text_ru": "Привет"},
                  "ports": {"next": "bye"}}, BYE)  # fmt: skip
    out = advance(s, None, Start(), CHAT)
    assert says(out.actions) == ["Hi Ann", "Bye Ann"]
    assert Close("done") in out.actions and out.state.status == "closed"
    assert [(x.node, x.outcome) for x in out.steps] == [
        ("hi", "entered"), ("hi", "left:next"), ("bye", "entered"), ("bye", "left:close")]  # fmt: skip
    ru = advance(s, None, Start(), Facts(lang="ru"))
    assert says(ru.actions)[0] == "Привет"


MENU = {
    "id": "menu", "type": "menu", "content": {"text": "Pick", "channels": {"voice": "Press 1 or 2"}},
    "options": [{"id": "sales", "label": "Sales", "dtmf": "1"}, {"id": "help", "label": "Help", "dtmf": "2"}],
    "retries": 1, "retry_message": {"text": "Please pick one"}, "timeout_seconds": 30,
    "ports": {"opt:sales": "bye", "opt:help": "oops", "on_max_retries": "oops"},
}  # fmt: skip


def test_menu_buttons_dtmf_retries_and_no_input() -> None:
    s = scenario(MENU, BYE, OOPS)
    out = advance(s, None, Start(), CHAT)
    say = next(a for a in out.actions if isinstance(a, Say))
    assert say.buttons == [{"id": "sales", "label": "Sales"}, {"id": "help", "label": "Help"}]
    assert StartTimer(30, "no_input") in out.actions and out.state.waiting == "input"
    by_button = advance(s, out.state, Text("Sales", button="sales"), CHAT)
    assert by_button.state.status == "closed" and Close("done") in by_button.actions
    by_typing = advance(s, out.state, Text("2"), CHAT)
    assert Close("failed") in by_typing.actions
    voice = advance(s, None, Start(), VOICE)
    assert says(voice.actions) == ["Press 1 or 2"]
    assert Close("done") in advance(s, voice.state, Dtmf("1"), VOICE).actions
    wrong = advance(s, out.state, Text("pizza"), CHAT)
    assert says(wrong.actions) == ["Please pick one"] and wrong.state.attempts == {"menu": 1}
    assert ("menu", "invalid") in [(x.node, x.outcome) for x in wrong.steps]
    silent = advance(s, wrong.state, NoInput(), CHAT)  # no on_no_input port: counts as invalid
    assert Close("failed") in silent.actions


def test_ask_validates_each_input_kind() -> None:
    cases = [
        ("number", "12,5", 12.5, "twelve"),
        ("email", "Ann@Example.com", "ann@example.com", "ann@"),
        ("phone", "8 (912) 345-67-89", "+79123456789", "12"),
        ("date", "31.12.2026", "2026-12-31", "31.13.2026"),
        ("text", " hello ", "hello", "   "),
    ]
    for kind, good, stored, bad in cases:
        s = scenario({"id": "ask", "type": "ask", "input": kind, "content": {"text": "?"}, "variable": "v",
                      "retries": 1, "ports": {"next": "bye", "on_max_retries": "oops"}},
                     BYE, OOPS, variables=[{"name": "v"}])  # fmt: skip
        start = advance(s, None, Start(), CHAT)
        ok = advance(s, start.state, Text(good), CHAT)
        assert ok.state.variables["v"] == stored, kind
        first = advance(s, start.state, Text(bad), CHAT)
        assert first.state.node == "ask" and says(first.actions) == ["?"], kind
        assert Close("failed") in advance(s, first.state, Text(bad), CHAT).actions, kind
    choice = scenario({"id": "ask", "type": "ask", "input": "choice", "choices": ["Red", "Blue"],
                       "content": {"text": "?"}, "variable": "v", "ports": {"next": "bye", "on_max_retries": "oops"}},
                      BYE, OOPS, variables=[{"name": "v"}])  # fmt: skip
    start = advance(choice, None, Start(), CHAT)
    assert next(a for a in start.actions if isinstance(a, Say)).buttons[1] == {"id": "2", "label": "Blue"}
    assert advance(choice, start.state, Text("Blue", button="2"), CHAT).state.variables["v"] == "Blue"
    assert advance(choice, start.state, Text("red"), CHAT).state.variables["v"] == "Red"


def test_ask_on_invalid_and_on_no_input_ports() -> None:
    s = scenario({"id": "ask", "type": "ask", "input": "number", "content": {"text": "How many?"}, "variable": "n",
                  "retries": 2, "ports": {"next": "bye", "on_invalid": "hint", "on_no_input": "oops",
                                          "on_max_retries": "oops"}},
                 {"id": "hint", "type": "message", "content": {"text": "Digits only"}, "ports": {"next": "ask"}},
                 BYE, OOPS, variables=[{"name": "n", "type": "number"}])  # fmt: skip
    start = advance(s, None, Start(), CHAT)
    first = advance(s, start.state, Text("many"), CHAT)
    assert says(first.actions) == ["Digits only", "How many?"] and first.state.attempts == {"ask": 1}
    second = advance(s, first.state, Text("lots"), CHAT)
    assert second.state.attempts == {"ask": 2}, "looping back through on_invalid keeps counting"
    assert Close("failed") in advance(s, second.state, Text("all"), CHAT).actions
    assert Close("failed") in advance(s, start.state, NoInput(), CHAT).actions


def test_condition_on_variables_channel_time_hours_and_agents() -> None:
    when = {
        "any": [
            {
                "all": [
                    {"op": "ge", "left": {"var": "age"}, "right": {"value": 18}},
                    {"op": "eq", "left": {"fact": "channel"}, "right": {"value": "widget"}},
                ]
            },
            {"not": {"op": "eq", "left": {"fact": "business_hours_open"}, "right": {"value": True}}},
        ]
    }
    s = scenario({"id": "c", "type": "condition", "when": when, "ports": {"true": "bye", "false": "oops"}},
                 BYE, OOPS, variables=[{"name": "age", "type": "number"}])  # fmt: skip
    adult = advance(s, State(variables={"age": "21"}), Start(), CHAT)
    assert Close("done") in adult.actions
    assert Close("failed") in advance(s, State(variables={"age": 12}), Start(), CHAT).actions
    assert Close("failed") in advance(s, State(variables={"age": 30}), Start(), VOICE).actions
    closed = Facts(channel="voice", business_hours_open=False)
    assert Close("done") in advance(s, State(variables={"age": 1}), Start(), closed).actions
    late = scenario({"id": "c", "type": "condition", "ports": {"true": "bye", "false": "oops"},
                     "when": {"all": [{"op": "ge", "left": {"fact": "time"}, "right": {"value": "18:00"}},
                                      {"op": "gt", "left": {"fact": "agents_online"}, "right": {"value": 0}}]}},
                    BYE, OOPS)  # fmt: skip
    evening = Facts(now=datetime(2026, 11, 22, 19, 30), agents_online=2)
    assert Close("done") in advance(late, None, Start(), evening).actions
    assert Close("failed") in advance(late, None, Start(), Facts(now=datetime(2026, 11, 22, 9, 0))).actions


def test_set_http_and_contact_scope_variables() -> None:
    s = scenario({"id": "set", "type": "set", "assign": [{"variable": "who", "value": "{{contact.name}}!"},
                                                            {"variable": "tier", "value": "gold"}],
                  "ports": {"next": "api"}},
                 {"id": "api", "type": "http", "method": "POST", "url": "https://crm.example/{{who}}",
                  "headers": {"X-Tier": "{{tier}}"}, "body": "{\"n\": \"{{who}}\"}", "timeout_seconds": 3,
                  "response_map": {"balance": "account.balance", "first": "items.0.name"},
                  "ports": {"next": "bye", "on_error": "oops"}},
                 BYE, OOPS,
                 variables=[{"name": "who"}, {"name": "tier", "scope": "contact"}, {"name": "balance", "type": "number"},
                            {"name": "first"}])  # fmt: skip
    start = advance(s, None, Start(), CHAT)
    call = next(a for a in start.actions if isinstance(a, CallHttp))
    assert call == CallHttp("POST", "https://crm.example/Ann!", {"X-Tier": "gold"}, '{"n": "Ann!"}', 3)
    assert SaveContactField("tier", "gold") in start.actions
    assert start.state.waiting == "http"
    assert advance(s, start.state, Text("impatient"), CHAT).state.waiting == "http", "input waits for HTTP"
    ok = advance(
        s, start.state, HttpResult(200, {"account": {"balance": 42}, "items": [{"name": "x"}]}), CHAT
    )
    assert ok.state.variables["balance"] == 42 and ok.state.variables["first"] == "x"
    assert Close("done") in ok.actions
    for failure in (HttpResult(500, {}), HttpResult(error="timed out after 3 s")):
        failed = advance(s, start.state, failure, CHAT)
        assert Close("failed") in failed.actions and ("api", "error") in [
            (x.node, x.outcome) for x in failed.steps
        ]


def test_handoff_outcomes() -> None:
    s = scenario({"id": "h", "type": "handoff", "queue_id": 7, "priority": 5, "skills": ["en"],
                  "note": "Wants {{topic}}", "ports": {"on_no_agents": "sorry", "on_closed": "oops"}},
                 {"id": "sorry", "type": "close", "result_code": "no_agents"}, OOPS,
                 variables=[{"name": "topic", "default": "billing"}])  # fmt: skip
    start = advance(s, None, Start(), CHAT)
    assert Handoff(7, 5, ["en"], "Wants billing", {"topic": "billing"}) in start.actions
    assert advance(s, start.state, HandoffResult("queued"), CHAT).state.status == "handed_off"
    assert Close("no_agents") in advance(s, start.state, HandoffResult("no_agents"), CHAT).actions
    assert Close("failed") in advance(s, start.state, HandoffResult("closed"), CHAT).actions


def test_goto_wait_and_survey() -> None:
    s = scenario({"id": "w", "type": "wait", "seconds": 60, "ports": {"next": "csat"}},
                 {"id": "csat", "type": "survey", "question": {"text": "Rate us"}, "kind": "single",
                  "options": [{"id": "5", "label": "Great"}, {"id": "1", "label": "Bad"}], "variable": "csat",
                  "ports": {"next": "tags"}},
                 {"id": "tags", "type": "survey", "question": {"text": "What was good?"}, "kind": "multiple",
                  "options": [{"id": "speed", "label": "Speed"}, {"id": "tone", "label": "Tone"}],
                  "variable": "good", "ports": {"next": "more"}},
                 {"id": "more", "type": "goto_scenario", "scenario": "sales"},
                 variables=[{"name": "csat"}, {"name": "good", "type": "list"}])  # fmt: skip
    start = advance(s, None, Start(), CHAT)
    assert StartTimer(60, "wait") in start.actions and start.state.waiting == "timer"
    assert advance(s, start.state, Text("hello?"), CHAT).state.node == "w", "typing does not skip a wait"
    rate = advance(s, start.state, TimerFired(), CHAT)
    assert says(rate.actions) == ["Rate us"]
    rated = advance(s, rate.state, Text("Great", button="5"), CHAT)
    assert SaveAnswer("csat", "csat", "5") in rated.actions
    done = advance(s, rated.state, Text("Speed, tone"), CHAT)
    assert SaveAnswer("tags", "good", ["speed", "tone"]) in done.actions
    assert GotoScenario("sales") in done.actions and done.state.status == "moved"


def test_state_round_trips_through_json_so_a_restart_resumes() -> None:
    s = scenario(MENU, BYE, OOPS)
    waiting = advance(s, None, Start(), CHAT).state
    restored = State.from_json(waiting.to_json())
    assert Close("done") in advance(s, restored, Text("sales"), CHAT).actions
    assert advance(s, restored, TimerFired(), CHAT).state.node == "menu", "a stray timer changes nothing"


def test_a_runaway_loop_is_stopped() -> None:
    s = scenario({"id": "a", "type": "set", "assign": [{"variable": "x", "value": "1"}], "ports": {"next": "b"}},
                 {"id": "b", "type": "set", "assign": [{"variable": "x", "value": "2"}], "ports": {"next": "a"}},
                 variables=[{"name": "x"}])  # fmt: skip
    out = advance(s, None, Start(), CHAT)
    assert out.state.status == "error" and "without waiting" in out.state.error


def test_template_formats_write_money_and_dates_for_the_language_and_the_call() -> None:
    variables = [{"name": "debt"}, {"name": "due"}]
    s = scenario({"id": "hi", "type": "message",
                  "content": {"text": "You owe {{debt:money}} by {{ due : date }}, {{debt}}",
                              "text_ru": "Долг {{debt:money}} до {{due:date}}"},
                  "ports": {"next": "bye"}}, {**BYE, "message": {"text": "Bye"}}, variables=variables)  # fmt: skip
    state = State(variables={"debt": 1500.5, "due": "2026-12-01"})
    assert says(advance(s, state, Start(), Facts(lang="en")).actions)[0] == (
        "You owe 1,500.50 RUB by 2026-12-01, 1500.5"
    )
    ru = State(variables={"debt": 1500.5, "due": "2026-12-01"})
    said = says(advance(s, ru, Start(), Facts(lang="ru", channel="voice")).actions)[0]
    assert said == "Долг 1\u00a0500,50\u00a0₽ до 01.12.2026"


def test_unknown_template_format_is_a_publish_problem() -> None:
    from bots.checks import check

    s = scenario({"id": "hi", "type": "message", "content": {"text": "{{debt:moneys}}"}, "ports": {"next": "bye"}},
                 {**BYE, "message": {"text": "Bye"}}, variables=[{"name": "debt"}])  # fmt: skip
    problems = [(p.code, p.message) for p in check(s)]
    assert problems and problems[0][0] == "template_format"
    assert "unknown format 'moneys'" in problems[0][1] and "money" in problems[0][1]


def test_template_count_format_agrees_the_noun_with_the_number() -> None:
    from bots.checks import check

    variables = [{"name": "n"}]
    s = scenario({"id": "hi", "type": "message",
                  "content": {"text": "Wait {{n:count(minute)}}", "text_ru": "Ждите {{ n : count( минута ) }}"},
                  "ports": {"next": "bye"}}, {**BYE, "message": {"text": "Bye"}}, variables=variables)  # fmt: skip
    assert not check(s)
    for n, en, ru in ((1, "Wait 1 minute", "Ждите 1 минута"), (21, "Wait 21 minutes", "Ждите 21 минута"),
                      (5, "Wait 5 minutes", "Ждите 5 минут")):  # fmt: skip
        assert says(advance(s, State(variables={"n": n}), Start(), Facts(lang="en")).actions)[0] == en
        assert says(advance(s, State(variables={"n": n}), Start(), Facts(lang="ru")).actions)[0] == ru


def test_a_state_as_json_is_every_field_deep_copied() -> None:
    """What the runner stores and the engine starts each step from: ``asdict``'s result."""
    from dataclasses import asdict, fields

    state = State(node="ask", waiting="input", attempts={"ask": 1},
                    variables={"order": 42, "http": {"items": [1, {"id": (2, 3)}]}})  # fmt: skip
    copied = state.to_json()
    assert copied == asdict(state) and set(copied) == {f.name for f in fields(State)}
    copied["variables"]["http"]["items"][1]["id"] = 0
    copied["attempts"]["ask"] = 5
    assert state.variables["http"]["items"][1]["id"] == (2, 3) and state.attempts == {"ask": 1}
