"""Reporting: the install-wide settings reports and the live monitor share.

The report fact and interval tables live beside the rollups that fill them
(``omni.domain.reports``); this module holds what every report reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, utcnow


class InstallSettings(Base):
    """One row (``id = 1``): what "today", "offered" and "a working day" mean for this install.

    In the database rather than in ``Settings`` because admins change it from the admin pages and
    every node must agree at once; ``omni.domain.reports.config`` reads it.
    """

    __tablename__ = "install_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    """IANA zone; days, weeks and months of the reports and the monitor's "today" start here."""
    short_abandon_seconds: Mapped[int] = mapped_column(Integer, default=5)
    """Customers leaving the line within this grace are neither offered nor abandoned for SL."""
    business_days: Mapped[list[Any]] = mapped_column(JSON, default=lambda: [0, 1, 2, 3, 4])
    """ISO weekdays 0 (Monday) … 6 (Sunday) that count as working days in reports."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
