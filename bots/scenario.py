"""The scenario document: a versioned, validated graph of nodes with named output ports.

A scenario is data, never code: conditions are expression trees, texts are templates with
``{{variable}}`` references checked against the declared variables, and the layout the
builder draws (x, y) is kept apart from the logic so moving a node never changes a revision's
content hash. Older documents are upgraded by :data:`MIGRATIONS` before validation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    field_validator,
    model_serializer,
    model_validator,
)

from omni.i18n import gettext, render

SCHEMA_VERSION = 2
NODE_ID = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
VAR_NAME = r"^[a-z][a-z0-9_]{0,63}$"
TEMPLATE_REF = re.compile(
    r"\{\{\s*([a-z][a-z0-9_.]*)\s*(?::\s*([a-z]+)\s*(?:\(\s*([^(){}]*?)\s*\)\s*)?)?\}\}"
)
"""``{{name}}``, ``{{name:kind}}`` or ``{{name:kind(argument)}}``: group 1 the variable, group 2
how to write it (``omni.domain.speech.FORMATS``: ``money``, ``date``, ... — read right by text
to speech), group 3 its argument (``{{n:count(минута)}}``: the noun counted)."""
BUILTINS = frozenset(
    {
        "contact.name",
        "contact.phone",
        "contact.email",
        "channel",
        "conversation.id",
        "queue.name",
        "last_input",
    }
)
"""Names every template may use without declaring them (filled by the runner)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- content ----------------------------------------------------------------------------


class Content(_Model):
    """Channel-neutral text with optional per-channel variants (e.g. a voice prompt file)."""

    text: str = Field(default="", max_length=4000)
    text_ru: str = Field(default="", max_length=4000)
    channels: dict[str, str] = Field(default_factory=dict)
    """Per-channel replacement text, e.g. ``{"voice": "Press 1 for sales, 2 for support"}``."""
    prompt: str = ""
    """Voice only: a sound file name played instead of TTS (older documents; ``prompt_id`` wins)."""
    prompt_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """Voice only: a prompt of the prompt manager (``omni.domain.prompts``), played instead of
    TTS; checked at publish, resolved to its sound when the node speaks."""

    @model_serializer(mode="wrap")
    def _without_unset_prompt(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No ``prompt_id`` key when none is picked: documents from before prompt ids dump (and
        hash) exactly as they did, so republishing one reuses its revision."""
        data: dict[str, Any] = handler(self)
        if data.get("prompt_id") is None:
            data.pop("prompt_id", None)
        return data

    def for_channel(self, channel: str, lang: str = "en") -> str:
        if channel in self.channels:
            return self.channels[channel]
        if lang == "ru" and self.text_ru:
            return self.text_ru
        return self.text

    def texts(self) -> Iterator[str]:
        yield self.text
        yield self.text_ru
        yield from self.channels.values()


# --- conditions: an expression tree stored as data ---------------------------------------


class Var(_Model):
    var: str


class Value(_Model):
    value: str | int | float | bool | None


FactName = Literal["channel", "time", "weekday", "business_hours_open", "agents_online"]


class Fact(_Model):
    """Something the runner knows: ``time`` is ``HH:MM`` in the queue's zone, weekday 1–7."""

    fact: FactName


Operand = Var | Value | Fact
CompareOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "contains", "in", "empty", "not_empty", "matches"]


class Compare(_Model):
    op: CompareOp
    left: Operand
    right: Operand | None = None

    @model_validator(mode="after")
    def _right_needed(self) -> Compare:
        if self.op not in ("empty", "not_empty") and self.right is None:
            raise ValueError(f"'{self.op}' needs a right-hand side")
        return self


class All(_Model):
    all: list[Expr] = Field(min_length=1)


class AnyOf(_Model):
    any: list[Expr] = Field(min_length=1)


class Not(_Model):
    not_: Expr = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Expr = All | AnyOf | Not | Compare
All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


