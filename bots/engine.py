"""The scenario engine: a pure state machine, no database, no transport.

``advance(scenario, state, event, facts)`` returns the new state and the actions the runner
must carry out (say something, start a timer, call HTTP, hand off, close). The runner persists
the state after every call, so a restart resumes exactly where the conversation was; inputs
(text, button, DTMF, no-input, timer, HTTP result, hand-off outcome) come back as events.
"""

from __future__ import annotations

import operator
import re
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from bots.protocol import (
    Action,
    CallHttp,
    Close,
    Dtmf,
    Event,
    Facts,
    GotoScenario,
    Handoff,
    HandoffResult,
    HttpResult,
    NoInput,
    Outcome,
    Recorded,
    RecordVoice,
    SaveAnswer,
    SaveContactField,
    Say,
    Start,
    StartTimer,
    State,
    Step,
    Text,
    TimerFired,
)
from bots.scenario import (
    TEMPLATE_REF,
    All,
    AnyOf,
    AskNode,
    CloseNode,
    Compare,
    ConditionNode,
    Content,
    Expr,
    Fact,
    GotoScenarioNode,
    HandoffNode,
    HttpNode,
    MenuNode,
    MenuOption,
    MessageNode,
    Not,
    Operand,
    RecordNode,
    Scenario,
    SetNode,
    SurveyNode,
    Value,
    Var,
    WaitNode,
    _Node,
)
from omni.domain.speech.words import format_value

