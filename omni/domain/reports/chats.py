"""Chat metrics and chat concurrency (issue 12, report 6), and the CSAT figures of every contact.

Definitions (docs/reports.md, "Chat metrics"):

* A conversation belongs to the interval its wait began in (``first_enqueued_at``), like every
  contact; conversations that never queued (the bot kept them) are the bot funnel's, not here.
* **First response time (FRT)** = from the start of the wait (``first_enqueued_at``) to the first
  operator message (``direction = "out"`` with an author; bot and automated messages have none):
  what the customer waited for a person, queue time included.
* **Reply time**: each run of customer messages is answered by the next operator message; the
  time from the first customer message of the run to that reply is one reply time (messages
  written before the wait began — to the bot, or the first one — count from the start of the
  wait: nobody could answer them earlier). Average reply time = their mean.
* **First response after accepting**: from ``accepted_at`` to the operator's first message after
  it — the operator's own part, as the operator-performance report counts it.
* Buckets: first responses within 30/60/180/300 s (cumulative, "≤").
* Closed by: ``Conversation.closed_by`` — operator, timeout, customer (the rest: bot, system).
* Concurrency per operator: each chat occupies its operator from ``accepted_at`` to ``closed_at``
  (open ones until now); split at interval boundaries. Peak = most chats at once; average =
  chat-seconds / seconds with at least one chat (how many at once while chatting).
* CSAT: ``variables["csat"]`` (1..5, or 1..``csat_scale`` mapped onto 1..5), 4 or 5 is satisfied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.chat_reports import FRT_THRESHOLDS
from omni.domain.reports import registry, rollup_sql, rollups
from omni.domain.reports.filters import Scope
from omni.domain.reports.period import INTERVAL, floor_interval
from omni.domain.reports.rollups import Changes
from omni.domain.reports.scoped import Labeler, chunks, conditions, group_index, user_names
from omni.domain.reports.table import Cell, Chart, Column, Kind, ReportTable, mean, pct

CSAT_MAX = 5
CSAT_GOOD = 4


def csat_of(variables: dict[str, Any] | None) -> int | None:
    """The conversation's rating 1..5, or ``None`` (a survey may store it as the option id "4")."""
    raw = (variables or {}).get("csat")
    if isinstance(raw, bool):
        return None
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return csat_on_five(value, variables)


def csat_on_five(value: int, variables: dict[str, Any] | None) -> int | None:
    """A rating given on the inbox's own scale (``csat_scale``: the widget's or Telegram's
    number of labels, e.g. 3 for Bad/OK/Great) on the reports' 1..5, so "Great" of three
    counts as satisfied like a 5 of five; without a scale it is 1..5 already."""
    scale = (variables or {}).get("csat_scale")
    if isinstance(scale, int) and not isinstance(scale, bool) and 2 <= scale != CSAT_MAX:
        if not 1 <= value <= scale:
            return None
        return round(1 + (value - 1) * (CSAT_MAX - 1) / (scale - 1))
    return value if 1 <= value <= CSAT_MAX else None


@dataclass(slots=True)
class ChatTimes:
    frt: float | None = None
    frt_accept: float | None = None
    replies: list[float] = field(default_factory=list)


def chat_times(
    wait_start: datetime | None,
    messages: Iterable[tuple[str, int | None, datetime]],
    accepted: datetime | None = None,
) -> ChatTimes:
    """FRT and reply times of one conversation from its messages ``(direction, author, at)`` in
    order (see the module's definitions)."""
    out = ChatTimes()
    if wait_start is None:
        return out
    pending: datetime | None = None
    for direction, author, at in messages:
        if at < wait_start:
            if direction == "in" and pending is None:
                pending = wait_start  # written to the bot or before queueing: nobody could answer yet
            continue
        if direction == "in":
            if pending is None:
                pending = at
        elif direction == "out" and author is not None:
            if out.frt is None:
                out.frt = (at - wait_start).total_seconds()
            if out.frt_accept is None and accepted is not None and at >= accepted:
                out.frt_accept = (at - accepted).total_seconds()
            if pending is not None:
                out.replies.append((at - pending).total_seconds())
                pending = None
    return out


