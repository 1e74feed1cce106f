"""Business hours of a queue: the one place that decides whether a queue is open now."""

from __future__ import annotations

import logging
from collections.abc import Container
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.calendars import closed_days

log = logging.getLogger(__name__)


def is_open(queue: m.Queue, now: datetime, closed: Container[str] | None = None) -> bool:
    """Whether ``queue`` takes conversations at the aware instant ``now``.

    No hours means 24/7; a local date listed in ``holidays`` — or in ``closed``, the days off
    of the holiday calendars the queue follows (:func:`queue_open` loads them) — is closed all
    day. Hours are validated on save, so a broken document can only come
    from outside the API; it counts as open, because turning customers away silently is
    worse than serving them after hours.
    """
    if now.tzinfo is None:
        raise ValueError("is_open needs an aware datetime")
    hours = queue.business_hours
    if not hours:
        return True
    try:
        local = now.astimezone(ZoneInfo(hours["timezone"]))
        day = local.date().isoformat()
        if any(h["date"] == day for h in hours.get("holidays") or []):
            return False  # a holiday closes the whole local day
        if closed is not None and day in closed:
            return False  # so does a day off of a followed calendar
        hhmm = local.strftime("%H:%M")
        spans = hours["days"].get(str(local.weekday()), [])
        return any(start <= hhmm < end for start, end in spans)
    except (KeyError, TypeError, ValueError, AttributeError, ZoneInfoNotFoundError):
        log.warning("queue %s has malformed business hours; treating it as open", queue.id)
        return True


async def queue_open(session: AsyncSession, queue: m.Queue, now: datetime) -> bool:
    """:func:`is_open` with the queue's holiday calendars (``business_hours.calendars``)."""
    ids = (queue.business_hours or {}).get("calendars") if isinstance(queue.business_hours, dict) else None
    closed = await closed_days(session, ids) if ids else None
    return is_open(queue, now, closed)