MAX_STEPS_PER_EVENT = 200
"""A guard against a loop the publish checks missed: the run stops with ``on_error``-less end."""
PATH_LIMIT = 500
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Run:
    def __init__(self, scenario: Scenario, state: State, facts: Facts) -> None:
        self.scenario = scenario
        self.state = state
        self.facts = facts
        self.out = Outcome(state=state)

    # rendering --------------------------------------------------------------------------

    def value_of(self, name: str) -> Any:
        if name in self.state.variables:
            return self.state.variables[name]
        if name == "channel":
            return self.facts.channel
        if name in self.facts.builtins:
            return self.facts.builtins[name]
        var = self.scenario.variable(name)
        return var.default if var else None

    def render(self, template: str) -> str:
        def sub(match: re.Match[str]) -> str:
            value = self.value_of(match.group(1))
            if match.group(2):
                return format_value(value, match.group(2), self.facts.lang, match.group(3) or "")
            return "" if value is None else str(value)

        return TEMPLATE_REF.sub(sub, template or "")

    def text_of(self, content: Content) -> str:
        return self.render(content.for_channel(self.facts.channel, self.facts.lang))

    def label(self, option: MenuOption) -> str:
        return option.label_ru if self.facts.lang == "ru" and option.label_ru else option.label

    # flow -------------------------------------------------------------------------------

    def enter(self, node_id: str | None) -> None:
        self.state.node = node_id
        self.state.waiting = ""
        if node_id is not None:
            self.out.steps.append(Step(node_id, "entered"))

    def leave(self, port: str) -> None:
        node = self.current()
        self.out.steps.append(Step(node.id, f"left:{port}"))
        target = node.ports.get(port)
        if not target:
            self.finish("ended")
            return
        self.enter(target)

    def finish(self, status: str, error: str = "") -> None:
        self.state.status = status
        self.state.error = error
        self.state.waiting = ""

    def current(self) -> _Node:
        node = self.scenario.node(self.state.node or "")
        if node is None:
            raise LookupError(f"node '{self.state.node}' is not in this revision")
        return node

    def set_var(self, name: str, value: Any) -> None:
        self.state.variables[name] = value
        var = self.scenario.variable(name)
        if var is not None and var.scope == "contact":
            self.out.actions.append(SaveContactField(name, value))

    def run(self) -> None:
        """Execute nodes until one waits or the scenario ends."""
        for _ in range(MAX_STEPS_PER_EVENT):
            if self.state.status != "running" or self.state.waiting or self.state.node is None:
                if self.state.node is None and self.state.status == "running":
                    self.finish("ended")
                return
            self.execute(self.current())
        self.out.steps.append(Step(self.state.node or "", "error"))
        self.finish("error", f"more than {MAX_STEPS_PER_EVENT} steps without waiting for the customer")

    def execute(self, node: _Node) -> None:
        if isinstance(node, MessageNode):
            self.out.actions.append(
                Say(
                    self.text_of(node.content),
                    prompt=node.content.prompt,
                    node=node.id,
                    prompt_id=node.content.prompt_id,
                )
            )
            self.leave("next")
        elif isinstance(node, MenuNode | AskNode | SurveyNode):
            self.prompt(node)
        elif isinstance(node, ConditionNode):
            self.leave("true" if self.evaluate(node.when) else "false")
        elif isinstance(node, SetNode):
            for a in node.assign:
                self.set_var(a.variable, self.coerce(a.variable, self.render(a.value)))
            self.leave("next")
        elif isinstance(node, HttpNode):
            self.state.waiting = "http"
            self.out.actions.append(
                CallHttp(
                    method=node.method,
                    url=self.render(node.url),
                    headers={k: self.render(v) for k, v in node.headers.items()},
                    body=self.render(node.body),
                    timeout_seconds=node.timeout_seconds,
                )
            )
        elif isinstance(node, HandoffNode):
            self.state.waiting = "handoff"
            self.out.actions.append(
                Handoff(
                    queue_id=node.queue_id,
                    priority=node.priority,
                    skills=list(node.skills),
                    note=self.render(node.note),
                    variables=dict(self.state.variables),
                )
            )
        elif isinstance(node, GotoScenarioNode):
            self.out.actions.append(GotoScenario(node.scenario))
            self.out.steps.append(Step(node.id, "left:goto"))
            self.finish("moved")
        elif isinstance(node, CloseNode):
            if node.message:
                self.out.actions.append(
                    Say(self.text_of(node.message), node=node.id, prompt_id=node.message.prompt_id)
                )
            self.out.actions.append(Close(node.result_code))
            self.out.steps.append(Step(node.id, "left:close"))
            self.finish("closed")
        elif isinstance(node, WaitNode):
            self.state.waiting = "timer"
            self.out.actions.append(StartTimer(node.seconds, "wait"))
        elif isinstance(node, RecordNode):
            text = self.text_of(node.content)
            if text.strip() or node.content.prompt:
                self.out.actions.append(Say(text, prompt=node.content.prompt, node=node.id))
            self.state.waiting = "record"
            self.out.actions.append(RecordVoice(node.id, node.max_seconds, node.silence_seconds, node.beep))
            # A fallback when nobody records (the call's session is gone): as if nothing was said.
            self.out.actions.append(StartTimer(node.max_seconds + node.silence_seconds + 30, "no_input"))
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown node {node!r}")

    def prompt(self, node: MenuNode | AskNode | SurveyNode, *, retry: bool = False) -> None:
        content: Content = node.question if isinstance(node, SurveyNode) else node.content
        if retry and not isinstance(node, SurveyNode) and node.retry_message is not None:
            content = node.retry_message
        buttons: list[dict[str, str]] = []
        if isinstance(node, MenuNode) or (isinstance(node, SurveyNode) and node.kind != "text"):
            buttons = [{"id": o.id, "label": self.label(o)} for o in node.options]
        elif isinstance(node, AskNode) and node.input == "choice":
            buttons = [{"id": str(i + 1), "label": c} for i, c in enumerate(node.choices)]
        self.out.actions.append(
            Say(
                self.text_of(content),
                buttons=buttons,
                prompt=content.prompt,
                node=node.id,
                prompt_id=content.prompt_id,
            )
        )
        self.state.waiting = "input"
        if node.timeout_seconds:
            self.out.actions.append(StartTimer(node.timeout_seconds, "no_input"))

    # input ------------------------------------------------------------------------------

    def on_input(self, event: Text | Dtmf | NoInput) -> None:
        node = self.current()
        if not isinstance(node, MenuNode | AskNode | SurveyNode):
            return  # input while the bot is busy (HTTP, hand-off): nothing to answer
        if isinstance(event, NoInput):
            self.out.steps.append(Step(node.id, "no_input"))
            if node.ports.get("on_no_input"):
                self.leave("on_no_input")
                return
            self.invalid(node)
            return
        if isinstance(node, MenuNode):
            option = self.match_option(node.options, event)
            if option is None:
                self.invalid(node)
                return
            self.state.variables["last_input"] = option.id
            self.state.attempts.pop(node.id, None)
            self.leave(f"opt:{option.id}")
            return
        if isinstance(node, SurveyNode):
            answer = self.survey_answer(node, event)
            if answer is None:
                self.invalid(node)
                return
            self.set_var(node.variable, answer)
            self.out.actions.append(SaveAnswer(node.id, node.variable, answer))
            self.state.attempts.pop(node.id, None)
            self.leave("next")
            return
        raw = event.text if isinstance(event, Text) else event.digits
        value = validate(node, raw, event.button if isinstance(event, Text) else None)
        if value is None:
            self.invalid(node)
            return
        self.set_var(node.variable, value)
        self.state.attempts.pop(node.id, None)
        self.leave("next")

    def invalid(self, node: MenuNode | AskNode | SurveyNode) -> None:
        self.out.steps.append(Step(node.id, "invalid"))
        tries = self.state.attempts.get(node.id, 0) + 1
        self.state.attempts[node.id] = tries
        limit = 0 if isinstance(node, SurveyNode) else node.retries
        if tries > limit:
            self.state.attempts.pop(node.id, None)
            if node.ports.get("on_max_retries"):
                self.leave("on_max_retries")
            elif isinstance(node, SurveyNode):
                self.leave("on_no_input" if node.ports.get("on_no_input") else "next")
            else:
                self.finish("ended")
            return
        if node.ports.get("on_invalid"):
            self.leave("on_invalid")
            return
        self.prompt(node, retry=True)

    def match_option(self, options: list[MenuOption], event: Text | Dtmf) -> MenuOption | None:
        if isinstance(event, Dtmf):
            return next((o for o in options if o.dtmf and o.dtmf == event.digits.strip()), None)
        if event.button:
            return next((o for o in options if o.id == event.button), None)
        text = event.text.strip().casefold()
        for i, o in enumerate(options):
            if text in {o.label.casefold(), o.label_ru.casefold(), o.id, str(i + 1)} - {""}:
                return o
        return None

    def survey_answer(self, node: SurveyNode, event: Text | Dtmf) -> Any:
        if node.kind == "text":
            text = event.text.strip() if isinstance(event, Text) else event.digits
            return text or None
        if node.kind == "single":
            option = self.match_option(node.options, event)
            return option.id if option else None
        if isinstance(event, Dtmf):
            return None
        picked: list[str] = []
        for part in re.split(r"[,;]", event.button or event.text):
            option = self.match_option(node.options, Text(part))
            if option is None:
                return None
            picked.append(option.id)
        return picked or None

    # conditions -------------------------------------------------------------------------

    def operand(self, op: Operand | None) -> Any:
        if op is None:
            return None
        if isinstance(op, Var):
            return self.value_of(op.var)
        if isinstance(op, Value):
            return op.value
        return self.fact(op)

    def fact(self, op: Fact) -> Any:
        now = self.facts.now or datetime.now(UTC)  # the runner passes the queue's local time
        return {
            "channel": self.facts.channel,
            "time": now.strftime("%H:%M"),
            "weekday": now.isoweekday(),
            "business_hours_open": self.facts.business_hours_open,
            "agents_online": self.facts.agents_online,
        }[op.fact]

    def evaluate(self, expr: Expr) -> bool:
        if isinstance(expr, All):
            return all(self.evaluate(e) for e in expr.all)
        if isinstance(expr, AnyOf):
            return any(self.evaluate(e) for e in expr.any)
        if isinstance(expr, Not):
            return not self.evaluate(expr.not_)
        return compare(expr, self.operand(expr.left), self.operand(expr.right))

    def coerce(self, name: str, value: str) -> Any:
        var = self.scenario.variable(name)
        if var is None:
            return value
        if var.type == "number":
            number = _number(value)
            return value if number is None else number
        if var.type == "bool":
            return value.strip().lower() in {"1", "true", "yes", "да"}
        return value


