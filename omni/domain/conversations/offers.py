"""Offers: an operator is offered a conversation and accepts, declines or lets it time out."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import deadlines, inactivity
from omni.domain.auth import Principal
from omni.domain.conversations._common import S, _event
from omni.domain.errors import Conflict, NotFound
from omni.domain.events import emit
from omni.domain.presence import do_refresh_activity_of
from omni.domain.routing_signal import request_routing
from omni.domain.serialize import conversation_dict


async def _pending_offer(
    session: AsyncSession, offer_id: int, who: Principal
) -> tuple[m.Offer, m.Conversation]:
    offer = await session.scalar(select(m.Offer).where(m.Offer.id == offer_id).with_for_update())
    if offer is None or offer.user_id != who.id:
        raise NotFound("offer {offer_id} not found", offer_id=offer_id)
    if offer.state != "pending":
        raise Conflict("offer {offer_id} is already {state}", offer_id=offer_id, state=offer.state)
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == offer.conversation_id).with_for_update()
    )
    assert conv is not None
    return offer, conv


async def _accepted_by(session: AsyncSession, offer_id: int, who: Principal) -> m.Conversation | None:
    """The conversation of an offer ``who`` accepted and still holds, else ``None``."""
    offer = await session.get(m.Offer, offer_id)
    if offer is None or offer.user_id != who.id or offer.state != "accepted":
        return None
    conv = await session.get(m.Conversation, offer.conversation_id)
    if conv is None or conv.assigned_user_id != who.id or conv.status not in m.OPEN_STATUSES:
        return None
    return conv


async def do_accept_offer(
    session: AsyncSession, conv: m.Conversation, offer: m.Offer, *, now: datetime | None = None
) -> None:
    now = now or datetime.now(UTC)
    offer.state = "accepted"
    offer.responded_at = now
    await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, offer.id)
    others = (
        await session.scalars(
            select(m.Offer).where(
                m.Offer.conversation_id == conv.id, m.Offer.state == "pending", m.Offer.id != offer.id
            )
        )
    ).all()
    for other in others:
        other.state = "cancelled"
        other.responded_at = now
        await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, other.id)
    conv.status = S.ACTIVE
    conv.assigned_user_id = offer.user_id
    conv.preferred_user_id = None
    conv.accepted_at = now
    await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id, deadlines.ESCALATION)
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    await inactivity.do_watch_idle(session, conv, queue, now)
    if conv.queue_id is not None:
        state = await session.get(m.QueueRoutingState, conv.queue_id)
        if state is None:
            session.add(m.QueueRoutingState(queue_id=conv.queue_id, last_user_id=offer.user_id))
        else:
            state.last_user_id = offer.user_id
    wait = (now - (conv.first_enqueued_at or conv.created_at)).total_seconds()
    _event(session, "conversation.accepted", conv, offer_id=offer.id, wait_seconds=round(wait, 3))
    for uid in {offer.user_id, *(o.user_id for o in others)}:
        await do_refresh_activity_of(session, uid)
    if conv.medium == m.Medium.VOICE:
        from omni.domain.place import do_blend_on_call  # place builds on this module

        await do_blend_on_call(session, conv, now=now)


async def check_accept_offer(session: AsyncSession, who: Principal, offer_id: int) -> m.Conversation:
    """Accept an offer; accepting one the caller has already accepted (a double click, the
    notification and the button) answers with the conversation again instead of a conflict."""
    again = await _accepted_by(session, offer_id, who)
    if again is not None:
        return again
    offer, conv = await _pending_offer(session, offer_id, who)
    if offer.expires_at <= datetime.now(UTC):
        raise Conflict("offer {offer_id} has expired", offer_id=offer_id)
    await do_accept_offer(session, conv, offer)
    return conv


async def _offer_ended(session: AsyncSession, conv: m.Conversation, offer: m.Offer, state: str) -> None:
    now = datetime.now(UTC)
    offer.state = state
    offer.responded_at = now
    await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, offer.id)
    still_pending = await session.scalar(
        select(m.Offer.id).where(m.Offer.conversation_id == conv.id, m.Offer.state == "pending").limit(1)
    )
    if still_pending is None and conv.status == S.OFFERED:
        conv.status = S.QUEUED
        conv.assigned_user_id = None
        request_routing(session)
    emit(
        session,
        f"conversation.offer_{state}",
        conversation_dict(conv) | {"offer_id": offer.id},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=offer.user_id,
    )
    await do_refresh_activity_of(session, offer.user_id)
    if state == "timeout":
        await inactivity.do_count_missed_offer(session, offer)


async def check_decline_offer(session: AsyncSession, who: Principal, offer_id: int) -> m.Conversation:
    offer, conv = await _pending_offer(session, offer_id, who)
    await _offer_ended(session, conv, offer, "declined")
    return conv


async def do_offer_timeout(session: AsyncSession, offer_id: int) -> None:
    offer = await session.scalar(select(m.Offer).where(m.Offer.id == offer_id).with_for_update())
    if offer is None or offer.state != "pending":
        return
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == offer.conversation_id).with_for_update()
    )
    assert conv is not None
    await _offer_ended(session, conv, offer, "timeout")


async def do_withdraw_offers(session: AsyncSession, channels: Collection[str]) -> int:
    """Cancel the pending offers of conversations on channels that can't reach anyone now.

    An adapter reported its channel unavailable (the PBX link is down: no phone can ring), so
    an offer made on it would only ring out. The conversation goes back to its place in line
    (``queued``, ``first_enqueued_at`` and its queue deadlines untouched) and the offer ends
    ``cancelled``, not ``timeout``/``declined``: the operator is not charged with a missed
    offer and may be offered the same conversation again. Returns how many were withdrawn.
    """
    if not channels:
        return 0
    conv_ids = (
        await session.scalars(
            select(m.Offer.conversation_id)
            .join(m.Conversation, m.Conversation.id == m.Offer.conversation_id)
            .where(m.Offer.state == "pending", m.Conversation.channel.in_(list(channels)))
            .distinct()
        )
    ).all()
    withdrawn = 0
    for conv_id in sorted(conv_ids):
        # Never wait for a lock (accepts take offer then conversation, hang-ups the reverse):
        # whatever is busy elsewhere is left for the next pass.
        conv = await session.scalar(
            select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update(skip_locked=True)
        )
        if conv is None:
            continue
        offers = (
            await session.scalars(
                select(m.Offer)
                .where(m.Offer.conversation_id == conv_id, m.Offer.state == "pending")
                .order_by(m.Offer.id)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for offer in offers:
            await _offer_ended(session, conv, offer, "cancelled")
        withdrawn += len(offers)
    return withdrawn


async def _cancel_pending_offers(session: AsyncSession, conv: m.Conversation) -> None:
    offers = (
        await session.scalars(
            select(m.Offer).where(m.Offer.conversation_id == conv.id, m.Offer.state == "pending")
        )
    ).all()
    now = datetime.now(UTC)
    for offer in offers:
        offer.state = "cancelled"
        offer.responded_at = now
        await deadlines.cancel(session, deadlines.OFFER_TIMEOUT, offer.id)
        emit(
            session,
            "conversation.offer_cancelled",
            conversation_dict(conv) | {"offer_id": offer.id},
            conversation_id=conv.id,
            queue_id=conv.queue_id,
            user_id=offer.user_id,
        )
    for uid in {o.user_id for o in offers}:
        await do_refresh_activity_of(session, uid)
