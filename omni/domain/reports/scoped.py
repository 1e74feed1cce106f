"""Reading interval rollup rows through a ``Scope``: the conditions and the row labels the chat,
bot and survey reports share.

Scope rule for conversation rollups: the caller's queues always narrow the rows (a supervisor
sees only their queues' conversations); operators narrow them only when asked for (an operator
filter or a group), so a supervisor's queue still shows the chats an operator of another group
took. Per-operator rollups (chat load) are narrowed to the caller's operators.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, false, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports.filters import Scope
from omni.domain.reports.period import Grouping, floor_interval, group_start, local_midnight


def conditions(
    table: Any,
    scope: Scope,
    *,
    queue: bool = True,
    user: bool = False,
    channel: bool = True,
    inbox: bool = True,
) -> list[ColumnElement[bool]]:
    """``bucket`` within the period, then each dimension the table has, through the scope."""
    f = scope.filter
    where: list[ColumnElement[bool]] = [table.bucket >= scope.period.start, table.bucket < scope.period.end]
    if queue and scope.queue_ids is not None:
        where.append(table.queue_id.in_(scope.queue_ids) if scope.queue_ids else false())
    asked_users = bool(f.user_ids or f.group_ids)
    if user and scope.user_ids is not None and (asked_users or not queue):
        where.append(table.user_id.in_(scope.user_ids) if scope.user_ids else false())
    if channel and f.channels:
        where.append(table.channel.in_(f.channels))
    if inbox and f.inbox_ids:
        where.append(table.inbox_id.in_(f.inbox_ids))
    return where


MAX_CASE_GROUPS = 100
"""Up to this many groups (days of a quarter, weeks, months) the database sums each group
itself; finer groupings (hours, intervals) are summed from interval rows here."""


def group_index(bucket: Any, scope: Scope) -> tuple[Any, list[datetime]] | None:
    """A SQL expression numbering each row's group (0, 1, …) and the groups' labels, so a report
    sums a month into a few dozen rows in the database; ``None`` for hour or interval grouping
    (or too many groups), where the report groups interval rows itself (``Labeler``)."""
    grouping = scope.filter.grouping
    if grouping in (Grouping.INTERVAL, Grouping.HOUR):
        return None
    labels: list[datetime] = []
    starts: list[datetime] = []
    day = scope.period.first_day
    while day <= scope.period.last_day:
        at = floor_interval(local_midnight(day, scope.period.tz))
        label = group_label(at, scope)
        if not labels or label != labels[-1]:
            labels.append(label)
            starts.append(at)
        day += timedelta(days=1)
    if len(labels) > MAX_CASE_GROUPS:
        return None
    if len(labels) == 1:
        return literal(0), labels
    whens = [(bucket < starts[i + 1], i) for i in range(len(starts) - 1)]
    return case(*whens, else_=len(starts) - 1), labels


class Labeler:
    """``group_label`` remembered per interval: a month has ~3,000 intervals, not 100,000 rows."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.seen: dict[datetime, datetime] = {}

    def __call__(self, bucket: datetime) -> datetime:
        label = self.seen.get(bucket)
        if label is None:
            label = self.seen[bucket] = group_label(bucket, self.scope)
        return label


def group_label(bucket: datetime, scope: Scope) -> datetime:
    """The row label of an interval under the scope's grouping, as local time; the whole
    period (``total``) is labelled with its first local midnight."""
    tz = scope.period.tz
    if scope.filter.grouping == Grouping.TOTAL:
        return scope.period.start.astimezone(tz)
    return group_start(bucket, scope.filter.grouping, tz)


async def user_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = await session.execute(select(m.User.id, m.User.display_name).where(m.User.id.in_(wanted)))
    return {uid: name for uid, name in rows.all()}


async def queue_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = await session.execute(select(m.Queue.id, m.Queue.name).where(m.Queue.id.in_(wanted)))
    return {qid: name for qid, name in rows.all()}


def chunks(ids: Iterable[int], size: int = 1000) -> Iterable[list[int]]:
    """``IN`` lists of a bounded length (SQLite's parameter limit, PostgreSQL's plan size)."""
    batch: list[int] = []
    for i in ids:
        batch.append(i)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
