"""Reports: what the contact center did, read back from facts and 15-minute interval rollups.

Layout (docs/reports.md):

* ``config`` — the install's time zone, short-abandon grace and business days (one DB row);
  the live monitor reads the same row, so its "today" is the reports' today.
* ``period`` — periods, presets and the 15-minute UTC interval grid; grouping by
  interval/hour/day/week/month in the install's zone.
* ``filters`` — a ``ReportFilter`` narrowed to the caller's queues and operators (``Scope``).
* ``rollups`` — interval rollups, each rebuildable per interval (idempotent; late events
  rebuild the interval they belong to); ``driver`` keeps them current from the event log.
* ``table`` — the one result shape (columns, rows, totals, chart) REST, export, mailing and the
  page share; ``registry`` — every report by key.
* one module per report family registers its reports and rollups.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain.auth import Principal
from omni.domain.reports.config import ReportConfig, get_config
from omni.domain.reports.filters import (
    FilterParams,
    ReportFilter,
    Scope,
    check_report_in_reach,
    resolve_scope,
)
from omni.domain.reports.period import Grouping, Period, Preset
from omni.domain.reports.registry import REPORTS, ReportSpec, get, ordered, register
from omni.domain.reports.table import Chart, Column, Kind, ReportTable

__all__ = [
    "REPORTS",
    "Chart",
    "Column",
    "FilterParams",
    "Grouping",
    "Kind",
    "Period",
    "Preset",
    "ReportConfig",
    "ReportFilter",
    "ReportSpec",
    "ReportTable",
    "Scope",
    "get",
    "get_config",
    "ordered",
    "register",
    "resolve_scope",
    "run",
    "run_params",
]


async def run(session: AsyncSession, who: Principal, key: str, f: ReportFilter, now: datetime) -> ReportTable:
    """Run one report for the caller: scope first, then the report over the scope."""
    spec = get(key)
    config = await get_config(session)
    scope = await resolve_scope(session, who, f, config, now)
    check_report_in_reach(spec.key, scope.reach, who, spec.roles)
    return await spec.run(session, scope)


async def run_params(
    session: AsyncSession, who: Principal, key: str, params: FilterParams, now: datetime
) -> ReportTable:
    """Run one report from the filter as chosen (``FilterParams``), in the install's zone."""
    spec = get(key)
    config = await get_config(session)
    scope = await resolve_scope(session, who, params.resolve(config.tz, now), config, now)
    check_report_in_reach(spec.key, scope.reach, who, spec.roles)
    return await spec.run(session, scope)


from omni.domain.reports import (  # noqa: E402, F401  # noqa: E402, F401  (chatbot: register)
    bot_funnel,
    channels,
    chats,
    missed_outcomes,
    queue_summary,
    queues,
    sl_buckets,
    surveys,
)
from omni.domain.reports import campaigns as _campaigns  # noqa: E402,F401  (registers the campaign reports)
from omni.domain.reports import contacts as _contacts  # noqa: E402,F401  (registers the contacts export)
from omni.domain.reports import history as history  # noqa: E402  # registers contact_history
from omni.domain.reports import operator_reports as _operator_reports  # noqa: E402, F401
from omni.domain.reports import qa as _qa  # noqa: E402,F401  (registers the quality reports)
from omni.domain.reports import sla as _sla  # noqa: E402,F401  (registers the chat service level report)
from omni.domain.reports import staffing as _staffing  # noqa: E402,F401  (registers the staffing report)
