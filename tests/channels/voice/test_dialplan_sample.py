"""The sample dialplan (``docker/asterisk/extensions.conf``) followed the way Asterisk runs it,
including where a channel goes when an AMI ``Bridge`` it was put in ends without it (the
priority after the application it was running), plus the other sample files' pitfalls."""

from __future__ import annotations

import configparser
from pathlib import Path

from tests.channels.voice.dialplan import SAMPLE, Dialplan, Step

ASTERISK = SAMPLE.parent


def test_held_call_keeps_the_operator_leg_waiting_instead_of_hanging_it_up() -> None:
    """Hold redirects the caller out of the bridge; the operator's leg went on past Wait(3600)
    into Hangup(), so Hold ended the call (then Resume: "conflict … it is wrap_up")."""
    plan = Dialplan.load()
    waiting = plan.priority_of("omni-agent", "Wait")
    variables = {"OMNI_OFFER": "7", "OMNI_CONVERSATION": "3"}
    context, priority, step = plan.go_on_after_bridge("omni-agent", waiting, variables)
    assert (context, step.app) == ("omni-agent", "Wait"), f"the operator leg reaches {step.app}"
    # ... and again after that wait, and again: it loops.
    assert plan.go_on_after_bridge(context, priority, variables)[2].app == "Wait"


def test_caller_whose_operator_hangs_up_hears_no_hold_music() -> None:
    """The caller was bridged while the position announcement played (it sets OMNI_RESULT to
    "queued" first) or while the music played; when the operator hangs up Asterisk sends the
    caller on in omni-wait and it heard music until Omni's Hangup arrived."""
    plan = Dialplan.load()
    variables: dict[str, str] = {"OMNI_CONVERSATION": "3"}
    context, in_agi, step = plan.run("omni-wait", 1, variables)
    assert (context, step.app) == ("omni-wait", "AGI")
    variables["OMNI_RESULT"] = "queued"  # set by announce before it speaks; then the Bridge
    assert plan.go_on_after_bridge(context, in_agi, dict(variables))[2].app == "Hangup"

    # Bridged while listening to the music: the loop asks Omni again.
    normal = {**variables, "AGISTATUS": "SUCCESS"}
    context, in_music, step = plan.run("omni-wait", in_agi + 1, normal)
    assert step.app == "MusicOnHold", "a waiting caller does hear music"
    back = dict(normal)
    context, priority, step = plan.go_on_after_bridge(context, in_music, back)
    assert step.app == "AGI"
    for status, then in (
        ("active", "Wait"),
        ("on_hold", "Wait"),
        ("wrap_up", "Hangup"),
        ("closed", "Hangup"),
    ):
        answered = {**back, "AGISTATUS": "SUCCESS", "OMNI_RESULT": status}
        assert plan.run(context, priority + 1, answered)[2].app == then, status

    # Held, resumed (bridged from omni-hold), then the operator hangs up.
    held = plan.priority_of("omni-hold", "MusicOnHold")
    assert plan.go_on_after_bridge("omni-hold", held, {})[2].app == "Hangup"


def test_waiting_caller_is_never_dropped_when_omni_cannot_be_reached() -> None:
    plan = Dialplan.load()
    variables: dict[str, str] = {}
    context, in_agi, _ = plan.run("omni-wait", 1, variables)
    failed = {**variables, "AGISTATUS": "FAILURE"}  # Omni down: no OMNI_RESULT
    assert plan.run(context, in_agi + 1, failed)[2].app == "MusicOnHold"
    assert plan.run(context, in_agi + 1, {**failed, "OMNI_RESULT": "error"})[2].app == "MusicOnHold"


def _ini(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, inline_comment_prefixes=(";",), comment_prefixes=(";",))
    parser.read_string((ASTERISK / name).read_text())
    return parser


def test_ami_listens_on_loopback_only() -> None:
    """manager.conf bound AMI to 0.0.0.0 against its own comment."""
    assert _ini("manager.conf")["general"]["bindaddr"] == "127.0.0.1"


def test_music_on_hold_classes_point_at_directories_asterisk_has() -> None:
    """[omni] pointed at /var/lib/asterisk/moh/omni, which a stock install lacks: an ERROR on
    every load. Active classes use Asterisk's own "moh" directory."""
    moh = _ini("musiconhold.conf")
    for name in moh.sections():
        if name == "general":
            continue
        directory = moh[name]["directory"]
        assert directory == "moh", f"[{name}] needs {directory} to exist"


def test_fastagi_address_is_explained_where_it_is_set() -> None:
    text = SAMPLE.read_text()
    globals_block = text[text.index("[globals]") : text.index("[from-trunk]")]
    assert "OMNI_AGI = 127.0.0.1:4573" in globals_block
    assert "app:4573" in globals_block and "compose" in globals_block, "the compose host name is explained"


def test_dialplan_reader_reads_every_context_omni_names() -> None:
    plan = Dialplan.load(Path(SAMPLE))
    for context in ("omni-ivr", "omni-wait", "omni-agent", "omni-hold", "omni-internal", "omni-outbound",
                    "omni-overflow"):  # fmt: skip
        assert plan.contexts.get(context), context


