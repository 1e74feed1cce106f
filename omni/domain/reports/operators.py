"""Operator rollups: per operator × 15-minute interval, what they were offered and handled, and
where their logged-in time went.

Two rollups, both rebuilt per interval from the raw rows (idempotent, see ``rollups``):

* ``operators`` (``report_operator_intervals``, per operator × queue × channel × result code):
  offers in the interval they were made; a contact's handling (talk/hold/wrap-up), who ended it,
  its first chat reply and its rating in the contact's interval (``first_enqueued_at``, like the
  queue intervals, so a wrap-up after midnight lands on the day the customer called);
  transfers in the interval they happened.
* ``status_times`` (``report_status_intervals``, per operator × status code): closed
  ``status_history`` spans split at interval boundaries, so time lands where it was spent. An
  open span (the status an operator is in right now) changes every second; it is not stored —
  the status report adds it, up to the moment it runs (``open_span_seconds``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports import daily, rollup_sql, rollups
from omni.domain.reports.chats import csat_on_five
from omni.domain.reports.period import INTERVAL, floor_interval

TRANSFERRED = "conversation.transferred"
HOUR = timedelta(hours=1)
INSERT_BATCH = 5000
ENDED_BY = {"operator": "ended_operator", "customer": "ended_customer", "timeout": "ended_timeout"}
"""``Conversation.closed_by`` → column; anything else (system, blacklist) counts as system."""

OpKey = tuple[datetime, int, int, str, int]
"""bucket, user_id, queue_id, channel, result_code_id."""


def contact_start(conv: m.Conversation) -> datetime:
    """When the contact's wait began: the instant that names its interval."""
    return conv.first_enqueued_at or conv.created_at


def _contact_in(start: datetime, end: datetime) -> Any:
    c = m.Conversation
    return or_(
        and_(c.first_enqueued_at >= start, c.first_enqueued_at < end),
        and_(c.first_enqueued_at.is_(None), c.created_at >= start, c.created_at < end),
    )


def rating(conv: m.Conversation) -> int | None:
    """The customer's 1..5 rating (``variables["csat"]``), ``None`` when absent or malformed."""
    value = (conv.variables or {}).get("csat")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        score = int(value)
    except ValueError:
        return None
    return csat_on_five(score, conv.variables)


def handling_parts(conv: m.Conversation) -> tuple[float, float, float]:
    """Talk, hold and wrap-up seconds of a closed, answered contact (as the monitor counts them)."""
    assert conv.accepted_at is not None and conv.closed_at is not None
    ended = conv.wrap_up_at or conv.closed_at
    hold = float(conv.hold_seconds or 0)
    talk = max(0.0, (ended - conv.accepted_at).total_seconds() - hold)
    wrap = max(0.0, (conv.closed_at - ended).total_seconds())
    return talk, hold, wrap


