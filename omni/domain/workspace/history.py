"""The contact's other conversations across channels (see the package docstring for
which are shown and which only counted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import masking
from omni.domain.auth import (
    Principal,
    access_conversation,
    conversation_scope_filter,
    visible_queue_ids,
)
from omni.domain.serialize import conversation_dict, message_dict
from omni.domain.workspace.panels import _queues

HISTORY_CONVERSATIONS = 20
HISTORY_MESSAGES = 500


async def contact_history(session: AsyncSession, who: Principal, conv_id: int) -> dict[str, Any]:
    """The contact's other conversations on every channel, newest first, with their messages
    (see the module docstring for which ones are shown)."""
    conv = await access_conversation(session, who, conv_id)
    queues = await visible_queue_ids(session, who)
    scope = conversation_scope_filter(queues, who)
    if queues is not None:
        scope = [or_(*scope, m.Conversation.preferred_user_id == who.id)]
    others = list(
        await session.scalars(
            select(m.Conversation)
            .where(m.Conversation.contact_id == conv.contact_id, m.Conversation.id != conv.id, *scope)
            .order_by(m.Conversation.created_at.desc(), m.Conversation.id.desc())
            .limit(HISTORY_CONVERSATIONS)
        )
    )
    total = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.contact_id == conv.contact_id, m.Conversation.id != conv.id)
    )
    visible_total = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.contact_id == conv.contact_id, m.Conversation.id != conv.id, *scope)
    )
    by_conv: dict[int, list[dict[str, Any]]] = {c.id: [] for c in others}
    masker = await masking.masker_for(session, who)
    if others:
        for msg in await session.scalars(
            select(m.Message)
            .where(m.Message.conversation_id.in_(by_conv))
            .order_by(m.Message.id.desc())
            .limit(HISTORY_MESSAGES)
        ):
            by_conv[msg.conversation_id].append(masker.payload(message_dict(msg)))
    qs = await _queues(session, {c.queue_id for c in others if c.queue_id is not None})
    codes = {
        code.id: code.name_in(who.language)  # the result in the reader's language
        for code in await session.scalars(
            select(m.ResultCode).where(
                m.ResultCode.id.in_({c.result_code_id for c in others if c.result_code_id is not None})
            )
        )
    }
    return {
        "contact_id": conv.contact_id,
        "conversations": [
            masker.payload(conversation_dict(c))
            | {
                "queue_name": qs[c.queue_id].name if c.queue_id in qs else "",
                "result_code_name": codes.get(c.result_code_id) if c.result_code_id is not None else None,
                "messages": list(reversed(by_conv[c.id])),
            }
            for c in others
        ],
        "hidden": int(total or 0) - int(visible_total or 0),
    }
