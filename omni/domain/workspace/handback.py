"""Handing a conversation back to a bot scenario, and the voice transfer precondition."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, deadlines
from omni.domain.auth import (
    Principal,
    access_conversation,
)
from omni.domain.conversations import bot_gateway, do_end
from omni.domain.errors import Conflict, InvalidInput, PermissionDenied
from omni.domain.events import emit
from omni.domain.presence import do_refresh_activity_of
from omni.domain.serialize import conversation_dict
from omni.i18n import Label

S = m.ConversationStatus


# --- handing back to a bot --------------------------------------------------------------


async def published_scenarios(session: AsyncSession) -> list[dict[str, str]]:
    """Scenarios an operator may hand a conversation to (those with an active revision)."""
    rows = await session.execute(
        select(m.Scenario.key, m.Scenario.name)
        .where(m.Scenario.active_revision_id.is_not(None))
        .order_by(m.Scenario.name)
    )
    return [{"key": key, "name": name} for key, name in rows.all()]


async def check_caller_can_move(session: AsyncSession, conv_id: int) -> m.Call:
    """A blind transfer or a transfer to the IVR redirects the caller's channel: the call must
    be in progress and inbound (on a click-to-call the first leg is the operator's phone)."""
    call = await session.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
    if call is None or call.ended_at is not None:
        raise Conflict("there is no call in progress for this conversation")
    if call.direction != "in":
        raise Conflict("an outgoing call can only be transferred to an extension or attended")
    return call


async def check_hand_to_bot(
    session: AsyncSession, who: Principal, conv_id: int, scenario_key: str
) -> m.Conversation:
    """The handling operator (or a supervisor in scope) passes the conversation to a published
    scenario, e.g. a CSAT survey once the talk is over.

    The operator's handling ends first (``do_end``: handle time stops, wrap-up is not waited
    for), then the runner starts the scenario and the conversation is ``bot``; the operator
    stays its ``assigned_user_id`` so answers are credited to them, but it no longer counts
    against their capacity. Emits ``conversation.handed_to_bot``.
    """
    conv = await access_conversation(session, who, conv_id, for_update=True)
    if conv.assigned_user_id != who.id and who.role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
        raise PermissionDenied("only the operator handling the conversation can do this")
    if conv.status not in (S.ACTIVE, S.ON_HOLD, S.WRAP_UP):
        raise Conflict(
            "a {status} conversation can't be handed to a bot", status=Label("status", conv.status)
        )
    gateway = bot_gateway(session)
    if gateway is None:
        raise Conflict("scenarios are not running on this server")
    scenario = await session.scalar(select(m.Scenario).where(m.Scenario.key == scenario_key))
    if scenario is None or scenario.active_revision_id is None:
        raise InvalidInput(
            "scenario '{scenario_key}' is not published", scenario_key=scenario_key, field="scenario"
        )
    handler = conv.assigned_user_id
    if conv.status in (S.ACTIVE, S.ON_HOLD):
        await do_end(session, conv, by="operator")
    await deadlines.cancel(session, deadlines.WRAP_UP, conv.id)
    if not await gateway.hand_to_bot(session, conv, scenario_key):
        raise InvalidInput(
            "scenario '{scenario_key}' is not published", scenario_key=scenario_key, field="scenario"
        )
    emit(
        session,
        "conversation.handed_to_bot",
        conversation_dict(conv) | {"scenario": scenario_key, "by_user_id": who.id},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=handler,
    )
    audit.record(
        session,
        who,
        "conversation.hand_to_bot",
        object_type="conversation",
        object_id=conv.id,
        data={"scenario": scenario_key},
    )
    if handler is not None:
        await do_refresh_activity_of(session, handler)
    return conv
