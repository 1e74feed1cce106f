"""Report 7, channels and inboxes (sites) side by side: volume and outcomes per channel × inbox
over the period, from the queue rollup rows (same figures as the queue summary)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports.filters import Scope
from omni.domain.reports.queues import RQI, Sums, add, figures, interval_sums
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.table import Cell, Chart, Column, Kind, ReportTable

KEY = "channels"
FIGURES = (
    Column("offered", Kind.COUNT, "Offered"),
    Column("answered", Kind.COUNT, "Answered"),
    Column("abandoned", Kind.COUNT, "Abandoned"),
    Column("abandoned_short", Kind.COUNT, "Short abandons"),
    Column("missed", Kind.COUNT, "Missed"),
    Column("overflowed", Kind.COUNT, "Overflowed"),
    Column("callbacks_made", Kind.COUNT, "Callbacks made"),
    Column("sl_pct", Kind.PERCENT, "Service level"),
    Column("asa", Kind.SECONDS, "ASA"),
    Column("aht", Kind.SECONDS, "AHT"),
)
COLUMNS = (
    Column("channel", Kind.LABEL, "Channel", labels="enum.channel"),
    Column("inbox", Kind.LABEL, "Inbox"),
    *FIGURES,
)


def _cells(s: Sums) -> list[Cell]:
    values: dict[str, Any] = figures(s)
    return [values[c.key] for c in FIGURES]


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    table = ReportTable(
        key=KEY, columns=COLUMNS, chart=Chart("bar", "inbox", ("answered", "missed", "abandoned"))
    )
    rows = await interval_sums(session, scope, RQI.channel, RQI.inbox_id)
    if not rows:
        return table
    names = {k: v for k, v in await session.execute(select(m.Inbox.id, m.Inbox.name))}
    total: Sums = {}
    for (channel, inbox_id), sums in sorted(rows, key=lambda r: (r[0][0], names.get(r[0][1], ""))):
        table.rows.append([channel, names.get(inbox_id, "—"), *_cells(sums)])
        add(total, sums)
    table.totals = [None, None, *_cells(total)]
    return table


register(ReportSpec(KEY, run, ("period", "queue", "group", "channel", "inbox", "result_code"), order=70))
