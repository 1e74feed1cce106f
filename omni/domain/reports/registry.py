"""Every report by key: REST, export, mailing and the page find reports here.

A report module registers a ``ReportSpec`` at import; ``omni.domain.reports`` imports every
report module, so the registry is complete wherever the package is imported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain.errors import NotFound
from omni.domain.reports.filters import Scope
from omni.domain.reports.table import Cell, ReportTable

Runner = Callable[[AsyncSession, Scope], Awaitable[ReportTable]]
Streamer = Callable[[AsyncSession, Scope], AsyncIterator[list[Cell]]]
"""Every row of a report over the scope, one at a time (the page and its limit ignored)."""

FILTERS = ("period", "grouping", "queue", "group", "operator", "channel", "inbox", "result_code")
SEARCH_FILTERS = ("q", "duration")
"""Filters only some reports offer (contact history): a contact search and min/max seconds."""


@dataclass(frozen=True, slots=True)
class ReportSpec:
    key: str
    """Stable id (``queue_summary``); its title is the catalog key ``rpt.<key>``."""
    run: Runner
    filters: tuple[str, ...] = FILTERS
    """Which filters the page offers for this report (subset of ``FILTERS``)."""
    paginated: bool = False
    order: int = 100
    """Position in the page's list of reports."""
    stream: Streamer | None = None
    """For reports too big to hold (contact history): the export writes the rows as this yields
    them, after ``run`` with ``limit`` = 1 has given the columns and ``total_rows``."""
    roles: tuple[str, ...] | None = None
    """The roles (``m.Role`` values) that may run it when not every reader may (contacts:
    not auditors, personal data is not theirs to read); others neither see it listed nor run it."""


REPORTS: dict[str, ReportSpec] = {}


def register(spec: ReportSpec) -> ReportSpec:
    if spec.key in REPORTS:
        raise ValueError(f"report {spec.key!r} registered twice")
    REPORTS[spec.key] = spec
    return spec


def get(key: str) -> ReportSpec:
    try:
        return REPORTS[key]
    except KeyError:
        raise NotFound("no report {key}", key=key) from None


def ordered() -> list[ReportSpec]:
    return sorted(REPORTS.values(), key=lambda s: (s.order, s.key))