def expr_vars(expr: Expr) -> Iterator[str]:
    if isinstance(expr, All):
        for e in expr.all:
            yield from expr_vars(e)
    elif isinstance(expr, AnyOf):
        for e in expr.any:
            yield from expr_vars(e)
    elif isinstance(expr, Not):
        yield from expr_vars(expr.not_)
    else:
        for side in (expr.left, expr.right):
            if isinstance(side, Var):
                yield side.var


# --- variables --------------------------------------------------------------------------


class Variable(_Model):
    name: str = Field(pattern=VAR_NAME)
    type: Literal["text", "number", "email", "phone", "date", "bool", "choice", "list", "json"] = "text"
    scope: Literal["conversation", "contact"] = "conversation"
    """``contact`` values are saved on the contact and known in the next conversation."""
    default: Any = None


# --- nodes ------------------------------------------------------------------------------

Ports = dict[str, str | None]
INPUT_KINDS = ("text", "number", "email", "phone", "date", "choice")


class _Node(_Model):
    id: str = Field(pattern=NODE_ID)
    title: str = Field(default="", max_length=128)
    ports: Ports = Field(default_factory=dict)
    """Port name → target node id (``None`` = not connected yet, which publish refuses)."""

    #: ports this kind may have; the publish check wants the ``required`` ones connected.
    allowed_ports: ClassVar[tuple[str, ...]] = ()
    required_ports: ClassVar[tuple[str, ...]] = ()
    waits_for_customer: ClassVar[bool] = False

    @model_validator(mode="after")
    def _known_ports(self) -> _Node:
        allowed = set(self.port_names())
        unknown = sorted(set(self.ports) - allowed)
        if unknown:
            raise ValueError(f"node '{self.id}' ({self.type_name()}) has no port(s) {', '.join(unknown)}")
        return self

    def type_name(self) -> str:
        return str(getattr(self, "type", "?"))

    def port_names(self) -> list[str]:
        return list(self.allowed_ports)

    def required(self) -> list[str]:
        return list(self.required_ports)

    def texts(self) -> Iterator[str]:
        """Every template this node renders (for the variable-reference check)."""
        return iter(())

    def reads(self) -> Iterator[str]:
        """Variables read outside templates (conditions)."""
        return iter(())

    def writes(self) -> Iterator[str]:
        return iter(())


class MessageNode(_Node):
    type: Literal["message"] = "message"
    content: Content
    allowed_ports: ClassVar[tuple[str, ...]] = ("next",)
    required_ports: ClassVar[tuple[str, ...]] = ("next",)

    def texts(self) -> Iterator[str]:
        yield from self.content.texts()


class MenuOption(_Model):
    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    label: str = Field(min_length=1, max_length=64)
    label_ru: str = Field(default="", max_length=64)
    dtmf: str = Field(default="", pattern=r"^[0-9*#]?$")


class MenuNode(_Node):
    """Buttons in chat, "press N" on voice; each option is a port named ``opt:<id>``."""

    type: Literal["menu"] = "menu"
    content: Content
    options: list[MenuOption] = Field(min_length=1, max_length=10)
    retries: int = Field(default=2, ge=0, le=10)
    retry_message: Content | None = None
    timeout_seconds: int = Field(default=0, ge=0, le=86400)
    """0 = wait for the customer indefinitely (chat); voice uses a few seconds."""
    allowed_ports: ClassVar[tuple[str, ...]] = ("on_invalid", "on_no_input", "on_max_retries")
    required_ports: ClassVar[tuple[str, ...]] = ("on_max_retries",)
    waits_for_customer: ClassVar[bool] = True

    @field_validator("options")
    @classmethod
    def _unique(cls, options: list[MenuOption]) -> list[MenuOption]:
        if len({o.id for o in options}) != len(options):
            raise ValueError("menu option ids must be unique")
        digits = [o.dtmf for o in options if o.dtmf]
        if len(set(digits)) != len(digits):
            raise ValueError("menu DTMF digits must be unique")
        return options

    def port_names(self) -> list[str]:
        return [f"opt:{o.id}" for o in self.options] + list(super().port_names())

    def required(self) -> list[str]:
        return [f"opt:{o.id}" for o in self.options] + list(super().required())

    def texts(self) -> Iterator[str]:
        yield from self.content.texts()
        if self.retry_message:
            yield from self.retry_message.texts()