def _in_range(start: datetime, end: datetime) -> Any:
    c = m.Conversation
    return and_(c.first_enqueued_at >= start, c.first_enqueued_at < end)


class ChatRollup:
    """``report_chat_intervals``: FRT, reply times, closed-by and CSAT per interval."""

    name = "chat"

    async def touched(self, session: AsyncSession, changes: Changes) -> set[datetime]:
        found: set[datetime] = set()
        c = m.Conversation
        for ids in chunks(changes.conversation_ids):
            rows = await session.scalars(
                select(c.first_enqueued_at).where(c.id.in_(ids), c.first_enqueued_at.is_not(None))
            )
            found |= {floor_interval(first) for first in rows if first is not None}
        return found

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """``in_database``: the chats' reply times in PostgreSQL (its default,
        ``rollup_sql.chat_times``) or walked in Python (``chat_times``)."""
        t = m.ReportChatInterval
        await session.execute(delete(t).where(t.bucket >= start, t.bucket < end))
        convs = list(await session.scalars(select(m.Conversation).where(_in_range(start, end))))
        in_sql = rollup_sql.in_database(session, in_database)
        timed = await rollup_sql.chat_times(session, start, end) if in_sql else {}
        chat_ids = [] if in_sql else [c.id for c in convs if c.medium == m.Medium.CHAT]
        messages: dict[int, list[tuple[str, int | None, datetime]]] = defaultdict(list)
        for ids in chunks(chat_ids):
            rows = await session.execute(
                select(m.Message.conversation_id, m.Message.direction, m.Message.author_user_id,
                       m.Message.created_at)
                .where(m.Message.conversation_id.in_(ids), m.Message.direction.in_(("in", "out")))
                .order_by(m.Message.created_at, m.Message.id)
            )  # fmt: skip
            for conv_id, direction, author, at in rows.all():
                messages[conv_id].append((direction, author, at))
        acc: dict[tuple[Any, ...], dict[str, Any]] = {}
        for conv in convs:
            assert conv.first_enqueued_at is not None  # selected by it
            key = (
                floor_interval(conv.first_enqueued_at),
                conv.queue_id or 0,
                conv.channel,
                conv.inbox_id or 0,
                conv.assigned_user_id or 0,
                conv.medium,
            )
            row = acc.get(key)
            if row is None:
                row = acc[key] = {
                    "conversations": 0, "accepted": 0, "frt_count": 0, "frt_sum": 0.0, "frt_max": 0.0,
                    "frt_accept_count": 0, "frt_accept_sum": 0.0,
                    **{f"frt_{n}": 0 for n in FRT_THRESHOLDS},
                    "reply_count": 0, "reply_sum": 0.0, "closed_operator": 0, "closed_timeout": 0,
                    "closed_customer": 0, "closed_other": 0, "csat_count": 0, "csat_sum": 0.0,
                    "csat_good": 0,
                }  # fmt: skip
            row["conversations"] += 1
            rating = csat_of(conv.variables)
            if rating is not None:
                row["csat_count"] += 1
                row["csat_sum"] += rating
                row["csat_good"] += rating >= CSAT_GOOD
            if conv.medium != m.Medium.CHAT:
                continue
            row["accepted"] += conv.accepted_at is not None
            if in_sql:
                frt, frt_accept, replies, reply_seconds = timed.get(conv.id, (None, None, 0, 0.0))
            else:
                walked = chat_times(conv.first_enqueued_at, messages.get(conv.id, ()), conv.accepted_at)
                frt, frt_accept = walked.frt, walked.frt_accept
                replies, reply_seconds = len(walked.replies), sum(walked.replies)
            if frt_accept is not None:
                row["frt_accept_count"] += 1
                row["frt_accept_sum"] += frt_accept
            if frt is not None:
                row["frt_count"] += 1
                row["frt_sum"] += frt
                row["frt_max"] = max(row["frt_max"], frt)
                for n in FRT_THRESHOLDS:
                    row[f"frt_{n}"] += frt <= n
            row["reply_count"] += replies
            row["reply_sum"] += reply_seconds
            if conv.closed_at is not None and conv.closed_by:
                by = conv.closed_by if conv.closed_by in ("operator", "timeout", "customer") else "other"
                row[f"closed_{by}"] += 1
        if acc:
            await session.execute(
                insert(t),
                [
                    {"bucket": k[0], "queue_id": k[1], "channel": k[2], "inbox_id": k[3], "user_id": k[4],
                     "medium": k[5], **v}
                    for k, v in acc.items()
                ],
            )  # fmt: skip


