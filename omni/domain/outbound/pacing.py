"""Predictive pacing: how many calls to place ahead of operators becoming free.

The frame: ``measured_load`` gathers what the unreserved dial modes (predictive, agentless)
decide from. The controller itself (a ``Predictive`` policy registered with
``policy.register``), the measurement of the campaign's recent attempts (``measure``) and the
simulator that drives the same code (``bench/dialer_sim.py``) are described in docs/dialer.md.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.outbound.policy import Load

__all__ = ["measured_load"]


async def measured_load(
    session: AsyncSession, campaign: m.Campaign, *, free_operators: int, open_attempts: int, now: datetime
) -> Load:
    """The load an unreserved policy sees for ``campaign`` at ``now``."""
    return Load(
        free_operators=free_operators,
        open_attempts=open_attempts,
        max_concurrency=campaign.max_concurrency,
        operators=free_operators,
        max_lines_per_operator=campaign.max_lines_per_operator,
        target_abandon_pct=campaign.target_abandon_pct,
    )