class AskNode(_Node):
    type: Literal["ask"] = "ask"
    content: Content
    input: Literal["text", "number", "email", "phone", "date", "choice"] = "text"
    choices: list[str] = Field(default_factory=list, max_length=20)
    variable: str = Field(pattern=VAR_NAME)
    retries: int = Field(default=2, ge=0, le=10)
    retry_message: Content | None = None
    timeout_seconds: int = Field(default=0, ge=0, le=86400)
    allowed_ports: ClassVar[tuple[str, ...]] = ("next", "on_invalid", "on_no_input", "on_max_retries")
    required_ports: ClassVar[tuple[str, ...]] = ("next", "on_max_retries")
    waits_for_customer: ClassVar[bool] = True

    @model_validator(mode="after")
    def _choices(self) -> AskNode:
        if self.input == "choice" and not self.choices:
            raise ValueError(f"ask '{self.id}' of type choice needs choices")
        return self

    def texts(self) -> Iterator[str]:
        yield from self.content.texts()
        if self.retry_message:
            yield from self.retry_message.texts()

    def writes(self) -> Iterator[str]:
        yield self.variable


class ConditionNode(_Node):
    type: Literal["condition"] = "condition"
    when: Expr
    allowed_ports: ClassVar[tuple[str, ...]] = ("true", "false")
    required_ports: ClassVar[tuple[str, ...]] = ("true", "false")

    def reads(self) -> Iterator[str]:
        yield from expr_vars(self.when)


class Assignment(_Model):
    variable: str = Field(pattern=VAR_NAME)
    value: str = Field(default="", max_length=4000)
    """A template, e.g. ``{{first_name}} {{last_name}}``."""


class SetNode(_Node):
    type: Literal["set"] = "set"
    assign: list[Assignment] = Field(min_length=1, max_length=50)
    allowed_ports: ClassVar[tuple[str, ...]] = ("next",)
    required_ports: ClassVar[tuple[str, ...]] = ("next",)

    def texts(self) -> Iterator[str]:
        for a in self.assign:
            yield a.value

    def writes(self) -> Iterator[str]:
        for a in self.assign:
            yield a.variable


class HttpNode(_Node):
    type: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = Field(default="", max_length=20000)
    timeout_seconds: float = Field(default=5, gt=0, le=30)
    response_map: dict[str, str] = Field(default_factory=dict)
    """Variable → dotted path in the JSON response, e.g. ``{"balance": "account.balance"}``."""
    allowed_ports: ClassVar[tuple[str, ...]] = ("next", "on_error")
    required_ports: ClassVar[tuple[str, ...]] = ("next", "on_error")

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        if not re.match(r"^(https?://|\{\{)", url):
            raise ValueError("url must start with http:// or https://")
        return url

    def texts(self) -> Iterator[str]:
        yield self.url
        yield self.body
        yield from self.headers.values()

    def writes(self) -> Iterator[str]:
        yield from self.response_map


class HandoffNode(_Node):
    """Enqueue through the router; the conversation leaves the bot unless nobody can take it."""

    type: Literal["handoff"] = "handoff"
    queue_id: int | None = None
    """None = the inbox's queue."""
    priority: int = Field(default=0, ge=-100, le=100)
    skills: list[str] = Field(default_factory=list)
    note: str = Field(default="", max_length=2000)
    allowed_ports: ClassVar[tuple[str, ...]] = ("on_no_agents", "on_closed")
    required_ports: ClassVar[tuple[str, ...]] = ("on_no_agents", "on_closed")

    def texts(self) -> Iterator[str]:
        yield self.note


class GotoScenarioNode(_Node):
    type: Literal["goto_scenario"] = "goto_scenario"
    scenario: str = Field(min_length=1, max_length=64)
    """The target scenario's key; it runs from its start on its active revision."""


