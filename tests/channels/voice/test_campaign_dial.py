"""Campaign calls through the voice adapter (``PlacesAttempts``): the real app (PostgreSQL,
Redis, routing, relay) and panoramisk against the AMI emulator, which answers an async
Originate with "queued" first, reports through a ``Local`` channel (DialEnd, trunk Hangup
cause, then ``;1``'s Hangup, then ``OriginateResponse``), can lose responses and send every
event twice. The scheduler is a teammate's: orders are built here from attempts opened
through the lifecycle, as the engine does."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from channels.voice import outcomes
from omni.channels import AttemptOrder, ChannelNotReady
from omni.db import models as m
from omni.db.models.outbound import Outcome, TargetState
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import Conflict, InvalidInput
from omni.domain.outbound import dialing
from omni.domain.outbound.lifecycle import do_close_attempt, do_open_attempt
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import World, actions, make_world, until, voice_of
from tests.conftest import LiveServer

emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator

_n = itertools.count(1)
RETRY = {"busy": [15, 60], "no_answer": [30], "congestion": [5], "dropped": [10]}


def _phone() -> str:
    return f"+7916555{next(_n):04d}"


async def _campaign(w: World, **kw: Any) -> int:
    async with w.server.services.db.transaction() as s:
        c = m.Campaign(
            name=f"camp-{w.queue_id}-{next(_n)}",
            state="running",
            channel="voice",
            dial_mode="progressive",
            queue_id=w.queue_id,
            inbox_id=w.inbox_id,
            retry_rules=RETRY,
            max_attempts=3,
            ring_seconds=kw.pop("ring_seconds", 20),
            **kw,
        )
        s.add(c)
        await s.flush()
        return c.id


async def _order(w: World, campaign_id: int, phone: str, operator: str = "op") -> AttemptOrder:
    """What the engine hands the channel after its commit: an attempt opened by the lifecycle."""
    async with w.server.services.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, campaign_id)
        t = m.CampaignTarget(
            campaign_id=campaign_id,
            name="Ivan Petrov",
            phone=phone,
            phones=[phone],
            fields={"debt": "1200", "contract": "K-7"},
        )
        s.add(t)
        await s.flush()
        a = await do_open_attempt(s, t, caller_id="+74950001111", operator_id=w.ops[operator])
        return AttemptOrder(
            attempt_id=a.id,
            campaign_id=campaign_id,
            target_id=t.id,
            channel="voice",
            dial_mode="progressive",
            phone=phone,
            caller_id="+74950001111",
            inbox_id=campaign.inbox_id,
            queue_id=campaign.queue_id,
            operator_id=w.ops[operator],
            ring_seconds=campaign.ring_seconds,
            variables={"name": t.name, "fields": dict(t.fields), "debt": "1200", "contract": "K-7"},
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
    assert a.ended_at is not None
    assert t.next_due_at == a.ended_at + timedelta(minutes=minutes)


# --- every way a call is not answered ---------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "outcome", "cause", "minutes"),
    [
        ("busy", Outcome.BUSY, "BUSY; cause 17 (User busy); reason 0", 15),
        ("congestion", Outcome.CONGESTION, "CONGESTION; cause 34 (Circuit/channel congestion); reason 0", 5),
        ("chanunavail", Outcome.CONGESTION, "CHANUNAVAIL; cause 27 (Destination out of order); reason 0", 5),
        ("invalid", Outcome.CONGESTION, "NOANSWER; cause 1 (Unallocated (unassigned) number); reason 0", 5),
        ("rejected", Outcome.BUSY, "NOANSWER; cause 21 (Call Rejected); reason 0", 15),
        ("no_answer", Outcome.NO_ANSWER, "CANCEL; cause 19 (User alerting, no answer); reason 3", 30),
        # Unkind: the OriginateResponse before the call's events (a race seen on Asterisk 22),
        # or lost altogether (the attempt ends with what the channels said).
        ("busy+response_first", Outcome.BUSY, "BUSY; cause 17 (User busy); reason 0", 15),
        ("rejected+response_lost", Outcome.BUSY, "NOANSWER; cause 21 (Call Rejected)", 15),
    ],
)
async def test_an_unanswered_campaign_call_ends_with_its_outcome_cause_and_retry_time(
    server: LiveServer, emulator: AmiEmulator, behaviour: str, outcome: Outcome, cause: str, minutes: int
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, ring_seconds=1 if behaviour == "no_answer" else 20)
        phone = _phone()
        behaviour, _, unkind = behaviour.partition("+")
        emulator.customers[phone] = behaviour
        emulator.originate_response_first = unkind == "response_first"
        emulator.lose_originate_responses = unkind == "response_lost"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        placed, _ = await _rows(w, order.attempt_id)
        originate = (await until(lambda: actions(emulator, "Originate")))[-1]
        assert originate["ActionID"] == placed.external_id and placed.external_id.startswith(
            f"omni-a{order.attempt_id}-"
        )
        assert originate["Channel"] == f"Local/{phone}@omni-outbound"
        assert originate["ChannelId"] == f"omni-a{order.attempt_id}"
        assert originate["CallerID"] == "+74950001111" and originate["Async"] == "true"
        assert originate["Timeout"] == str(order.ring_seconds * 1000)
        assert f"OMNI_ATTEMPT={order.attempt_id}" in originate["Variable"]
        assert "OMNI_CALLERID=+74950001111" in originate["Variable"]

        with pytest.raises(Conflict):  # handed over twice: one call only
            await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.cause) == (outcome, cause)
        assert len(actions(emulator, "Originate")) == 1
        assert a.started_at is not None and a.ended_at is not None and a.started_at <= a.ended_at
        assert a.answered_at is None and a.conversation_id is None
        _retried_after(a, t, minutes)
        assert t.attempts == 1


async def test_an_originate_to_an_unknown_trunk_fails_as_congestion(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        async with server.services.db.transaction() as s:
            inbox = await s.get_one(m.Inbox, w.inbox_id)
            inbox.config = {**inbox.config, "outbound_context": "no-such-trunk"}
        camp = await _campaign(w)
        order = await _order(w, camp, _phone())
        await voice_of(server).place(order)
        originate = await until(lambda: actions(emulator, "Originate"))
        assert originate[-1]["Channel"].endswith("@no-such-trunk")
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.CONGESTION, "reason 0")
        _retried_after(a, t, 5)


async def test_a_lost_originate_response_ends_the_attempt_at_its_ring_deadline(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, ring_seconds=20)
        phone = _phone()
        emulator.customers[phone] = "manual"  # rings; Asterisk's answer never reaches Omni
        emulator.lose_originate_responses = True
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        placed, _ = await _rows(w, order.attempt_id)
        assert placed.started_at is not None and placed.ended_at is None
        due = placed.started_at + timedelta(seconds=20 + dialing.ANSWER_MARGIN_SECONDS)
        # Not yet due: nothing happens.
        await run_due_deadlines(server.services.db, now=due - timedelta(seconds=1))
        assert (await _rows(w, order.attempt_id))[0].ended_at is None
        await run_due_deadlines(server.services.db, now=due + timedelta(seconds=1))
        a, t = await _rows(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.NO_ANSWER, "no answer reported within 35 s")
        assert a.ended_at == due
        _retried_after(a, t, 30)
        # The call's late end changes nothing.
        trunk = emulator.campaign_customer(phone)
        assert trunk is not None
        emulator.hangup(trunk.uniqueid, 17)
        await until(lambda: emulator.campaign_leg(phone) is None)
        await voice_of(server).drain()
        again, t2 = await _rows(w, order.attempt_id)
        assert (again.outcome, again.ended_at, t2.next_due_at) == (a.outcome, a.ended_at, t.next_due_at)


async def test_a_customer_answering_after_the_ring_deadline_is_hung_up_not_connected(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, ring_seconds=20)
        phone = _phone()
        emulator.customers[phone] = "manual"
        emulator.lose_originate_responses = True
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        placed, _ = await _rows(w, order.attempt_id)
        assert placed.started_at is not None
        await run_due_deadlines(server.services.db, now=placed.started_at + timedelta(minutes=5))
        closed, _ = await _rows(w, order.attempt_id)
        assert closed.outcome == Outcome.NO_ANSWER
        emulator.campaign_answers(phone)  # the late answer: nobody waits for it any more
        await until(lambda: emulator.campaign_leg(phone) is None, what="the late customer hung up")
        await voice_of(server).drain()
        after, t = await _rows(w, order.attempt_id)
        assert (after.outcome, after.ended_at, after.answered_at) == (
            Outcome.NO_ANSWER,
            closed.ended_at,
            None,
        )
        assert after.conversation_id is None and t.state == TargetState.PENDING
        assert emulator.agent_leg(w.ext["op"]) is None and len(actions(emulator, "Originate")) == 1


async def test_a_campaign_call_without_an_operator_is_refused(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w)
        order = await _order(w, camp, _phone())
        agentless = AttemptOrder(**{**{k: getattr(order, k) for k in order.__slots__}, "operator_id": None})
        with pytest.raises(InvalidInput) as exc:
            await voice_of(server).place(agentless)
        assert exc.value.field == "operator_id"
        placed, _ = await _rows(w, order.attempt_id)
        assert placed.external_id == "" and actions(emulator, "Originate") == []


async def test_an_answered_attempt_left_open_by_a_restart_is_reconciled_after_login(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w, ring_seconds=20)
        order = await _order(w, camp, _phone())
        long_ago = (await _rows(w, order.attempt_id))[0].created_at - timedelta(minutes=5)
        async with server.services.db.transaction() as s:
            a = await dialing.locked_attempt(s, order.attempt_id)
            assert a is not None
            # Placed and answered by a node that died before the operator was connected: the
            # ring deadline is gone with the answer, the call with the node.
            await dialing.do_mark_placed(s, a, f"omni-a{a.id}-dead", ring_seconds=20, now=long_ago)
            await dialing.do_attempt_answered(s, a, conversation_id=None, now=long_ago)
        logins = emulator.logins
        emulator.drop()
        await until(lambda: emulator.logins > logins and voice_of(server).ami.ready)
        a2, t = await _ended(w, order.attempt_id)
        assert (a2.outcome, a2.cause) == (Outcome.DROPPED, "call gone before the operator")
        assert a2.answered_at == long_ago
        _retried_after(a2, t, 10)


# --- answered ---------------------------------------------------------------------------------


async def _conversation(w: World, conv_id: int) -> m.Conversation:
    return await w.conv(conv_id)


async def test_an_answered_campaign_call_is_bridged_to_its_operator_with_the_card(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"], wrap_up_seconds=60) as w:
        camp = await _campaign(w)
        phone = _phone()
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.ANSWERED, "connected to the operator")
        assert a.answered_at is not None and a.ended_at is not None and a.answered_at <= a.ended_at
        assert t.state == TargetState.IN_PROGRESS and t.next_due_at is None  # waits for the result code
        assert a.conversation_id is not None
        conv = await _conversation(w, a.conversation_id)
        assert conv.status == "active" and conv.assigned_user_id == w.ops["op"]
        assert conv.first_enqueued_at is None
        v = conv.variables
        assert (v["campaign_id"], v["target_id"], v["attempt_id"]) == (
            camp,
            order.target_id,
            order.attempt_id,
        )
        assert v["name"] == "Ivan Petrov" and v["debt"] == "1200" and v["direction"] == "out"
        leg = emulator.campaign_leg(phone)
        agent = emulator.agent_leg(w.ext["op"])
        assert leg is not None and agent is not None and agent.uniqueid == f"omni-p{order.attempt_id}"
        await until(lambda: leg.bridge and leg.bridge == agent.bridge)
        operator_originate = actions(emulator, "Originate")[-1]
        assert operator_originate["Channel"] == f"PJSIP/{w.ext['op']}"
        assert operator_originate["Context"] == "omni-agent"
        call = await w.call_row(a.conversation_id)
        assert call.direction == "out" and call.caller_uniqueid == leg.uniqueid
        assert call.agent_user_id == w.ops["op"]

        # The customer hangs up: an ordinary outgoing call's end (wrap-up), the attempt unchanged.
        trunk = emulator.campaign_customer(phone)
        assert trunk is not None
        emulator.hangup(trunk.uniqueid)
        await w.clients["op"].wait_for("conversation.wrap_up", id=a.conversation_id)
        await until(lambda: agent.uniqueid not in emulator.channels)
        after, _ = await _rows(w, order.attempt_id)
        assert (after.outcome, after.ended_at) == (Outcome.ANSWERED, a.ended_at)


async def test_duplicate_events_make_one_conversation_one_bridge_and_one_attempt_end(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w)
        emulator.duplicate_events = True
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, _phone())
        await voice_of(server).place(order)
        a, _ = await _ended(w, order.attempt_id)
        assert a.outcome == Outcome.ANSWERED
        await voice_of(server).drain()
        assert len(actions(emulator, "Bridge")) == 1
        async with server.services.db.transaction() as s:
            ended = await s.scalar(
                select(func.count())
                .select_from(m.Event)
                .where(m.Event.type == "campaign.attempt_ended")
                .where(m.Event.payload["id"].as_integer() == order.attempt_id)
            )
            convs = await s.scalar(
                select(func.count()).select_from(m.Conversation).where(m.Conversation.queue_id == w.queue_id)
            )
        assert (ended, convs) == (1, 1)


async def test_the_customer_hanging_up_before_the_operator_answers_is_dropped(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w)
        phone = _phone()
        emulator.phones[w.ext["op"]] = "manual"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        ringing = await until(lambda: emulator.ringing(w.ext["op"]), what="the operator's phone ringing")
        answered, _ = await _rows(w, order.attempt_id)
        assert answered.answered_at is not None and answered.ended_at is None
        trunk = emulator.campaign_customer(phone)
        assert trunk is not None
        emulator.hangup(trunk.uniqueid)
        a, t = await _ended(w, order.attempt_id)
        assert a.outcome == Outcome.DROPPED
        assert a.cause == "customer hung up before the operator answered (Normal Clearing)"
        assert a.answered_at == answered.answered_at
        _retried_after(a, t, 10)
        await until(lambda: ringing.uniqueid not in emulator.channels)  # the phone stops ringing
        assert answered.conversation_id is not None
        conv = await _conversation(w, answered.conversation_id)
        assert conv.status not in m.OPEN_STATUSES or conv.status == "wrap_up"


async def test_an_unreachable_operator_drops_the_call_and_ends_the_conversation(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w)
        phone = _phone()
        emulator.phones[w.ext["op"]] = "unreachable"
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.DROPPED, "operator unreachable: 0")
        assert a.answered_at is not None and a.conversation_id is not None
        _retried_after(a, t, 10)
        await w.clients["op"].wait_for("conversation.wrap_up", id=a.conversation_id)
        await until(lambda: emulator.campaign_leg(phone) is None)  # the customer is hung up


async def test_an_operator_who_cannot_take_the_call_drops_it(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w)
        phone = _phone()
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "pause")
        order = await _order(w, camp, phone)
        await voice_of(server).place(order)
        a, t = await _ended(w, order.attempt_id)
        assert a.outcome == Outcome.DROPPED and a.cause.startswith("operator not available: ")
        assert a.answered_at is not None and a.conversation_id is None
        _retried_after(a, t, 10)
        await until(lambda: emulator.campaign_leg(phone) is None)


# --- progressive: one call per free operator ------------------------------------------------------


async def test_progressive_places_one_call_per_free_operator_and_each_gets_its_own(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op", "op2"]) as w:
        camp = await _campaign(w)
        for name in ("op", "op2"):
            emulator.phones[w.ext[name]] = "answer"
        orders = [await _order(w, camp, _phone(), name) for name in ("op", "op2")]
        for order in orders:
            await voice_of(server).place(order)
        for order, name in zip(orders, ("op", "op2"), strict=True):
            a, _ = await _ended(w, order.attempt_id)
            assert a.outcome == Outcome.ANSWERED and a.operator_id == w.ops[name]
            assert a.conversation_id is not None
            conv = await _conversation(w, a.conversation_id)
            assert conv.assigned_user_id == w.ops[name] and conv.variables["attempt_id"] == order.attempt_id
        assert len(actions(emulator, "Bridge")) == 2


# --- the link ---------------------------------------------------------------------------------------


async def test_placing_while_the_ami_link_is_down_raises_channel_not_ready_and_loses_nothing(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        camp = await _campaign(w)
        order = await _order(w, camp, _phone())
        await emulator.stop()
        try:
            await until(lambda: not voice_of(server).ami.ready)
            with pytest.raises(ChannelNotReady):
                await voice_of(server).place(order)
            a, t = await _rows(w, order.attempt_id)
            assert (a.external_id, a.started_at, a.ended_at) == ("", None, None)
            assert t.state == TargetState.IN_PROGRESS and t.attempts == 1
            assert actions(emulator, "Originate") == []
            async with server.services.db.transaction() as s:
                deadline = await s.scalar(
                    select(m.Deadline.id).where(
                        m.Deadline.kind == dialing.RING_DEADLINE, m.Deadline.ref_id == order.attempt_id
                    )
                )
                assert deadline is None
                # The engine's contract: refused, no attempt used, the target pending again.
                attempt = await s.get_one(m.CampaignAttempt, order.attempt_id)
                target = await do_close_attempt(
                    s, attempt, Outcome.REFUSED, cause="channel not ready", refused_state=TargetState.PENDING
                )
                assert target.state == TargetState.PENDING and target.attempts == 0
        finally:
            await emulator.start()
            await until(lambda: voice_of(server).ami.ready)


# --- the mapping (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dial_status", "cause", "reason", "outcome"),
    [
        ("ANSWER", "", "4", Outcome.CONGESTION),  # "answered" never reaches failure(): unknown reason
        ("NOANSWER", "", "", Outcome.NO_ANSWER),
        ("CANCEL", "19", "3", Outcome.NO_ANSWER),
        ("CHANUNAVAIL", "", "0", Outcome.CONGESTION),
        ("BUSY", "16", "0", Outcome.BUSY),
        ("NOANSWER", "21", "0", Outcome.BUSY),  # Asterisk 22: a rejected call ends Dial() as NOANSWER
        ("NOANSWER", "1", "0", Outcome.CONGESTION),
        ("", "17", "0", Outcome.BUSY),
        ("", "16", "0", Outcome.CONGESTION),  # only our own chain's Hangup(): the reason decides
        ("", "18", "", Outcome.NO_ANSWER),
        ("", "28", "", Outcome.CONGESTION),
        ("", "3", "", Outcome.CONGESTION),
        ("", "42", "", Outcome.CONGESTION),
        ("", "", "5", Outcome.BUSY),
        ("", "", "8", Outcome.CONGESTION),
        ("", "", "3", Outcome.NO_ANSWER),
        ("", "", "1", Outcome.NO_ANSWER),
        ("", "", "0", Outcome.CONGESTION),
        ("", "", "", Outcome.NO_ANSWER),
    ],
)
def test_originate_reasons_dial_statuses_and_hangup_causes_map_to_outcomes(
    dial_status: str, cause: str, reason: str, outcome: Outcome
) -> None:
    assert outcomes.failure(dial_status, cause, "", reason)[0] == outcome
