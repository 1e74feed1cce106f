"""Do-not-call lookups: the global list and a campaign's own, single numbers and prefix ranges.

Checked before every attempt (the scheduler) and at import (a listed number is imported as
``dnc``, so the list's progress shows it). A prefix entry stores the leading digits of the
E.164 form (``+7495`` covers Moscow city numbers); the lookup asks for every prefix of the
number at once, so it is one indexed query however long the list is.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m

__all__ = ["find_dnc", "prefixes"]


def prefixes(e164: str) -> list[str]:
    """``+7495`` style prefixes of a number, shortest first (the ``+`` and one digit at least)."""
    return [e164[:n] for n in range(2, len(e164))]


async def find_dnc(session: AsyncSession, campaign_id: int | None, e164: str) -> m.DncEntry | None:
    """The entry that forbids calling ``e164`` in this campaign (global or its own), if any."""
    scope: ColumnElement[bool] = m.DncEntry.campaign_id.is_(None)
    if campaign_id is not None:
        scope = or_(scope, m.DncEntry.campaign_id == campaign_id)
    return await session.scalar(
        select(m.DncEntry)
        .where(
            scope,
            or_(
                (m.DncEntry.number == e164) & m.DncEntry.prefix.is_(False),
                m.DncEntry.number.in_(prefixes(e164)) & m.DncEntry.prefix.is_(True),
            ),
        )
        .order_by(m.DncEntry.id)
        .limit(1)
    )