class CloseNode(_Node):
    type: Literal["close"] = "close"
    result_code: str = Field(default="", max_length=32)
    message: Content | None = None

    def texts(self) -> Iterator[str]:
        if self.message:
            yield from self.message.texts()


class SurveyNode(_Node):
    type: Literal["survey"] = "survey"
    question: Content
    kind: Literal["single", "multiple", "text"] = "single"
    options: list[MenuOption] = Field(default_factory=list, max_length=10)
    variable: str = Field(pattern=VAR_NAME)
    timeout_seconds: int = Field(default=0, ge=0, le=86400)
    allowed_ports: ClassVar[tuple[str, ...]] = ("next", "on_no_input")
    required_ports: ClassVar[tuple[str, ...]] = ("next",)
    waits_for_customer: ClassVar[bool] = True

    @model_validator(mode="after")
    def _options(self) -> SurveyNode:
        if self.kind != "text" and not self.options:
            raise ValueError(f"survey '{self.id}' needs options")
        return self

    def texts(self) -> Iterator[str]:
        yield from self.question.texts()

    def writes(self) -> Iterator[str]:
        yield self.variable


class WaitNode(_Node):
    type: Literal["wait"] = "wait"
    seconds: int = Field(ge=1, le=7 * 86400)
    allowed_ports: ClassVar[tuple[str, ...]] = ("next",)
    required_ports: ClassVar[tuple[str, ...]] = ("next",)
    waits_for_customer: ClassVar[bool] = True
    """Pauses the scenario (a persisted deadline), so a loop through it is not a busy loop."""


class RecordNode(_Node):
    """Voice only: records the customer's reply (after a beep, up to ``max_seconds``, ended by
    ``silence_seconds`` of silence or by ``#``); the recording's file id goes to ``variable``.
    Nothing recorded (silence, a hang-up) leaves by ``on_no_input`` when it is connected."""

    type: Literal["record"] = "record"
    content: Content = Field(default_factory=Content)
    """Said before the beep (e.g. "Leave your message after the tone")."""
    max_seconds: int = Field(default=60, ge=1, le=600)
    silence_seconds: int = Field(default=3, ge=0, le=60)
    """0 = silence does not end the recording."""
    beep: bool = True
    variable: str = Field(default="recording", pattern=VAR_NAME)
    allowed_ports: ClassVar[tuple[str, ...]] = ("next", "on_no_input")
    required_ports: ClassVar[tuple[str, ...]] = ("next",)
    waits_for_customer: ClassVar[bool] = True

    def texts(self) -> Iterator[str]:
        yield from self.content.texts()

    def writes(self) -> Iterator[str]:
        yield self.variable


Node = Annotated[
    MessageNode
    | MenuNode
    | AskNode
    | ConditionNode
    | SetNode
    | HttpNode
    | HandoffNode
    | GotoScenarioNode
    | CloseNode
    | SurveyNode
    | WaitNode
    | RecordNode,
    Field(discriminator="type"),
]
NODE_TYPES = (
    "message", "menu", "ask", "condition", "set", "http", "handoff",
    "goto_scenario", "close", "survey", "wait", "record",
)  # fmt: skip


class Position(_Model):
    x: float = 0
    y: float = 0


