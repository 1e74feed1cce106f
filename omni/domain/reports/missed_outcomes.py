"""Report 11, missed and abandoned contacts and what happened after: was the customer called
back, by whom, and how long after they left the line.

A list (one row per contact), so it reads the contacts themselves rather than the interval
rows, one page at a time: the period's contacts (wait began in it) of the scope's queues that
were **missed** or **abandoned** after the short-abandon grace (a short abandon is a misdial,
not someone to call back). *Called back* = a callback of the contact's conversation marked
done; *by* = the operator who took it; *after* = from the moment the customer left the line
(``closed_at``) to the ``callback.done`` event. ``callback`` shows the state of the contact's
latest callback otherwise (``open``, ``claimed``) or ``none``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.masking import masker_for
from omni.domain.reports.filters import Scope
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.table import Cell, Column, Kind, ReportTable

KEY = "missed_outcomes"
PAGE = 500
MAX_PAGE = 5_000
S = m.ConversationStatus
C = m.Conversation
COLUMNS = (
    Column("at", Kind.DATETIME, "Joined the line"),
    Column("queue", Kind.LABEL, "Queue"),
    Column("channel", Kind.TEXT, "Channel", labels="enum.channel"),
    Column("contact", Kind.TEXT, "Contact"),
    Column("outcome", Kind.TEXT, "Outcome", labels="enum.status"),
    Column("wait", Kind.SECONDS, "Wait"),
    Column("callback", Kind.TEXT, "Callback", labels="rpt.callback"),
    Column("called_back_by", Kind.TEXT, "Called back by"),
    Column("called_back_after", Kind.SECONDS, "Called back after"),
)


def _page(scope: Scope) -> tuple[int, int]:
    """The page asked for (the filter's ``offset`` / ``limit``), at most ``MAX_PAGE`` rows."""
    return max(0, scope.filter.offset), min(max(1, scope.filter.limit), MAX_PAGE)


async def _listed(session: AsyncSession, scope: Scope) -> list[int]:
    """The ids of the contacts the list shows, oldest first."""
    if scope.queue_ids is not None and not scope.queue_ids:
        return []
    f = scope.filter
    grace = timedelta(seconds=scope.config.short_abandon_seconds)
    where = [
        C.first_enqueued_at >= scope.period.start,
        C.first_enqueued_at < scope.period.end,
        C.accepted_at.is_(None),
        C.status.in_((S.MISSED, S.ABANDONED)),
    ]
    if scope.queue_ids is not None:
        where.append(C.queue_id.in_(sorted(scope.queue_ids)))
    if f.channels:
        where.append(C.channel.in_(f.channels))
    if f.inbox_ids:
        where.append(C.inbox_id.in_(f.inbox_ids))
    if f.result_code_ids:
        where.append(C.result_code_id.in_(f.result_code_ids))
    # The grace is compared here, not in SQL: interval arithmetic differs between the databases,
    # and three small columns per contact of the period are cheap.
    return [
        cid
        for cid, status, enqueued, closed in await session.execute(
            select(C.id, C.status, C.first_enqueued_at, C.closed_at)
            .where(*where)
            .order_by(C.first_enqueued_at, C.id)
        )
        if status == S.MISSED or (closed is not None and enqueued is not None and closed - enqueued >= grace)
    ]


async def _rows(session: AsyncSession, scope: Scope, page: list[int]) -> list[list[Cell]]:
    """The rows of these contacts, with their callbacks' outcome."""
    out: list[list[Cell]] = []
    if not page:
        return out
    contacts = (
        await session.execute(
            select(C, m.Contact.name, m.Contact.phone, m.Queue.name)
            .join(m.Contact, m.Contact.id == C.contact_id)
            .outerjoin(m.Queue, m.Queue.id == C.queue_id)
            .where(C.id.in_(page))
            .order_by(C.first_enqueued_at, C.id)
        )
    ).all()
    ids = [row[0].id for row in contacts]
    latest: dict[int, m.Callback] = {}
    done_at: dict[int, datetime] = {}
    if ids:
        for cb in await session.scalars(
            select(m.Callback).where(m.Callback.conversation_id.in_(ids)).order_by(m.Callback.id)
        ):
            assert cb.conversation_id is not None
            kept = latest.get(cb.conversation_id)
            if kept is None or kept.state != "done":
                latest[cb.conversation_id] = cb  # the first one done wins, else the latest
        for event in await session.scalars(
            select(m.Event)
            .where(m.Event.conversation_id.in_(ids), m.Event.type == "callback.done")
            .order_by(m.Event.id)
        ):
            done = latest.get(event.conversation_id or 0)
            if done is not None and event.payload.get("id") == done.id:
                done_at.setdefault(done.id, event.created_at)
    users = {cb.claimed_by_id for cb in latest.values() if cb.state == "done" and cb.claimed_by_id}
    names: dict[int, str] = {}
    if users:
        for uid, display, username in await session.execute(
            select(m.User.id, m.User.display_name, m.User.username).where(m.User.id.in_(users))
        ):
            names[uid] = display or username
    tz = scope.period.tz
    masker = await masker_for(session, scope.who)
    for conv, contact_name, phone, queue_name in contacts:
        assert conv.first_enqueued_at is not None
        left = conv.closed_at or conv.first_enqueued_at
        last = latest.get(conv.id)
        done_by = last.claimed_by_id if last is not None and last.state == "done" else None
        when = done_at.get(last.id) if last is not None and last.state == "done" else None
        row: list[Cell] = [
            conv.first_enqueued_at.astimezone(tz),
            queue_name or "—",
            conv.channel,
            contact_name or masker.phone(phone) or "",
            str(conv.status),
            round(max(0.0, (left - conv.first_enqueued_at).total_seconds()), 1),
            last.state if last is not None else "none",
            names.get(done_by, "") if done_by is not None else "",
            round(max(0.0, (when - left).total_seconds()), 1) if when is not None else None,
        ]
        out.append(row)
    return out


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    """One page and how many contacts the list has in all (``total_rows``)."""
    listed = await _listed(session, scope)
    offset, limit = _page(scope)
    rows = await _rows(session, scope, listed[offset : offset + limit])
    return ReportTable(key=KEY, columns=COLUMNS, rows=rows, total_rows=len(listed))


async def stream(session: AsyncSession, scope: Scope) -> AsyncIterator[list[Cell]]:
    """Every row, a page at a time (exports and mailings carry the whole list)."""
    listed = await _listed(session, scope)
    for at in range(0, len(listed), PAGE):
        for row in await _rows(session, scope, listed[at : at + PAGE]):
            yield row


register(
    ReportSpec(
        KEY,
        run,
        ("period", "queue", "group", "channel", "inbox", "result_code"),
        paginated=True,
        order=110,
        stream=stream,
    )
)
