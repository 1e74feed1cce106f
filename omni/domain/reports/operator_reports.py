"""Operator reports: performance, status times and result codes, read from the operator rollups.

Supervisors see only the operators of their scope (``Scope.user_ids``); an operator filter
narrows it. Work an operator did in a queue outside the supervisor's groups still counts for
that operator (the operator is theirs); a queue filter narrows to the queues asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, String, case, cast, func, literal, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports.daily import whole_days
from omni.domain.reports.filters import Scope
from omni.domain.reports.operators import SUMMED, open_span_seconds
from omni.domain.reports.period import INTERVAL, TOTAL_LABEL, Grouping, Period, group_start, local_midnight
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.table import Cell, Chart, Column, Kind, ReportTable, mean, pct

DERIVED = (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP)
CHOSEN_KINDS = (m.StatusKind.AVAILABLE, m.StatusKind.PAUSE, m.StatusKind.DND)
"""Kinds of the statuses an operator (or admin-defined status) chooses: one column each."""


def group_label(bucket: datetime, scope: Scope) -> datetime:
    """The row label of an interval: its local hour/day/… start; the period's first day for a total."""
    tz = scope.period.tz
    label = group_start(bucket, scope.filter.grouping, tz)
    if label == TOTAL_LABEL and scope.filter.grouping == Grouping.TOTAL:
        return local_midnight(scope.period.first_day, tz).astimezone(tz)
    return label


MAX_CASE_GROUPS = 400
"""Above this many row groups (e.g. 15-minute rows over months) the database groups by interval."""


@dataclass(frozen=True, slots=True)
class Grouper:
    """Groups rollup rows by report row (local hour, day, …) in the database.

    A month's status report reads ~10⁶ interval rows; summing them per local day in SQL (one
    ``CASE`` over the day boundaries, the same on SQLite and PostgreSQL) returns a few thousand
    rows instead of shipping every interval row to Python.
    """

    expr: Any
    labels: list[datetime] | None
    """Row label by the ``expr`` value (a group index); ``None``: ``expr`` is the interval start."""
    hourly: bool
    """Every row starts and ends on a whole UTC hour: per-hour rollup rows can be read instead."""
    starts: dict[datetime, datetime] | None = None
    """Row label by row start, when ``expr`` is the row start itself (``day_grouper``)."""

    def label(self, value: Any, scope: Scope) -> datetime:
        if self.starts is not None:
            found = self.starts.get(value)
            return found if found is not None else group_label(value, scope)
        return group_label(value, scope) if self.labels is None else self.labels[int(value)]


@lru_cache(maxsize=64)
def _row_bounds(period: Period, grouping: Grouping) -> tuple[tuple[datetime, ...], tuple[datetime, ...]]:
    """The (end, label) of every report row of ``period``: the same for each read of one report
    (a month walks 2,976 intervals; cached, the status report builds it once, not three times)."""
    ends: list[datetime] = []
    labels: list[datetime] = []
    for at in period.intervals():
        label = group_start(at, grouping, period.tz)
        if label == TOTAL_LABEL and grouping == Grouping.TOTAL:
            label = local_midnight(period.first_day, period.tz).astimezone(period.tz)
        if labels and labels[-1] == label:
            ends[-1] = at + INTERVAL
        else:
            labels.append(label)
            ends.append(at + INTERVAL)
    return tuple(ends), tuple(labels)


def grouper(column: Any, scope: Scope) -> Grouper:
    bounds, row_labels = _row_bounds(scope.period, scope.filter.grouping)
    ends, labels = list(bounds), list(row_labels)
    hourly = scope.period.start.minute == 0 and all(end.minute == 0 for end in ends)
    if not labels or len(labels) > MAX_CASE_GROUPS:
        return Grouper(column, None, hourly)
    whens = [(column < end, index) for index, end in enumerate(ends[:-1])]
    expr = case(*whens, else_=len(labels) - 1) if whens else literal(0)
    return Grouper(expr, labels, hourly)


