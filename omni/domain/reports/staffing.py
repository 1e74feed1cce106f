"""The staffing report: operators needed per interval (Erlang C) next to those actually there.

Per 15- or 30-minute interval of the period (local time, install zone):

* **offered** and **AHT** from the queue interval rollup (``ReportQueueInterval``: offered
  excludes short abandons, AHT = (talk + hold + wrap-up) / handled);
* **needed**: for each queue × medium of the interval, the fewest operators meeting the target
  SL (default 80 %) within the queue's ``sla_seconds`` (``erlang.agents_needed``; chats with
  ``erlang.chat_agents_needed``, ``k`` chats per operator), summed over queues and media — each
  queue is staffed on its own, which over-counts operators who serve several queues a little
  (pooling would need fewer), the usual conservative choice;
* for a past or current interval "needed" is computed from the **actual** arrivals; for an
  interval that has not begun yet (a future day) it is a **forecast**: arrivals, handled and
  handle time averaged over the same local weekday and clock time of the last ``weeks`` weeks
  (default 4; of those weeks only the ones already over count — a day more than a week ahead
  averages fewer weeks — and a week with no rows counts as zero arrivals, so a new install
  under-forecasts until it has that many weeks of history);
* **staffed**: operators ready for or doing work (status kind available, ringing, talking,
  wrap-up) and **logged in** (any status but offline), each as the average number over the
  interval (operator-seconds / interval seconds). Read from the status-time rollup
  (``report_status_intervals``, closed spans split per interval) plus the spans still open; an
  interval cut short by "now" is split from ``status_history`` (``_rollup_presence``);
* **SL**: actual answered within the queue's threshold / offered.

Options (``Scope.extra``, see ``options``): ``target_sl`` (percent), ``interval_minutes`` (15 or
30), ``weeks`` (forecast history), ``max_occupancy`` (percent), ``chat_concurrency`` (chats per
operator; default from the operators' capacity / chat weight).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.calls import VOICE
from omni.domain.errors import InvalidInput
from omni.domain.reports import erlang
from omni.domain.reports.filters import Scope
from omni.domain.reports.operators import open_span_seconds
from omni.domain.reports.period import INTERVAL, floor_interval
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.table import Cell, Chart, Column, Kind, ReportTable, pct

KEY = "staffing"
STAFFED_KINDS = (m.StatusKind.AVAILABLE, m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP)
"""Status kinds in which an operator counts as staffing the lines (ready or working)."""
DEFAULT_TARGET_SL = 80.0
DEFAULT_WEEKS = 4
DEFAULT_CONCURRENCY = 3

COLUMNS = (
    Column("interval", Kind.LABEL, "Interval"),
    Column("basis", Kind.TEXT, "Basis", labels="rpt.basis"),
    Column("offered", Kind.NUMBER, "Offered"),
    Column("aht", Kind.SECONDS, "AHT"),
    Column("traffic", Kind.NUMBER, "Traffic, erlangs"),
    Column("needed_voice", Kind.COUNT, "Needed for calls"),
    Column("needed_chat", Kind.COUNT, "Needed for chats"),
    Column("needed", Kind.COUNT, "Operators needed"),
    Column("staffed", Kind.NUMBER, "Operators staffed"),
    Column("logged_in", Kind.NUMBER, "Operators logged in"),
    Column("staffing_gap", Kind.NUMBER, "Staffed minus needed"),
    Column("sl", Kind.PERCENT, "SL"),
)
NOTES = ["rpt.note.staffing_method"]


@dataclass(frozen=True, slots=True)
class Options:
    target_sl: float = DEFAULT_TARGET_SL
    """Percent answered within each queue's ``sla_seconds``."""
    interval_minutes: int = 15
    weeks: int = DEFAULT_WEEKS
    max_occupancy: float | None = None
    """Percent; operators are added until occupancy is at most this."""
    chat_concurrency: int | None = None


