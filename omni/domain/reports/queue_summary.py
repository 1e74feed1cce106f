"""Report 1, queue summary: per group (interval … month, or the whole period) and queue, what
came in and what became of it, from the queue rollup rows only (``omni.domain.reports.queues``).

Columns as ``queues.figures`` computes them: offered, answered, abandoned (after the grace),
short abandons (apart, in no SL figure), missed, overflowed, lost (offered − answered),
callbacks made, SL %, abandon %, ASA, longest wait, AHT and its talk/hold/wrap-up means over
handled contacts, transfers. The chart stacks answered against lost per group.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports.filters import Scope
from omni.domain.reports.period import Grouping, floor_interval, group_start, local_midnight
from omni.domain.reports.queues import RQI, Sums, add, figures, interval_sums
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.table import Cell, Chart, Column, Kind, ReportTable

KEY = "queue_summary"
FIGURES = (
    Column("offered", Kind.COUNT, "Offered"),
    Column("answered", Kind.COUNT, "Answered"),
    Column("abandoned", Kind.COUNT, "Abandoned"),
    Column("abandoned_short", Kind.COUNT, "Short abandons"),
    Column("missed", Kind.COUNT, "Missed"),
    Column("overflowed", Kind.COUNT, "Overflowed"),
    Column("lost", Kind.COUNT, "Lost"),
    Column("callbacks_made", Kind.COUNT, "Callbacks made"),
    Column("sl_pct", Kind.PERCENT, "Service level"),
    Column("abandon_pct", Kind.PERCENT, "Abandon rate"),
    Column("asa", Kind.SECONDS, "ASA"),
    Column("wait_max", Kind.SECONDS, "Longest wait"),
    Column("handled", Kind.COUNT, "Handled"),
    Column("aht", Kind.SECONDS, "AHT"),
    Column("talk", Kind.SECONDS, "Talk"),
    Column("hold", Kind.SECONDS, "Hold"),
    Column("wrap", Kind.SECONDS, "Wrap-up"),
    Column("transfers", Kind.COUNT, "Transfers"),
)
COLUMNS = (Column("period", Kind.DATETIME, "Period"), Column("queue", Kind.LABEL, "Queue"), *FIGURES)


async def queue_names(session: AsyncSession) -> dict[int, str]:
    return {k: v for k, v in await session.execute(select(m.Queue.id, m.Queue.name))}


def group_edges(scope: Scope) -> list[datetime] | None:
    """UTC starts of the period's days, weeks or months (the first clamped to the period's start);
    ``None`` for interval and hour grouping (those group by the interval itself)."""
    grouping, p = scope.filter.grouping, scope.period
    if grouping not in (Grouping.DAY, Grouping.WEEK, Grouping.MONTH):
        return None
    edges: list[datetime] = []
    day = p.first_day
    while day <= p.last_day:
        start = group_start(local_midnight(day, p.tz), grouping, p.tz).astimezone(UTC)
        start = max(floor_interval(start), p.start)
        if not edges or start > edges[-1]:
            edges.append(start)
        day += timedelta(days=1)
    return edges


def group_label(bucket: datetime, scope: Scope) -> datetime:
    """The row label of the group holding ``bucket``: the local start of its hour, day, …;
    the period's first local midnight for ``total``."""
    if scope.filter.grouping == Grouping.TOTAL:
        return local_midnight(scope.period.first_day, scope.period.tz).astimezone(scope.period.tz)
    return group_start(bucket, scope.filter.grouping, scope.period.tz)


def figure_cells(s: Sums) -> list[Cell]:
    values: dict[str, Any] = figures(s)
    return [values[c.key] for c in FIGURES]


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    table = ReportTable(
        key=KEY,
        columns=COLUMNS,
        chart=Chart("stacked", "period", ("answered", "lost")),
        notes=["rpt.note.sl", "rpt.note.short_abandon"],
    )
    edges = group_edges(scope)
    if edges is not None:  # days, weeks, months: summed per group by the database
        found = await interval_sums(session, scope, RQI.queue_id, edges=edges)
        rows = [((edges[grp], q), sums) for (grp, q), sums in found]
    elif scope.filter.grouping == Grouping.TOTAL:
        found = await interval_sums(session, scope, RQI.queue_id)
        rows = [((scope.period.start, q), sums) for (q,), sums in found]
    else:
        found = await interval_sums(session, scope, RQI.bucket, RQI.queue_id)
        rows = [((b, q), sums) for (b, q), sums in found]
    if not rows:
        return table
    names = await queue_names(session)
    groups: dict[tuple[datetime, int], Sums] = {}
    labels: dict[datetime, datetime] = {}
    for (bucket, queue_id), sums in rows:
        label = labels.get(bucket)
        if label is None:
            label = labels[bucket] = group_label(bucket, scope)
        key = (label, queue_id)
        if key in groups:
            add(groups[key], sums)  # hours: four intervals each
        else:
            groups[key] = sums
    for (label, queue_id), sums in sorted(groups.items(), key=lambda kv: (kv[0][0], names.get(kv[0][1], ""))):
        table.rows.append([label, names.get(queue_id, "—"), *figure_cells(sums)])
    [(_, total)] = await interval_sums(session, scope)
    table.totals = [None, None, *figure_cells(total)]
    return table


register(
    ReportSpec(
        KEY, run, ("period", "grouping", "queue", "group", "channel", "inbox", "result_code"), order=10
    )
)
