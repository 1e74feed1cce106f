"""Answering-machine detection and predictive drops through the voice adapter: the real app
(PostgreSQL, Redis, routing, relay) and panoramisk against the AMI emulator, which runs the
sample dialplan's ``omni-amd`` context as Asterisk's ``AMD()`` does (answer, the analysis
time, ``VarSet AMDSTATUS``/``AMDCAUSE``, the dialplan's ``UserEvent: OmniAmd``; a hang-up
during it through the ``h`` extension) and records what the drop and machine contexts play.
Orders are built here from attempts opened through the lifecycle, as the engine does (a
predictive attempt is opened with no operator, as the scheduler opens it)."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from channels.voice import control
from channels.voice.events import Kind, ami_event_to_call_event
from omni.channels import AttemptOrder
from omni.db import models as m
from omni.db.models.outbound import Outcome, TargetState
from omni.domain.outbound.lifecycle import do_open_attempt
from omni.settings import VoiceSettings
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import World, actions, make_world, until, voice_of
from tests.conftest import LiveServer

emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator

_n = itertools.count(1)
RETRY = {"busy": [15], "no_answer": [30], "congestion": [5], "dropped": [10], "machine": [240]}
AMD_DEFAULTS = "2500|1500|800|5000|100|50|2|256|5000"
"""``VoiceSettings.amd_*`` defaults: Asterisk's amd.conf defaults, in ``AMD()``'s order."""


def _phone() -> str:
    return f"+7916777{next(_n):04d}"


async def _prompt(w: World, sound: str) -> int:
    async with w.server.services.db.transaction() as s:
        p = m.Prompt(folder="campaigns", name=f"p{next(_n)}", sound=sound)
        s.add(p)
        await s.flush()
        return p.id


async def _campaign(w: World, mode: str = "progressive", **kw: Any) -> int:
    async with w.server.services.db.transaction() as s:
        c = m.Campaign(
            name=f"amd-{w.queue_id}-{next(_n)}",
            state="running",
            channel="voice",
            dial_mode=mode,
            queue_id=w.queue_id,
            inbox_id=w.inbox_id,
            retry_rules=RETRY,
            max_attempts=5,
            ring_seconds=20,
            **kw,
        )
        s.add(c)
        await s.flush()
        return c.id


async def _order(w: World, campaign_id: int, phone: str, operator: str | None = "op") -> AttemptOrder:
    async with w.server.services.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, campaign_id)
        t = m.CampaignTarget(campaign_id=campaign_id, name="Ivan Petrov", phone=phone, phones=[phone])
        s.add(t)
        await s.flush()
        op = w.ops[operator] if operator is not None else None
        a = await do_open_attempt(s, t, caller_id="+74950001111", operator_id=op)
        return AttemptOrder(
            attempt_id=a.id,
            campaign_id=campaign_id,
            target_id=t.id,
            channel="voice",
            dial_mode=campaign.dial_mode,
            phone=phone,
            caller_id="+74950001111",
            inbox_id=campaign.inbox_id,
            queue_id=campaign.queue_id,
            operator_id=op,
            ring_seconds=campaign.ring_seconds,
            variables={"name": t.name},
        )


async def _rows(w: World, attempt_id: int) -> tuple[m.CampaignAttempt, m.CampaignTarget]:
    async with w.server.services.db.transaction() as s:
        a = await s.get_one(m.CampaignAttempt, attempt_id)
        t = await s.get_one(m.CampaignTarget, a.target_id)
        return a, t


async def _ended(w: World, attempt_id: int) -> tuple[m.CampaignAttempt, m.CampaignTarget]:
    async def check() -> tuple[m.CampaignAttempt, m.CampaignTarget] | None:
        a, t = await _rows(w, attempt_id)
        return (a, t) if a.ended_at is not None else None

    found: tuple[m.CampaignAttempt, m.CampaignTarget] = await until(check, what=f"attempt {attempt_id} ended")
    return found


def _retried_after(a: m.CampaignAttempt, t: m.CampaignTarget, minutes: int) -> None:
    assert t.state == TargetState.PENDING and t.last_outcome == a.outcome
    assert a.ended_at is not None and t.next_due_at == a.ended_at + timedelta(minutes=minutes)


async def _set_status(w: World, name: str, code: str) -> None:
    async with w.server.services.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, w.ops[name]), code)


async def _waiting(w: World, attempt_id: int) -> m.CampaignAttempt:
    """The answered predictive call is looking for an operator (its answer committed)."""

    async def check() -> m.CampaignAttempt | None:
        a, _ = await _rows(w, attempt_id)
        looking = attempt_id in voice_of(w.server)._waiting
        return a if looking and a.answered_at is not None else None

    found: m.CampaignAttempt = await until(check, what="the answered call waiting for an operator")
    return found


def _operator_originates(emu: AmiEmulator) -> list[dict[str, Any]]:
    return [a for a in actions(emu, "Originate") if a.get("Context") == "omni-agent"]


@pytest.fixture
def tts_app(server: LiveServer) -> Iterator[str]:
    """The TTS dialplan application configured (``OMNI_VOICE_TTS_APP``) for one test."""
    settings = voice_of(server).settings
    before, settings.tts_app = settings.tts_app, "Festival"
    try:
        yield "Festival"
    finally:
        settings.tts_app = before


def _spoken(emu: AmiEmulator, leg: str, text: str) -> bool:
    """The text reached the channel: through the TTS application, or (once the TTS piece's
    ``omni.domain.speech.render`` is installed) as a rendered file."""
    said = [what for uid, what in emu.played if uid == leg]
    if importlib.util.find_spec("omni.domain.speech") is None:
        return said == [f"exec:Festival({text})"]
    return len(said) == 1 and bool(said[0])


# --- AMD -------------------------------------------------------------------------------------


async def test_amd_runs_in_the_outbound_dialplan_with_the_settings_and_a_human_reaches_the_operator(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, amd_enabled=True)
        phone = _phone()
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        originate = actions(emulator, "Originate")[0]
        assert originate["Context"] == "omni-amd"
        assert f"OMNI_AMD={AMD_DEFAULTS}" in originate["Variable"]
        leg = f"omni-a{order.attempt_id}"
        assert emulator.amd_runs[leg] == AMD_DEFAULTS.replace("|", ",")
        assert (a.outcome, a.amd) == (Outcome.ANSWERED, "HUMAN")
        assert t.state == TargetState.IN_PROGRESS
        customer, agent = emulator.campaign_leg(phone), emulator.agent_leg(w.ext["op"])
        assert customer is not None and agent is not None
        await until(lambda: customer.bridge and customer.bridge == agent.bridge, what="bridged")
        # The operator's phone rang only once AMD said "human".
        history = emulator.history
        assert history.index(("UserEvent", leg)) < history.index(("Newchannel", agent.uniqueid))


async def test_a_campaign_without_amd_is_originated_into_the_hold_context() -> None:
    s = VoiceSettings()
    plain = control.campaign_call(
        s,
        number="+1",
        context="omni-outbound",
        caller_id="",
        ring_seconds=20,
        action_id="x",
        uniqueid="omni-a1",
        attempt_id=1,
        campaign_id=1,
    )
    assert plain["Context"] == "omni-hold" and not any(v.startswith("OMNI_AMD=") for v in plain["Variable"])
    s.amd_total_analysis_time, s.amd_maximum_number_of_words = 4000, 3
    assert control.amd_arguments(s) == "2500|1500|800|4000|100|50|3|256|5000"


@pytest.mark.parametrize(
    ("behaviour", "outcome", "amd", "cause", "minutes"),
    [
        ("machine", Outcome.MACHINE, "MACHINE", "answering machine: MAXWORDS-3-2", 240),
        ("hangup", Outcome.NO_ANSWER, "HANGUP", "hung up during answering-machine detection", 30),
        ("notsure", Outcome.ANSWERED, "NOTSURE", "connected to the operator", None),
        # Unkind: the result before the OriginateResponse; every event twice.
        ("human+before_response", Outcome.ANSWERED, "HUMAN", "connected to the operator", None),
        ("machine+duplicates", Outcome.MACHINE, "MACHINE", "answering machine: MAXWORDS-3-2", 240),
        ("hangup+duplicates", Outcome.NO_ANSWER, "HANGUP", "hung up during answering-machine detection", 30),
    ],
)
async def test_every_amd_result_ends_the_attempt_with_its_outcome_and_retry_rule(
    server: LiveServer,
    emulator: AmiEmulator,
    behaviour: str,
    outcome: Outcome,
    amd: str,
    cause: str,
    minutes: int | None,
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, amd_enabled=True)
        phone = _phone()
        behaviour, _, unkind = behaviour.partition("+")
        emulator.amd[phone] = behaviour
        emulator.amd_before_response = unkind == "before_response"
        emulator.duplicate_events = unkind == "duplicates"
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.amd, a.cause) == (outcome, amd, cause)
        assert a.answered_at is not None
        if minutes is None:
            assert t.state == TargetState.IN_PROGRESS  # the operator's result code decides
            assert len(_operator_originates(emulator)) == 1
        else:
            _retried_after(a, t, minutes)
            await until(lambda: emulator.campaign_leg(phone) is None, what="the call ended")
            await voice_of(server).drain()
            assert _operator_originates(emulator) == [], "nobody rings an operator for a machine"
            assert a.conversation_id is None and emulator.played == []
            again, _ = await _rows(w, order.attempt_id)
            assert (again.outcome, again.ended_at) == (a.outcome, a.ended_at)


async def test_a_call_whose_amd_could_not_run_is_connected_as_a_person(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    """On a real Asterisk without amd.conf app_amd declines to load: the sample dialplan skips
    AMD() and reports an empty status; the call must still reach its operator."""
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, amd_enabled=True)
        phone = _phone()
        emulator.amd_loaded = False
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, _ = await _ended(w, order.attempt_id)
        assert (a.outcome, a.amd) == (Outcome.ANSWERED, "")
        assert emulator.amd_runs == {} and len(_operator_originates(emulator)) == 1


async def test_a_machine_hears_the_machine_prompt_after_the_beep_then_the_call_ends_as_machine(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        prompt = await _prompt(w, "/var/lib/asterisk/sounds/omni/campaigns/call-us-back")
        camp = await _campaign(w, amd_enabled=True, machine_action="message", machine_prompt_id=prompt)
        phone = _phone()
        emulator.amd[phone] = "machine"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.amd, a.cause) == (
            Outcome.MACHINE,
            "MACHINE",
            "answering machine: MAXWORDS-3-2, message left",
        )
        _retried_after(a, t, 240)
        leg = f"omni-a{order.attempt_id}"
        await until(lambda: emulator.campaign_leg(phone) is None, what="hung up after the message")
        assert emulator.waited_for_silence == [(leg, "1500,1,20")]
        assert emulator.played == [(leg, "/var/lib/asterisk/sounds/omni/campaigns/call-us-back")]
        assert actions(emulator, "Redirect")[-1]["Context"] == "omni-machine"
        assert _operator_originates(emulator) == []


async def test_a_machine_hears_the_machine_text_through_text_to_speech(
    server: LiveServer, emulator: AmiEmulator, tts_app: str
) -> None:
    async with make_world(server, ["op"]) as w:
        text = "Hello, please call us back (any time)"
        camp = await _campaign(w, amd_enabled=True, machine_action="message", machine_text=text)
        phone = _phone()
        emulator.amd[phone] = "machine"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, _ = await _ended(w, order.attempt_id)
        assert a.outcome == Outcome.MACHINE and a.cause.endswith("message left")
        await until(lambda: emulator.campaign_leg(phone) is None, what="hung up after the message")
        assert _spoken(emulator, f"omni-a{order.attempt_id}", r"Hello\, please call us back \(any time\)")


async def test_a_machine_answering_an_agentless_call_hears_the_machine_message(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    """Agentless campaigns reserve nobody; a machine is the voice adapter's, not the scenario's."""
    async with make_world(server, ["op"]) as w:
        prompt = await _prompt(w, "omni/campaigns/notice")
        camp = await _campaign(
            w, "agentless", amd_enabled=True, machine_action="message", machine_prompt_id=prompt
        )
        phone = _phone()
        emulator.amd[phone] = "machine"
        order = await _order(w, camp, phone, operator=None)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.amd) == (Outcome.MACHINE, "MACHINE") and a.cause.endswith("message left")
        _retried_after(a, t, 240)
        await until(lambda: emulator.campaign_leg(phone) is None, what="hung up after the message")
        assert emulator.played == [(f"omni-a{order.attempt_id}", "omni/campaigns/notice")]
        assert _operator_originates(emulator) == []


async def test_a_machine_of_a_retry_campaign_is_hung_up_without_a_message(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        prompt = await _prompt(w, "omni/never-played")
        camp = await _campaign(w, amd_enabled=True, machine_action="retry", machine_prompt_id=prompt)
        phone = _phone()
        emulator.amd[phone] = "machine"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, _ = await _ended(w, order.attempt_id)
        assert a.outcome == Outcome.MACHINE
        await until(lambda: emulator.campaign_leg(phone) is None, what="hung up")
        assert emulator.played == [] and actions(emulator, "Redirect") == []


# --- predictive: a free operator within drop_seconds, or the drop message ---------------------


async def test_a_predictive_answered_call_is_bridged_to_a_free_operator(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op", "op2"]) as w:
        await _set_status(w, "op", "pause")  # not free: the call goes to op2
        camp = await _campaign(w, "predictive", drop_seconds=30)
        phone = _phone()
        emulator.phones[w.ext["op2"]] = "answer"
        order = await _order(w, camp, phone, operator=None)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.operator_id) == (Outcome.ANSWERED, w.ops["op2"])
        assert a.cause == "connected to the operator"
        assert t.state == TargetState.IN_PROGRESS and a.conversation_id is not None
        conv = await w.conv(a.conversation_id)
        assert conv.assigned_user_id == w.ops["op2"] and conv.variables["attempt_id"] == order.attempt_id
        customer, agent = emulator.campaign_leg(phone), emulator.agent_leg(w.ext["op2"])
        assert customer is not None and agent is not None
        await until(lambda: customer.bridge and customer.bridge == agent.bridge, what="bridged")
        assert [o["Channel"] for o in _operator_originates(emulator)] == [f"PJSIP/{w.ext['op2']}"]


async def test_an_operator_claimed_by_one_predictive_call_is_not_claimed_by_the_next(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, "predictive", drop_seconds=1)
        first, second = _phone(), _phone()
        emulator.phones[w.ext["op"]] = "manual"  # the operator's phone rings while the next answers
        emulator.customers[second] = "manual"
        orders = [await _order(w, camp, p, operator=None) for p in (first, second)]
        for order in orders:
            await voice_of(server).place(order)
        await until(lambda: emulator.ringing(w.ext["op"]), what="the operator's phone ringing")
        emulator.campaign_answers(second)
        b, _ = await _ended(w, orders[1].attempt_id)
        assert (b.outcome, b.cause, b.operator_id) == (Outcome.DROPPED, "no operator free within 1 s", None)
        emulator.answer(w.ext["op"])
        a, _ = await _ended(w, orders[0].attempt_id)
        assert (a.outcome, a.operator_id) == (Outcome.ANSWERED, w.ops["op"])
        assert len(_operator_originates(emulator)) == 1


async def test_a_predictive_call_with_amd_takes_an_operator_only_for_a_human(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, "predictive", amd_enabled=True, drop_seconds=30)
        phone = _phone()
        emulator.amd[phone] = "notsure"
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, phone, operator=None)
        await voice_of(server).place(order)
        a, _ = await _ended(w, order.attempt_id)
        assert (a.outcome, a.amd, a.operator_id) == (Outcome.ANSWERED, "NOTSURE", w.ops["op"])


async def test_a_predictive_call_nobody_takes_in_time_hears_the_drop_prompt_and_is_dropped(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        await _set_status(w, "op", "pause")
        prompt = await _prompt(w, "/var/lib/asterisk/sounds/omni/campaigns/sorry")
        camp = await _campaign(w, "predictive", drop_seconds=1, drop_prompt_id=prompt, drop_text="unused")
        phone = _phone()
        order = await _order(w, camp, phone, operator=None)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.DROPPED, "no operator free within 1 s")
        assert a.answered_at is not None and a.operator_id is None and a.conversation_id is None
        assert (a.ended_at - a.answered_at).total_seconds() >= 1
        _retried_after(a, t, 10)
        leg = f"omni-a{order.attempt_id}"
        await until(lambda: emulator.campaign_leg(phone) is None, what="hung up after the drop message")
        assert emulator.played == [(leg, "/var/lib/asterisk/sounds/omni/campaigns/sorry")]
        assert actions(emulator, "Redirect")[-1]["Context"] == "omni-drop"
        assert _operator_originates(emulator) == []


async def test_a_dropped_call_hears_the_drop_text_or_silence_without_a_prompt(
    server: LiveServer, emulator: AmiEmulator, tts_app: str
) -> None:
    async with make_world(server, ["op"]) as w:
        await _set_status(w, "op", "pause")
        spoken = await _campaign(w, "predictive", drop_seconds=0, drop_text="All operators are busy")
        quiet = await _campaign(w, "predictive", drop_seconds=0)
        phones = [_phone(), _phone()]
        orders = [await _order(w, c, p, operator=None) for c, p in zip((spoken, quiet), phones, strict=True)]
        for order in orders:
            await voice_of(server).place(order)
        for order, phone in zip(orders, phones, strict=True):
            a, _ = await _ended(w, order.attempt_id)
            assert a.outcome == Outcome.DROPPED
            await until(lambda phone=phone: emulator.campaign_leg(phone) is None, what="hung up")
        assert _spoken(emulator, f"omni-a{orders[0].attempt_id}", "All operators are busy")
        assert [p for p in emulator.played if p[0] == f"omni-a{orders[1].attempt_id}"] == []
        quiet_leg = [ev for ev in emulator.history if ev[1] == f"omni-a{orders[1].attempt_id}"]
        assert ("Hangup", f"omni-a{orders[1].attempt_id}") in quiet_leg


async def test_an_operator_freed_within_drop_seconds_takes_the_waiting_call(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        await _set_status(w, "op", "pause")
        camp = await _campaign(w, "predictive", drop_seconds=60)
        phone = _phone()
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, phone, operator=None)
        await voice_of(server).place(order)
        waiting = await _waiting(w, order.attempt_id)
        assert waiting.ended_at is None and waiting.operator_id is None
        await _set_status(w, "op", "available")  # the commit's routing hint: the call asks again
        a, _ = await _ended(w, order.attempt_id)
        assert (a.outcome, a.operator_id) == (Outcome.ANSWERED, w.ops["op"])
        assert a.answered_at == waiting.answered_at
        customer, agent = emulator.campaign_leg(phone), emulator.agent_leg(w.ext["op"])
        assert customer is not None and agent is not None
        await until(lambda: customer.bridge and customer.bridge == agent.bridge, what="bridged")
        assert emulator.played == []


async def test_a_predictive_customer_hanging_up_while_waiting_is_dropped(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        await _set_status(w, "op", "pause")
        camp = await _campaign(w, "predictive", drop_seconds=60)
        phone = _phone()
        order = await _order(w, camp, phone, operator=None)
        await voice_of(server).place(order)
        await _waiting(w, order.attempt_id)
        trunk = emulator.campaign_customer(phone)
        assert trunk is not None
        emulator.hangup(trunk.uniqueid)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.cause) == (
            Outcome.DROPPED,
            "customer hung up before the operator answered (Normal Clearing)",
        )
        _retried_after(a, t, 10)
        assert order.attempt_id not in voice_of(server)._waiting
        await _set_status(w, "op", "available")
        await voice_of(server).drain()
        assert _operator_originates(emulator) == [] and emulator.played == []


async def test_a_predictive_call_waiting_for_an_operator_when_omni_restarts_is_dropped_not_left_in_music(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        await _set_status(w, "op", "pause")
        camp = await _campaign(w, "predictive", drop_seconds=600)
        phone = _phone()
        order = await _order(w, camp, phone, operator=None)
        voice = voice_of(server)
        await voice.place(order)
        await _waiting(w, order.attempt_id)
        # The node that followed the call is gone (what a restart forgets) and logs in again.
        voice._dials.clear()
        voice._waiting.clear()
        logins = emulator.logins
        emulator.drop()
        await until(lambda: emulator.logins > logins and voice.ami.ready, what="logged in again")
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.DROPPED, "no operator found before a restart")
        _retried_after(a, t, 10)
        await until(lambda: emulator.campaign_leg(phone) is None, what="the customer hung up")


class _OneAtATime:
    """A stand-in for the pacing piece's Predictive policy: one open call at a time (the
    controller is not this test's subject; the scheduler's hand-over to the adapter is)."""

    mode = "predictive"
    reserves_operator = False

    def wanted(self, load: Any) -> int:
        return max(0, 1 - int(load.open_attempts))


async def test_the_scheduler_places_a_predictive_attempt_with_no_operator_and_the_answer_takes_one(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    from datetime import UTC, datetime

    from omni.domain.outbound import policy
    from omni.domain.outbound.scheduler import tick

    before = policy.POLICIES.get("predictive")
    policy.register(_OneAtATime())
    try:
        async with make_world(server, ["op"]) as w:
            emulator.phones[w.ext["op"]] = "answer"
            phone = _phone()
            camp = await _campaign(
                w,
                "predictive",
                drop_seconds=30,
                timezone="UTC",
                schedule={str(d): [["00:00", "23:59"]] for d in range(1, 8)},
            )
            async with server.services.db.transaction() as s:
                s.add(
                    m.CampaignTarget(
                        campaign_id=camp,
                        name="Ivan",
                        phone=phone,
                        phones=[phone],
                        timezone="UTC",
                        next_due_at=datetime(2026, 1, 1, tzinfo=UTC),
                    )
                )
            # The node's own loop ticks as well (every 2 s, and when an operator is freed):
            # whichever pass comes first places the call, the other finds the one open call
            # the policy allows already placed. So this tick places one or none, never two.
            now = datetime.now(UTC).replace(hour=12)
            assert await tick(server.services, now) in (0, 1)

            async def attempts() -> list[m.CampaignAttempt]:
                async with server.services.db.transaction() as s:
                    return list(
                        await s.scalars(
                            select(m.CampaignAttempt).where(m.CampaignAttempt.campaign_id == camp)
                        )
                    )

            placed = (await until(attempts, what="the scheduler's attempt"))[0]
            a, _ = await _ended(w, placed.id)
            assert (a.outcome, a.operator_id) == (Outcome.ANSWERED, w.ops["op"])
            assert [x.id for x in await attempts()] == [placed.id]
            originate = actions(emulator, "Originate")[0]
            assert originate["Channel"] == f"Local/{phone}@omni-outbound"
    finally:
        if before is None:
            policy.POLICIES.pop("predictive", None)
        else:
            policy.register(before)


# --- the wire (pure) ----------------------------------------------------------------------------


def test_the_omniamd_user_event_maps_to_an_amd_result() -> None:
    ev = ami_event_to_call_event(
        {
            "Event": "UserEvent",
            "UserEvent": "OmniAmd",
            "Uniqueid": "omni-a7",
            "Linkedid": "omni-a7",
            "Channel": "Local/+7916@omni-outbound-0000002a;1",
            "Status": "MACHINE",
            "Cause": "INITIALSILENCE-2500-2500",
        }
    )
    assert ev is not None and ev.kind == Kind.AMD and ev.linkedid == "omni-a7"
    assert dict(ev.extra) == {"status": "MACHINE", "cause": "INITIALSILENCE-2500-2500"}