def options(extra: dict[str, object]) -> Options:
    """Read and check the report's own settings from ``Scope.extra`` (each refusal names its field)."""

    def number(name: str, low: float, high: float) -> float | None:
        value = extra.get(name)
        if value is None or value == "":
            return None
        try:
            got = float(str(value))
        except ValueError:
            got = math.nan
        if not low <= got <= high:
            raise InvalidInput("{field} must be between {min} and {max}", field=name, min=low, max=high)
        return got

    target = number("target_sl", 1, 99.9)
    minutes = number("interval_minutes", 15, 30)
    if minutes is not None and minutes not in (15, 30):
        raise InvalidInput("{field} must be 15 or 30", field="interval_minutes")
    weeks = number("weeks", 1, 52)
    occupancy = number("max_occupancy", 1, 100)
    concurrency = number("chat_concurrency", 1, 50)
    return Options(
        target_sl=DEFAULT_TARGET_SL if target is None else target,
        interval_minutes=15 if minutes is None else int(minutes),
        weeks=DEFAULT_WEEKS if weeks is None else int(weeks),
        max_occupancy=occupancy,
        chat_concurrency=None if concurrency is None else int(concurrency),
    )


@dataclass(slots=True)
class Load:
    """Arrivals and handling of one queue × medium over one interval (summed or averaged)."""

    offered: float = 0.0
    answered_in_sl: float = 0.0
    handled: float = 0.0
    handle_sum: float = 0.0

    def add(self, other: Load, weight: float = 1.0) -> None:
        self.offered += other.offered * weight
        self.answered_in_sl += other.answered_in_sl * weight
        self.handled += other.handled * weight
        self.handle_sum += other.handle_sum * weight

    @property
    def aht(self) -> float | None:
        return self.handle_sum / self.handled if self.handled else None


Key = tuple[int, bool]
"""(queue id, is voice)."""


def _bin(bucket: datetime, tz: tzinfo, minutes: int) -> datetime:
    """The local start of the report interval (15 or 30 minutes) holding a 15-minute bucket."""
    local = bucket.astimezone(tz)
    return local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)


def _weeks_back(bucket: datetime, tz: tzinfo, weeks: int) -> datetime:
    """The same local weekday and clock time ``weeks`` weeks earlier, as a UTC bucket."""
    local = bucket.astimezone(tz).replace(tzinfo=None) - timedelta(weeks=weeks)
    return floor_interval(local.replace(tzinfo=tz).astimezone(UTC))


async def _loads(
    session: AsyncSession, scope: Scope, start: datetime, end: datetime
) -> dict[datetime, dict[Key, Load]]:
    q = m.ReportQueueInterval
    stmt = (
        select(
            q.bucket,
            q.queue_id,
            q.channel,
            func.sum(q.offered),
            func.sum(q.answered_in_sl),
            func.sum(q.handled),
            func.sum(q.talk_sum + q.hold_sum + q.wrap_sum),
        )
        .where(q.bucket >= start, q.bucket < end)
        .group_by(q.bucket, q.queue_id, q.channel)
    )
    f = scope.filter
    if scope.queue_ids is not None:
        stmt = stmt.where(q.queue_id.in_(scope.queue_ids))
    if f.channels:
        stmt = stmt.where(q.channel.in_(f.channels))
    if f.inbox_ids:
        stmt = stmt.where(q.inbox_id.in_(f.inbox_ids))
    if f.result_code_ids:
        stmt = stmt.where(q.result_code_id.in_(f.result_code_ids))
    out: dict[datetime, dict[Key, Load]] = defaultdict(dict)
    for bucket, queue_id, channel, offered, in_sl, handled, handle in await session.execute(stmt):
        key = (int(queue_id), channel == VOICE)
        load = out[bucket.astimezone(UTC)].setdefault(key, Load())
        load.add(Load(float(offered or 0), float(in_sl or 0), float(handled or 0), float(handle or 0)))
    return out


