"""Campaign state changes (a minimal stand-in written by the console piece so Start / Pause
work on its branch; the campaigns piece owns this module and its full version wins the merge).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import CampaignState
from omni.domain import audit
from omni.domain.auth import Principal, visible_queue_ids
from omni.domain.errors import Conflict, NotFound, PermissionDenied
from omni.domain.events import emit

__all__ = ["campaign_dict", "check_set_state"]

CS = CampaignState

TRANSITIONS: dict[str, tuple[str, ...]] = {
    CS.DRAFT: (CS.RUNNING,),
    CS.RUNNING: (CS.PAUSED, CS.FINISHED),
    CS.PAUSED: (CS.RUNNING, CS.FINISHED),
    CS.FINISHED: (),
}


def campaign_dict(c: m.Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "state": c.state,
        "channel": c.channel,
        "dial_mode": c.dial_mode,
        "queue_id": c.queue_id,
        "priority": c.priority,
    }


async def check_set_state(
    session: AsyncSession, who: Principal, campaign_id: int, state: CampaignState
) -> m.Campaign:
    """Start, pause, resume or finish a campaign (supervisors of its queue and admins), audited,
    with ``campaign.state_changed``; an illegal transition is a ``Conflict``."""
    if who.role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
        raise PermissionDenied("only supervisors and admins start or pause campaigns")
    campaign = await session.scalar(select(m.Campaign).where(m.Campaign.id == campaign_id).with_for_update())
    queues = await visible_queue_ids(session, who)
    if campaign is None or (queues is not None and campaign.queue_id not in queues):
        raise NotFound("campaign {campaign_id} not found", campaign_id=campaign_id)
    previous = campaign.state
    if state == previous:
        return campaign
    if state not in TRANSITIONS.get(previous, ()):
        raise Conflict("a {previous} campaign can't become {state}", previous=previous, state=str(state))
    now = datetime.now(UTC)
    campaign.state = state
    campaign.updated_at = now
    if state == CS.RUNNING and campaign.started_at is None:
        campaign.started_at = now
    if state == CS.FINISHED:
        campaign.finished_at = now
    await session.flush()
    audit.record(
        session,
        who,
        "campaign.set_state",
        object_type="campaign",
        object_id=campaign.id,
        data={"from": previous, "to": str(state)},
    )
    emit(
        session,
        "campaign.state_changed",
        {
            "id": campaign.id,
            "name": campaign.name,
            "state": campaign.state,
            "previous_state": previous,
            "user_id": who.id,
        },
        queue_id=campaign.queue_id,
        user_id=who.id,
    )
    return campaign
