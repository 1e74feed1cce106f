"""A small reader and stepper for the sample dialplan (``docker/asterisk/extensions.conf``).

Enough of ``pbx.c`` to follow a channel through Omni's contexts: ``exten => s,1,App(args)`` /
``same => n(label),App(args)`` lines, ``Set``, ``NoOp``, ``UserEvent``, ``Goto``, ``GotoIf``
with ``$["${VAR}" = "value"]`` comparisons joined by ``|`` / ``&``, and the applications a
channel stays in (``AGI``, ``MusicOnHold``, ``Wait``, ``Hangup``, ``Dial``, ``Playback``).

It exists to be as unkind as Asterisk is after an AMI ``Bridge``: when the bridge ends
without a channel, Asterisk sends that channel on at the priority *after* the application it
was running when it was bridged (``main/features.c``: ``action_bridge`` sets the after-bridge
"go on" location to ``priority + 1``). The AMI emulator and the sample's own test use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[3] / "docker" / "asterisk" / "extensions.conf"

BLOCKING = {
    "AGI",
    "MusicOnHold",
    "Wait",
    "Hangup",
    "Dial",
    "Playback",
    "ChanSpy",
    "AMD",
    "WaitForSilence",
    "Exec",
}
"""Applications a channel stays in (or ends in); the stepper stops there."""

_LINE = re.compile(r"^\s*(exten|same)\s*=>\s*(?:([^,]+),)?(\d+|n)(?:\(([^)]*)\))?,(\w+)\((.*)\)\s*$")
_COMPARE = re.compile(r'"([^"]*)"\s*(!=|=)\s*"([^"]*)"')


@dataclass
class Step:
    priority: int
    label: str
    app: str
    args: str


@dataclass
class Dialplan:
    contexts: dict[str, dict[str, list[Step]]] = field(default_factory=dict)
    """context → extension → steps in priority order (priority 1 first)."""

    @classmethod
    def load(cls, path: Path = SAMPLE) -> Dialplan:
        plan = cls()
        context = ""
        exten = ""
        for raw in path.read_text().splitlines():
            line = _strip_comment(raw)
            if not line.strip():
                continue
            if line.startswith("[") and "]" in line:
                context = line[1 : line.index("]")]
                plan.contexts.setdefault(context, {})
                continue
            match = _LINE.match(line)
            if match is None:
                continue
            kind, ext, prio, label, app, args = match.groups()
            if kind == "exten":
                exten = (ext or "").strip()
            steps = plan.contexts[context].setdefault(exten, [])
            number = len(steps) + 1 if prio == "n" else int(prio)
            steps.append(Step(number, label or "", app, args))
        return plan

    def steps(self, context: str, exten: str = "s") -> list[Step]:
        return self.contexts[context][exten]

    def priority_of(self, context: str, app: str, exten: str = "s", nth: int = 1) -> int:
        """The priority of the ``nth`` step running ``app`` in ``context``."""
        found = [s.priority for s in self.steps(context, exten) if s.app == app]
        return found[nth - 1]

    def run(
        self,
        context: str,
        priority: int,
        variables: dict[str, str],
        exten: str = "s",
        limit: int = 100,
        trail: list[Step] | None = None,
    ) -> tuple[str, int, Step]:
        """Execute from ``context,exten,priority`` until an application the channel stays in;
        ``(context, priority, step)`` of that step. ``Set`` changes ``variables``; ``trail``
        collects every step executed on the way."""
        for _ in range(limit):
            steps = self.steps(context, exten)
            if priority > len(steps):
                return context, priority, Step(priority, "", "Hangup", "")  # fell off the end
            step = steps[priority - 1]
            if trail is not None:
                trail.append(step)
            if step.app in BLOCKING:
                return context, priority, step
            target: str | None = None
            if step.app == "Set":
                name, _, value = step.args.partition("=")
                variables[name] = _expand(value, variables)
            elif step.app == "Goto":
                target = step.args
            elif step.app == "GotoIf":
                condition, _, where = step.args.partition("?")
                then, _, otherwise = where.partition(":")
                target = (then if _true(condition, variables) else otherwise) or None
            if target is None:
                priority += 1
                continue
            context, exten, priority = self._resolve(target, context, exten)
        raise AssertionError(f"the dialplan loops without stopping in {context}")

    def expand(self, text: str, variables: dict[str, str]) -> str:
        """``${VAR}`` / ``${CUT(VAR,d,n)}`` substituted, as the PBX does before an application runs."""
        return _expand(text, variables)

    def go_on_after_bridge(
        self, context: str, priority: int, variables: dict[str, str], exten: str = "s"
    ) -> tuple[str, int, Step]:
        """Where a channel bridged by AMI ``Bridge`` while at ``priority`` ends up when the
        bridge ends without it: the next priority, run on from there."""
        return self.run(context, priority + 1, variables, exten)

    def _resolve(self, target: str, context: str, exten: str) -> tuple[str, str, int]:
        parts = [p.strip() for p in target.split(",")]
        if len(parts) == 3:
            context, exten, prio = parts
        elif len(parts) == 2:
            exten, prio = parts
        else:
            prio = parts[0]
        if prio.isdigit():
            return context, exten, int(prio)
        for step in self.steps(context, exten):
            if step.label == prio:
                return context, exten, step.priority
        raise AssertionError(f"no label {prio!r} in {context},{exten}")


def _strip_comment(line: str) -> str:
    return line.split(";", 1)[0].rstrip()


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: _value(m.group(1), variables), text)


def _value(name: str, variables: dict[str, str]) -> str:
    """A variable, ``CUT(VAR,delimiter,n)`` (func_cut: the n-th field, 1-based) or
    ``IFMODULE(name)`` ("1": loaded, unless ``variables`` says otherwise under that key)."""
    if name.startswith("IFMODULE("):
        return variables.get(name, "1")
    cut = re.fullmatch(r"CUT\((\w+),(.),(\d+)\)", name)
    if cut is None:
        return variables.get(name, "")
    fields = variables.get(cut.group(1), "").split(cut.group(2))
    n = int(cut.group(3))
    return fields[n - 1] if 0 < n <= len(fields) else ""


def _true(condition: str, variables: dict[str, str]) -> bool:
    """``$[ "a" = "b" | "c" != "d" & ... ]`` with ``|`` and ``&`` (no parentheses needed here)."""
    body = _expand(condition.strip(), variables)
    if body.startswith("$[") and body.endswith("]"):
        body = body[2:-1]
    result: bool | None = None
    pending = ""
    for part in re.split(r"\s*([|&])\s*(?=\")", body):
        if part in ("|", "&"):
            pending = part
            continue
        match = _COMPARE.search(part)
        if match is None:
            raise AssertionError(f"can't read the condition {condition!r}")
        left, op, right = match.groups()
        value = (left == right) if op == "=" else (left != right)
        if result is None:
            result = value
        elif pending == "|":
            result = result or value
        else:
            result = result and value
    return bool(result)
