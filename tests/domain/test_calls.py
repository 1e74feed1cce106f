"""The core actions a phone system drives (``omni.domain.calls``), on PostgreSQL, without
Asterisk: the call row, an answered ring, a ring that failed, a hang-up, a ghost. The voice
adapter's tests (tests/channels/voice) run the same actions through AMI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from omni.db import models as m
from omni.domain import calls
from omni.domain.conversations import InboundMessage, do_ingest_inbound
from omni.domain.routing import do_route_pending
from omni.services import Services
from tests import factories as f


@dataclass
class Leg:
    """What the adapter's live call state carries (``calls.CallLeg``)."""

    conversation_id: int | None
    linkedid: str = "1700000000.1"
    direction: str = "in"
    caller_uniqueid: str = "1700000000.1"
    caller_channel: str = "PJSIP/trunk-00000001"
    caller_number: str = "+79161230000"
    agent_uniqueid: str = ""
    agent_channel: str = ""
    agent_user_id: int | None = None
    ring_seconds: float = 0.0
    answered_at: datetime | None = None
    recording_path: str = ""


async def _offered_call(services: Services, tag: str) -> tuple[int, int, int, int]:
    """A voice conversation offered to an available operator: (conversation, offer, user, inbox)."""
    async with services.db.transaction() as s:
        op = await f.user(s, f"op-{tag}", sip_extension="101")
        await f.set_status(s, op)
        q = await f.queue(s, f"q-{tag}", [op], operator_timeout_seconds=30)
        inbox = await f.inbox(s, q, channel="voice")
        inbox.config = {"did": f"4950{tag}"}
        result = await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox.id,
                identity_kind="phone",
                identity_value="+79161230000",
                external_id=f"lid-{tag}",
                medium=m.Medium.VOICE,
                body="Incoming call",
                variables={"linkedid": f"lid-{tag}"},
            ),
        )
        ids = (result.conversation.id, op.id, inbox.id)
    await do_route_pending(services.db)
    async with services.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == ids[0]))
        assert offer is not None and offer.state == "pending"
        return ids[0], offer.id, ids[1], ids[2]


async def _events(services: Services, conv_id: int) -> list[str]:
    async with services.db.transaction() as s:
        found = await s.scalars(
            select(m.Event.type).where(m.Event.conversation_id == conv_id).order_by(m.Event.id)
        )
        return list(found)


async def test_call_row_is_one_per_conversation_and_keeps_what_a_later_leg_lacks(services: Services) -> None:
    conv_id, _, user_id, inbox_id = await _offered_call(services, "row")
    leg = Leg(conv_id, agent_uniqueid="omni-o1", agent_channel="PJSIP/101-1", agent_user_id=user_id)
    async with services.db.transaction() as s:
        await calls.do_save_call(s, leg, inbox_id=inbox_id)
    # A transfer released the operator leg: the row keeps who last talked; extra columns apply.
    later = Leg(conv_id, ring_seconds=2.34567)
    async with services.db.transaction() as s:
        await calls.do_save_call(s, later, hangup_cause="16")
        await calls.do_save_call(s, Leg(None))  # no conversation yet: nothing stored
        rows = (await s.scalars(select(m.Call))).all()
        assert await calls.open_call(s, conv_id) is rows[0]
        assert list(await calls.open_calls(s)) == list(rows)
    assert len(rows) == 1
    row = rows[0]
    assert (row.inbox_id, row.linkedid, row.agent_uniqueid, row.agent_user_id) == (
        inbox_id,
        leg.linkedid,
        "omni-o1",
        user_id,
    )
    assert row.ring_seconds == 2.346 and row.hangup_cause == "16"


async def test_answered_ring_accepts_the_offer_once_and_a_replay_still_counts(services: Services) -> None:
    conv_id, offer_id, _, _ = await _offered_call(services, "ans")
    async with services.db.transaction() as s:
        assert await calls.do_answer_offer(s, conv_id, offer_id)
    async with services.db.transaction() as s:
        assert await calls.do_answer_offer(s, conv_id, offer_id)  # replayed after a resync
        conv = await s.get_one(m.Conversation, conv_id)
        assert conv.status == "active"
    assert (await _events(services, conv_id)).count("conversation.accepted") == 1


