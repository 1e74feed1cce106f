"""Campaign figures, one definition for the supervisor's live view, REST and the report.

* **progress** — finished targets (done, failed, do-not-call, cancelled) of all targets, in %;
* **remaining** — targets still pending or in progress;
* **scheduled retries** — pending targets that were already tried (a retry or callback waits);
* **in progress** — attempts open now (a preview on screen, a call ringing or talking);
* **attempts** — ended attempts that reached the network (skips and refusals use none);
* **contact rate** — answered attempts of those attempts, in %;
* **pacing** (predictive campaigns; ``None`` for the others) — what the pacing controller
  measures (``pacing.measure``): the answer rate (calls a person answered, dropped included, of
  the attempts that ended) and the abandon rate (dropped of those a person answered) over the
  rolling window, the abandon rate since midnight in the campaign's zone, and the campaign's
  target; over the target the controller dials progressive.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import CampaignState, DialMode, Outcome, TargetState
from omni.domain.auth import Principal, visible_queue_ids
from omni.domain.errors import NotFound, PermissionDenied
from omni.domain.outbound import pacing

__all__ = [
    "FINISHED_STATES",
    "NOT_ATTEMPTS",
    "READERS",
    "access_campaign",
    "campaign_figures",
    "contact_rate",
    "live_campaigns",
    "pacing_figures",
]

FINISHED_STATES = (TargetState.DONE, TargetState.FAILED, TargetState.DNC, TargetState.CANCELLED)
NOT_ATTEMPTS = (Outcome.SKIPPED, Outcome.REFUSED)
"""Outcomes of attempts that never reached the network: not counted as attempts."""
READERS = (m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.AUDITOR)


def contact_rate(answered: int, attempts: int) -> float | None:
    """Answered of attempts in %, one decimal; ``None`` before any attempt."""
    return round(100.0 * answered / attempts, 1) if attempts else None


async def access_campaign(session: AsyncSession, who: Principal, campaign_id: int) -> m.Campaign:
    """A campaign the caller may watch: admins and auditors any, supervisors those of their
    queues (another group's is not found, so ids don't leak); operators none."""
    if who.role not in READERS:
        raise PermissionDenied("campaign figures are for supervisors and admins")
    campaign = await session.get(m.Campaign, campaign_id)
    queues = await visible_queue_ids(session, who)
    if campaign is None or (queues is not None and campaign.queue_id not in queues):
        raise NotFound("campaign {campaign_id} not found", campaign_id=campaign_id)
    return campaign


async def campaign_figures(
    session: AsyncSession, campaign_ids: Iterable[int], *, now: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """Live figures per campaign (module docstring), three grouped queries for all of them."""
    ids = sorted(set(campaign_ids))
    figures: dict[int, dict[str, Any]] = {
        cid: {
            "targets": 0,
            "finished": 0,
            "remaining": 0,
            "scheduled_retries": 0,
            "in_progress": 0,
            "attempts": 0,
            "answered": 0,
            "outcomes": {},
            "progress": None,
            "contact_rate": None,
            "pacing": None,
        }
        for cid in ids
    }
    if not ids:
        return figures
    t, a = m.CampaignTarget, m.CampaignAttempt
    tried = func.sum(case((t.attempts > 0, 1), else_=0))
    for cid, state, count, retried in (
        await session.execute(
            select(t.campaign_id, t.state, func.count(), tried)
            .where(t.campaign_id.in_(ids))
            .group_by(t.campaign_id, t.state)
        )
    ).all():
        f = figures[cid]
        f["targets"] += count
        if state in FINISHED_STATES:
            f["finished"] += count
        else:
            f["remaining"] += count
        if state == TargetState.PENDING:
            f["scheduled_retries"] += int(retried or 0)
    for cid, outcome, count in (
        await session.execute(
            select(a.campaign_id, a.outcome, func.count())
            .where(a.campaign_id.in_(ids))
            .group_by(a.campaign_id, a.outcome)
        )
    ).all():
        f = figures[cid]
        if outcome is None:
            f["in_progress"] += count
            continue
        f["outcomes"][outcome] = count
        if outcome not in NOT_ATTEMPTS:
            f["attempts"] += count
        if outcome == Outcome.ANSWERED:
            f["answered"] += count
    for f in figures.values():
        f["progress"] = round(100.0 * f["finished"] / f["targets"], 1) if f["targets"] else None
        f["contact_rate"] = contact_rate(f["answered"], f["attempts"])
    predictive = await session.scalars(
        select(m.Campaign).where(m.Campaign.id.in_(ids), m.Campaign.dial_mode == DialMode.PREDICTIVE)
    )
    for campaign in predictive:
        figures[campaign.id]["pacing"] = await pacing_figures(session, campaign, now or datetime.now(UTC))
    return figures


def _pct(rate: float, count: int) -> float | None:
    return round(100.0 * rate, 1) if count else None


async def pacing_figures(session: AsyncSession, campaign: m.Campaign, now: datetime) -> dict[str, Any]:
    """A predictive campaign's pacing figures (module docstring), in % with one decimal;
    ``None`` rates before the window or the day has a call to measure."""
    s = await pacing.measure(session, campaign, now)
    return {
        "answer_rate": _pct(s.answer_rate, s.samples),
        "abandon_rate": _pct(s.abandon_rate, s.answered),
        "abandon_rate_today": _pct(s.abandon_rate_today, s.answered_today),
        "answered_today": s.answered_today,
        "window_attempts": s.samples,
        "target_abandon_pct": campaign.target_abandon_pct,
        "over_target": s.abandon_rate * 100.0 > campaign.target_abandon_pct
        or s.abandon_rate_today * 100.0 > campaign.target_abandon_pct,
    }


async def live_campaigns(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """The supervisor's live view: running and paused campaigns of the caller's queues, with
    their figures, highest priority first."""
    if who.role not in READERS:
        raise PermissionDenied("campaign figures are for supervisors and admins")
    c = m.Campaign
    stmt = (
        select(c)
        .where(c.state.in_((CampaignState.RUNNING, CampaignState.PAUSED)))
        .order_by(c.priority.desc(), c.name)
    )
    queues = await visible_queue_ids(session, who)
    if queues is not None:
        stmt = stmt.where(c.queue_id.in_(queues))
    campaigns = list(await session.scalars(stmt))
    figures = await campaign_figures(session, [x.id for x in campaigns])
    return [
        {
            "id": x.id,
            "name": x.name,
            "state": x.state,
            "channel": x.channel,
            "dial_mode": x.dial_mode,
            "queue_id": x.queue_id,
            **figures[x.id],
        }
        for x in campaigns
    ]
