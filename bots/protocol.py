"""What goes in and out of the scenario engine: events, actions, the persisted state, facts.

The runner and the transports speak these plain dataclasses; ``bots.engine`` turns one event
plus the state into the next state and a list of actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# --- events in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Text:
    text: str
    button: str | None = None


@dataclass(frozen=True)
class Dtmf:
    digits: str


@dataclass(frozen=True)
class NoInput:
    """The customer said nothing within the node's timeout."""


@dataclass(frozen=True)
class TimerFired:
    """A ``wait`` node's time is up."""


@dataclass(frozen=True)
class HttpResult:
    status: int = 0
    body: Any = None
    error: str = ""


@dataclass(frozen=True)
class HandoffResult:
    outcome: str
    """``queued`` (the bot is done), ``no_agents`` or ``closed``."""


@dataclass(frozen=True)
class Recorded:
    """A ``record`` node's recording is stored (``file_id``), or nothing was recorded (``""``)."""

    file_id: str = ""
    seconds: float = 0.0


Event = Start | Text | Dtmf | NoInput | TimerFired | HttpResult | HandoffResult | Recorded


# --- actions out -------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    prompt: str = ""
    node: str = ""
    prompt_id: int | None = None
    """A prompt of the prompt manager; the runner resolves it to its sound on a call."""


@dataclass(frozen=True)
class StartTimer:
    seconds: float
    kind: str
    """``no_input`` (ask/menu/survey) or ``wait``."""


@dataclass(frozen=True)
class CallHttp:
    method: str
    url: str
    headers: dict[str, str]
    body: str
    timeout_seconds: float


@dataclass(frozen=True)
class Handoff:
    queue_id: int | None
    priority: int
    skills: list[str]
    note: str
    variables: dict[str, Any]


@dataclass(frozen=True)
class GotoScenario:
    scenario: str


@dataclass(frozen=True)
class Close:
    result_code: str


@dataclass(frozen=True)
class SaveAnswer:
    node: str
    variable: str
    value: Any


@dataclass(frozen=True)
class SaveContactField:
    name: str
    value: Any


@dataclass(frozen=True)
class RecordVoice:
    """Record the customer's reply (voice: the IVR runs AGI ``RECORD FILE``)."""

    node: str
    max_seconds: int
    silence_seconds: int
    beep: bool


Action = (
    RecordVoice | Say | StartTimer | CallHttp | Handoff | GotoScenario | Close | SaveAnswer | SaveContactField
)


# --- state -------------------------------------------------------------------------------


@dataclass
class Step:
    """One entry of the path: what happened at a node (the builder's statistics count these)."""

    node: str
    outcome: str
    """``entered``, ``left:<port>``, ``invalid``, ``no_input``, ``error``."""


@dataclass
class State:
    node: str | None = None
    waiting: str = ""
    """What the current node waits for: ``input``, ``record``, ``timer``, ``http``, ``handoff`` or ``""``."""
    attempts: dict[str, int] = field(default_factory=dict)
    """Invalid answers per waiting node; kept when an ``on_invalid`` path loops back."""
    variables: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    """``running``, ``handed_off``, ``closed``, ``moved`` (goto scenario), ``ended``, ``error``."""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """Every field, deep-copied as ``dataclasses.asdict`` does, without its recursion
        through each field's type (``asdict`` was about 5 % of a bot step's Python)."""
        return {
            "node": self.node,
            "waiting": self.waiting,
            "attempts": dict(self.attempts),
            "variables": {k: _copied(v) for k, v in self.variables.items()},
            "status": self.status,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _copied(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copied(v) for v in value)
    return value


@dataclass(frozen=True)
class Facts:
    """What the runner knows about the world when a step runs."""

    channel: str = "widget"
    lang: str = "en"
    now: datetime | None = None
    business_hours_open: bool = True
    agents_online: int = 0
    builtins: dict[str, Any] = field(default_factory=dict)
    """contact.name, contact.phone, contact.email, conversation.id, queue.name."""


@dataclass
class Outcome:
    state: State
    actions: list[Action] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
