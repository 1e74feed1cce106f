"""Report 2, service-level buckets (SipRing's): how many contacts were answered — and how many
abandoned — within 5, 10, 15, 20, 30, 45, 60, 90, 120, 180 and 300 seconds of joining the line.

One row per threshold N plus a last row for longer waits: ``answered`` = answered with a wait
in (previous threshold, N] s, ``answered_pct`` its share of all answered, ``answered_cum_pct``
the share answered within N s; the same for abandoned (short abandons included: every
customer who left is in some bucket). Read from the queue rollup's ``ans_N`` / ``abn_N``
(cumulative counts "within N s").
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db.models.reports import SL_THRESHOLDS
from omni.domain.reports.filters import Scope
from omni.domain.reports.queues import Sums, add, interval_sums
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.table import Chart, Column, Kind, ReportTable, pct

KEY = "sl_buckets"
LONGER = "> 300"
COLUMNS = (
    Column("within", Kind.LABEL, "Within, s"),
    Column("answered", Kind.COUNT, "Answered"),
    Column("answered_pct", Kind.PERCENT, "Answered, %"),
    Column("answered_cum_pct", Kind.PERCENT, "Answered, cumulative %"),
    Column("abandoned_in", Kind.COUNT, "Abandoned"),
    Column("abandoned_pct", Kind.PERCENT, "Abandoned, %"),
    Column("abandoned_cum_pct", Kind.PERCENT, "Abandoned, cumulative %"),
)


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    table = ReportTable(key=KEY, columns=COLUMNS, chart=Chart("bar", "within", ("answered", "abandoned_in")))
    total: Sums = {}
    for _, sums in await interval_sums(session, scope):
        add(total, sums)
    answered = total.get("answered", 0.0)
    abandoned = total.get("abandoned", 0.0)
    prev_ans = prev_abn = 0.0
    for n in SL_THRESHOLDS:
        ans, abn = total.get(f"ans_{n}", 0.0), total.get(f"abn_{n}", 0.0)
        table.rows.append(
            [
                str(n),
                int(ans - prev_ans),
                pct(ans - prev_ans, answered),
                pct(ans, answered),
                int(abn - prev_abn),
                pct(abn - prev_abn, abandoned),
                pct(abn, abandoned),
            ]
        )
        prev_ans, prev_abn = ans, abn
    table.rows.append(
        [
            LONGER,
            int(answered - prev_ans),
            pct(answered - prev_ans, answered),
            pct(answered, answered),
            int(abandoned - prev_abn),
            pct(abandoned - prev_abn, abandoned),
            pct(abandoned, abandoned),
        ]
    )
    table.totals = [
        None,
        int(answered),
        pct(answered, answered),
        None,
        int(abandoned),
        pct(abandoned, abandoned),
        None,
    ]
    return table


register(ReportSpec(KEY, run, ("period", "queue", "group", "channel", "inbox", "result_code"), order=20))
