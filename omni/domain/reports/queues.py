"""The queue rollup: per 15-minute interval × queue × channel × inbox × result code, the contacts
whose wait began in the interval, their outcome, waits and handling (``ReportQueueInterval``).

A *contact* is a conversation that entered a queue (``first_enqueued_at`` set); it belongs to
the interval of ``first_enqueued_at`` and to the queue it is in now (an overflow to another
queue keeps the customer's place, so the contact is the target queue's). Its outcome, once it
has left the line:

* **answered** — ``accepted_at`` set; wait = ``accepted_at - first_enqueued_at``;
* **abandoned** — status ``abandoned`` (the customer left); wait = ``closed_at -
  first_enqueued_at``; **short** when that wait < the install's ``short_abandon_seconds``;
* **missed** — status ``missed`` (queue timeout or closed queue with no overflow target);
  wait = ``closed_at - first_enqueued_at``;
* **overflowed** — left the line otherwise unanswered (handed to an overflow bot);
* still waiting (``queued``/``offered``) — no outcome yet: in no figure until it has one.

offered = answered + abandoned (not short) + missed + overflowed. Answered in SL = wait <=
the queue's ``sla_seconds``; ``ans_N`` / ``abn_N`` = answered / abandoned (short ones
included) with wait <= N s. Handling of a contact answered and **closed** (``handled``): hold =
``hold_seconds``, talk = ``(wrap_up_at or closed_at) - accepted_at - hold``, wrap-up =
``closed_at - (wrap_up_at or closed_at)``, all on the contact's interval even when it closed
hours later. ``transfers`` = ``conversation.transferred`` events of the contact;
``callbacks_made`` = its callbacks marked done. ``wait_max`` = the longest wait of an answered,
abandoned or missed contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from omni.db import models as m
from omni.db.models.reports import SL_THRESHOLDS
from omni.domain.reports import rollup_sql
from omni.domain.reports.config import get_config
from omni.domain.reports.filters import Scope
from omni.domain.reports.period import floor_interval
from omni.domain.reports.rollups import Changes, register
from omni.domain.reports.table import mean, pct

S = m.ConversationStatus
C = m.Conversation
RQI = m.ReportQueueInterval
WAITING = (S.QUEUED, S.OFFERED)
CHUNK = timedelta(days=1)
"""A long rebuild (a backfill) reads one day of contacts at a time, so memory stays flat."""
SUM_FIELDS = (
    "offered",
    "answered",
    "answered_in_sl",
    "abandoned",
    "abandoned_short",
    "missed",
    "overflowed",
    "callbacks_made",
    "transfers",
    "wait_answered_sum",
    "wait_abandoned_sum",
    "handled",
    "talk_sum",
    "hold_sum",
    "wrap_sum",
    *(f"ans_{n}" for n in SL_THRESHOLDS),
    *(f"abn_{n}" for n in SL_THRESHOLDS),
)
"""Every additive column (``wait_max`` is the one taken as a maximum)."""


def _seconds(later: datetime | None, earlier: datetime | None) -> float:
    if later is None or earlier is None:
        return 0.0
    return max(0.0, (later - earlier).total_seconds())


def _fact_row(key: tuple[datetime, int, str, int, int]) -> dict[str, Any]:
    bucket, queue_id, channel, inbox_id, result_code_id = key
    row: dict[str, Any] = dict.fromkeys(SUM_FIELDS, 0)
    row.update(
        bucket=bucket,
        queue_id=queue_id,
        channel=channel,
        inbox_id=inbox_id,
        result_code_id=result_code_id,
        wait_max=0.0,
    )
    return row


class QueueRollup:
    """Registered as ``queues``; see the module docstring for every definition."""

    name = "queues"

    async def touched(self, session: AsyncSession, changes: Changes) -> set[datetime]:
        """The interval of each changed contact, now and as any of its events saw it."""
        ids = list(changes.conversation_ids)
        found: set[datetime] = set()
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            for at in await session.scalars(
                select(C.first_enqueued_at).where(C.id.in_(part), C.first_enqueued_at.is_not(None))
            ):
                if at is not None:
                    found.add(floor_interval(at))
            # Every wait start the contact's events have shown (a reopened conversation starts a
            # new wait; its earlier interval must drop it): one short string per event.
            seen = m.Event.payload["first_enqueued_at"].as_string()
            for value in await session.scalars(
                select(seen)
                .where(m.Event.conversation_id.in_(part), m.Event.type.like("conversation.%"))
                .distinct()
            ):
                if value:
                    found.add(floor_interval(datetime.fromisoformat(value)))
        return found

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """``in_database``: one set-based statement (PostgreSQL's default) or the Python loop."""
        await session.execute(delete(RQI).where(RQI.bucket >= start, RQI.bucket < end))
        config = await get_config(session)
        if rollup_sql.in_database(session, in_database):
            await rollup_sql.rebuild_queues(session, start, end, float(config.short_abandon_seconds))
            return
        sla = {k: v for k, v in await session.execute(select(m.Queue.id, m.Queue.sla_seconds))}
        at = start
        while at < end:
            upto = min(end, at + CHUNK)
            rows = await self._facts(session, at, upto, sla, float(config.short_abandon_seconds))
            if rows:
                await session.execute(insert(RQI), rows)
            at = upto

    async def _facts(
        self, session: AsyncSession, start: datetime, end: datetime, sla: dict[int, int], grace: float
    ) -> list[dict[str, Any]]:
        in_range = (C.first_enqueued_at >= start, C.first_enqueued_at < end)
        transfers: dict[int | None, int] = {
            k: v
            for k, v in await session.execute(
                select(m.Event.conversation_id, func.count())
                .join(C, C.id == m.Event.conversation_id)
                .where(*in_range, m.Event.type == "conversation.transferred")
                .group_by(m.Event.conversation_id)
            )
        }
        callbacks: dict[int | None, int] = {
            k: v
            for k, v in await session.execute(
                select(m.Callback.conversation_id, func.count())
                .join(C, C.id == m.Callback.conversation_id)
                .where(*in_range, m.Callback.state == "done")
                .group_by(m.Callback.conversation_id)
            )
        }
        contacts = await session.execute(
            select(
                C.id,
                C.queue_id,
                C.channel,
                C.inbox_id,
                C.result_code_id,
                C.status,
                C.first_enqueued_at,
                C.accepted_at,
                C.wrap_up_at,
                C.closed_at,
                C.hold_seconds,
            ).where(*in_range)
        )
        out: dict[tuple[datetime, int, str, int, int], dict[str, Any]] = {}
        for (
            cid,
            qid,
            channel,
            inbox_id,
            code_id,
            status,
            enqueued,
            accepted,
            wrap_up,
            closed,
            hold,
        ) in contacts:
            if status in WAITING or enqueued is None:
                continue  # still in line: no outcome yet
            key = (floor_interval(enqueued), qid or 0, channel, inbox_id or 0, code_id or 0)
            row = out.get(key)
            if row is None:
                row = out[key] = _fact_row(key)
            row["transfers"] += transfers.get(cid, 0)
            row["callbacks_made"] += callbacks.get(cid, 0)
            if accepted is not None:
                wait = _seconds(accepted, enqueued)
                row["answered"] += 1
                row["offered"] += 1
                row["wait_answered_sum"] += wait
                row["wait_max"] = max(row["wait_max"], wait)
                if wait <= sla.get(qid or 0, 20):
                    row["answered_in_sl"] += 1
                for n in SL_THRESHOLDS:
                    if wait <= n:
                        row[f"ans_{n}"] += 1
                if status == S.CLOSED and closed is not None:
                    ended = wrap_up or closed
                    held = float(hold or 0)
                    row["handled"] += 1
                    row["hold_sum"] += held
                    row["talk_sum"] += max(0.0, _seconds(ended, accepted) - held)
                    row["wrap_sum"] += _seconds(closed, ended)
            elif status == S.ABANDONED:
                wait = _seconds(closed or enqueued, enqueued)
                row["abandoned"] += 1
                row["wait_abandoned_sum"] += wait
                row["wait_max"] = max(row["wait_max"], wait)
                if wait < grace:
                    row["abandoned_short"] += 1
                else:
                    row["offered"] += 1
                for n in SL_THRESHOLDS:
                    if wait <= n:
                        row[f"abn_{n}"] += 1
            elif status == S.MISSED:
                row["missed"] += 1
                row["offered"] += 1
                row["wait_max"] = max(row["wait_max"], _seconds(closed or enqueued, enqueued))
            else:  # handed to an overflow bot (status bot, or closed by it) unanswered
                row["overflowed"] += 1
                row["offered"] += 1
        return list(out.values())


QUEUES = register(QueueRollup())


# --- the read side: every queue report sums these rows ---------------------------------------


Sums = dict[str, float]


SUMMED = (*SUM_FIELDS, "wait_max")


async def interval_sums(
    session: AsyncSession,
    scope: Scope,
    *by: InstrumentedAttribute[Any],
    edges: Sequence[datetime] | None = None,
) -> list[tuple[tuple[Any, ...], Sums]]:
    """The rollup rows of the scope's period, queues and filters, summed per ``by`` columns.

    ``edges``: ascending UTC starts of groups (days, weeks, months); the database sums per group
    (the group's index comes first in each key), so a month by day returns 31 rows per queue
    instead of 2,976.
    """
    f = scope.filter
    if scope.queue_ids is not None and not scope.queue_ids:
        return []
    keys: list[Any] = list(by)
    if edges:
        whens = [(RQI.bucket < edge, i) for i, edge in enumerate(edges[1:])]
        group = case(*whens, else_=len(edges) - 1) if whens else literal(0)
        keys = [group.label("grp"), *by]
    stmt = select(
        *keys,
        *(func.coalesce(func.sum(getattr(RQI, k)), 0) for k in SUM_FIELDS),
        func.coalesce(func.max(RQI.wait_max), 0),
    ).where(RQI.bucket >= scope.period.start, RQI.bucket < scope.period.end)
    if keys:
        stmt = stmt.group_by(*keys)
    if scope.queue_ids is not None:
        stmt = stmt.where(RQI.queue_id.in_(sorted(scope.queue_ids)))
    if f.channels:
        stmt = stmt.where(RQI.channel.in_(f.channels))
    if f.inbox_ids:
        stmt = stmt.where(RQI.inbox_id.in_(f.inbox_ids))
    if f.result_code_ids:
        stmt = stmt.where(RQI.result_code_id.in_(f.result_code_ids))
    n = len(keys)
    return [
        (tuple(row[:n]), dict(zip(SUMMED, map(float, row[n:]), strict=True)))
        for row in await session.execute(stmt)
    ]


def add(into: Sums, more: Sums) -> Sums:
    """Merge two groups' sums (``wait_max`` is a maximum, the rest add up)."""
    for k, v in more.items():
        into[k] = max(into.get(k, 0.0), v) if k == "wait_max" else into.get(k, 0.0) + v
    return into


def figures(s: Sums) -> dict[str, float | int | None]:
    """The queue KPIs of summed rows, as PRODUCT.md and the module docstring define them."""
    handled = int(s.get("handled", 0))
    answered = int(s.get("answered", 0))
    offered = int(s.get("offered", 0))
    abandoned = int(s.get("abandoned", 0))
    short = int(s.get("abandoned_short", 0))
    handle = s.get("talk_sum", 0) + s.get("hold_sum", 0) + s.get("wrap_sum", 0)
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned - short,
        "abandoned_short": short,
        "missed": int(s.get("missed", 0)),
        "overflowed": int(s.get("overflowed", 0)),
        "lost": offered - answered,
        "callbacks_made": int(s.get("callbacks_made", 0)),
        "sl_pct": pct(s.get("answered_in_sl", 0), offered),
        "abandon_pct": pct(abandoned - short, offered),
        "asa": mean(s.get("wait_answered_sum", 0), answered),
        "wait_max": round(s.get("wait_max", 0), 1),
        "handled": handled,
        "aht": mean(handle, handled),
        "talk": mean(s.get("talk_sum", 0), handled),
        "hold": mean(s.get("hold_sum", 0), handled),
        "wrap": mean(s.get("wrap_sum", 0), handled),
        "transfers": int(s.get("transfers", 0)),
    }
