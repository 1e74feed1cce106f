"""A campaign's live figures (``GET /api/v1/campaigns/{id}/stats``): what the supervisor's live
view shows, for integrations and wallboards (``omni.domain.outbound.stats``).

Supervisors read the campaigns of their queues (another group's is 404), admins and auditors
any; operators none (403).
"""

from __future__ import annotations

import msgspec
from litestar import Controller, get

from omni.api.contracts import IntId
from omni.api.core import DEPS
from omni.domain.auth import Principal
from omni.domain.outbound import stats
from omni.services import Services


class PacingOut(msgspec.Struct):
    """A predictive campaign's pacing figures (``omni.domain.outbound.stats``)."""

    answer_rate: float | None
    """Calls a person answered (dropped included) of the attempts that ended, in %, over the
    rolling window (the last 30 minutes, at most 1000 attempts)."""
    abandon_rate: float | None
    """Dropped of the calls a person answered, in %, over the rolling window."""
    abandon_rate_today: float | None
    """Dropped of the calls a person answered since midnight in the campaign's zone, in %."""
    answered_today: int
    window_attempts: int
    """Ended attempts in the rolling window."""
    target_abandon_pct: float
    over_target: bool
    """The window or today is over the target: the controller dials progressive."""


class CampaignStatsOut(msgspec.Struct):
    id: int
    name: str
    state: str
    targets: int
    """Every target of the campaign."""
    finished: int
    """Done, failed, on a do-not-call list or cancelled."""
    progress: float | None
    """``finished`` of ``targets`` in % (none without targets)."""
    remaining: int
    """Pending or in progress."""
    scheduled_retries: int
    """Pending targets already tried: a retry or a callback is waiting."""
    in_progress: int
    """Attempts open now (a preview on screen, a call ringing or talking)."""
    attempts: int
    """Ended attempts that reached the network (skips and refusals are not attempts)."""
    answered: int
    contact_rate: float | None
    """``answered`` of ``attempts`` in %."""
    outcomes: dict[str, int]
    """Ended attempts by outcome (skips and refusals included)."""
    pacing: PacingOut | None = None
    """Predictive campaigns only."""


class CampaignStatsController(Controller):
    path = "/api/v1/campaigns"
    dependencies = DEPS

    @get("/{campaign_id:int}/stats")
    async def campaign_stats(
        self, who: Principal, services: Services, campaign_id: IntId
    ) -> CampaignStatsOut:
        async with services.db.transaction() as session:
            campaign = await stats.access_campaign(session, who, campaign_id)
            figures = (await stats.campaign_figures(session, [campaign.id]))[campaign.id]
        return CampaignStatsOut(
            id=campaign.id,
            name=campaign.name,
            state=campaign.state,
            targets=figures["targets"],
            finished=figures["finished"],
            progress=figures["progress"],
            remaining=figures["remaining"],
            scheduled_retries=figures["scheduled_retries"],
            in_progress=figures["in_progress"],
            attempts=figures["attempts"],
            answered=figures["answered"],
            contact_rate=figures["contact_rate"],
            outcomes=dict(figures["outcomes"]),
            pacing=msgspec.convert(figures["pacing"], PacingOut) if figures["pacing"] is not None else None,
        )


CONTROLLERS = [CampaignStatsController]