def test_caller_is_answered_when_omni_is_unreachable() -> None:
    """Seen on Asterisk 22.10 with SIPp: with the FastAGI port closed, [omni-ivr] sent the call
    to omni-wait unanswered; the caller heard the provider's ringback (only "100 Trying") and
    never our music, until the provider timed the call out."""
    plan = Dialplan.load(Path(SAMPLE))
    after_agi = plan.priority_of("omni-ivr", "AGI") + 1
    trail: list[Step] = []
    context, _, step = plan.run(
        "omni-ivr", after_agi, {"AGISTATUS": "FAILURE", "OMNI_RESULT": ""}, trail=trail
    )
    assert context == "omni-wait", "an unreachable Omni still puts the caller in the line"
    assert "Answer" in [s.app for s in trail], "answered before waiting in the line"
    assert step.app != "Hangup"
    # Reached Omni and queued: the AGI answered already; no second Answer on that path.
    trail = []
    context, _, _ = plan.run(
        "omni-ivr", after_agi, {"AGISTATUS": "SUCCESS", "OMNI_RESULT": "queued"}, trail=trail
    )
    assert context == "omni-wait" and "Answer" not in [s.app for s in trail]


def test_agentless_call_plays_the_scenario_then_waits_in_line_or_hangs_up() -> None:
    """An answered agentless campaign call (redirected to ``omni-agentless``) runs the FastAGI
    ``outbound`` route with its attempt; a hand-off ("queued") takes it into the line as an
    inbound caller, anything else ends the call."""
    plan = Dialplan.load()
    variables = {"OMNI_ATTEMPT": "42"}
    trail: list[Step] = []
    context, in_agi, step = plan.run("omni-agentless", 1, variables, trail=trail)
    assert (context, step.app) == ("omni-agentless", "AGI")
    assert step.args == "agi://${OMNI_AGI}/outbound,${OMNI_ATTEMPT}"
    queued = {**variables, "OMNI_RESULT": "queued", "OMNI_INBOX_ID": "3", "OMNI_CONVERSATION": "9"}
    trail = []
    context, _, step = plan.run(context, in_agi + 1, queued, trail=trail)
    assert context == "omni-wait" and step.app == "AGI" and "/announce" in step.args
    assert any(s.app == "UserEvent" and "OmniEnqueue" in s.args for s in trail)
    for result in ("closed", "error", ""):
        assert plan.run("omni-agentless", in_agi + 1, {**variables, "OMNI_RESULT": result})[2].app == "Hangup"


def test_amd_context_passes_the_settings_to_amd_and_reports_every_result() -> None:
    """``OMNI_AMD`` holds AMD()'s nine arguments separated by ``|`` (a comma would split the
    Originate's Variable header); the context turns them back into AMD()'s arguments, reports
    the result with ``UserEvent(OmniAmd)`` and sends a person to the hold music, a machine to
    a wait for Omni; a hang-up during AMD() is reported from the ``h`` extension."""
    from channels.voice import control
    from omni.settings import VoiceSettings

    plan = Dialplan.load()
    variables = {"OMNI_AMD": control.amd_arguments(VoiceSettings())}
    context, priority, step = plan.run("omni-amd", 1, variables)
    assert step.app == "AMD"
    assert plan.expand(step.args, variables) == "2500,1500,800,5000,100,50,2,256,5000"
    for status, then in (("HUMAN", "MusicOnHold"), ("NOTSURE", "MusicOnHold"), ("MACHINE", "Wait")):
        after = {**variables, "AMDSTATUS": status, "AMDCAUSE": "x"}
        trail: list[Step] = []
        where, _, last = plan.run(context, priority + 1, after, trail=trail)
        events = [plan.expand(s.args, after) for s in trail if s.app == "UserEvent"]
        assert events == [f"OmniAmd,Status: {status},Cause: x"], status
        assert last.app == then, status
        assert where == ("omni-hold" if then == "MusicOnHold" else "omni-amd")
    for status, reported in (("HANGUP", True), ("MACHINE", False)):
        trail = []
        plan.run("omni-amd", 1, {"AMDSTATUS": status, "AMDCAUSE": ""}, exten="h", trail=trail)
        assert any(s.app == "UserEvent" for s in trail) is reported, status


def test_drop_and_machine_contexts_play_the_sound_the_tts_app_or_nothing_then_hang_up() -> None:
    plan = Dialplan.load()
    for variables, first in (
        ({"OMNI_SOUND": "omni/sorry"}, ("Playback", "omni/sorry")),
        ({"OMNI_SPEAK": "Festival(Sorry)"}, ("Exec", "Festival(Sorry)")),
        ({}, ("Wait", "1")),
    ):
        context, priority, step = plan.run("omni-drop", 1, dict(variables))
        assert (step.app, plan.expand(step.args, variables)) == first
        assert plan.run(context, priority + 1, dict(variables))[2].app == "Hangup"
    machine = {"OMNI_SILENCE": "1500,1,20", "OMNI_SOUND": "omni/call-back"}
    context, priority, step = plan.run("omni-machine", 1, dict(machine))
    assert (step.app, plan.expand(step.args, machine)) == ("WaitForSilence", "1500,1,20")
    _, _, step = plan.run(context, priority + 1, dict(machine))
    assert (step.app, plan.expand(step.args, machine)) == ("Playback", "omni/call-back")
