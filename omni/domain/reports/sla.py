"""Chat service levels (``omni.domain.sla``): per queue and operator over the period, how many
waits for a reply there were, how many passed their deadline, and the share kept.

Counted from ``sla_targets``, one fact row per wait (indexed by queue and start): a wait
belongs to the interval it started in and to the operator who handled it (``—`` while it
waited in line). A wait still running counts as a wait; it counts as breached once its
deadline has passed (the breach deadline sets ``breached_at``). Exported like every report
(CSV/XLSX, ``omni.domain.reports.exports``).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports.filters import Scope
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.scoped import queue_names, user_names
from omni.domain.reports.table import Chart, Column, Kind, ReportTable, pct

KEY = "sla"
COLUMNS = (
    Column("queue", Kind.LABEL, "Queue"),
    Column("operator", Kind.LABEL, "Operator"),
    Column("sla_first", Kind.COUNT, "First replies due"),
    Column("sla_first_breached", Kind.COUNT, "First replies late"),
    Column("sla_next", Kind.COUNT, "Next replies due"),
    Column("sla_next_breached", Kind.COUNT, "Next replies late"),
    Column("sla_breached", Kind.COUNT, "Breaches"),
    Column("sla_kept_pct", Kind.PERCENT, "Replies on time"),
)

Counts = dict[str, int]


def _cells(c: Counts) -> list[int | float | None]:
    total = c["first"] + c["next"]
    late = c["first_breached"] + c["next_breached"]
    return [c["first"], c["first_breached"], c["next"], c["next_breached"], late, pct(total - late, total)]


def _new() -> Counts:
    return {"first": 0, "first_breached": 0, "next": 0, "next_breached": 0}


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    table = ReportTable(key=KEY, columns=COLUMNS, chart=Chart("bar", "queue", ("sla_breached",)))
    if scope.empty:
        return table
    t = m.SlaTarget
    where: list[ColumnElement[bool]] = [t.started_at >= scope.period.start, t.started_at < scope.period.end]
    if scope.queue_ids is not None:
        where.append(t.queue_id.in_(scope.queue_ids) if scope.queue_ids else false())
    f = scope.filter
    if (f.user_ids or f.group_ids) and scope.user_ids is not None:
        where.append(t.user_id.in_(scope.user_ids) if scope.user_ids else false())
    rows = await session.execute(
        select(t.queue_id, t.user_id, t.kind, t.breached_at, t.due_at, t.ended_at).where(*where)
    )
    counts: dict[tuple[int, int], Counts] = defaultdict(_new)
    for queue_id, user_id, kind, breached_at, due_at, ended_at in rows.all():
        c = counts[(queue_id or 0, user_id or 0)]
        c[kind] += 1
        if breached_at is not None or (ended_at is None and due_at <= scope.now):
            c[f"{kind}_breached"] += 1
    queues = await queue_names(session, {q for q, _ in counts})
    users = await user_names(session, {u for _, u in counts})
    total = _new()
    for (queue_id, user_id), c in sorted(
        counts.items(), key=lambda kv: (queues.get(kv[0][0], ""), users.get(kv[0][1], ""))
    ):
        table.rows.append([queues.get(queue_id, "—"), users.get(user_id, "—"), *_cells(c)])
        for key, value in c.items():
            total[key] += value
    table.totals = [None, None, *_cells(total)]
    return table


register(ReportSpec(KEY, run, ("period", "queue", "group", "operator"), order=75))
