"""Report exports: one row per requested CSV/XLSX file, its progress and where the file is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, BigId, utcnow


class ReportExport(Base):
    """An export job (``omni.domain.reports.exports``): only its owner reads or downloads it.

    The job runs in the process that accepted the request; ``updated_at`` is its heartbeat, so a
    job whose process died is shown as failed instead of running for ever.
    """

    __tablename__ = "report_exports"
    __table_args__ = (Index("ix_report_exports_expires", "state", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    report: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))
    """csv | xlsx."""
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The ``FilterParams`` as asked (JSON), resolved when the job started."""
    language: Mapped[str] = mapped_column(String(8), default="en")
    state: Mapped[str] = mapped_column(String(16), default="queued")
    """queued | running | done | failed | expired."""
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(256), default="")
    """What the download is called (``Content-Disposition``)."""
    path: Mapped[str] = mapped_column(String(512), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    """When the file is deleted (``purge_expired``)."""