def day_grouper(column: Any, scope: Scope) -> Grouper:
    """The grouping of a daily-tier column (``ReportStatusDay.day``, ``ReportHoldDay.day``): by the
    column itself when the report's rows are days (each tier row's ``day`` is its report row's
    start, so no ``CASE`` over the day bounds), else like ``grouper``."""
    if scope.filter.grouping != Grouping.DAY:
        return grouper(column, scope)
    ends, labels = _row_bounds(scope.period, scope.filter.grouping)
    starts = dict(zip((scope.period.start, *ends[:-1]), labels, strict=True))
    hourly = scope.period.start.minute == 0 and all(end.minute == 0 for end in ends)
    return Grouper(column, None, hourly, starts)


GROUP: Any = literal_column("grp")
"""Rows are grouped by the output column's name: the same ``CASE`` written twice would carry
two sets of bound parameters, and PostgreSQL would not see it as one expression."""


async def operator_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(m.User.id, m.User.display_name, m.User.username).where(m.User.id.in_(ids))
    )
    return {uid: display or username for uid, display, username in rows}


def operator_table(scope: Scope) -> tuple[Any, Grouper]:
    """The operator rollup to read (per hour when every row falls on whole hours) and its grouping."""
    g = grouper(m.ReportOperatorInterval.bucket, scope)
    if g.hourly:
        return m.ReportOperatorHour, grouper(m.ReportOperatorHour.bucket, scope)
    return m.ReportOperatorInterval, g


def _operator_rows(t: Any, scope: Scope, *, queues: bool = True) -> Any:
    """Rollup rows of the period narrowed by operator, channel and (when asked) queue."""
    conds: list[Any] = [t.bucket >= scope.period.start, t.bucket < scope.period.end]
    if scope.user_ids is not None:
        conds.append(t.user_id.in_(scope.user_ids))
    if scope.filter.channels:
        conds.append(t.channel.in_(scope.filter.channels))
    if queues and scope.filter.queue_ids and scope.queue_ids is not None:
        conds.append(t.queue_id.in_(scope.queue_ids))
    return conds


