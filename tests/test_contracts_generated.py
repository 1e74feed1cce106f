"""The contracts and what is generated from them can't drift: docs/events.md's reference and
the console's / widget's TypeScript types are regenerated and compared, every event type an
action emits is defined, and ``emit`` refuses what its definition does not allow."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from omni.domain.event_types import EVENT_TYPES, EventContractError
from omni.domain.events import checked_payload, emit, encoded_payload
from omni.services import Services

ROOT = Path(__file__).resolve().parent.parent


def test_generated_docs_and_typescript_are_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_contracts.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _emitted_types() -> set[str]:
    """Every literal event type passed to ``emit`` / ``_event`` in omni/, channels/, bots/."""
    found: set[str] = set()
    for package in ("omni", "channels", "bots"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or len(node.args) < 2:
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name not in ("emit", "_event"):
                    continue
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "." in arg.value:
                    found.add(arg.value)
                elif isinstance(arg, ast.IfExp):
                    found |= {a.value for a in (arg.body, arg.orelse) if isinstance(a, ast.Constant)}
    return found


def test_every_emitted_event_type_is_defined() -> None:
    emitted = _emitted_types()
    assert len(emitted) > 25, emitted
    assert emitted - set(EVENT_TYPES) == set()


async def test_emit_refuses_an_unknown_type_or_a_payload_of_the_wrong_shape(services: Services) -> None:
    async with services.db.transaction() as s:
        with pytest.raises(EventContractError, match="unknown event type"):
            emit(s, "conversation.exploded", {})
        with pytest.raises(EventContractError, match="user_ids"):
            emit(s, "queue.members_changed", {"queue_id": 1, "user_ids": ["7"]})
        with pytest.raises(EventContractError, match="unknown field"):
            emit(s, "admin.changed", {"entity": "queue", "id": 1, "action": "created", "extra": 1})
        with pytest.raises(EventContractError, match="action"):
            emit(s, "admin.changed", {"entity": "queue", "id": 1, "action": "renamed"})
        row = emit(s, "admin.changed", {"entity": "queue", "id": 1, "action": "created"})
        assert row.payload == {"entity": "queue", "id": 1, "action": "created"}


def test_a_payload_encoded_by_its_writer_is_checked_as_emit_checks_it() -> None:
    """``encoded_payload`` (a writer binding the JSON itself: the router's offers) refuses what
    ``emit`` refuses, and its document is the one ``emit``'s row holds."""
    with pytest.raises(EventContractError, match="unknown event type"):
        encoded_payload("conversation.exploded", {})
    with pytest.raises(EventContractError, match="user_ids"):
        encoded_payload("queue.members_changed", {"queue_id": 1, "user_ids": ["7"]})
    with pytest.raises(EventContractError, match="unknown field"):
        encoded_payload("admin.changed", {"entity": "queue", "id": 1, "action": "created", "extra": 1})
    with pytest.raises(EventContractError, match="action"):
        encoded_payload("admin.changed", {"entity": "queue", "id": 1, "action": "renamed"})
    payload = {"entity": "queue", "id": 1, "action": "created"}
    assert json.loads(encoded_payload("admin.changed", payload)) == checked_payload("admin.changed", payload)