class Scenario(_Model):
    schema_version: Literal[2] = 2
    name: str = Field(min_length=1, max_length=128)
    start: str = Field(pattern=NODE_ID)
    variables: list[Variable] = Field(default_factory=list, max_length=200)
    nodes: list[Node] = Field(min_length=1, max_length=500)
    layout: dict[str, Position] = Field(default_factory=dict)
    """Where the builder draws each node; not part of the logic or the content hash."""

    @model_validator(mode="after")
    def _unique(self) -> Scenario:
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise ValueError(f"node id '{node.id}' is used twice")
            seen.add(node.id)
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError("variable names must be unique")
        return self

    def node(self, node_id: str) -> _Node | None:
        for node in self.nodes:
            if node.id == node_id:
                return node
        return None

    def variable(self, name: str) -> Variable | None:
        for v in self.variables:
            if v.name == name:
                return v
        return None

    def logic(self) -> dict[str, Any]:
        """The document without the layout: what a revision's hash covers."""
        return self.model_dump(mode="json", exclude={"layout"}, by_alias=True)

    def content_hash(self) -> str:
        canonical = json.dumps(self.logic(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


# --- schema versions --------------------------------------------------------------------


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept arrows as a top-level ``edges`` list and x/y inside each node."""
    out = {k: v for k, v in doc.items() if k not in ("edges", "schema_version")}
    nodes: list[dict[str, Any]] = []
    layout: dict[str, dict[str, float]] = dict(doc.get("layout") or {})
    for raw in doc.get("nodes", []):
        node = {k: v for k, v in raw.items() if k not in ("x", "y")}
        if "x" in raw or "y" in raw:
            layout[str(raw.get("id"))] = {"x": raw.get("x", 0), "y": raw.get("y", 0)}
        node.setdefault("ports", {})
        nodes.append(node)
    by_id = {n.get("id"): n for n in nodes}
    for edge in doc.get("edges", []):
        source = by_id.get(edge.get("from"))
        if source is not None:
            source["ports"][edge.get("port", "next")] = edge.get("to")
    out["nodes"] = nodes
    out["layout"] = layout
    out["schema_version"] = 2
    return out


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}
"""``MIGRATIONS[n]`` turns a version-n document into version n+1."""


class ScenarioFormatError(ValueError):
    """The document can't be read: wrong version or shape. ``problems`` name where."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class Problem(_Model):
    node: str | None = None
    code: str
    message: str
    port: str | None = None
    """The port a port problem is about, so an editor can clear it once the port is connected."""
    template: str = Field(default="", exclude=True)
    """With ``params``: the catalog entry ``message`` was rendered from, to translate it."""
    params: dict[str, str] = Field(default_factory=dict, exclude=True)

    @classmethod
    def of(
        cls, node: str | None, code: str, template: str, /, *, port: str | None = None, **params: object
    ) -> Problem:
        """A problem whose message comes from the catalog (``omni/locale``)."""
        values = {k: str(v) for k, v in params.items()}
        if port is not None:
            values.setdefault("port", port)
        message = render(template, values)
        return cls(node=node, code=code, message=message, port=port, template=template, params=values)

    def localized(self, lang: str) -> str:
        return gettext(lang, self.template, **self.params) if self.template else self.message

    def __str__(self) -> str:
        return self.message


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    version = doc.get("schema_version", 1)
    if not isinstance(version, int) or version < 1 or version > SCHEMA_VERSION:
        raise ScenarioFormatError(
            [Problem(code="schema_version", message=f"unsupported schema_version {version!r}")]
        )
    while version < SCHEMA_VERSION:
        doc = MIGRATIONS[version](doc)
        version += 1
    return doc


_ADAPTER: TypeAdapter[Scenario] = TypeAdapter(Scenario)


def load(doc: dict[str, Any]) -> Scenario:
    """Upgrade then validate; shape errors name the node they are in where possible."""
    doc = upgrade(dict(doc))
    try:
        return _ADAPTER.validate_python(doc)
    except Exception as exc:  # pydantic.ValidationError
        problems: list[Problem] = []
        for err in getattr(exc, "errors", lambda: [])():
            loc = err.get("loc", ())
            node_id: str | None = None
            if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
                nodes = doc.get("nodes") or []
                if loc[1] < len(nodes) and isinstance(nodes[loc[1]], dict):
                    node_id = str(nodes[loc[1]].get("id", f"#{loc[1] + 1}"))
            where = ".".join(str(x) for x in (loc[2:] if node_id else loc))
            text = err.get("msg", "invalid")
            message = f"node '{node_id}': {where}: {text}" if node_id else f"{where or 'scenario'}: {text}"
            problems.append(Problem(node=node_id, code="format", message=message))
        if not problems:
            problems.append(Problem(code="format", message=str(exc)))
        raise ScenarioFormatError(problems) from exc