class OperatorRollup:
    name = "operators"

    async def touched(self, session: AsyncSession, changes: rollups.Changes) -> set[datetime]:
        ids = changes.conversation_ids
        if not ids:
            return set()
        out: set[datetime] = set()
        c = m.Conversation
        for first, created in await session.execute(
            select(c.first_enqueued_at, c.created_at).where(c.id.in_(ids))
        ):
            out.add(floor_interval(first or created))  # ``contact_start``
        for at in await session.scalars(select(m.Offer.created_at).where(m.Offer.conversation_id.in_(ids))):
            out.add(floor_interval(at))
        events = select(m.Event.created_at).where(
            m.Event.conversation_id.in_(ids), m.Event.type == TRANSFERRED
        )
        for at in await session.scalars(events):
            out.add(floor_interval(at))
        return out

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """``in_database``: sum the hour tier in PostgreSQL (its default) or in Python."""
        T = m.ReportOperatorInterval
        await session.execute(delete(T).where(T.bucket >= start, T.bucket < end))
        rows: dict[OpKey, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        await _offers(session, start, end, rows)
        await _handled(session, start, end, rows)
        await _transfers(session, start, end, rows)
        await _insert(session, T, [_operator_row(k, v) for k, v in rows.items()])
        await _rebuild_operator_hours(session, start, end, rollup_sql.in_database(session, in_database))
        await daily.rebuild_hold_days(session, start, end)


async def _rebuild_operator_hours(
    session: AsyncSession, start: datetime, end: datetime, in_database: bool = False
) -> None:
    """Re-sum the UTC hours ``[start, end)`` touches from their interval rows (see
    ``_rebuild_hours``)."""
    lo, hi = _hours_around(start, end)
    H, T = m.ReportOperatorHour, m.ReportOperatorInterval
    await session.execute(delete(H).where(H.bucket >= lo, H.bucket < hi))
    if in_database:
        await rollup_sql.rebuild_operator_hours(session, lo, hi, SUMMED)
        return
    sums: dict[OpKey, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    cols = [getattr(T, c) for c in SUMMED]
    stmt = select(T.bucket, T.user_id, T.queue_id, T.channel, T.result_code_id, *cols).where(
        T.bucket >= lo, T.bucket < hi
    )
    for bucket, uid, qid, channel, rc, *values in await session.execute(stmt):
        row = sums[(floor_hour(bucket), uid, qid, channel, rc)]
        for name, value in zip(SUMMED, values, strict=True):
            row[name] += float(value or 0)
    await _insert(session, H, [_operator_row(k, v) for k, v in sums.items()])


def _operator_row(k: OpKey, v: dict[str, float]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "bucket": k[0],
        "user_id": k[1],
        "queue_id": k[2],
        "channel": k[3],
        "result_code_id": k[4],
    }
    row.update({c: (float(v.get(c, 0.0)) if c in _FLOATS else int(v.get(c, 0))) for c in SUMMED})
    return row


async def _insert(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT per batch: a day's backfill writes tens of thousands of rows, which
    the ORM's unit of work would make one object (and one flush bookkeeping entry) each."""
    for at in range(0, len(rows), INSERT_BATCH):
        await session.execute(insert(table), rows[at : at + INSERT_BATCH])


def _hours_around(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    lo = floor_hour(start)
    hi = floor_hour(end)
    if hi < end:
        hi += HOUR
    return lo, hi


_FLOATS = frozenset({"talk_sum", "hold_sum", "wrap_sum", "frt_sum", "csat_sum"})
SUMMED = (
    "offers",
    "accepted",
    "declined",
    "timed_out",
    "handled",
    "talk_sum",
    "hold_sum",
    "wrap_sum",
    "ended_operator",
    "ended_customer",
    "ended_timeout",
    "ended_system",
    "transfers_made",
    "transfers_received",
    "frt_sum",
    "frt_count",
    "csat_count",
    "csat_good",
    "csat_sum",
)
"""The summed columns of the operator rollup (intervals and hours): what a rebuild writes and
the operator reports add up."""
OFFER_STATES = {"accepted": "accepted", "declined": "declined", "timeout": "timed_out"}


async def _offers(
    session: AsyncSession, start: datetime, end: datetime, rows: dict[OpKey, dict[str, float]]
) -> None:
    o, c = m.Offer, m.Conversation
    stmt = (
        select(o.created_at, o.user_id, o.queue_id, c.queue_id, c.channel, o.state)
        .join(c, c.id == o.conversation_id)
        .where(o.created_at >= start, o.created_at < end)
    )
    for at, uid, oq, cq, channel, state in await session.execute(stmt):
        row = rows[(floor_interval(at), uid, oq or cq or 0, channel, 0)]
        row["offers"] += 1
        if state in OFFER_STATES:
            row[OFFER_STATES[state]] += 1


async def _handled(
    session: AsyncSession, start: datetime, end: datetime, rows: dict[OpKey, dict[str, float]]
) -> None:
    c = m.Conversation
    # The columns the figures need, not ORM objects: a backfill day holds ~10,000 contacts and an
    # identity-mapped entity each costs more than the arithmetic (the rows answer the same names).
    convs: list[Any] = list(
        await session.execute(
            select(
                c.id,
                c.first_enqueued_at,
                c.created_at,
                c.assigned_user_id,
                c.accepted_at,
                c.wrap_up_at,
                c.closed_at,
                c.hold_seconds,
                c.status,
                c.closed_by,
                c.medium,
                c.queue_id,
                c.channel,
                c.result_code_id,
                c.variables,
            ).where(_contact_in(start, end), c.assigned_user_id.is_not(None), c.accepted_at.is_not(None))
        )
    )
    replies = await _first_replies(session, [x for x in convs if x.medium == m.Medium.CHAT])
    for conv in convs:
        uid = conv.assigned_user_id
        assert uid is not None and conv.accepted_at is not None
        row = rows[
            (
                floor_interval(contact_start(conv)),
                uid,
                conv.queue_id or 0,
                conv.channel,
                conv.result_code_id or 0,
            )
        ]
        if conv.status == m.ConversationStatus.CLOSED and conv.closed_at is not None:
            talk, hold, wrap = handling_parts(conv)
            row["handled"] += 1
            row["talk_sum"] += talk
            row["hold_sum"] += hold
            row["wrap_sum"] += wrap
            row[ENDED_BY.get(conv.closed_by or "", "ended_system")] += 1
        first = replies.get((conv.id, uid))
        if first is not None and first >= conv.accepted_at:
            row["frt_sum"] += (first - conv.accepted_at).total_seconds()
            row["frt_count"] += 1
        score = rating(conv)
        if score is not None:
            row["csat_count"] += 1
            row["csat_sum"] += score
            row["csat_good"] += 1 if score >= 4 else 0


async def _first_replies(session: AsyncSession, convs: list[Any]) -> dict[tuple[int, int], datetime]:
    """Per chat and operator, their first outbound message since the chat was accepted: one
    row per pair from the database (``min``), not every reply of the interval shipped to Python
    on each rollup pass (bench/README.md, "chat15")."""
    out: dict[tuple[int, int], datetime] = {}
    if not convs:
        return out
    msg, c = m.Message, m.Conversation
    stmt = (
        select(msg.conversation_id, msg.author_user_id, func.min(msg.created_at))
        .join(c, c.id == msg.conversation_id)
        .where(
            msg.conversation_id.in_([x.id for x in convs]),
            msg.direction == "out",
            msg.author_user_id.is_not(None),
            msg.created_at >= c.accepted_at,
        )
        .group_by(msg.conversation_id, msg.author_user_id)
    )
    for conv_id, uid, at in await session.execute(stmt):
        if uid is not None:  # the query keeps authored messages only
            out[(conv_id, uid)] = at
    return out


async def _transfers(
    session: AsyncSession, start: datetime, end: datetime, rows: dict[OpKey, dict[str, float]]
) -> None:
    e, c = m.Event, m.Conversation
    stmt = (
        select(e.created_at, e.payload, e.conversation_id, e.queue_id, c.channel)
        .join(c, c.id == e.conversation_id)
        .where(e.type == TRANSFERRED, e.created_at >= start, e.created_at < end)
    )
    events = list(await session.execute(stmt))
    # A transfer to a queue is received by whoever accepts the conversation's next offer.
    to_queue = [conv_id for _, payload, conv_id, _, _ in events if not payload.get("to_user_id")]
    accepts: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    if to_queue:
        offers = (
            select(m.Offer.conversation_id, m.Offer.created_at, m.Offer.user_id)
            .where(m.Offer.conversation_id.in_(to_queue), m.Offer.state == "accepted")
            .order_by(m.Offer.created_at)
        )
        for conv_id, at, uid in await session.execute(offers):
            accepts[conv_id].append((at, uid))
    for at, payload, conv_id, queue_id, channel in events:
        bucket = floor_interval(at)
        made_by = payload.get("from_user_id")
        if made_by:
            rows[(bucket, int(made_by), queue_id or 0, channel, 0)]["transfers_made"] += 1
        to_user = payload.get("to_user_id") or next((u for t, u in accepts.get(conv_id, []) if t >= at), None)
        if to_user:
            rows[(bucket, int(to_user), queue_id or 0, channel, 0)]["transfers_received"] += 1


def split(start: datetime, end: datetime) -> Iterator[tuple[datetime, float]]:
    """The seconds of ``[start, end)`` falling in each 15-minute interval it crosses."""
    at = start
    while at < end:
        bucket = floor_interval(at)
        stop = min(end, bucket + INTERVAL)
        yield bucket, (stop - at).total_seconds()
        at = stop


class StatusRollup:
    name = "status_times"

    async def touched(self, session: AsyncSession, changes: rollups.Changes) -> set[datetime]:
        """Every interval from the start of the earliest span that changed (ended or began since
        ``changes.earliest``) to the end of the latest closed one."""
        if not changes.user_ids or changes.earliest is None:
            return set()
        h = m.StatusHistory
        stmt = select(h.started_at, h.ended_at).where(
            h.user_id.in_(changes.user_ids),
            h.ended_at.is_not(None),
            or_(h.ended_at >= changes.earliest, h.started_at >= changes.earliest),
        )
        spans = list(await session.execute(stmt))
        if not spans:
            return set()
        lo = floor_interval(min(s for s, _ in spans))
        hi = max(e for _, e in spans if e is not None)
        return {b for b, _ in split(lo, hi)}

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """``in_database``: split and sum the spans in PostgreSQL (its default) or in Python."""
        T = m.ReportStatusInterval
        await session.execute(delete(T).where(T.bucket >= start, T.bucket < end))
        if rollup_sql.in_database(session, in_database):
            await rollup_sql.rebuild_status(session, start, end)
            await _rebuild_hours(session, start, end, True)
            await daily.rebuild_days(session, start, end)
            return
        h = m.StatusHistory
        stmt = select(h.user_id, h.status_code, h.started_at, h.ended_at).where(
            h.ended_at.is_not(None), h.started_at < end, h.ended_at > start
        )
        seconds: dict[tuple[datetime, int, str], float] = defaultdict(float)
        for uid, code, began, ended in await session.execute(stmt):
            assert ended is not None
            for bucket, secs in split(max(began, start), min(ended, end)):
                seconds[(bucket, uid, code)] += secs
        await _insert(
            session,
            T,
            [
                {"bucket": b, "user_id": uid, "status_code": code, "seconds": secs}
                for (b, uid, code), secs in seconds.items()
                if secs > 0
            ],
        )
        await _rebuild_hours(session, start, end)
        await daily.rebuild_days(session, start, end)


def floor_hour(at: datetime) -> datetime:
    return floor_interval(at).replace(minute=0)


async def _rebuild_hours(
    session: AsyncSession, start: datetime, end: datetime, in_database: bool = False
) -> None:
    """Re-sum the hours ``[start, end)`` touches from their interval rows (the rest of each hour
    was built before and is read back, so a partial rebuild still gives whole hours)."""
    lo, hi = _hours_around(start, end)
    H, T = m.ReportStatusHour, m.ReportStatusInterval
    await session.execute(delete(H).where(H.hour >= lo, H.hour < hi))
    if in_database:
        await rollup_sql.rebuild_status_hours(session, lo, hi)
        return
    sums: dict[tuple[datetime, int, str], float] = defaultdict(float)
    stmt = select(T.bucket, T.user_id, T.status_code, T.seconds).where(T.bucket >= lo, T.bucket < hi)
    for bucket, uid, code, secs in await session.execute(stmt):
        sums[(floor_hour(bucket), uid, code)] += float(secs)
    await _insert(
        session,
        H,
        [
            {"hour": h, "user_id": uid, "status_code": code, "seconds": secs}
            for (h, uid, code), secs in sums.items()
        ],
    )


async def open_span_seconds(
    session: AsyncSession, start: datetime, end: datetime, now: datetime, user_ids: Iterable[int] | None
) -> dict[tuple[datetime, int, str], float]:
    """Seconds of the spans still open at ``now`` within ``[start, end)``, per interval: what the
    status rollup leaves out because it grows every second."""
    h = m.StatusHistory
    stmt = select(h.user_id, h.status_code, h.started_at).where(
        h.ended_at.is_(None), h.started_at < min(end, now)
    )
    if user_ids is not None:
        stmt = stmt.where(h.user_id.in_(list(user_ids)))
    out: dict[tuple[datetime, int, str], float] = defaultdict(float)
    for uid, code, began in await session.execute(stmt):
        for bucket, secs in split(max(began, start), min(now, end)):
            out[(bucket, uid, code)] += secs
    return out


OPERATORS = rollups.register(OperatorRollup())
STATUS_TIMES = rollups.register(StatusRollup())

__all__ = [
    "OPERATORS",
    "STATUS_TIMES",
    "SUMMED",
    "OperatorRollup",
    "StatusRollup",
    "contact_start",
    "handling_parts",
    "open_span_seconds",
    "rating",
    "split",
]