async def test_ring_failing_early_declines_and_a_late_one_leaves_the_deadline_to_the_core(
    services: Services,
) -> None:
    conv_id, offer_id, user_id, _ = await _offered_call(services, "busy")
    async with services.db.transaction() as s:
        await calls.do_decline_unanswered(s, offer_id, user_id)
        offer = await s.get_one(m.Offer, offer_id)
        assert offer.state == "declined"
    assert "conversation.offer_declined" in await _events(services, conv_id)

    conv_id, offer_id, user_id, _ = await _offered_call(services, "late")
    async with services.db.transaction() as s:
        offer = await s.get_one(m.Offer, offer_id)
        offer.expires_at = datetime.now(UTC) + timedelta(seconds=0.5)
    async with services.db.transaction() as s:
        await calls.do_decline_unanswered(s, offer_id, user_id)
        assert (await s.get_one(m.Offer, offer_id)).state == "pending"
        assert await calls.pending_offers(s, [offer_id]) == {offer_id}


async def test_operator_hang_up_ends_the_talk_and_closes_the_call_row(services: Services) -> None:
    conv_id, offer_id, user_id, inbox_id = await _offered_call(services, "end")
    answered = datetime.now(UTC) - timedelta(seconds=30)
    leg = Leg(conv_id, agent_uniqueid="omni-o9", agent_user_id=user_id, answered_at=answered)
    async with services.db.transaction() as s:
        assert await calls.do_answer_offer(s, conv_id, offer_id)
        await calls.do_save_call(s, leg, inbox_id=inbox_id)
        conv = await s.get_one(m.Conversation, conv_id)
        conv.hold_seconds = 10
    now = datetime.now(UTC)
    async with services.db.transaction() as s:
        await calls.do_call_ended(s, leg, caller_left=False, now=now, cause="normal clearing, far too long")
        conv = await s.get_one(m.Conversation, conv_id)
        row = await s.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
        assert await calls.open_call(s, conv_id) is None
    assert conv.status == "wrap_up"
    assert row is not None and row.ended_at == now
    assert row.talk_seconds == round((now - answered).total_seconds() - 10, 3)
    assert row.hangup_cause == "normal clearing, far too long"[:32]
    assert "conversation.wrap_up" in await _events(services, conv_id)


async def test_ghost_is_abandoned_with_a_callback_only_while_it_waits(services: Services) -> None:
    conv_id, offer_id, _, inbox_id = await _offered_call(services, "ghost")
    async with services.db.transaction() as s:
        await calls.do_save_call(s, Leg(conv_id, linkedid="lid-ghost"), inbox_id=inbox_id)
        waiting = await calls.waiting_voice_conversations(s, datetime.now(UTC) + timedelta(seconds=1))
        assert (conv_id, "lid-ghost") in waiting
        assert await calls.waiting_conversation(s, conv_id) is not None
    async with services.db.transaction() as s:
        assert await calls.do_end_ghost(s, conv_id, now=datetime.now(UTC), when="resync")
    async with services.db.transaction() as s:
        assert not await calls.do_end_ghost(s, conv_id, now=datetime.now(UTC), when="resync")
        conv = await s.get_one(m.Conversation, conv_id)
        row = await s.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
        callbacks = (await s.scalars(select(m.Callback).where(m.Callback.conversation_id == conv_id))).all()
        offer = await s.get_one(m.Offer, offer_id)
    assert conv.status == "abandoned" and offer.state == "cancelled"
    assert row is not None and row.ended_at is not None and row.hangup_cause == "gone"
    assert [cb.reason for cb in callbacks] == ["abandoned"]
    events = await _events(services, conv_id)
    assert "conversation.offer_cancelled" in events and "conversation.abandoned" in events


async def test_voice_inbox_by_id_then_did_then_the_first_line(services: Services) -> None:
    _, _, _, first = await _offered_call(services, "11")
    _, _, _, second = await _offered_call(services, "22")
    async with services.db.transaction() as s:
        assert (await calls.voice_inbox(s, str(second))).id == second
        assert (await calls.voice_inbox(s, "495022")).id == second
        assert (await calls.voice_inbox(s, "")).id == first
