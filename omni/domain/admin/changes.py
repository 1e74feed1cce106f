"""The events admin changes emit, in the caller's transaction (so a refused change emits none).

Exactly two types:

``queue.members_changed`` ``{"queue_id", "user_ids"}`` (``queue_id=`` set): who serves the
queue after the change, once per queue whose members changed. A member is an active operator
with a membership row (``QueueMember``): that is who routing offers the queue's conversations
to and whose console joins the queue's room. Rows change through the queue's member list and
go with a deleted queue; a user edit changes who counts (deactivation, a role change); group
and skill changes change neither, so they don't emit it.

``admin.changed`` ``{"entity", "id", "action"}``: every other admin create, update or delete,
so a live admin page or a cache can refetch the one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.events import emit

Action = Literal["created", "updated", "deleted"]

ADMIN_CHANGED = "admin.changed"
QUEUE_MEMBERS_CHANGED = "queue.members_changed"


def _changed(
    session: AsyncSession, entity: str, entity_id: int, action: Action, *, user_id: int | None = None
) -> None:
    """``user_id``: the person the change is about (a user edited), whose own windows get the
    event too (their room): e.g. the operator window follows a changed phone endpoint live."""
    emit(session, ADMIN_CHANGED, {"entity": entity, "id": entity_id, "action": action}, user_id=user_id)


async def _queue_members(session: AsyncSession, queue_ids: Iterable[int]) -> dict[int, list[int]]:
    """Who serves each queue now (see the module docstring), sorted; every asked queue has a key."""
    members: dict[int, list[int]] = {qid: [] for qid in queue_ids}
    if members:
        rows = await session.execute(
            select(m.QueueMember.queue_id, m.QueueMember.user_id)
            .join(m.User, m.User.id == m.QueueMember.user_id)
            .where(
                m.QueueMember.queue_id.in_(members),
                m.User.is_active.is_(True),
                m.User.role == m.Role.OPERATOR,
            )
            .order_by(m.QueueMember.user_id)
        )
        for qid, uid in rows.all():
            members[qid].append(uid)
    return members


async def _queues_of(session: AsyncSession, user_id: int) -> list[int]:
    """The queues a user has membership rows in, whether or not they count as serving now."""
    return list(await session.scalars(select(m.QueueMember.queue_id).where(m.QueueMember.user_id == user_id)))


async def _emit_members_changed(session: AsyncSession, before: Mapping[int, list[int]]) -> bool:
    """Compare with ``before`` (from ``_queue_members`` ahead of the change, which must be
    flushed by now) and emit for each queue whose members differ; ``True`` if any did."""
    after = await _queue_members(session, before)
    emitted = False
    for qid in sorted(before):
        if after[qid] != before[qid]:
            emit(session, QUEUE_MEMBERS_CHANGED, {"queue_id": qid, "user_ids": after[qid]}, queue_id=qid)
            emitted = True
    return emitted