def _spans_by_interval(
    span_start: datetime, span_end: datetime, lo: datetime, hi: datetime
) -> Iterable[tuple[datetime, datetime, datetime]]:
    """``(interval, from, to)`` pieces of a span clipped to ``[lo, hi)``."""
    at = max(floor_interval(span_start), lo)
    while at < min(span_end, hi):
        piece_start, piece_end = max(span_start, at), min(span_end, at + INTERVAL)
        if piece_end > piece_start:
            yield at, piece_start, piece_end
        at += INTERVAL


def load_of(pieces: list[tuple[datetime, datetime]]) -> tuple[int, float, float]:
    """Peak overlap, summed seconds and covered seconds of spans within one interval."""
    events = sorted([(a, 1) for a, _ in pieces] + [(b, -1) for _, b in pieces], key=lambda e: (e[0], e[1]))
    peak = level = 0
    busy = 0.0
    since: datetime | None = None
    for at, step in events:
        if level > 0 and since is not None:
            busy += (at - since).total_seconds()
        level += step
        peak = max(peak, level)
        since = at
    total = sum((b - a).total_seconds() for a, b in pieces)
    return peak, total, busy


class ChatLoadRollup:
    """``report_chat_load_intervals``: each operator's simultaneous chats per interval."""

    name = "chat_load"

    async def touched(self, session: AsyncSession, changes: Changes) -> set[datetime]:
        found: set[datetime] = set()
        c = m.Conversation
        now = datetime.now(UTC)
        for ids in chunks(changes.conversation_ids):
            rows = await session.execute(
                select(c.accepted_at, c.closed_at).where(
                    c.id.in_(ids), c.medium == m.Medium.CHAT, c.accepted_at.is_not(None)
                )
            )
            for accepted, closed in rows.all():
                if accepted is None:
                    continue
                at, last = floor_interval(accepted), closed or now
                while at < last:
                    found.add(at)
                    at += INTERVAL
        return found

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """``in_database`` is ignored: these rows are few and built one way on every database."""
        t = m.ReportChatLoadInterval
        await session.execute(delete(t).where(t.bucket >= start, t.bucket < end))
        c = m.Conversation
        now = datetime.now(UTC)
        rows = await session.execute(
            select(c.assigned_user_id, c.accepted_at, c.closed_at).where(
                c.medium == m.Medium.CHAT,
                c.assigned_user_id.is_not(None),
                c.accepted_at.is_not(None),
                c.accepted_at < end,
                or_(c.closed_at > start, and_(c.closed_at.is_(None), c.status.in_(m.OPEN_STATUSES))),
            )
        )
        pieces: dict[tuple[datetime, int], list[tuple[datetime, datetime]]] = defaultdict(list)
        for user_id, accepted, closed in rows.all():
            if user_id is None or accepted is None:
                continue
            for bucket, a, b in _spans_by_interval(accepted, closed or now, start, end):
                pieces[(bucket, user_id)].append((a, b))
        values = []
        for (bucket, user_id), spans in pieces.items():
            peak, total, busy = load_of(spans)
            values.append(
                {"bucket": bucket, "user_id": user_id, "chats": len(spans), "peak": peak,
                 "chat_seconds": total, "busy_seconds": busy}
            )  # fmt: skip
        if values:
            await session.execute(insert(t), values)


