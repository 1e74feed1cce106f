"""Business hours of a queue: the one place that decides whether a queue is open now."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omni.db import models as m

log = logging.getLogger(__name__)


def is_open(queue: m.Queue, now: datetime) -> bool:
    """Whether ``queue`` takes conversations at the aware instant ``now``.

    No hours means 24/7; a local date listed in ``holidays`` is closed all day. Hours are
    validated on save, so a broken document can only come
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
        if any(h["date"] == local.date().isoformat() for h in hours.get("holidays") or []):
            return False  # a holiday closes the whole local day
        hhmm = local.strftime("%H:%M")
        spans = hours["days"].get(str(local.weekday()), [])
        return any(start <= hhmm < end for start, end in spans)
    except (KeyError, TypeError, ValueError, AttributeError, ZoneInfoNotFoundError):
        log.warning("queue %s has malformed business hours; treating it as open", queue.id)
        return True