def compare(expr: Compare, left: Any, right: Any) -> bool:
    op = expr.op
    if op == "empty":
        return left in (None, "", [], {})
    if op == "not_empty":
        return left not in (None, "", [], {})
    if op == "contains":
        return left is not None and str(right).casefold() in str(left).casefold()
    if op == "in":
        options = right if isinstance(right, list) else [x.strip() for x in str(right).split(",")]
        return str(left) in [str(x) for x in options]
    if op == "matches":
        try:
            return re.search(str(right), str(left or "")) is not None
        except re.error:
            return False
    a, b = _comparable(left, right)
    try:
        return bool(_ORDER[op](a, b))
    except TypeError:
        return False


_ORDER = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
          "ge": operator.ge}  # fmt: skip


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    ln, rn = _number(left), _number(right)
    if ln is not None and rn is not None:
        return ln, rn
    return ("" if left is None else str(left)), ("" if right is None else str(right))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip().replace(",", ".").replace(" ", ""))
    except ValueError:
        return None


def validate(node: AskNode, raw: str, button: str | None = None) -> Any:
    """The typed answer in its canonical form, or None when it is not valid for the node."""
    text = raw.strip()
    if not text and not button:
        return None
    if node.input == "text":
        return text[:4000]
    if node.input == "number":
        number = _number(text)
        return None if number is None else (int(number) if number.is_integer() else number)
    if node.input == "email":
        return text.lower() if EMAIL.match(text) else None
    if node.input == "phone":
        try:
            parsed = phonenumbers.parse(text, "RU")
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if node.input == "date":
        for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=UTC).date().isoformat()
            except ValueError:
                continue
        return None
    # choice: a button id (1-based index), the index typed, or the text itself
    if button and button.isdigit() and 1 <= int(button) <= len(node.choices):
        return node.choices[int(button) - 1]
    if text.isdigit() and 1 <= int(text) <= len(node.choices):
        return node.choices[int(text) - 1]
    return next((c for c in node.choices if c.casefold() == text.casefold()), None)


