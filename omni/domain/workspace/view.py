"""One conversation as the console shows it: messages, card, script, result codes,
transfer targets and the call's facts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import masking
from omni.domain.auth import (
    Principal,
    access_conversation,
    visible_queue_ids,
)
from omni.domain.outbound import preview
from omni.domain.place import is_callback
from omni.domain.richtext import sanitize
from omni.domain.serialize import conversation_dict, message_dict
from omni.domain.workspace.cards import card_dict, card_fields_for
from omni.domain.workspace.handback import published_scenarios
from omni.domain.workspace.panels import _queue_brief

S = m.ConversationStatus
VIEW_MESSAGES = 1000


# --- one conversation -------------------------------------------------------------------


async def _user_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(m.User.id, m.User.display_name, m.User.username).where(m.User.id.in_(ids))
    )
    return {uid: display or username for uid, display, username in rows.all()}


async def allowed_result_codes(session: AsyncSession, queue_id: int | None) -> list[m.ResultCode]:
    """The queue's allowed codes; a queue with none configured accepts every active code
    (the same rule ``check_close`` applies)."""
    stmt = select(m.ResultCode).where(m.ResultCode.active.is_(True)).order_by(m.ResultCode.name)
    if queue_id is not None:
        allowed = select(m.QueueResultCode.result_code_id).where(m.QueueResultCode.queue_id == queue_id)
        if await session.scalar(select(func.count()).select_from(allowed.subquery())):
            stmt = stmt.where(m.ResultCode.id.in_(allowed))
    return list(await session.scalars(stmt))


async def transfer_targets(session: AsyncSession, who: Principal, conv: m.Conversation) -> dict[str, Any]:
    """Queues (any: handing over to another group is what a transfer is for) and the active
    operators of the caller's and the conversation's queues."""
    queues = [
        {"id": qid, "name": name}
        for qid, name in (
            await session.execute(select(m.Queue.id, m.Queue.name).order_by(m.Queue.name))
        ).all()
    ]
    mine = await visible_queue_ids(session, who)
    stmt = (
        select(m.User.id, m.User.display_name, m.User.username)
        .where(
            m.User.role == m.Role.OPERATOR,
            m.User.is_active.is_(True),
            m.User.id != who.id,
        )
        .order_by(m.User.display_name, m.User.username)
    )
    if mine is not None:
        reach = mine | {q for q in (conv.queue_id, *conv.extra_queue_ids) if q is not None}
        stmt = stmt.where(
            m.User.id.in_(select(m.QueueMember.user_id).where(m.QueueMember.queue_id.in_(reach)))
        )
    operators = [
        {"id": uid, "name": display or username}
        for uid, display, username in (await session.execute(stmt)).all()
    ]
    return {"queues": queues, "operators": operators}


def call_state(call: m.Call, conv: m.Conversation) -> str:
    """``ringing`` (not answered yet; an outbound call: dialling) → ``talking`` / ``on_hold`` →
    ``ended``; the conversation's own lifecycle goes on to wrap-up independently."""
    if call.ended_at is not None:
        return "ended"
    if call.answered_at is None and (conv.accepted_at is None or is_callback(conv.variables)):
        return "ringing"  # a callback: the operator accepted it, the customer's phone rings
    return "on_hold" if conv.status == S.ON_HOLD else "talking"


def call_dict(call: m.Call, conv: m.Conversation) -> dict[str, Any]:
    """The telephony facts of a voice conversation (``calls``) the console shows.

    ``recording``: a recording path is stored; the file itself is checked when it is played
    (``GET /api/v1/conversations/{id}/recording``, which refuses paths outside the directory)."""
    answered = call.answered_at or (conv.accepted_at if call.direction == "out" else None)
    return {
        "state": call_state(call, conv),
        "direction": call.direction,
        "number": call.caller_number,
        "answered_at": answered.isoformat() if answered else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "hold_started_at": conv.hold_started_at.isoformat() if conv.hold_started_at else None,
        "ring_seconds": round(call.ring_seconds, 1),
        "talk_seconds": round(call.talk_seconds, 1),
        "hold_seconds": conv.hold_seconds,
        "recording": bool(call.recording_path),
        "recording_url": f"/api/v1/conversations/{conv.id}/recording" if call.recording_path else None,
    }


async def call_facts(session: AsyncSession, conv: m.Conversation) -> dict[str, Any] | None:
    call = await session.scalar(select(m.Call).where(m.Call.conversation_id == conv.id))
    return call_dict(call, conv) if call is not None else None


async def conversation_view(session: AsyncSession, who: Principal, conv_id: int) -> dict[str, Any]:
    """One conversation as the centre and right columns show it."""
    conv = await access_conversation(session, who, conv_id)
    messages = list(
        await session.scalars(
            select(m.Message)
            .where(m.Message.conversation_id == conv.id)
            .order_by(m.Message.id.desc())
            .limit(VIEW_MESSAGES)
        )
    )
    messages.reverse()
    contact = await session.get(m.Contact, conv.contact_id)
    assert contact is not None
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    codes = await allowed_result_codes(session, conv.queue_id)
    default_code = queue.default_result_code_id if queue else None
    campaign_codes = await preview.campaign_code_ids(session, conv)
    if campaign_codes is not None:  # a campaign conversation: only the campaign's codes
        codes = [c for c in await allowed_result_codes(session, None) if c.id in campaign_codes]
        default_code = default_code if default_code in campaign_codes else None
    authors = await _user_names(
        session,
        {msg.author_user_id for msg in messages if msg.author_user_id is not None}
        | ({conv.assigned_user_id} if conv.assigned_user_id is not None else set()),
    )
    # Phones and e-mails customers wrote (and bots collected) as this reader may see them.
    masker = await masking.masker_for(session, who)
    return {
        "conversation": masker.payload(conversation_dict(conv))
        | {
            "contact_name": contact.name,
            "queue_name": queue.name if queue else "",
            "wrap_up_seconds": queue.wrap_up_seconds if queue else 0,
        },
        "messages": [masker.payload(message_dict(msg)) for msg in messages],
        "authors": {str(uid): name for uid, name in authors.items()},
        "card": await masking.masked_card(
            session, who, card_dict(contact, await card_fields_for(session, conv.queue_id))
        ),
        "script": sanitize(queue.script) if queue and queue.script else "",
        "result_codes": [
            {
                "id": c.id,
                "code": c.code,
                "name": c.name,
                "name_ru": c.name_ru,
                "colour": c.colour,
                "action": campaign_codes.get(c.id) if campaign_codes else None,
            }
            for c in codes
        ],
        "default_result_code_id": default_code,
        "campaign": await preview.conversation_campaign(session, conv),
        "queue": _queue_brief(queue) if queue else None,
        "transfer": await transfer_targets(session, who, conv),
        "bot_scenarios": await published_scenarios(session),
        "call": masker.payload(await call_facts(session, conv)) if conv.medium == m.Medium.VOICE else None,
    }
