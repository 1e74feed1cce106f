"""Pure parts of the voice channel: AMI normalisation, the call state owner, action builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from channels.voice import control
from channels.voice.events import CallEvent, ChannelSnapshot, Kind, ami_event_to_call_event
from channels.voice.state import Call, CallRegistry, Ring
from omni.settings import VoiceSettings

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def captured(name: str) -> list[dict[str, str]]:
    blocks = (FIXTURES / name).read_text().strip().split("\n\n")
    return [dict(line.split(": ", 1) for line in block.splitlines()) for block in blocks]


def test_captured_inbound_call_normalises() -> None:
    events = [ami_event_to_call_event(msg) for msg in captured("inbound_call.txt")]
    assert [e.kind if e else None for e in events] == [
        Kind.NEW_CHANNEL,
        Kind.ENQUEUE,
        Kind.STATE,
        Kind.BRIDGE_ENTER,
        Kind.HANGUP,
    ]
    new, enq, up, bridge, hangup = events
    assert new is not None and new.state == "ring" and new.caller_number == "+79161234567"
    assert enq is not None and enq.inbox == "3" and enq.linkedid == "1700000000.7"
    assert up is not None and up.state == "up" and up.caller_name == ""  # "<unknown>" dropped
    assert bridge is not None and bridge.bridge_id.startswith("0b8c")
    assert hangup is not None and hangup.cause == "Normal Clearing"
    assert ami_event_to_call_event({"Event": "PeerStatus"}) is None
    assert ami_event_to_call_event({"Event": "UserEvent", "UserEvent": "Other"}) is None


def test_registry_inbound_answer_and_hangup() -> None:
    reg = CallRegistry()
    enq = CallEvent(Kind.ENQUEUE, "1.7", "1.7", "PJSIP/trunk-7", caller_number="+7916", inbox="3")
    [effect] = reg.apply(enq, T0)
    assert effect.kind == "enqueue"
    assert reg.apply(enq, T0) == []  # a repeated UserEvent does not enqueue twice
    call = effect.call
    reg.bind(call, 10)
    reg.expect_ring(call, Ring(offer_id=42, user_id=5, uniqueid="omni-o42", started_at=T0))
    assert reg.apply(CallEvent(Kind.NEW_CHANNEL, "omni-o42", "omni-o42", "PJSIP/201-8", "down"), T0) == []
    [answered] = reg.apply(
        CallEvent(Kind.STATE, "omni-o42", "omni-o42", "PJSIP/201-8", "up"), T0 + timedelta(seconds=3)
    )
    assert (answered.kind, answered.offer_id, answered.user_id) == ("answered", 42, 5)
    assert call.ring_seconds == 3 and call.agent_channel == "PJSIP/201-8"
    [hold] = reg.apply(CallEvent(Kind.HOLD, "omni-o42"), T0)
    assert hold.kind == "phone_hold"
    [left] = reg.apply(CallEvent(Kind.HANGUP, "1.7", "1.7", cause="Normal Clearing"), T0)
    assert left.kind == "caller_left"
    assert reg.apply(CallEvent(Kind.HANGUP, "omni-o42"), T0) == []  # the end is reported once


def test_registry_ring_failure_and_resync() -> None:
    reg = CallRegistry()
    call = reg.add(
        Call(linkedid="1.8", conversation_id=11, caller_uniqueid="1.8", caller_channel="T/8", enqueued=True)
    )
    reg.expect_ring(call, Ring(offer_id=1, user_id=5, uniqueid="omni-o1", started_at=T0))
    [failed] = reg.apply(CallEvent(Kind.HANGUP, "omni-o1", cause="User busy"), T0 + timedelta(seconds=1))
    assert failed.kind == "ring_failed" and failed.cause == "User busy" and call.ring_seconds == 1
    # After a reconnect: the caller is gone, a new caller waits in omni-wait.
    live = [ChannelSnapshot("1.9", "1.9", "T/9", "up", "omni-wait", "s", "+7916", "", "", "MusicOnHold")]
    effects = reg.reconcile(live, T0)
    assert sorted(e.kind for e in effects) == ["caller_left", "enqueue"]
    assert reg.reconcile(live, T0) == []  # nothing twice


def test_chanspy_options() -> None:
    s = VoiceSettings()
    listen = control.chanspy(s, "300", "PJSIP/201-8", "listen", "omni-s1")
    assert listen["Application"] == "ChanSpy" and listen["Channel"] == "PJSIP/300"
    opts = listen["Data"].split(",")[1]
    assert "q" in opts and "w" not in opts and "B" not in opts
    assert "w" in control.chanspy(s, "300", "X", "whisper", "u")["Data"].split(",")[1]
    assert "B" in control.chanspy(s, "300", "X", "barge", "u")["Data"].split(",")[1]
