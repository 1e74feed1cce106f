"""Quality assessment reports (``omni.domain.qa``), read from ``qa_evaluations``:

* ``qa`` — per period group, queue and operator graded: evaluations, average score and how
  many a critical item zeroed; the totals row averages every evaluation of the period.
* ``qa_calibration`` — contacts graded by two graders or more: each grader's score on it and
  the spread (highest − lowest), widest spread first, so graders can agree on the scale.

An evaluation belongs to the moment it was made and to the queue its conversation was in
then. Exported like every report (CSV/XLSX, ``omni.domain.reports.exports``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports.filters import Scope
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.scoped import group_label, queue_names, user_names
from omni.domain.reports.table import Chart, Column, Kind, ReportTable

QA_COLUMNS = (
    Column("period", Kind.DATETIME, "Period"),
    Column("queue", Kind.LABEL, "Queue"),
    Column("operator", Kind.LABEL, "Operator"),
    Column("qa_evaluations", Kind.COUNT, "Evaluations"),
    Column("qa_score_avg", Kind.NUMBER, "Average score"),
    Column("qa_critical_fails", Kind.COUNT, "Critical fails"),
)
CALIBRATION_COLUMNS = (
    Column("conversation_id", Kind.COUNT, "Conversation"),
    Column("queue", Kind.LABEL, "Queue"),
    Column("operator", Kind.LABEL, "Operator"),
    Column("grader", Kind.LABEL, "Grader"),
    Column("qa_score", Kind.NUMBER, "Score"),
    Column("qa_graders", Kind.COUNT, "Graders"),
    Column("qa_spread", Kind.NUMBER, "Spread"),
)


def _where(scope: Scope) -> list[ColumnElement[bool]]:
    e = m.QaEvaluation
    where: list[ColumnElement[bool]] = [e.created_at >= scope.period.start, e.created_at < scope.period.end]
    if scope.queue_ids is not None:
        where.append(e.queue_id.in_(scope.queue_ids) if scope.queue_ids else false())
    f = scope.filter
    if (f.user_ids or f.group_ids) and scope.user_ids is not None:
        where.append(e.operator_id.in_(scope.user_ids) if scope.user_ids else false())
    return where


def _avg(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


async def run_qa(session: AsyncSession, scope: Scope) -> ReportTable:
    table = ReportTable(key="qa", columns=QA_COLUMNS, chart=Chart("bar", "operator", ("qa_score_avg",)))
    if scope.empty:
        return table
    e = m.QaEvaluation
    rows = await session.execute(
        select(e.created_at, e.queue_id, e.operator_id, e.score, e.critical_failed).where(*_where(scope))
    )
    groups: dict[tuple[datetime, int, int], list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for created_at, queue_id, operator_id, score, critical in rows.all():
        g = groups[(group_label(created_at, scope), queue_id or 0, operator_id or 0)]
        g[0] += 1
        g[1] += score
        g[2] += int(bool(critical))
    queues = await queue_names(session, {k[1] for k in groups})
    users = await user_names(session, {k[2] for k in groups})
    count = total = fails = 0.0
    for (period, queue_id, user_id), (n, s, c) in sorted(
        groups.items(), key=lambda kv: (kv[0][0], queues.get(kv[0][1], ""), users.get(kv[0][2], ""))
    ):
        table.rows.append(
            [period, queues.get(queue_id, "—"), users.get(user_id, "—"), int(n), _avg(s, int(n)), int(c)]
        )
        count, total, fails = count + n, total + s, fails + c
    table.totals = [None, None, None, int(count), _avg(total, int(count)), int(fails)]
    return table


async def run_calibration(session: AsyncSession, scope: Scope) -> ReportTable:
    table = ReportTable(key="qa_calibration", columns=CALIBRATION_COLUMNS)
    if scope.empty:
        return table
    e = m.QaEvaluation
    where = _where(scope)
    multi = (
        select(e.conversation_id)
        .where(*where)
        .group_by(e.conversation_id)
        .having(func.count(func.distinct(e.grader_id)) >= 2)
    )
    rows = (
        await session.execute(
            select(e.conversation_id, e.queue_id, e.operator_id, e.grader_id, e.score)
            .where(*where, e.conversation_id.in_(multi))
            .order_by(e.conversation_id, e.id)
        )
    ).all()
    by_conv: dict[int, list[tuple[int, int, int, float]]] = defaultdict(list)
    for conv_id, queue_id, operator_id, grader_id, score in rows:
        by_conv[conv_id].append((queue_id or 0, operator_id or 0, grader_id or 0, score))
    queues = await queue_names(session, {r[0] for rs in by_conv.values() for r in rs})
    users = await user_names(session, {u for rs in by_conv.values() for r in rs for u in (r[1], r[2])})
    spreads = {c: max(r[3] for r in rs) - min(r[3] for r in rs) for c, rs in by_conv.items()}
    for conv_id in sorted(by_conv, key=lambda c: (-spreads[c], c)):
        graders = len({r[2] for r in by_conv[conv_id]})
        for queue_id, operator_id, grader_id, score in by_conv[conv_id]:
            table.rows.append(
                [
                    conv_id,
                    queues.get(queue_id, "—"),
                    users.get(operator_id, "—"),
                    users.get(grader_id, "—"),
                    score,
                    graders,
                    round(spreads[conv_id], 1),
                ]
            )
    return table


register(ReportSpec("qa", run_qa, ("period", "grouping", "queue", "group", "operator"), order=80))
register(ReportSpec("qa_calibration", run_calibration, ("period", "queue", "group", "operator"), order=81))
