"""An operator's own statistics in the workspace: handled, AHT and CSAT for today and this week.

Read straight from the operator's own conversations rather than from the rollups: one operator's
week is a few hundred rows, and the panel must show a conversation the moment it closes, before
any rollup has caught up. The figures follow the reports' definitions exactly (same contact
interval, same talk/hold/wrap-up split, same rating), so the panel and the operator performance
report agree once the rollups are current.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import Principal
from omni.domain.reports.config import get_config
from omni.domain.reports.operators import handling_parts, rating
from omni.domain.reports.period import Period, Preset, preset
from omni.domain.reports.table import mean, pct


@dataclass(frozen=True, slots=True)
class OwnFigures:
    handled: int
    aht: float | None
    """Mean talk + hold + wrap-up seconds of the handled contacts."""
    avg_talk: float | None
    avg_hold: float | None
    avg_wrap_up: float | None
    csat: float | None
    """% of ratings that are 4 or 5."""
    csat_mean: float | None
    ratings: int


@dataclass(frozen=True, slots=True)
class OwnStats:
    timezone: str
    today: OwnFigures
    week: OwnFigures


async def _figures(session: AsyncSession, user_id: int, period: Period) -> OwnFigures:
    c = m.Conversation
    in_period = or_(
        and_(c.first_enqueued_at >= period.start, c.first_enqueued_at < period.end),
        and_(c.first_enqueued_at.is_(None), c.created_at >= period.start, c.created_at < period.end),
    )
    convs = await session.scalars(
        select(c).where(c.assigned_user_id == user_id, c.accepted_at.is_not(None), in_period)
    )
    handled = 0
    talk = hold = wrap = 0.0
    scores: list[int] = []
    for conv in convs:
        if conv.status == m.ConversationStatus.CLOSED and conv.closed_at is not None:
            t, h, w = handling_parts(conv)
            handled += 1
            talk, hold, wrap = talk + t, hold + h, wrap + w
        score = rating(conv)
        if score is not None:
            scores.append(score)
    return OwnFigures(
        handled=handled,
        aht=mean(talk + hold + wrap, handled),
        avg_talk=mean(talk, handled),
        avg_hold=mean(hold, handled),
        avg_wrap_up=mean(wrap, handled),
        csat=pct(sum(1 for s in scores if s >= 4), len(scores)),
        csat_mean=round(sum(scores) / len(scores), 2) if scores else None,
        ratings=len(scores),
    )


async def own_stats(session: AsyncSession, who: Principal, now: datetime) -> OwnStats:
    """The caller's own figures for today and this week (Monday on) in the install's zone."""
    config = await get_config(session)
    tz = config.tz
    return OwnStats(
        timezone=config.timezone,
        today=await _figures(session, who.id, preset(Preset.TODAY, now, tz)),
        week=await _figures(session, who.id, preset(Preset.THIS_WEEK, now, tz)),
    )
