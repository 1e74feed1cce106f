"""The single window's panels: the waiting line, missed/abandoned callbacks and the
snapshot a (re)connecting console starts from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import masking
from omni.domain.auth import (
    Principal,
    visible_queue_ids,
)
from omni.domain.capacity import fits, loads_for
from omni.domain.conversations import list_callbacks
from omni.domain.place import offer_why
from omni.domain.presence import get_presence, presence_dict
from omni.domain.serialize import callback_dict, conversation_dict

S = m.ConversationStatus
WAITING_LIMIT = 200


# --- the window's panels ----------------------------------------------------------------


async def _contact_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(m.Contact.id, m.Contact.name).where(m.Contact.id.in_(ids)))
    return {cid: name or "" for cid, name in rows.all()}


async def _queues(session: AsyncSession, ids: set[int]) -> dict[int, m.Queue]:
    if not ids:
        return {}
    return {q.id: q for q in await session.scalars(select(m.Queue).where(m.Queue.id.in_(ids)))}


def _queue_brief(q: m.Queue) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "manual_pick": q.manual_pick, "wrap_up_seconds": q.wrap_up_seconds}


async def waiting_panel(
    session: AsyncSession, who: Principal, *, limit: int = WAITING_LIMIT
) -> list[dict[str, Any]]:
    """Conversations waiting in the caller's queues (or transferred to them by name), each
    with its place in its own queue's line, the contact's name, whether it may be taken
    by hand (``manual_pick``) and whether it fits the caller's free capacity now (``fits``)."""
    queues = await visible_queue_ids(session, who)
    position = (
        func.row_number()
        .over(
            partition_by=m.Conversation.queue_id,
            order_by=(m.Conversation.priority.desc(), m.Conversation.first_enqueued_at, m.Conversation.id),
        )
        .label("position")
    )
    line = select(m.Conversation.id.label("id"), position).where(m.Conversation.status == S.QUEUED).subquery()
    stmt = (
        select(m.Conversation, line.c.position)
        .join(line, line.c.id == m.Conversation.id)
        .order_by(m.Conversation.priority.desc(), m.Conversation.first_enqueued_at, m.Conversation.id)
        .limit(limit)
    )
    if queues is not None:
        stmt = stmt.where(
            or_(m.Conversation.queue_id.in_(queues), m.Conversation.preferred_user_id == who.id)
        )
    rows = (await session.execute(stmt)).all()
    names = await _contact_names(session, {c.contact_id for c, _ in rows})
    qs = await _queues(session, {c.queue_id for c, _ in rows if c.queue_id is not None})
    user = await session.get(m.User, who.id) if rows else None
    load = (await loads_for(session, [who.id]))[who.id] if rows else None
    masker = await masking.masker_for(session, who)
    items = []
    for conv, pos in rows:
        q = qs.get(conv.queue_id) if conv.queue_id is not None else None
        items.append(
            masker.payload(conversation_dict(conv))  # bot variables may hold a phone
            | {
                "position": int(pos),
                "contact_name": names.get(conv.contact_id, ""),
                "queue_name": q.name if q else "",
                "manual_pick": bool(q and q.manual_pick) and conv.preferred_user_id in (None, who.id),
                # The same rule check_take applies, so Take is greyed out before it would be refused.
                "fits": user is not None
                and load is not None
                and fits(user, load, conv.medium, chats_block_calls=q.chats_block_calls if q else True),
            }
        )
    return items


async def callbacks_panel(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """The shared missed/abandoned list the caller may take from, then the ones they took."""
    rows = await list_callbacks(session, who)
    rows += list(
        await session.scalars(
            select(m.Callback)
            .where(m.Callback.state == "claimed", m.Callback.claimed_by_id == who.id)
            .order_by(m.Callback.claimed_at)
        )
    )
    names = await _contact_names(session, {cb.contact_id for cb in rows})
    conv_ids = {cb.conversation_id for cb in rows if cb.conversation_id is not None}
    channels: dict[int, str] = {}
    if conv_ids:
        channels = dict(
            (
                await session.execute(
                    select(m.Conversation.id, m.Conversation.channel).where(m.Conversation.id.in_(conv_ids))
                )
            ).all()
        )
    phones = dict(
        (
            await session.execute(
                select(m.Contact.id, m.Contact.phone).where(m.Contact.id.in_({cb.contact_id for cb in rows}))
            )
        ).all()
    )
    masker = await masking.masker_for(session, who)
    return [
        callback_dict(cb)
        | {
            "contact_name": names.get(cb.contact_id, ""),
            "contact_phone": masker.phone(phones.get(cb.contact_id)),
            "channel": channels.get(cb.conversation_id) if cb.conversation_id is not None else None,
        }
        for cb in rows
    ]


async def snapshot(session: AsyncSession, who: Principal) -> dict[str, Any]:
    """Everything the single window shows after a (re)connect; ``last_seq`` is where the
    client resumes the event stream from."""
    p = await get_presence(session, who.id)
    status = await session.get(m.OperatorStatus, p.status_id)
    assert status is not None
    mine = list(
        await session.scalars(
            select(m.Conversation)
            .where(m.Conversation.assigned_user_id == who.id, m.Conversation.status.in_(m.OPEN_STATUSES))
            .order_by(m.Conversation.accepted_at, m.Conversation.id)
        )
    )
    offers = list(
        await session.scalars(
            select(m.Offer)
            .where(m.Offer.user_id == who.id, m.Offer.state == m.OFFER_PENDING)
            .order_by(m.Offer.id)
        )
    )
    offered: dict[int, m.Conversation] = {}
    if offers:
        offered = {
            c.id: c
            for c in await session.scalars(
                select(m.Conversation).where(m.Conversation.id.in_({o.conversation_id for o in offers}))
            )
        }
    convs = [*mine, *offered.values()]
    names = await _contact_names(session, {c.contact_id for c in convs})
    qs = await _queues(session, {c.queue_id for c in convs if c.queue_id is not None})
    last_seq = await session.scalar(select(m.Event.id).order_by(m.Event.id.desc()).limit(1))
    masker = await masking.masker_for(session, who)

    def brief(c: m.Conversation) -> dict[str, Any]:
        q = qs.get(c.queue_id) if c.queue_id is not None else None
        shown: dict[str, Any] = masker.payload(conversation_dict(c))
        return shown | {
            "contact_name": names.get(c.contact_id, ""),
            "queue_name": q.name if q else "",
            "wrap_up_seconds": q.wrap_up_seconds if q else 0,
        }

    return {
        "presence": presence_dict(p, status),
        "conversations": [brief(c) for c in mine],
        "offers": [
            {
                "id": o.id,
                "conversation_id": o.conversation_id,
                "expires_at": o.expires_at.isoformat(),
                "conversation": brief(offered[o.conversation_id]),
                "why": offer_why(offered[o.conversation_id], who.id),
            }
            for o in offers
        ],
        "waiting": await waiting_panel(session, who),
        "callbacks": await callbacks_panel(session, who),
        "last_seq": last_seq or 0,
    }
