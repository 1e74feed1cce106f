"""Which supervisors see a queue, a group or an operator (the admin forms say so).

A supervisor sees what their scope names (``supervisor_scopes``): whole groups — the queues of
the group and its members — and single queues with their members. A new queue or operator
outside every scope is invisible to all supervisors until an admin puts it in one; the admin
forms show who sees the item, or warn that nobody does.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m


async def _supervisors(session: AsyncSession, *conditions: object) -> list[str]:
    stmt = (
        select(m.User.display_name, m.User.username)
        .join(m.SupervisorScope, m.SupervisorScope.supervisor_id == m.User.id)
        .where(m.User.role == m.Role.SUPERVISOR, m.User.is_active.is_(True), or_(*conditions))  # type: ignore[arg-type]  # SQL expressions
        .distinct()
        .order_by(m.User.username)
    )
    return [display or username for display, username in (await session.execute(stmt)).all()]


async def supervisors_of_group(session: AsyncSession, group_id: int) -> list[str]:
    return await _supervisors(session, m.SupervisorScope.group_id == group_id)


async def supervisors_of_queue(session: AsyncSession, queue_id: int) -> list[str]:
    queue = await session.get(m.Queue, queue_id)
    conditions: list[object] = [m.SupervisorScope.queue_id == queue_id]
    if queue is not None and queue.group_id is not None:
        conditions.append(m.SupervisorScope.group_id == queue.group_id)
    return await _supervisors(session, *conditions)


async def supervisors_of_operator(session: AsyncSession, user_id: int) -> list[str]:
    group_ids = list(
        await session.scalars(select(m.GroupMember.group_id).where(m.GroupMember.user_id == user_id))
    )
    queue_ids = list(
        await session.scalars(select(m.QueueMember.queue_id).where(m.QueueMember.user_id == user_id))
    )
    conditions: list[object] = []
    if group_ids:
        conditions.append(m.SupervisorScope.group_id.in_(group_ids))
    if queue_ids:
        conditions.append(m.SupervisorScope.queue_id.in_(queue_ids))
        queue_groups = [
            g
            for g in await session.scalars(select(m.Queue.group_id).where(m.Queue.id.in_(queue_ids)))
            if g is not None
        ]
        if queue_groups:
            conditions.append(m.SupervisorScope.group_id.in_(queue_groups))
    return await _supervisors(session, *conditions) if conditions else []