async def _operators(session: AsyncSession, scope: Scope) -> set[int] | None:
    """Operators whose status time counts: the scope's, narrowed to the queues' members when
    the report was asked for particular queues or groups (``None`` = everyone)."""
    users = None if scope.user_ids is None else set(scope.user_ids)
    if scope.filter.queue_ids or scope.filter.group_ids:
        members = set(
            await session.scalars(
                select(m.QueueMember.user_id).where(m.QueueMember.queue_id.in_(scope.queue_ids or ()))
            )
        )
        users = members if users is None else users & members
    return users


PRESENCE_SQL = text(
    """
    WITH spans AS (
        SELECT greatest(h.started_at, :lo) AS lo,
               least(coalesce(h.ended_at, :hi), :hi) AS hi,
               st.kind IN :staffed AS staffed
        FROM status_history h JOIN operator_statuses st ON st.id = h.status_id
        WHERE h.started_at < :hi AND (h.ended_at IS NULL OR h.ended_at > :lo)
          AND st.kind <> 'offline' AND (:all_users OR h.user_id = ANY(:users))
    )
    SELECT b.at,
           sum(extract(epoch FROM least(s.hi, b.at + interval '15 minutes') - greatest(s.lo, b.at))),
           coalesce(sum(extract(epoch FROM least(s.hi, b.at + interval '15 minutes') - greatest(s.lo, b.at)))
                    FILTER (WHERE s.staffed), 0)
    FROM spans s,
         generate_series(to_timestamp(floor(extract(epoch FROM s.lo) / 900) * 900),
                         s.hi - interval '1 microsecond',
                         interval '15 minutes') AS b(at)
    WHERE s.hi > s.lo
    GROUP BY b.at
    """
).bindparams(bindparam("staffed", expanding=True))
"""Operator-seconds per UTC 15-minute bucket, split in the database (PostgreSQL): a month of
spans is hundreds of thousands of rows, too many to split one by one in Python."""


async def _presence(
    session: AsyncSession,
    scope: Scope,
    users: set[int] | None,
    end: datetime,
    tz: tzinfo,
    minutes: int,
    in_database: bool | None = None,
    start: datetime | None = None,
) -> tuple[dict[datetime, float], dict[datetime, float]]:
    """Operator-seconds staffed and logged in per report interval, from ``status_history``.

    ``in_database``: split the spans in PostgreSQL (default there) or here (other databases).
    ``start``: from here instead of the period's start (the partial interval ``_rollup_presence``
    leaves to the raw spans).
    """
    start = start or scope.period.start
    staffed: dict[datetime, float] = defaultdict(float)
    logged: dict[datetime, float] = defaultdict(float)
    if end <= start:
        return staffed, logged
    if in_database is None:
        in_database = session.get_bind().dialect.name == "postgresql"
    if in_database:
        # The planner can't estimate generate_series per span (it guesses 1,000 rows each), so it
        # JIT-compiles the query: seconds of compiling for a query that runs in a fraction of that.
        await session.execute(text("SET LOCAL jit = off"))
        result = await session.execute(
            PRESENCE_SQL,
            {
                "lo": start,
                "hi": end,
                "staffed": [str(k) for k in STAFFED_KINDS],
                "all_users": users is None,
                "users": sorted(users or ()),
            },
        )
        for at, logged_s, staffed_s in result:
            label = _bin(at, tz, minutes)
            logged[label] += float(logged_s or 0)
            staffed[label] += float(staffed_s or 0)
        return staffed, logged
    # Other databases (SQLite, embedded installs): split the spans here.
    sh, st = m.StatusHistory, m.OperatorStatus
    stmt = (
        select(sh.started_at, sh.ended_at, st.kind)
        .join(st, st.id == sh.status_id)
        .where(
            sh.started_at < end,
            or_(sh.ended_at.is_(None), sh.ended_at > start),
            st.kind != m.StatusKind.OFFLINE,
        )
    )
    if users is not None:
        stmt = stmt.where(sh.user_id.in_(users))
    for began, ended, kind in await session.execute(stmt):
        lo = max(began.astimezone(UTC), start)
        hi = min((ended or end).astimezone(UTC), end)
        at = floor_interval(lo)
        while at < hi:
            seconds = (min(hi, at + INTERVAL) - max(lo, at)).total_seconds()
            if seconds > 0:
                label = _bin(at, tz, minutes)
                logged[label] += seconds
                if kind in STAFFED_KINDS:
                    staffed[label] += seconds
            at += INTERVAL
    return staffed, logged