def dig(data: Any, path: str) -> Any:
    """``a.b.0.c`` in a decoded JSON document; None when the path does not exist."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def advance(scenario: Scenario, state: State | None, event: Event, facts: Facts) -> Outcome:
    """Feed one event; returns the new state, the actions to carry out and the path taken."""
    state = State.from_json(state.to_json()) if state is not None else State()
    run = _Run(scenario, state, facts)
    if isinstance(event, Start):
        run.state = state = State(variables=dict(state.variables))
        run.out.state = state
        for var in scenario.variables:
            if var.default is not None and var.name not in state.variables:
                state.variables[var.name] = var.default
        run.enter(scenario.start)
        run.run()
        return run.out
    if state.status != "running" or state.node is None:
        return run.out
    try:
        node = run.current()
    except LookupError as exc:
        run.finish("error", str(exc))
        return run.out
    if state.waiting == "record" and isinstance(node, RecordNode):
        if isinstance(event, Recorded) and event.file_id:
            run.set_var(node.variable, event.file_id)
            run.leave("next")
        elif isinstance(event, Recorded | NoInput):
            run.out.steps.append(Step(node.id, "no_input"))
            run.leave("on_no_input" if node.ports.get("on_no_input") else "next")
    elif isinstance(event, Recorded):
        pass  # a recording for a node the scenario has left: nothing to do
    elif isinstance(event, Text | Dtmf | NoInput):
        if state.waiting == "input":
            run.on_input(event)
    elif isinstance(event, TimerFired):
        if state.waiting == "timer" and isinstance(node, WaitNode):
            run.leave("next")
    elif isinstance(event, HttpResult):
        if state.waiting == "http" and isinstance(node, HttpNode):
            if event.error or not 200 <= event.status < 300:
                run.out.steps.append(Step(node.id, "error"))
                state.variables["http_status"] = event.status
                run.leave("on_error")
            else:
                for name, path in node.response_map.items():
                    run.set_var(name, dig(event.body, path))
                run.leave("next")
    elif state.waiting == "handoff" and isinstance(node, HandoffNode):
        if event.outcome == "queued":
            run.out.steps.append(Step(node.id, "left:queued"))
            run.finish("handed_off")
        else:
            run.leave("on_closed" if event.outcome == "closed" else "on_no_agents")
    if len(run.out.steps) > PATH_LIMIT:
        del run.out.steps[PATH_LIMIT:]
    run.run()
    return run.out


__all__ = [
    "Action",
    "CallHttp",
    "Close",
    "Dtmf",
    "Event",
    "Facts",
    "GotoScenario",
    "Handoff",
    "HandoffResult",
    "HttpResult",
    "NoInput",
    "Outcome",
    "RecordVoice",
    "Recorded",
    "SaveAnswer",
    "SaveContactField",
    "Say",
    "Start",
    "StartTimer",
    "State",
    "Step",
    "Text",
    "TimerFired",
    "advance",
]