rollups.register(ChatRollup())
rollups.register(ChatLoadRollup())


# --- reports --------------------------------------------------------------------------------

CHAT_COLUMNS = (
    Column("period", Kind.LABEL, "Period"),
    Column("conversations", Kind.COUNT, "Conversations"),
    Column("accepted", Kind.COUNT, "Accepted"),
    Column("frt_avg", Kind.SECONDS, "Average first response"),
    Column("frt_max", Kind.SECONDS, "Longest first response"),
    Column("frt_accept_avg", Kind.SECONDS, "Average first response after accepting"),
    *(Column(f"frt_{n}", Kind.COUNT, f"First response ≤ {n} s") for n in FRT_THRESHOLDS),
    *(Column(f"frt_{n}_pct", Kind.PERCENT, f"First response ≤ {n} s, %") for n in FRT_THRESHOLDS),
    Column("reply_avg", Kind.SECONDS, "Average reply time"),
    Column("replies", Kind.COUNT, "Replies"),
    Column("closed_operator", Kind.COUNT, "Closed by operator"),
    Column("closed_timeout", Kind.COUNT, "Closed by timeout"),
    Column("closed_customer", Kind.COUNT, "Closed by customer"),
)

_SUMMED = (
    "conversations", "accepted", "frt_count", "frt_sum", "frt_accept_count", "frt_accept_sum",
    *(f"frt_{n}" for n in FRT_THRESHOLDS),
    "reply_count", "reply_sum", "closed_operator", "closed_timeout", "closed_customer",
)  # fmt: skip


def _chat_row(label: Cell, v: dict[str, float]) -> list[Cell]:
    frt_n = int(v["frt_count"])
    return [
        label,
        int(v["conversations"]),
        int(v["accepted"]),
        mean(v["frt_sum"], frt_n),
        round(v["frt_max"], 1) if frt_n else None,
        mean(v["frt_accept_sum"], int(v["frt_accept_count"])),
        *(int(v[f"frt_{n}"]) for n in FRT_THRESHOLDS),
        *(pct(v[f"frt_{n}"], frt_n) for n in FRT_THRESHOLDS),
        mean(v["reply_sum"], int(v["reply_count"])),
        int(v["reply_count"]),
        int(v["closed_operator"]),
        int(v["closed_timeout"]),
        int(v["closed_customer"]),
    ]


async def chat_metrics(session: AsyncSession, scope: Scope) -> ReportTable:
    """Chats per period group: FRT, its buckets, reply time and who closed them."""
    table = ReportTable(
        key="chat_metrics",
        columns=CHAT_COLUMNS,
        chart=Chart("line", "period", ("frt_avg", "reply_avg")),
        notes=["rpt.note.frt"],
    )
    if scope.empty:
        return table
    t = m.ReportChatInterval
    where = [*conditions(t, scope, user=True), t.medium == m.Medium.CHAT]
    sums = [func.max(t.frt_max), *(func.sum(getattr(t, k)) for k in _SUMMED)]
    groups: dict[datetime, dict[str, float]] = {}

    def add(label: datetime, frt_max: Any, values: Iterable[Any]) -> None:
        g = groups.setdefault(label, dict.fromkeys((*_SUMMED, "frt_max"), 0.0))
        for k, value in zip(_SUMMED, values, strict=True):
            g[k] += float(value or 0)
        g["frt_max"] = max(g["frt_max"], float(frt_max or 0))

    indexed = group_index(t.bucket, scope)
    if indexed is not None:
        index, labels = indexed
        for i, frt_max, *values in (
            await session.execute(select(index, *sums).where(*where).group_by(index))
        ).all():
            add(labels[i], frt_max, values)
    else:
        label_of = Labeler(scope)
        for bucket, frt_max, *values in (
            await session.execute(select(t.bucket, *sums).where(*where).group_by(t.bucket))
        ).all():
            add(label_of(bucket), frt_max, values)
    total = dict.fromkeys((*_SUMMED, "frt_max"), 0.0)
    for label in sorted(groups):
        g = groups[label]
        table.rows.append(_chat_row(label, g))
        for k in _SUMMED:
            total[k] += g[k]
        total["frt_max"] = max(total["frt_max"], g["frt_max"])
    table.totals = _chat_row(None, total)
    return table


