"""The scenario document and its publish checks: each broken graph is refused naming the node."""

from __future__ import annotations

from typing import Any

import pytest

from bots.checks import check
from bots.scenario import ScenarioFormatError, load


def doc(
    *nodes: dict[str, Any], start: str = "hello", variables: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "schema_version": 2,
        "name": "t",
        "start": start,
        "variables": variables or [],
        "nodes": list(nodes),
    }


HELLO = {
    "id": "hello",
    "type": "message",
    "content": {"text": "Hi {{contact.name}}"},
    "ports": {"next": "menu"},
}
MENU: dict[str, Any] = {
    "id": "menu",
    "type": "menu",
    "content": {"text": "Pick one"},
    "options": [{"id": "sales", "label": "Sales", "dtmf": "1"}, {"id": "help", "label": "Help", "dtmf": "2"}],
    "ports": {"opt:sales": "handoff", "opt:help": "handoff", "on_max_retries": "bye"},
}
HANDOFF = {"id": "handoff", "type": "handoff", "ports": {"on_no_agents": "bye", "on_closed": "bye"}}
BYE = {"id": "bye", "type": "close", "result_code": "bot"}


def problems_of(d: dict[str, Any], channel: str | None = None) -> list[tuple[str | None, str]]:
    return [(p.node, p.code) for p in check(load(d), channel)]


def test_a_complete_scenario_passes_and_its_hash_ignores_layout() -> None:
    d = doc(HELLO, MENU, HANDOFF, BYE)
    assert problems_of(d) == []
    assert problems_of(d, "voice") == []
    moved = dict(d, layout={"hello": {"x": 10, "y": 20}})
    assert load(moved).content_hash() == load(d).content_hash()
    edited = doc(dict(HELLO, content={"text": "Hello"}), MENU, HANDOFF, BYE)
    assert load(edited).content_hash() != load(d).content_hash()


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        # a port pointing nowhere
        ((dict(HELLO, ports={"next": "ghost"}), MENU, HANDOFF, BYE), ("hello", "port_target")),
        # an unconnected required port
        ((HELLO, dict(MENU, ports={"opt:sales": "handoff", "on_max_retries": "bye"}), HANDOFF, BYE),
         ("menu", "port_unconnected")),
        # a node nobody reaches
        ((HELLO, MENU, HANDOFF, BYE, {"id": "orphan", "type": "close"}), ("orphan", "unreachable")),
        # a hand-off without its no-agents path
        ((HELLO, MENU, dict(HANDOFF, ports={"on_closed": "bye"}), BYE), ("handoff", "port_unconnected")),
        # an ask without retries or an invalid path
        ((dict(HELLO, ports={"next": "ask"}),
          {"id": "ask", "type": "ask", "content": {"text": "?"}, "variable": "x", "retries": 0,
           "ports": {"next": "bye", "on_max_retries": "bye"}}, BYE),
         ("ask", "ask_invalid")),
        # a template using an undeclared variable
        ((dict(HELLO, content={"text": "Your order {{order_id}}"}), MENU, HANDOFF, BYE),
         ("hello", "undeclared")),
        # a loop with no node that waits for the customer
        ((dict(HELLO, ports={"next": "again"}),
          {"id": "again", "type": "set", "assign": [{"variable": "n", "value": "1"}],
           "ports": {"next": "hello"}}),
         ("again", "busy_loop")),
    ],
)  # fmt: skip
def test_publish_refuses_each_kind_of_broken_graph(
    nodes: tuple[dict[str, Any], ...], expected: tuple[str, str]
) -> None:
    found = problems_of(doc(*nodes, variables=[{"name": "n", "type": "number"}]))
    assert expected in found
    message = next(
        p.message for p in check(load(doc(*nodes, variables=[{"name": "n"}]))) if p.code == expected[1]
    )
    assert f"'{expected[0]}'" in message, "the message names the node"


def test_a_loop_through_a_question_is_fine() -> None:
    ask = {"id": "ask", "type": "ask", "content": {"text": "Again?"}, "variable": "answer",
           "ports": {"next": "hello", "on_max_retries": "bye"}}  # fmt: skip
    assert (
        problems_of(doc(dict(HELLO, ports={"next": "ask"}), ask, BYE, variables=[{"name": "answer"}])) == []
    )


def test_nodes_unsupported_on_the_channel_are_named() -> None:
    no_digits = dict(
        MENU, options=[{"id": "sales", "label": "Sales"}, {"id": "help", "label": "Help", "dtmf": "2"}]
    )
    email = {"id": "mail", "type": "ask", "input": "email", "content": {"text": "E-mail?"},
             "variable": "email", "ports": {"next": "bye", "on_max_retries": "bye"}}  # fmt: skip
    menu = dict(no_digits, ports={**MENU["ports"], "opt:sales": "mail"})
    d = doc(dict(HELLO, ports={"next": "menu"}), menu,
            email, HANDOFF, BYE, variables=[{"name": "email", "type": "email"}])  # fmt: skip
    assert problems_of(d) == []
    voice = check(load(d), "voice")
    assert [(p.node, p.code) for p in voice] == [("menu", "channel"), ("mail", "channel")]
    assert "sales need a DTMF digit" in voice[0].message


def test_shape_errors_name_the_node() -> None:
    with pytest.raises(ScenarioFormatError) as err:
        load(doc(HELLO, {"id": "menu", "type": "menu", "content": {"text": "x"}, "options": []}))
    assert "node 'menu'" in str(err.value)
    with pytest.raises(ScenarioFormatError, match="has no port"):
        load(doc(dict(HELLO, ports={"next": "bye", "sideways": "bye"}), BYE))
    with pytest.raises(ScenarioFormatError, match="unsupported schema_version"):
        load({"schema_version": 99, "name": "x", "start": "a", "nodes": []})
    with pytest.raises(ScenarioFormatError, match="type"):
        load(doc({"id": "hello", "type": "teleport"}))


def test_version_1_documents_are_upgraded() -> None:
    v1 = {
        "schema_version": 1,
        "name": "old",
        "start": "hello",
        "nodes": [
            {"id": "hello", "type": "message", "content": {"text": "Hi"}, "x": 5, "y": 7},
            {"id": "bye", "type": "close"},
        ],
        "edges": [{"from": "hello", "port": "next", "to": "bye"}],
    }
    scenario = load(v1)
    assert scenario.schema_version == 2
    assert scenario.node("hello").ports == {"next": "bye"}  # type: ignore[union-attr]
    assert scenario.layout["hello"].x == 5
    assert check(scenario) == []


def test_conditions_are_data_and_their_variables_are_checked() -> None:
    cond = {"id": "vip", "type": "condition",
            "when": {"all": [{"op": "eq", "left": {"var": "tier"}, "right": {"value": "gold"}},
                             {"not": {"op": "eq", "left": {"fact": "channel"},
                                      "right": {"value": "voice"}}}]},
            "ports": {"true": "bye", "false": "bye"}}  # fmt: skip
    d = doc(dict(HELLO, ports={"next": "vip"}), cond, BYE)
    assert ("vip", "undeclared") in problems_of(d)
    assert problems_of(dict(d, variables=[{"name": "tier"}])) == []
    with pytest.raises(ScenarioFormatError):
        load(doc(dict(cond, when={"op": "eq", "left": {"var": "tier"}})))  # no right-hand side
    with pytest.raises(ScenarioFormatError):
        load(doc(dict(cond, when="tier == 'gold'")))  # never code strings
