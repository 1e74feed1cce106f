"""Set-based rollup rebuilds for PostgreSQL: one ``INSERT … SELECT … GROUP BY`` per table.

Why: the rollups' portable rebuilds (``queues``, ``operators``, ``status_times``) read every raw
row of the range into Python and insert the sums back; a backfill of 1,000,000 conversations
then spends hours shipping rows. Here PostgreSQL does the same arithmetic where the rows are
(the 15-minute bucket is ``to_timestamp(floor(epoch / 900) * 900)``, spans are split with
``generate_series``) and writes the rollup rows itself. The definitions are those of the
Python code they stand in for (``queues.QueueRollup._facts``, ``operators.StatusRollup``,
the hour tiers); ``tests/reports/test_rollup_sql.py`` checks that both give the same rows.
SQLite (embedded installs, small histories) keeps the Python path.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db.models.reports import SL_THRESHOLDS


def in_database(session: AsyncSession, override: bool | None = None) -> bool:
    """Whether a rebuild runs set-based (PostgreSQL) or in Python (``override`` forces one)."""
    if override is not None:
        return override
    return session.get_bind().dialect.name == "postgresql"


BUCKET = "to_timestamp(floor(extract(epoch FROM {col}) / 900) * 900)"


def _epoch(later: str, earlier: str) -> str:
    return f"greatest(0, extract(epoch FROM {later} - {earlier}))::float8"


_WAIT = (
    "CASE WHEN c.accepted_at IS NOT NULL THEN "
    + _epoch("c.accepted_at", "c.first_enqueued_at")
    + " WHEN c.status IN ('abandoned', 'missed') THEN "
    + _epoch("coalesce(c.closed_at, c.first_enqueued_at)", "c.first_enqueued_at")
    + " END"
)
_ANSWERED = "x.accepted_at IS NOT NULL"
_ABANDONED = "x.accepted_at IS NULL AND x.status = 'abandoned'"
_MISSED = "x.accepted_at IS NULL AND x.status = 'missed'"
_HANDLED = "x.accepted_at IS NOT NULL AND x.status = 'closed' AND x.closed_at IS NOT NULL"
_ENDED = "coalesce(x.wrap_up_at, x.closed_at)"

QUEUE_SQL = text(
    f"""
    INSERT INTO report_queue_intervals (
        bucket, queue_id, channel, inbox_id, result_code_id,
        offered, answered, answered_in_sl, abandoned, abandoned_short, missed, overflowed,
        callbacks_made, transfers, wait_answered_sum, wait_abandoned_sum, wait_max,
        handled, talk_sum, hold_sum, wrap_sum,
        {", ".join(f"ans_{n}" for n in SL_THRESHOLDS)},
        {", ".join(f"abn_{n}" for n in SL_THRESHOLDS)})
    WITH x AS (
        SELECT c.id, {BUCKET.format(col="c.first_enqueued_at")} AS bucket,
               coalesce(c.queue_id, 0) AS queue_id, c.channel,
               coalesce(c.inbox_id, 0) AS inbox_id, coalesce(c.result_code_id, 0) AS result_code_id,
               c.status, c.accepted_at, c.wrap_up_at, c.closed_at,
               coalesce(c.hold_seconds, 0)::float8 AS hold,
               coalesce(q.sla_seconds, 20) AS sla,
               {_WAIT} AS wait
        FROM conversations c LEFT JOIN queues q ON q.id = c.queue_id
        WHERE c.first_enqueued_at >= :lo AND c.first_enqueued_at < :hi
          AND c.status NOT IN ('queued', 'offered')
    ),
    tr AS (
        SELECT e.conversation_id AS id, count(*) AS n
        FROM events e JOIN x ON x.id = e.conversation_id
        WHERE e.type = 'conversation.transferred' GROUP BY e.conversation_id
    ),
    cb AS (
        SELECT k.conversation_id AS id, count(*) AS n
        FROM callbacks k JOIN x ON x.id = k.conversation_id
        WHERE k.state = 'done' GROUP BY k.conversation_id
    )
    SELECT x.bucket, x.queue_id, x.channel, x.inbox_id, x.result_code_id,
           count(*) FILTER (WHERE NOT ({_ABANDONED} AND x.wait < :grace)),
           count(*) FILTER (WHERE {_ANSWERED}),
           count(*) FILTER (WHERE {_ANSWERED} AND x.wait <= x.sla),
           count(*) FILTER (WHERE {_ABANDONED}),
           count(*) FILTER (WHERE {_ABANDONED} AND x.wait < :grace),
           count(*) FILTER (WHERE {_MISSED}),
           count(*) FILTER (WHERE x.accepted_at IS NULL AND x.status NOT IN ('abandoned', 'missed')),
           coalesce(sum(cb.n), 0), coalesce(sum(tr.n), 0),
           coalesce(sum(x.wait) FILTER (WHERE {_ANSWERED}), 0),
           coalesce(sum(x.wait) FILTER (WHERE {_ABANDONED}), 0),
           greatest(0, coalesce(max(x.wait), 0)),
           count(*) FILTER (WHERE {_HANDLED}),
           coalesce(sum(greatest(0, {_epoch(_ENDED, "x.accepted_at")} - x.hold))
                    FILTER (WHERE {_HANDLED}), 0),
           coalesce(sum(x.hold) FILTER (WHERE {_HANDLED}), 0),
           coalesce(sum({_epoch("x.closed_at", _ENDED)}) FILTER (WHERE {_HANDLED}), 0),
           {", ".join(f"count(*) FILTER (WHERE {_ANSWERED} AND x.wait <= {n})" for n in SL_THRESHOLDS)},
           {", ".join(f"count(*) FILTER (WHERE {_ABANDONED} AND x.wait <= {n})" for n in SL_THRESHOLDS)}
    FROM x LEFT JOIN tr ON tr.id = x.id LEFT JOIN cb ON cb.id = x.id
    GROUP BY x.bucket, x.queue_id, x.channel, x.inbox_id, x.result_code_id
    """  # noqa: S608 - only module constants are interpolated, values are bound
)
"""``queues.QueueRollup._facts`` in one statement: the same outcome rules, waits and parts."""


async def rebuild_queues(session: AsyncSession, start: datetime, end: datetime, grace: float) -> None:
    """Insert the queue interval rows of ``[start, end)`` (the caller deleted the old ones)."""
    await session.execute(QUEUE_SQL, {"lo": start, "hi": end, "grace": grace})


STATUS_SQL = text(
    f"""
    INSERT INTO report_status_intervals (bucket, user_id, status_code, seconds)
    SELECT b.at, s.user_id, s.status_code,
           sum(extract(epoch FROM least(s.hi, b.at + interval '15 minutes') - greatest(s.lo, b.at)))::float8
    FROM (SELECT h.user_id, h.status_code,
                 greatest(h.started_at, :lo) AS lo, least(h.ended_at, :hi) AS hi
          FROM status_history h
          WHERE h.ended_at IS NOT NULL AND h.started_at < :hi AND h.ended_at > :lo) s,
         generate_series({BUCKET.format(col="s.lo")}, s.hi - interval '1 microsecond',
                         interval '15 minutes') AS b(at)
    WHERE s.hi > s.lo
    GROUP BY b.at, s.user_id, s.status_code
    HAVING sum(extract(epoch FROM least(s.hi, b.at + interval '15 minutes') - greatest(s.lo, b.at))) > 0
    """  # noqa: S608 - only module constants are interpolated, values are bound
)
"""``operators.StatusRollup.rebuild``: closed spans clipped to the range, split per interval."""

STATUS_HOURS_SQL = text(
    """
    INSERT INTO report_status_hours (hour, user_id, status_code, seconds)
    SELECT date_trunc('hour', bucket, 'UTC'), user_id, status_code, sum(seconds)
    FROM report_status_intervals WHERE bucket >= :lo AND bucket < :hi
    GROUP BY 1, 2, 3
    """
)


async def rebuild_status(session: AsyncSession, start: datetime, end: datetime) -> None:
    # The planner guesses 1,000 rows per generate_series and would JIT-compile the statement.
    await session.execute(text("SET LOCAL jit = off"))
    await session.execute(STATUS_SQL, {"lo": start, "hi": end})


async def rebuild_status_hours(session: AsyncSession, lo: datetime, hi: datetime) -> None:
    """Insert the hours ``[lo, hi)`` (whole hours, old rows deleted) from the interval rows."""
    await session.execute(STATUS_HOURS_SQL, {"lo": lo, "hi": hi})


def operator_hours_sql(columns: tuple[str, ...]) -> str:
    cols = ", ".join(columns)
    sums = ", ".join(f"sum({c})" for c in columns)
    return f"""
    INSERT INTO report_operator_hours (bucket, user_id, queue_id, channel, result_code_id, {cols})
    SELECT date_trunc('hour', bucket, 'UTC'), user_id, queue_id, channel, result_code_id, {sums}
    FROM report_operator_intervals WHERE bucket >= :lo AND bucket < :hi
    GROUP BY 1, 2, 3, 4, 5
    """  # noqa: S608 - the rollup's own column names, values are bound


async def rebuild_operator_hours(
    session: AsyncSession, lo: datetime, hi: datetime, columns: tuple[str, ...]
) -> None:
    await session.execute(text(operator_hours_sql(columns)), {"lo": lo, "hi": hi})


CHAT_TIMES_SQL = text(
    """
    WITH conv AS (
        SELECT c.id, c.first_enqueued_at AS ws, c.accepted_at
        FROM conversations c
        WHERE c.first_enqueued_at >= :lo AND c.first_enqueued_at < :hi AND c.medium = 'chat'
    ), msg AS (
        SELECT m.conversation_id AS cid, m.created_at AS at, conv.ws, conv.accepted_at,
               m.direction = 'in' AS is_in,
               m.direction = 'out' AND m.author_user_id IS NOT NULL AND m.created_at >= conv.ws
                   AS is_reply,
               count(*) FILTER (WHERE m.direction = 'out' AND m.author_user_id IS NOT NULL
                                  AND m.created_at >= conv.ws)
                   OVER (PARTITION BY m.conversation_id ORDER BY m.created_at, m.id) AS n
        FROM messages m JOIN conv ON conv.id = m.conversation_id
        WHERE m.direction IN ('in', 'out')
    ), seg AS (
        -- a reply numbered n answers the customer messages numbered n - 1: put them together
        SELECT cid, at, ws, accepted_at, is_reply,
               min(greatest(at, ws)) FILTER (WHERE is_in)
                   OVER (PARTITION BY cid, CASE WHEN is_reply THEN n - 1 ELSE n END) AS since
        FROM msg
    )
    SELECT cid,
           extract(epoch FROM min(at) - min(ws))::float8,
           extract(epoch FROM min(at) FILTER (WHERE at >= accepted_at) - min(accepted_at))::float8,
           count(since),
           coalesce(sum(extract(epoch FROM at - since)::float8), 0)
    FROM seg
    WHERE is_reply
    GROUP BY cid
    """
)
"""``chats.chat_times`` of every chat whose wait began in the range, one row per chat that has
an operator's reply: the messages numbered by the replies before them (``n``), so the customer
messages a reply answers are those of the reply's ``n - 1`` and the earliest of them (one
written before the wait counts from its start) is what the reply's time is measured from.
Windows only, no join of replies to what they answer: without statistics (a restored
database) PostgreSQL nested-looped such a join, 6,000 × 3,000 rows, 1.9 s instead of 45 ms."""


async def chat_times(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[int, tuple[float | None, float | None, int, float]]:
    """``{conversation id: (frt, frt from accept, replies, reply seconds summed)}`` of the chats
    whose wait began in ``[start, end)``; a chat without an operator's reply is absent.

    Why not the Python walk: the rollup driver rebuilds the current interval on every pass, and
    shipping all its messages to Python cost 30–70 ms per 13,000 (bench/README.md, "chat15")."""
    rows = await session.execute(CHAT_TIMES_SQL, {"lo": start, "hi": end})
    return {int(cid): (frt, frt_accept, int(n), float(total)) for cid, frt, frt_accept, n, total in rows}