LOAD_COLUMNS = (
    Column("period", Kind.LABEL, "Period"),
    Column("operator", Kind.LABEL, "Operator"),
    Column("busy_seconds", Kind.SECONDS, "Time with chats"),
    Column("concurrent_avg", Kind.NUMBER, "Average concurrent chats"),
    Column("concurrent_peak", Kind.COUNT, "Peak concurrent chats"),
)


async def chat_concurrency(session: AsyncSession, scope: Scope) -> ReportTable:
    """Per operator and period group: peak and average simultaneous chats."""
    table = ReportTable(
        key="chat_concurrency",
        columns=LOAD_COLUMNS,
        chart=Chart("bar", "operator", ("concurrent_avg", "concurrent_peak")),
        notes=["rpt.note.concurrency"],
    )
    if scope.empty:
        return table
    t = m.ReportChatLoadInterval
    where = conditions(t, scope, queue=False, user=True, channel=False, inbox=False)
    sums = (func.max(t.peak), func.sum(t.chat_seconds), func.sum(t.busy_seconds))
    groups: dict[tuple[datetime, int], list[float]] = {}

    def add(label: datetime, user_id: int, peak: Any, chat_s: Any, busy_s: Any) -> None:
        g = groups.setdefault((label, user_id), [0.0, 0.0, 0.0])
        g[0] = max(g[0], float(peak or 0))
        g[1] += float(chat_s or 0)
        g[2] += float(busy_s or 0)

    indexed = group_index(t.bucket, scope)
    if indexed is not None:
        index, labels = indexed
        stmt = select(index, t.user_id, *sums).where(*where).group_by(index, t.user_id)
        for i, user_id, peak, chat_s, busy_s in (await session.execute(stmt)).all():
            add(labels[i], user_id, peak, chat_s, busy_s)
    else:
        label_of = Labeler(scope)
        raw = select(t.bucket, t.user_id, t.peak, t.chat_seconds, t.busy_seconds).where(*where)
        for bucket, user_id, peak, chat_s, busy_s in (await session.execute(raw)).all():
            add(label_of(bucket), user_id, peak, chat_s, busy_s)
    names = await user_names(session, {u for _, u in groups})
    for label, user_id in sorted(groups, key=lambda k: (k[0], names.get(k[1], ""), k[1])):
        top, chat_s, busy_s = groups[(label, user_id)]
        table.rows.append(
            [label, names.get(user_id, str(user_id)), round(busy_s, 1),
             round(chat_s / busy_s, 2) if busy_s else None, int(top)]
        )  # fmt: skip
    return table


registry.register(
    registry.ReportSpec(
        "chat_metrics",
        chat_metrics,
        filters=("period", "grouping", "queue", "group", "operator", "channel", "inbox"),
        order=60,
    )
)
registry.register(
    registry.ReportSpec(
        "chat_concurrency",
        chat_concurrency,
        filters=("period", "grouping", "group", "operator"),
        order=61,
    )
)

__all__ = [
    "ChatLoadRollup",
    "ChatRollup",
    "chat_concurrency",
    "chat_metrics",
    "chat_times",
    "csat_of",
    "csat_on_five",
]
