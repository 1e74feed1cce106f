"""Publish-time checks: a scenario that passes them can't strand a customer.

Every problem names the node and says what is wrong, so the builder can put it on the node.
"""

from __future__ import annotations

from collections.abc import Iterable

from bots.scenario import (
    BUILTINS,
    TEMPLATE_REF,
    AskNode,
    Content,
    MenuNode,
    Problem,
    Scenario,
    SurveyNode,
    _Node,
)
from omni.domain.speech.words import FORMATS
from omni.i18n import _l

CHANNEL_LIMITS: dict[str, set[str]] = {
    # Voice can't show buttons or take typed text: menus need DTMF digits, asks only numbers/choices.
    "voice": {"survey:multiple", "survey:text", "ask:text", "ask:email", "ask:date"},
    # Only a call can record the customer's voice.
    "widget": {"record"},
    "telegram": {"record"},
}


def template_refs(text: str) -> Iterable[str]:
    for match in TEMPLATE_REF.finditer(text or ""):
        yield match.group(1)


def template_formats(text: str) -> Iterable[str]:
    """The ``kind`` of every ``{{name:kind}}`` in a template."""
    for match in TEMPLATE_REF.finditer(text or ""):
        if match.group(2):
            yield match.group(2)


def _edges(node: _Node) -> Iterable[tuple[str, str]]:
    for port, target in node.ports.items():
        if target:
            yield port, target


def _reachable(scenario: Scenario) -> set[str]:
    seen: set[str] = set()
    stack = [scenario.start]
    by_id = {n.id: n for n in scenario.nodes}
    while stack:
        current = stack.pop()
        if current in seen or current not in by_id:
            continue
        seen.add(current)
        stack.extend(t for _, t in _edges(by_id[current]))
    return seen


def _busy_cycles(scenario: Scenario) -> list[list[str]]:
    """Cycles made only of nodes that never wait: they would spin without the customer."""
    busy = {n.id: n for n in scenario.nodes if not n.waits_for_customer}
    graph = {nid: [t for _, t in _edges(n) if t in busy] for nid, n in busy.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def node_prompt_ids(node: _Node) -> Iterable[int]:
    """The prompt-manager prompts a node plays (its texts' ``prompt_id``)."""
    for value in node.__dict__.values():
        if isinstance(value, Content) and value.prompt_id is not None:
            yield value.prompt_id


def check(
    scenario: Scenario,
    channel: str | None = None,
    *,
    scenario_keys: set[str] | None = None,
    prompt_ids: set[int] | None = None,
) -> list[Problem]:
    """All problems, in node order; empty means publishable (on ``channel`` when given)."""
    problems: list[Problem] = []
    ids = {n.id for n in scenario.nodes}
    declared = {v.name for v in scenario.variables}

    def add(
        node: str | None, code: str, template: str, /, *, port: str | None = None, **params: object
    ) -> None:
        problems.append(Problem.of(node, code, template, port=port, **params))

    if scenario.start not in ids:
        add(None, "no_start", _l("the start node '{start}' does not exist"), start=scenario.start)
    for node in scenario.nodes:
        for port in node.required():
            if not node.ports.get(port):
                add(
                    node.id,
                    "port_unconnected",
                    _l("node '{node}': port '{port}' is not connected"),
                    node=node.id,
                    port=port,
                )
        for port, target in _edges(node):
            if target not in ids:
                add(
                    node.id,
                    "port_target",
                    _l("node '{node}': port '{port}' points to missing node '{target}'"),
                    node=node.id,
                    port=port,
                    target=target,
                )
        if isinstance(node, AskNode) and not (node.ports.get("on_invalid") or node.retries > 0):
            add(
                node.id,
                "ask_invalid",
                _l("node '{node}': an ask needs retries or an 'on_invalid' path"),
                node=node.id,
            )
        for text in node.texts():
            for kind in template_formats(text):
                if kind not in FORMATS:
                    add(
                        node.id,
                        "template_format",
                        _l("node '{node}': unknown format '{kind}' (use one of: {kinds})"),
                        node=node.id,
                        kind=kind,
                        kinds=", ".join(sorted(FORMATS)),
                    )
            for name in template_refs(text):
                if name not in declared and name not in BUILTINS:
                    add(
                        node.id,
                        "undeclared",
                        _l("node '{node}': variable '{name}' is not declared"),
                        node=node.id,
                        name=name,
                    )
        for name in [*node.reads(), *node.writes()]:
            if name not in declared and name not in BUILTINS:
                add(
                    node.id,
                    "undeclared",
                    _l("node '{node}': variable '{name}' is not declared"),
                    node=node.id,
                    name=name,
                )
        if node.type_name() == "goto_scenario" and scenario_keys is not None:
            target = getattr(node, "scenario", "")
            if target not in scenario_keys:
                add(
                    node.id,
                    "goto_target",
                    _l("node '{node}': scenario '{target}' does not exist"),
                    node=node.id,
                    target=target,
                )
        if prompt_ids is not None:
            for prompt_id in node_prompt_ids(node):
                if prompt_id not in prompt_ids:
                    add(
                        node.id,
                        "prompt_missing",
                        _l("node '{node}': prompt {prompt_id} does not exist (pick another)"),
                        node=node.id,
                        prompt_id=prompt_id,
                    )
        if channel:
            problems.extend(_channel_problems(node, channel))
    reachable = _reachable(scenario)
    for node in scenario.nodes:
        if node.id not in reachable:
            add(node.id, "unreachable", _l("node '{node}' can't be reached from the start"), node=node.id)
    for cycle in _busy_cycles(scenario):
        add(
            cycle[0],
            "busy_loop",
            _l("nodes {nodes} loop without waiting for the customer (add an ask, menu, survey or wait node)"),
            nodes=", ".join(repr(c) for c in cycle),
        )
    unique: list[Problem] = []
    for p in problems:  # a variable read twice in one node is one problem
        if p not in unique:
            unique.append(p)
    return unique


def _channel_problems(node: _Node, channel: str) -> list[Problem]:
    limits = CHANNEL_LIMITS.get(channel, set())
    key = node.type_name()
    if isinstance(node, AskNode):
        key = f"ask:{node.input}"
    elif isinstance(node, SurveyNode):
        key = f"survey:{node.kind}"
    out: list[Problem] = []
    if key in limits:
        out.append(
            Problem.of(
                node.id,
                "channel",
                _l("node '{node}': {key} is not supported on {channel}"),
                node=node.id,
                key=key,
                channel=channel,
            )
        )
    if channel == "voice" and isinstance(node, MenuNode):
        missing = [o.id for o in node.options if not o.dtmf]
        if missing:
            out.append(
                Problem.of(
                    node.id,
                    "channel",
                    _l("node '{node}': options {options} need a DTMF digit on voice"),
                    node=node.id,
                    options=", ".join(missing),
                )
            )
    return out