async def _operator_sums(session: AsyncSession, scope: Scope) -> dict[tuple[datetime, int], dict[str, float]]:
    """Per (row label, operator): every summed column, plus ``handled:<channel>``."""
    t, g = operator_table(scope)
    cols = [func.sum(getattr(t, c)) for c in SUMMED]
    stmt = (
        select(g.expr.label("grp"), t.user_id, t.channel, *cols)
        .where(*_operator_rows(t, scope))
        .group_by(GROUP, t.user_id, t.channel)
    )
    out: dict[tuple[datetime, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for grp, uid, channel, *values in await session.execute(stmt):
        row = out[(g.label(grp, scope), uid)]
        for name, value in zip(SUMMED, values, strict=True):
            row[name] += float(value or 0)
        row[f"handled:{channel}"] += float(values[SUMMED.index("handled")] or 0)
    return out


def _day_tier(scope: Scope) -> bool:
    """Rows of whole local days in the install's zone: the daily status tier holds them."""
    return whole_days(scope.period, scope.filter.grouping) and str(scope.config.tz) == str(scope.period.tz)


def _status_source(scope: Scope, *, day_rows: bool) -> tuple[Any, Grouper, list[Any]]:
    """The status tier a report reads (daily, hourly or 15-minute), its row grouping and the
    conditions on its rows: the period, no offline time, the scope's operators. ``day_rows``: on
    the daily tier, group by its ``day`` column when the rows are days (``day_grouper``)."""
    t: Any = m.ReportStatusInterval
    g = grouper(t.bucket, scope)
    at: Any = t.bucket
    # Offline time is in no column (logged-in time leaves it out) yet is most of an operator's
    # day: skipping it halves the rows a month sums. The daily tier does not store it.
    offline_kept = True
    if _day_tier(scope):
        t = m.ReportStatusDay
        g = day_grouper(t.day, scope) if day_rows else grouper(t.day, scope)
        at, offline_kept = t.day, False
    elif g.hourly:
        t = m.ReportStatusHour
        g, at = grouper(t.hour, scope), t.hour
    conds: list[Any] = [at >= scope.period.start, at < scope.period.end]
    if offline_kept:
        conds.append(t.status_code != m.StatusKind.OFFLINE)
    if scope.user_ids is not None:
        conds.append(t.user_id.in_(scope.user_ids))
    return t, g, conds


async def _logged_in(session: AsyncSession, scope: Scope) -> dict[tuple[datetime, int], float]:
    """Per (row label, operator): the logged-in seconds (every status but offline), the open
    spans added up to now; summed per code first, then the codes in Python (as the performance
    report always has: its contacts per hour round to 0.01, and another order of the additions
    can tip an exact half)."""
    t, g, conds = _status_source(scope, day_rows=False)
    stmt = (
        select(g.expr.label("grp"), t.user_id, t.status_code, func.sum(t.seconds))
        .where(*conds)
        .group_by(GROUP, t.user_id, t.status_code)
    )
    out: dict[tuple[datetime, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    connection = await session.connection()
    for grp, uid, code, secs in (await connection.execute(stmt)).all():
        out[(g.label(grp, scope), uid)][code] += float(secs or 0)
    live = await open_span_seconds(session, scope.period.start, scope.period.end, scope.now, scope.user_ids)
    for (bucket, uid, code), secs in live.items():
        out[(group_label(bucket, scope), uid)][code] += secs
    return {
        key: sum(secs for code, secs in v.items() if code != m.StatusKind.OFFLINE) for key, v in out.items()
    }


StatusColumn = frozenset[str] | None
"""The status codes one summed column adds up; ``None``: every code but offline (logged in)."""


def _plus(total: float | None, secs: float | None) -> float | None:
    """Seconds added to a summed column; ``None`` (no span of its codes at all) until some come."""
    return total if secs is None else (0.0 if total is None else total) + secs


async def _status_sums(
    session: AsyncSession, scope: Scope, columns: Sequence[StatusColumn], *, hold: bool = False
) -> dict[tuple[datetime, int], list[float | None]]:
    """Per (row label, operator): the seconds of each of ``columns``, the open spans added up to
    now; ``None`` where the operator spent no span at all in its codes. With ``hold``, one more
    value last: the seconds on hold (``None``: no hold at all).

    Summed in the database, one conditional sum (``FILTER``) a column: a month by day comes back
    as ~6,200 rows of a few numbers, where per-code rows (~37,000) folded into dicts in Python
    were two thirds of the month status report's time (cProfile at 1,000,000 conversations).
    On the daily tiers the hold comes in the same statement (the status and hold day rows as
    one ``UNION ALL``, grouped once): a second read of ~6,200 rows cost a round trip and as much
    Python again.
    """
    t, g, conds = _status_source(scope, day_rows=True)
    hold_in_sql = hold and _day_tier(scope)
    seconds: Any = t.seconds
    code: Any = t.status_code
    hold_sum: list[Any] = []
    if hold_in_sql:
        d = m.ReportHoldDay
        hold_conds: list[Any] = [d.day >= scope.period.start, d.day < scope.period.end]
        if scope.user_ids is not None:
            hold_conds.append(d.user_id.in_(scope.user_ids))
        if scope.filter.channels:
            hold_conds.append(d.channel.in_(scope.filter.channels))
        no_text, no_seconds = cast(null(), String), cast(null(), Float)
        rows = union_all(
            select(t.day, t.user_id, code, seconds, no_seconds.label("hold")).where(*conds),
            select(d.day, d.user_id, no_text, no_seconds, d.hold_sum).where(*hold_conds),
        ).subquery("day_rows")
        g = day_grouper(rows.c.day, scope)
        seconds, code = rows.c.seconds, rows.c.status_code
        t = rows.c
        hold_sum = [func.sum(rows.c.hold)]
    sums = [
        func.sum(seconds)
        if codes is None
        else func.sum(seconds).filter(
            code == next(iter(codes)) if len(codes) == 1 else code.in_(sorted(codes))
        )
        for codes in columns
        if codes is None or codes
    ]
    stmt = select(g.expr.label("grp"), t.user_id, *sums, *hold_sum).where(*([] if hold_in_sql else conds))
    stmt = stmt.group_by(GROUP, t.user_id)
    width = len(columns) + hold
    summed = [i for i, codes in enumerate(columns) if codes is None or codes] + (
        [len(columns)] if hold_in_sql else []
    )
    out: dict[tuple[datetime, int], list[float | None]] = {}
    # On the connection, not the ORM session: the ORM's row loading would cost more than the sums.
    connection = await session.connection()
    for grp, uid, *values in (await connection.execute(stmt)).all():
        key = (g.label(grp, scope), uid)
        row = out.get(key)
        if row is None and len(summed) == width:  # one result row a report row: most reads
            out[key] = values  # sums of float columns come as floats: no converted copy per row
            continue
        if row is None:
            row = out[key] = [None] * width
        for i, value in zip(summed, values, strict=True):
            row[i] = _plus(row[i], None if value is None else float(value))
    live = await open_span_seconds(session, scope.period.start, scope.period.end, scope.now, scope.user_ids)
    for (bucket, uid, span_code), secs in live.items():
        row = out.setdefault((group_label(bucket, scope), uid), [None] * width)
        for i, codes in enumerate(columns):
            if span_code in codes if codes is not None else span_code != m.StatusKind.OFFLINE:
                row[i] = _plus(row[i], secs)
    if hold and not hold_in_sql:
        # The hour or 15-minute operator rows: rows of operators with no status there are not shown.
        for key, secs in (await _hold_seconds(session, scope)).items():
            row = out.get(key)
            if row is not None:
                row[-1] = _plus(row[-1], secs)
    return out


async def _hold_seconds(session: AsyncSession, scope: Scope) -> dict[tuple[datetime, int], float]:
    """Per (row label, operator): the seconds on hold, from the hour or 15-minute operator rollup."""
    t, g = operator_table(scope)
    stmt = (
        select(g.expr.label("grp"), t.user_id, func.sum(t.hold_sum))
        # most rows have no hold: filtered first, the day CASE runs on a tenth of them
        .where(*_operator_rows(t, scope, queues=False), t.hold_sum > 0)
        .group_by(GROUP, t.user_id)
    )
    hold: dict[tuple[datetime, int], float] = defaultdict(float)
    for grp, uid, secs in await session.execute(stmt):
        hold[(g.label(grp, scope), uid)] += float(secs or 0)
    return hold


def _sorted_keys(keys: Iterable[tuple[datetime, int]], names: dict[int, str]) -> list[tuple[datetime, int]]:
    return sorted(set(keys), key=lambda k: (k[0], names.get(k[1], ""), k[1]))


# ---------------------------------------------------------------- operator performance


def _performance_cells(v: dict[str, float], channels: list[str], online: float) -> list[Cell]:
    handled = int(v.get("handled", 0))
    talk, hold, wrap = v.get("talk_sum", 0.0), v.get("hold_sum", 0.0), v.get("wrap_sum", 0.0)
    return [
        int(v.get("offers", 0)),
        int(v.get("accepted", 0)),
        int(v.get("declined", 0)),
        int(v.get("timed_out", 0)),
        handled,
        *[int(v.get(f"handled:{ch}", 0)) for ch in channels],
        mean(talk + hold + wrap, handled),
        mean(talk, handled),
        mean(hold, handled),
        mean(wrap, handled),
        int(v.get("ended_operator", 0)),
        int(v.get("ended_customer", 0)),
        int(v.get("ended_timeout", 0)),
        int(v.get("ended_system", 0)),
        int(v.get("transfers_made", 0)),
        int(v.get("transfers_received", 0)),
        round(online, 1),
        round(handled * 3600.0 / online, 2) if online else None,
        mean(v.get("frt_sum", 0.0), int(v.get("frt_count", 0))),
        pct(v.get("csat_good", 0), v.get("csat_count", 0)),
        round(v["csat_sum"] / v["csat_count"], 2) if v.get("csat_count") else None,
        int(v.get("csat_count", 0)),
    ]


async def operator_performance(session: AsyncSession, scope: Scope) -> ReportTable:
    sums = {} if scope.empty else await _operator_sums(session, scope)
    online = {} if scope.empty else await _logged_in(session, scope)
    channels = sorted(
        {k.split(":", 1)[1] for v in sums.values() for k, n in v.items() if k.startswith("handled:") and n}
    )
    columns = [
        Column("period", Kind.DATETIME, "Period"),
        Column("operator", Kind.LABEL, "Operator"),
        Column("offers", Kind.COUNT, "Offers"),
        Column("accepted", Kind.COUNT, "Accepted"),
        Column("declined", Kind.COUNT, "Declined"),
        Column("timed_out", Kind.COUNT, "Timed out"),
        Column("handled", Kind.COUNT, "Handled"),
        *[Column(f"handled_{ch}", Kind.COUNT, f"Handled: {ch}") for ch in channels],
        Column("aht", Kind.SECONDS, "AHT"),
        Column("avg_talk", Kind.SECONDS, "Average talk"),
        Column("avg_hold", Kind.SECONDS, "Average hold"),
        Column("avg_wrap_up", Kind.SECONDS, "Average wrap-up"),
        Column("ended_operator", Kind.COUNT, "Ended by operator"),
        Column("ended_customer", Kind.COUNT, "Ended by customer"),
        Column("ended_timeout", Kind.COUNT, "Ended by timeout"),
        Column("ended_system", Kind.COUNT, "Ended by system"),
        Column("transfers_made", Kind.COUNT, "Transfers made"),
        Column("transfers_received", Kind.COUNT, "Transfers received"),
        Column("logged_in_time", Kind.SECONDS, "Logged in"),
        Column("contacts_per_hour", Kind.NUMBER, "Contacts per hour"),
        Column("first_response", Kind.SECONDS, "First response"),
        Column("csat", Kind.PERCENT, "CSAT"),
        Column("csat_mean", Kind.NUMBER, "Mean rating"),
        Column("ratings", Kind.COUNT, "Ratings"),
    ]
    keys = [k for k, v in sums.items() if any(v.values())] + [k for k, s in online.items() if s > 0]
    names = await operator_names(session, (k[1] for k in keys))
    total: dict[str, float] = defaultdict(float)
    rows: list[list[Cell]] = []
    for key in _sorted_keys(keys, names):
        v = sums.get(key, {})
        for name, value in v.items():
            total[name] += value
        rows.append(
            [key[0], names.get(key[1], str(key[1])), *_performance_cells(v, channels, online.get(key, 0.0))]
        )
    totals: list[Cell] = [
        None,
        "",
        *_performance_cells(total, channels, sum(online.get(k, 0.0) for k in set(keys))),
    ]
    return ReportTable(
        key="operator_performance",
        columns=columns,
        rows=rows,
        totals=totals,
        chart=Chart("bar", "operator", ("handled", "declined", "timed_out")),
        notes=["rpt.note.operator_performance"],
    )


# ---------------------------------------------------------------- operator status times


async def operator_status(session: AsyncSession, scope: Scope) -> ReportTable:
    lang = scope.who.language
    statuses = list(await session.scalars(select(m.OperatorStatus).order_by(m.OperatorStatus.id)))
    chosen = [s for s in statuses if s.kind in CHOSEN_KINDS]
    available = frozenset(s.code for s in statuses if s.kind == m.StatusKind.AVAILABLE)
    # One summed column each: logged in, every chosen status, ringing, talking, wrap-up, idle.
    summed: list[StatusColumn] = [
        None,
        *[frozenset({s.code}) for s in chosen],
        *[frozenset({kind.value}) for kind in DERIVED],
        available,
    ]
    # The hold comes last in each row (on the daily tiers from the same statement).
    status = {} if scope.empty else await _status_sums(session, scope, summed, hold=True)
    columns = [
        Column("period", Kind.DATETIME, "Period"),
        Column("operator", Kind.LABEL, "Operator"),
        Column("logged_in_time", Kind.SECONDS, "Logged in"),
        *[
            Column(f"status_{s.code}", Kind.SECONDS, s.name_ru if lang == "ru" and s.name_ru else s.name)
            for s in chosen
        ],
        Column("ringing", Kind.SECONDS, "Ringing"),
        Column("talking", Kind.SECONDS, "Talking / chatting"),
        Column("hold", Kind.SECONDS, "Of which on hold"),
        Column("wrap_up", Kind.SECONDS, "Wrap-up"),
        Column("idle", Kind.SECONDS, "Idle"),
        Column("occupancy", Kind.PERCENT, "Occupancy"),
        Column("utilization", Kind.PERCENT, "Utilization"),
    ]

    def cells(v: Sequence[float | None], on_hold: float) -> list[Cell]:
        """One row's figures from its summed columns (in the order of ``summed``; the hold after
        them is ``on_hold``). A status the operator never was in shows 0.0; logged-in and idle
        time, sums over several codes, show a whole 0 when none of their codes had a span (as they
        always have: the JSON says ``0``)."""
        online, *per_status, ringing, talking, wrap, idle = v[: len(summed)]
        handling = (ringing or 0.0) + (talking or 0.0) + (wrap or 0.0)
        idle_secs = 0 if idle is None else idle
        online_secs = 0 if online is None else online
        return [
            round(online_secs, 1),
            *[round(secs or 0.0, 1) for secs in per_status],
            round(ringing or 0.0, 1),
            round(talking or 0.0, 1),
            round(on_hold, 1),
            round(wrap or 0.0, 1),
            round(idle_secs, 1),
            pct(handling, handling + idle_secs),
            pct(handling + idle_secs, online_secs),
        ]

    keys = [k for k, v in status.items() if (v[0] or 0.0) > 0]
    names = await operator_names(session, (k[1] for k in keys))
    ordered = _sorted_keys(keys, names)
    rows: list[list[Cell]] = [
        [key[0], names.get(key[1], str(key[1])), *cells(v, v[-1] or 0.0)]
        for key, v in zip(ordered, map(status.__getitem__, ordered), strict=True)
    ]
    total: list[float | None] = [None] * len(summed)
    for v in map(status.__getitem__, ordered):  # row by row, in the rows' order, as before
        for i, secs in enumerate(v[: len(summed)]):
            if secs is not None:
                before = total[i]
                total[i] = (0.0 if before is None else before) + secs
    return ReportTable(
        key="operator_status",
        columns=columns,
        rows=rows,
        totals=[None, "", *cells(total, sum(status[k][-1] or 0.0 for k in ordered))],
        chart=Chart("stacked", "operator", ("idle", "ringing", "talking", "wrap_up")),
        notes=["rpt.note.operator_status"],
    )


# ---------------------------------------------------------------- result codes


async def result_codes(session: AsyncSession, scope: Scope) -> ReportTable:
    """Result codes of the handled contacts: per queue, then per operator (count, share)."""
    lang = scope.who.language
    columns = [
        Column("period", Kind.DATETIME, "Period"),
        Column("queue", Kind.LABEL, "Queue"),
        Column("operator", Kind.LABEL, "Operator"),
        Column("result_code", Kind.LABEL, "Result code"),
        Column("count", Kind.COUNT, "Count"),
        Column("share", Kind.PERCENT, "Share"),
    ]
    if scope.empty:
        return ReportTable(key="result_codes", columns=columns, totals=[None, "", "", "", 0, None])
    t, g = operator_table(scope)
    conds: list[Any] = [
        t.bucket >= scope.period.start,
        t.bucket < scope.period.end,
        t.result_code_id != 0,
        t.handled > 0,
    ]
    if scope.filter.channels:
        conds.append(t.channel.in_(scope.filter.channels))
    if scope.filter.result_code_ids:
        conds.append(t.result_code_id.in_(scope.filter.result_code_ids))
    stmt = (
        select(g.expr.label("grp"), t.queue_id, t.user_id, t.result_code_id, func.sum(t.handled))
        .where(*conds)
        .group_by(GROUP, t.queue_id, t.user_id, t.result_code_id)
    )
    by_queue: dict[tuple[datetime, int, int], int] = defaultdict(int)
    by_user: dict[tuple[datetime, int, int], int] = defaultdict(int)
    asked_users = bool(scope.filter.user_ids or scope.filter.group_ids)
    asked_queues = bool(scope.filter.queue_ids or scope.filter.group_ids)
    for grp, qid, uid, rc, total in await session.execute(stmt):
        label, n = g.label(grp, scope), int(total or 0)
        in_queues = scope.queue_ids is None or qid in scope.queue_ids
        in_users = scope.user_ids is None or uid in scope.user_ids
        if in_queues and (in_users or not asked_users):
            by_queue[(label, qid, rc)] += n
        if in_users and (in_queues or not asked_queues):
            by_user[(label, uid, rc)] += n
    codes = {r.id: r.name_in(lang) for r in await session.scalars(select(m.ResultCode))}
    queues: dict[int, str] = {
        qid: name for qid, name in await session.execute(select(m.Queue.id, m.Queue.name))
    }
    users = await operator_names(session, (k[1] for k in by_user))
    rows: list[list[Cell]] = []

    def block(counts: dict[tuple[datetime, int, int], int], name: dict[int, str], queue_side: bool) -> None:
        whole: dict[tuple[datetime, int], int] = defaultdict(int)
        for (label, who, _), n in counts.items():
            whole[(label, who)] += n
        for (label, who, rc), n in sorted(
            counts.items(),
            key=lambda kv: (kv[0][0], name.get(kv[0][1], ""), kv[0][1], -kv[1], codes.get(kv[0][2], "")),
        ):
            who_name = name.get(who, str(who))
            rows.append(
                [
                    label,
                    who_name if queue_side else "",
                    "" if queue_side else who_name,
                    codes.get(rc, str(rc)),
                    n,
                    pct(n, whole[(label, who)]),
                ]
            )

    block(by_queue, queues, True)
    block(by_user, users, False)
    total = sum(by_queue.values())
    return ReportTable(
        key="result_codes",
        columns=columns,
        rows=rows,
        totals=[None, "", "", "", total, 100.0 if total else None],
        chart=Chart("pie", "result_code", ("count",)),
        notes=["rpt.note.result_codes"],
    )


register(
    ReportSpec(
        "operator_performance",
        operator_performance,
        filters=("period", "grouping", "queue", "group", "operator", "channel"),
        order=30,
    )
)
register(
    ReportSpec(
        "operator_status", operator_status, filters=("period", "grouping", "group", "operator"), order=40
    )
)
register(
    ReportSpec(
        "result_codes",
        result_codes,
        filters=("period", "grouping", "queue", "group", "operator", "channel", "result_code"),
        order=50,
    )
)
