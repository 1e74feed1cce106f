"""What the reports page offers in its pickers: the caller's queues, groups, operators,
channels, inboxes and result codes, narrowed like a report's scope.

The pickers must not list what the caller could not read anyway: a supervisor sees the queues
and operators of their groups only (asking for another queue gives an empty report, and its
name must not leak through a picker either). Admins and auditors see everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import grants
from omni.domain.auth import Principal, visible_queue_ids, visible_user_ids
from omni.domain.reports.filters import report_reach
from omni.i18n import enum_label

STAFF_ROLES = (m.Role.OPERATOR, m.Role.SUPERVISOR)
"""Who handles contacts and so appears in the operator picker."""


@dataclass(frozen=True, slots=True)
class Option:
    id: int | str
    label: str
    extra: dict[str, str] = field(default_factory=dict)
    """Whatever the page needs beside the label (an inbox's channel)."""


@dataclass(frozen=True, slots=True)
class ReportOptions:
    queues: list[Option]
    groups: list[Option]
    operators: list[Option]
    channels: list[Option]
    inboxes: list[Option]
    result_codes: list[Option]


async def report_options(session: AsyncSession, who: Principal, lang: str) -> ReportOptions:
    """Every picker's choices for ``who`` in ``lang``; operators are refused like reports."""
    reach = await report_reach(session, who)
    everything = who.role in (m.Role.ADMIN, m.Role.AUDITOR) and reach != grants.OWN
    queue_ids = None if everything else (await visible_queue_ids(session, who) or set())
    user_ids = None if everything else (await visible_user_ids(session, who) or set())
    if reach == grants.OWN:
        user_ids = {who.id}

    q_stmt = select(m.Queue).order_by(m.Queue.name, m.Queue.id)
    if queue_ids is not None:
        q_stmt = q_stmt.where(m.Queue.id.in_(queue_ids))
    queues = (await session.scalars(q_stmt)).all()

    g_stmt = select(m.Group).order_by(m.Group.name, m.Group.id)
    if not everything:
        scoped_groups = set(
            await session.scalars(
                select(m.SupervisorScope.group_id).where(
                    m.SupervisorScope.supervisor_id == who.id, m.SupervisorScope.group_id.is_not(None)
                )
            )
        )
        g_stmt = g_stmt.where(m.Group.id.in_(scoped_groups))
    groups = (await session.scalars(g_stmt)).all()

    u_stmt = (
        select(m.User)
        .where(m.User.role.in_([r.value for r in STAFF_ROLES]))
        .order_by(m.User.display_name, m.User.username, m.User.id)
    )
    if user_ids is not None:
        u_stmt = u_stmt.where(m.User.id.in_(user_ids))
    users = (await session.scalars(u_stmt)).all()

    i_stmt = select(m.Inbox).order_by(m.Inbox.name, m.Inbox.id)
    if queue_ids is not None:
        i_stmt = i_stmt.where(m.Inbox.queue_id.in_(queue_ids))
    inboxes = (await session.scalars(i_stmt)).all()
    channels = sorted({i.channel for i in inboxes})

    c_stmt = select(m.ResultCode).order_by(m.ResultCode.name, m.ResultCode.id)
    if queue_ids is not None:
        # A queue without a list allows every code (conversations.handling); otherwise the union.
        allowed: dict[int, set[int]] = {q: set() for q in queue_ids}
        rows = await session.execute(
            select(m.QueueResultCode.queue_id, m.QueueResultCode.result_code_id).where(
                m.QueueResultCode.queue_id.in_(queue_ids)
            )
        )
        for q, code in rows:
            allowed[q].add(code)
        if not queue_ids or all(allowed.values()):
            c_stmt = c_stmt.where(m.ResultCode.id.in_(set[int]().union(*allowed.values())))
    codes = (await session.scalars(c_stmt)).all()

    return ReportOptions(
        queues=[Option(q.id, q.name) for q in queues],
        groups=[Option(g.id, g.name) for g in groups],
        operators=[Option(u.id, u.display_name or u.username) for u in users],
        channels=[Option(c, enum_label(lang, "channel", c)) for c in channels],
        inboxes=[Option(i.id, i.name, {"channel": i.channel}) for i in inboxes],
        result_codes=[Option(c.id, c.name_in(lang), {"code": c.code}) for c in codes],
    )
