"""Named holiday calendars (``omni.domain.calendars``): days off shared by queues and campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, utcnow

__all__ = ["HolidayCalendar"]


class HolidayCalendar(Base):
    """A named list of whole days off ("Russia 2027"): dated days and days that repeat every
    year. Queues reference calendars from ``business_hours.calendars`` and campaigns from
    ``calendar_ids``; their own dates keep working next to them."""

    __tablename__ = "holiday_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    dates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """``[{"date": "2027-01-07", "name": "Christmas"}]``, sorted by date."""
    yearly: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """``[{"date": "05-09", "name": "Victory Day"}]``: month-day, every year."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
