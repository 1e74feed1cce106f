"""Outgoing calls (click-to-call) and what the operator is told when Asterisk refuses an action:
the real app (PostgreSQL, Redis, routing, relay) against the loopback AMI emulator, operators
over Socket.IO; plus the call registry fed a real Asterisk's event order for Local channels."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bots import service
from channels.voice.events import CallEvent, ChannelSnapshot, Kind
from channels.voice.state import Call, CallRegistry
from omni.db import models as m
from omni.domain.auth import Principal
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import World, actions, make_world, offered_to, until, voice_of
from tests.channels.voice.test_ami_transfer_ivr import _menu
from tests.conftest import LiveServer

# The voice module's app (voice on, against the AMI emulator, FastAGI on), one per module.
emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator


async def _events(server: LiveServer, conv_id: int) -> list[str]:
    async with server.services.db.transaction() as s:
        rows = await s.scalars(
            select(m.Event.type).where(m.Event.conversation_id == conv_id).order_by(m.Event.id)
        )
        return list(rows)


async def _connected_outgoing_call(w: World, emulator: AmiEmulator, number: str) -> tuple[int, str, str]:
    """Click-to-call answered on both ends: (conversation id, operator leg, customer leg)."""
    op = w.clients["op"]
    emulator.phones[w.ext["op"]] = "answer"
    ack = await op.call("click_to_call", {"number": number, "queue_id": w.queue_id})
    assert ack["ok"], ack
    conv_id = int(ack["conversation_id"])

    async def answered() -> bool:
        return (await w.call_row(conv_id)).answered_at is not None

    await until(answered)
    agent = emulator.agent_leg(w.ext["op"])
    assert agent is not None
    customer = next(
        c
        for c in emulator.channels.values()
        if c.linkedid == agent.linkedid and c.name.startswith("PJSIP/trunk")
    )
    await until(lambda: agent.bridge and agent.bridge == customer.bridge)
    return conv_id, agent.uniqueid, customer.uniqueid


# --- item: click-to-call refused on an inbox with an IVR scenario -------------------------


async def test_click_to_call_is_not_refused_when_the_voice_inbox_runs_an_ivr_scenario(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        async with server.services.db.transaction() as s:
            admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
            assert admin is not None
            key = f"ivr-out{w.queue_id}"
            row = await service.create(s, Principal.of(admin), key, "Menu", _menu(w.queue_id))
            await service.publish(s, Principal.of(admin), row.id)
            inbox = await s.get_one(m.Inbox, w.inbox_id)
            inbox.config = {**inbox.config, "scenario": key}
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "manual"
        ack = await op.call("click_to_call", {"number": "+79161231001", "queue_id": w.queue_id})
        assert ack["ok"], ack  # was: "this contact already has an open call (bot)"
        conv_id = int(ack["conversation_id"])
        await op.wait_for("conversation.accepted", id=conv_id)
        conv = await w.conv(conv_id)
        assert conv.status == "active" and conv.assigned_user_id == w.ops["op"]
        assert conv.first_enqueued_at is None  # never waited in the line: not an inbound contact
        assert conv.offered_at == conv.accepted_at is not None
        async with server.services.db.transaction() as s:
            offers = (await s.scalars(select(m.Offer).where(m.Offer.conversation_id == conv_id))).all()
            bot = await s.get(m.BotSession, conv_id)
        assert [(o.user_id, o.state) for o in offers] == [(w.ops["op"], "accepted")]
        assert offers[0].created_at == offers[0].responded_at == conv.accepted_at
        assert bot is None
        types = await _events(server, conv_id)
        assert types[0] == "conversation.created" and "conversation.accepted" in types
        assert not {"conversation.queued", "conversation.offered", "conversation.handed_to_bot"} & set(types)
        originate = actions(emulator, "Originate")[-1]
        assert originate["Context"] == "omni-outbound" and originate["Exten"] == "+79161231001"

        # The call takes the operator's whole capacity: a second one is refused, nothing stored.
        again = await op.call("click_to_call", {"number": "+79161231002", "queue_id": w.queue_id})
        assert not again["ok"] and again["error"] == "conflict" and "capacity" in again["detail"]
        assert len(actions(emulator, "Originate")) == 1
        async with server.services.db.transaction() as s:
            n = await s.scalar(
                select(m.Conversation.id).where(
                    m.Conversation.queue_id == w.queue_id, m.Conversation.id != conv_id
                )
            )
        assert n is None


async def test_click_to_call_respects_the_operators_status(server: LiveServer, emulator: AmiEmulator) -> None:
    async with make_world(server, ["op"]) as w:
        async with server.services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, w.ops["op"]), "pause")
        ack = await w.clients["op"].call("click_to_call", {"number": "+79161231003", "queue_id": w.queue_id})
        assert not ack["ok"] and ack["error"] == "conflict" and "status" in ack["detail"], ack
        assert actions(emulator, "Originate") == []


async def test_click_to_call_to_an_unreachable_phone_ends_instead_of_holding_the_operator(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "unreachable"  # only an OriginateResponse: Failure comes
        ack = await op.call("click_to_call", {"number": "+79161231004", "queue_id": w.queue_id})
        assert ack["ok"], ack
        conv_id = int(ack["conversation_id"])
        await op.wait_for("conversation.wrap_up", id=conv_id)
        assert (await w.call_row(conv_id)).ended_at is not None


# --- item: hold on an outgoing call ------------------------------------------------------


@pytest.fixture(params=["PJSIP/{extension}", "Local/{extension}@omni-phones"], ids=["pjsip", "local"])
def endpoint(request: pytest.FixtureRequest, server: LiveServer) -> Iterator[str]:
    """Operator phones dialled directly, or through a Local channel (two halves + the phone)."""
    settings = voice_of(server).settings
    before = settings.endpoint_template
    settings.endpoint_template = request.param
    try:
        yield request.param
    finally:
        settings.endpoint_template = before


async def test_hold_on_an_outgoing_call_holds_the_customer_on_asterisk(
    server: LiveServer, emulator: AmiEmulator, endpoint: str
) -> None:
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        conv_id, agent_uid, customer_uid = await _connected_outgoing_call(w, emulator, "+79161231005")
        agent, customer = emulator.channels[agent_uid], emulator.channels[customer_uid]
        row = await w.call_row(conv_id)
        assert row.caller_channel == customer.name and row.caller_uniqueid == customer.uniqueid
        assert row.agent_channel == agent.name and row.agent_uniqueid == agent.uniqueid

        assert actions(emulator, "Originate")[-1]["Channel"] == endpoint.format(extension=w.ext["op"])
        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": True})
        assert ack["ok"], ack
        redirect = actions(emulator, "Redirect")[-1]
        assert (redirect["Channel"], redirect["Context"]) == (customer.name, "omni-hold")
        await until(lambda: customer.context == "omni-hold" and not customer.bridge)
        assert agent_uid in emulator.channels and agent.context == "omni-agent"  # the operator stays
        assert (await w.conv(conv_id)).status == "on_hold"

        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": False})
        assert ack["ok"], ack
        await until(lambda: customer.bridge and customer.bridge == agent.bridge)
        assert (await w.conv(conv_id)).status == "active"
        emulator.hangup(customer_uid)
        await op.wait_for("conversation.wrap_up", id=conv_id)
        assert (await w.conv(conv_id)).closed_by == "customer"
        await until(lambda: agent_uid not in emulator.channels)


async def test_hold_survives_a_dialplan_that_hangs_the_operator_leg_up_after_the_bridge(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "answer"
        emulator.after_bridge["omni-agent"] = "hangup"  # Wait() then Hangup(), no loop
        caller = emulator.incoming_call("+79161231006", inbox=w.inbox_id)
        conv_id = int((await offered_to(op))["data"]["id"])
        await op.wait_for("conversation.accepted", id=conv_id)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None
        await until(lambda: caller.bridge and caller.bridge == leg.bridge)
        assert (await op.call("call_hold", {"conversation_id": conv_id, "hold": True}))["ok"]
        await until(lambda: caller.context == "omni-hold")
        assert (await op.call("call_hold", {"conversation_id": conv_id, "hold": False}))["ok"]
        await until(lambda: caller.bridge and caller.bridge == leg.bridge)
        assert (await w.conv(conv_id)).status == "active"
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)


# --- item: AMI refusals come back to the operator, the core is unchanged --------------------


async def test_pbx_refusals_reach_the_operator_and_leave_the_core_unchanged(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op", "other"]) as w:
        op = w.clients["op"]
        for name in ("op", "other"):
            emulator.phones[w.ext[name]] = "answer"
        caller = emulator.incoming_call("+79161231007", inbox=w.inbox_id)
        conv_id = int((await offered_to(op))["data"]["id"])
        await op.wait_for("conversation.accepted", id=conv_id)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None
        await until(lambda: caller.bridge and caller.bridge == leg.bridge)

        async def unchanged(status: str) -> None:
            conv = await w.conv(conv_id)
            assert conv.status == status and conv.assigned_user_id == w.ops["op"]

        emulator.refuse["redirect"] = "Channel does not exist"
        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": True})
        assert not ack["ok"] and ack["error"] == "conflict", ack
        assert "put the call on hold" in ack["detail"] and "Channel does not exist" in ack["detail"]
        await unchanged("active")
        assert caller.bridge == leg.bridge

        ack = await w.clients["op"].call(
            "call_transfer", {"conversation_id": conv_id, "to_user_id": w.ops["other"]}
        )
        assert not ack["ok"] and "transfer the call" in ack["detail"], ack
        await unchanged("active")
        assert leg.uniqueid in emulator.channels  # the operator keeps the caller
        assert not [a for a in actions(emulator, "Originate") if a["Channel"] == f"PJSIP/{w.ext['other']}"]

        emulator.refuse["atxfer"] = "Channel is not in a bridge"
        ack = await op.call(
            "call_transfer", {"conversation_id": conv_id, "to_user_id": w.ops["other"], "attended": True}
        )
        assert not ack["ok"] and "attended transfer" in ack["detail"], ack

        emulator.refuse.clear()
        assert (await op.call("call_hold", {"conversation_id": conv_id, "hold": True}))["ok"]
        await unchanged("on_hold")
        emulator.refuse["bridge"] = "Channel1 or Channel2 does not exist"
        ack = await op.call("call_hold", {"conversation_id": conv_id, "hold": False})
        assert not ack["ok"] and "resume the call" in ack["detail"], ack
        await unchanged("on_hold")

        emulator.refuse.clear()
        assert (await op.call("call_hold", {"conversation_id": conv_id, "hold": False}))["ok"]
        await until(lambda: caller.bridge and caller.bridge == leg.bridge)
        emulator.refuse["hangup"] = "No such channel"
        ack = await op.call("call_hangup", {"conversation_id": conv_id})
        assert not ack["ok"] and "hang up the call" in ack["detail"], ack
        await unchanged("active")

        emulator.refuse.clear()
        types = await _events(server, conv_id)
        assert types.count("conversation.on_hold") == 1 and types.count("conversation.resumed") == 1
        assert "conversation.transferred" not in types and "conversation.wrap_up" not in types
        assert (await op.call("call_hangup", {"conversation_id": conv_id}))["ok"]
        await op.wait_for("conversation.wrap_up", id=conv_id)
        await until(lambda: caller.uniqueid not in emulator.channels)


async def test_a_refused_transfer_to_the_ivr_leaves_the_call_with_the_operator(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"]) as w:
        async with server.services.db.transaction() as s:
            admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
            assert admin is not None
            key = f"ivr-refused{w.queue_id}"
            row = await service.create(s, Principal.of(admin), key, "Menu", _menu(w.queue_id))
            await service.publish(s, Principal.of(admin), row.id)
        op = w.clients["op"]
        emulator.phones[w.ext["op"]] = "answer"
        caller = emulator.incoming_call("+79161231009", inbox=w.inbox_id)
        conv_id = int((await offered_to(op))["data"]["id"])
        await op.wait_for("conversation.accepted", id=conv_id)
        leg = emulator.agent_leg(w.ext["op"])
        assert leg is not None
        emulator.refuse["redirect"] = "Channel does not exist"
        ack = await op.call("call_transfer", {"conversation_id": conv_id, "to_scenario": key})
        assert not ack["ok"] and "transfer the call" in ack["detail"], ack
        conv = await w.conv(conv_id)
        assert conv.status == "active" and conv.assigned_user_id == w.ops["op"]
        async with server.services.db.transaction() as s:
            assert await s.get(m.BotSession, conv_id) is None
        assert leg.uniqueid in emulator.channels
        emulator.refuse.clear()
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)


async def test_an_offer_whose_originate_is_refused_is_declined_at_once(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with make_world(server, ["op"], operator_timeout_seconds=30) as w:
        op = w.clients["op"]
        emulator.refuse["originate"] = "Originate failed"
        caller = emulator.incoming_call("+79161231008", inbox=w.inbox_id)
        evt = await op.wait_for("conversation.offer_declined")  # not a 30 s ring-out
        conv_id = int(evt["data"]["id"])
        emulator.refuse.clear()
        emulator.phones[w.ext["op"]] = "answer"
        await op.wait_for("conversation.accepted", id=conv_id)
        emulator.hangup(caller.uniqueid)
        await op.wait_for("conversation.wrap_up", id=conv_id)


# --- the registry on a real Asterisk's event order ------------------------------------------


def test_outgoing_call_over_local_channels_takes_the_dialled_party_as_the_customer() -> None:
    """Originate ``Local/100@omni-phones`` (ChannelId ``omni-c1``): Asterisk creates ``;1`` and
    ``;2`` (``omni-c1;2``), ``;2`` dials the phone, ``;1`` goes to ``omni-outbound`` and dials
    the trunk. Every channel shares the Linkedid; only the last dial reaches the customer."""
    now = datetime.now(UTC)
    reg = CallRegistry()
    call = reg.add(Call(linkedid="omni-c1", direction="out", conversation_id=7, agent_uniqueid="omni-c1"))
    one, two = "Local/100@omni-phones-00000001;1", "Local/100@omni-phones-00000001;2"
    phone, trunk = "PJSIP/100-00000002", "PJSIP/trunk-00000003"
    events = [
        CallEvent(Kind.NEW_CHANNEL, "omni-c1", "omni-c1", one),
        CallEvent(Kind.NEW_CHANNEL, "omni-c1;2", "omni-c1", two),
        CallEvent(Kind.NEW_CHANNEL, "p.2", "omni-c1", phone),
        CallEvent(Kind.DIAL_BEGIN, "omni-c1;2", "omni-c1", two, peer_uniqueid="p.2", peer_channel=phone),
        CallEvent(Kind.STATE, "p.2", "omni-c1", phone, "up"),
        CallEvent(Kind.STATE, "omni-c1", "omni-c1", one, "up"),
        CallEvent(Kind.NEW_CHANNEL, "t.3", "omni-c1", trunk),
        CallEvent(Kind.DIAL_BEGIN, "omni-c1", "omni-c1", one, peer_uniqueid="t.3", peer_channel=trunk),
    ]
    effects = [e.kind for ev in events for e in reg.apply(ev, now)]
    assert effects == []
    assert (call.caller_uniqueid, call.caller_channel) == ("t.3", trunk)
    assert (call.agent_uniqueid, call.agent_channel) == ("omni-c1", one)
    assert [e.kind for e in reg.apply(CallEvent(Kind.STATE, "t.3", "omni-c1", trunk, "up"), now)] == [
        "connected"
    ]
    # The operator's own phone leg hanging up is not the customer leaving.
    assert reg.apply(CallEvent(Kind.HANGUP, "p.2", "omni-c1", phone), now) == []
    left = reg.apply(CallEvent(Kind.HANGUP, "t.3", "omni-c1", trunk), now)
    assert [e.kind for e in left] == ["caller_left"]


def test_resync_finds_the_customer_of_an_outgoing_call_dialled_while_the_link_was_down() -> None:
    now = datetime.now(UTC)
    reg = CallRegistry()
    call = reg.add(Call(linkedid="omni-c2", direction="out", conversation_id=8, agent_uniqueid="omni-c2"))

    def snap(uid: str, channel: str, bridge: str) -> ChannelSnapshot:
        return ChannelSnapshot(uid, "omni-c2", channel, "up", "omni-outbound", "s", "", "", bridge, "Dial")

    live = [
        snap("omni-c2", "Local/100@omni-phones-00000004;1", "b-1"),
        snap("omni-c2;2", "Local/100@omni-phones-00000004;2", "b-0"),
        snap("p.5", "PJSIP/100-00000005", "b-0"),
        snap("t.6", "PJSIP/trunk-00000006", "b-1"),
    ]
    assert [e.kind for e in reg.reconcile(live, now)] == ["connected"]
    assert (call.caller_uniqueid, call.caller_channel) == ("t.6", "PJSIP/trunk-00000006")
