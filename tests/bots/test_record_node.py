# ruff: noqa: E501  (scenario documents read best one node per line)
"""The ``record`` node: a voice reply recorded by the IVR; its file id goes to a variable,
nothing recorded leaves by ``on_no_input``. Voice only (publish checks), and test runs answer
it with ``{"record": "<file>"}``. An outbound start knows the campaign's variables at once."""

from __future__ import annotations

from typing import Any

import pytest

from bots import engine as e
from bots.checks import check
from bots.scenario import RecordNode, ScenarioFormatError, load
from bots.simulate import run_case


def _doc(**record: Any) -> dict[str, Any]:
    return {
        "name": "Reply",
        "start": "hello",
        "variables": [{"name": "debt"}, {"name": "recording"}],
        "nodes": [
            {"id": "hello", "type": "message", "content": {"text": "You owe {{debt}}."}, "ports": {"next": "rec"}},
            {"id": "rec", "type": "record", "content": {"text": "Speak after the tone."},
             "ports": {"next": "thanks", "on_no_input": "silent"}, **record},
            {"id": "thanks", "type": "close", "message": {"text": "Got it."}},
            {"id": "silent", "type": "close", "message": {"text": "Nothing heard."}},
        ],
    }  # fmt: skip


def test_record_node_defaults_and_limits() -> None:
    node = load(_doc()).node("rec")
    assert isinstance(node, RecordNode)
    assert (node.max_seconds, node.silence_seconds, node.beep, node.variable) == (60, 3, True, "recording")
    with pytest.raises(ScenarioFormatError):
        load(_doc(max_seconds=601))
    with pytest.raises(ScenarioFormatError):
        load(_doc(variable="Bad Name"))


def test_record_runs_only_on_calls() -> None:
    scenario = load(_doc())
    assert check(scenario, "voice") == []
    for channel in ("widget", "telegram"):
        problems = check(scenario, channel)
        assert [(p.node, p.code) for p in problems] == [("rec", "channel")]


def test_a_reply_goes_to_the_variable_and_silence_leaves_by_no_input() -> None:
    scenario = load(_doc())
    case = {"channel": "voice", "variables": {"debt": "1200"}}
    heard = run_case(scenario, {**case, "inputs": [{"record": "f-1"}]})
    assert [s["text"] for s in heard.says] == ["You owe 1200.", "Speak after the tone.", "Got it."]
    assert heard.variables["recording"] == "f-1" and heard.path == ["hello", "rec", "thanks"]
    silent = run_case(scenario, {**case, "inputs": [{"record": ""}]})
    assert silent.path == ["hello", "rec", "silent"] and "recording" not in silent.variables
    waiting = run_case(scenario, case)
    assert (waiting.status, waiting.waiting, waiting.node) == ("running", "record", "rec")


def test_the_engine_asks_for_a_recording_with_the_nodes_limits_and_a_fallback_timer() -> None:
    scenario = load(_doc(max_seconds=20, silence_seconds=2, beep=False))
    out = e.advance(scenario, e.State(variables={"debt": "5"}), e.Start(), e.Facts(channel="voice"))
    record = [a for a in out.actions if isinstance(a, e.RecordVoice)]
    assert record == [e.RecordVoice("rec", 20, 2, False)]
    timers = [a for a in out.actions if isinstance(a, e.StartTimer)]
    assert timers and timers[0].kind == "no_input" and timers[0].seconds > 22
    # A typed text or a digit is no recording: the node keeps waiting.
    again = e.advance(scenario, out.state, e.Dtmf("1"), e.Facts(channel="voice"))
    assert again.state.node == "rec" and again.state.waiting == "record"
    # The fallback timer (no IVR session any more) is a no-input.
    lost = e.advance(scenario, out.state, e.NoInput(), e.Facts(channel="voice"))
    assert lost.state.node == "silent" and lost.state.status == "closed"