async def _rollup_presence(
    session: AsyncSession, scope: Scope, users: set[int] | None, end: datetime, tz: tzinfo, minutes: int
) -> tuple[dict[datetime, float], dict[datetime, float]]:
    """``_presence`` read from the status-time rollup (``report_status_intervals``, closed spans
    split per interval) plus the spans still open, so a month reads its interval rows instead
    of splitting every span of the month. A last interval cut short by ``end`` (now) is split
    from the raw spans: a rollup row holds its whole interval."""
    start = scope.period.start
    staffed: dict[datetime, float] = defaultdict(float)
    logged: dict[datetime, float] = defaultdict(float)
    if end <= start:
        return staffed, logged
    whole = max(start, floor_interval(end))
    kinds = {
        code: kind
        for code, kind in await session.execute(select(m.OperatorStatus.code, m.OperatorStatus.kind))
    }
    t = m.ReportStatusInterval
    stmt = (
        select(t.bucket, t.status_code, func.sum(t.seconds))
        .where(t.bucket >= start, t.bucket < whole, t.status_code != m.StatusKind.OFFLINE)
        .group_by(t.bucket, t.status_code)
    )
    if users is not None:
        stmt = stmt.where(t.user_id.in_(sorted(users)))
    connection = await session.connection()  # plain rows: no ORM row loading
    rows: list[tuple[datetime, str, float]] = [
        (b, c, float(x or 0)) for b, c, x in await connection.execute(stmt)
    ]
    live = await open_span_seconds(session, start, whole, end, users)
    rows += [(b, c, x) for (b, _uid, c), x in live.items()]
    for bucket, code, secs in rows:
        kind = kinds.get(code)
        if kind is None or kind == m.StatusKind.OFFLINE or secs <= 0:
            continue
        label = _bin(bucket.astimezone(UTC), tz, minutes)
        logged[label] += secs
        if kind in STAFFED_KINDS:
            staffed[label] += secs
    if whole < end:
        part_staffed, part_logged = await _presence(session, scope, users, end, tz, minutes, start=whole)
        for label, secs in part_staffed.items():
            staffed[label] += secs
        for label, secs in part_logged.items():
            logged[label] += secs
    return staffed, logged


async def _concurrency(session: AsyncSession, users: set[int] | None) -> int:
    """Chats an operator works at once: the median of capacity // chat weight of chat operators."""
    stmt = select(m.User.capacity, m.User.chat_weight).where(
        m.User.role == m.Role.OPERATOR, m.User.is_active.is_(True), m.User.handles_chat.is_(True)
    )
    if users is not None:
        stmt = stmt.where(m.User.id.in_(users))
    slots = [max(1, cap // max(1, w)) for cap, w in await session.execute(stmt)]
    return int(statistics.median_low(slots)) if slots else DEFAULT_CONCURRENCY


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    table = ReportTable(
        KEY, COLUMNS, notes=list(NOTES), chart=Chart("line", "interval", ("needed", "staffed"))
    )
    if scope.empty:
        return table
    opts = options(scope.extra)
    tz = scope.period.tz
    period = scope.period
    now_bucket = floor_interval(scope.now)
    # Forecasts read the same weekday of past weeks: load those weeks only when some interval
    # of the period has not begun yet (the 2 hours cover a DST shift between the weeks).
    first_future = max(period.start, now_bucket)
    load_from = period.start
    if first_future < period.end:
        load_from = min(period.start, _weeks_back(first_future, tz, opts.weeks) - timedelta(hours=2))
    loads = await _loads(session, scope, load_from, period.end)
    sla = {qid: secs for qid, secs in await session.execute(select(m.Queue.id, m.Queue.sla_seconds))}
    users = await _operators(session, scope)
    concurrency = opts.chat_concurrency or await _concurrency(session, users)
    staffed, logged = await _rollup_presence(
        session, scope, users, min(period.end, scope.now), tz, opts.interval_minutes
    )

    # Per report interval: queue × medium loads, actual or forecast.
    bins: dict[datetime, dict[Key, Load]] = {}
    forecast: dict[datetime, bool] = {}
    for bucket in period.intervals():
        label = _bin(bucket, tz, opts.interval_minutes)
        per = bins.setdefault(label, {})
        future = bucket >= now_bucket
        forecast[label] = forecast.get(label, False) or future
        if not future:
            for key, load in loads.get(bucket, {}).items():
                per.setdefault(key, Load()).add(load)
            continue
        pasts = [p for p in (_weeks_back(bucket, tz, w) for w in range(1, opts.weeks + 1)) if p < now_bucket]
        for past in pasts:
            for key, load in loads.get(past, {}).items():
                per.setdefault(key, Load()).add(load, 1.0 / len(pasts))

    # Fallback AHT per queue × medium when an interval has arrivals but nothing handled yet.
    overall: dict[Key, Load] = defaultdict(Load)
    for per in bins.values():
        for key, load in per.items():
            overall[key].add(load)

    seconds = opts.interval_minutes * 60
    target = opts.target_sl / 100.0
    max_occ = None if opts.max_occupancy is None else opts.max_occupancy / 100.0
    tot, actual = Load(), Load()
    for label in sorted(bins):
        per = bins[label]
        is_forecast = forecast[label]
        need = {True: 0, False: 0}
        interval_load = Load()
        erlangs = 0.0
        for (queue_id, voice), load in per.items():
            interval_load.add(load)
            aht = load.aht or overall[(queue_id, voice)].aht
            if load.offered <= 0 or aht is None:
                continue
            a = erlang.traffic(load.offered, aht, seconds)
            threshold = sla.get(queue_id, 20)
            if voice:
                got = erlang.agents_needed(a, aht, target, threshold, max_occ)
                erlangs += a
            else:
                got = erlang.chat_agents_needed(a, aht, concurrency, target, threshold, max_occ)
                erlangs += a / concurrency
            need[voice] += got.agents
        tot.add(interval_load)
        if not is_forecast:
            actual.add(interval_load)
        needed = need[True] + need[False]
        over = label.astimezone(UTC) + timedelta(minutes=opts.interval_minutes) <= scope.now
        have = round(staffed.get(label, 0.0) / seconds, 2) if over else None
        in_ = round(logged.get(label, 0.0) / seconds, 2) if over else None
        row: list[Cell] = [
            label,
            "forecast" if is_forecast else "actual",
            round(interval_load.offered, 1),
            None if interval_load.aht is None else round(interval_load.aht, 1),
            round(erlangs, 2),
            need[True],
            need[False],
            needed,
            have,
            in_,
            None if have is None else round(have - needed, 2),
            None if is_forecast else pct(interval_load.answered_in_sl, interval_load.offered),
        ]
        table.rows.append(row)
    table.totals = [
        None,
        None,
        round(tot.offered, 1),
        None if tot.aht is None else round(tot.aht, 1),
        None,
        None,
        None,
        max((int(r[7]) for r in table.rows if isinstance(r[7], int)), default=0),
        None,
        None,
        None,
        pct(actual.answered_in_sl, actual.offered),
    ]
    return table


register(
    ReportSpec(
        KEY,
        run,
        (
            "period",
            "queue",
            "group",
            "operator",
            "channel",
            "inbox",
            "target_sl",
            "interval_minutes",
            "weeks",
            "max_occupancy",
            "chat_concurrency",
        ),
        order=90,
    )
)
