"""Which messages a PostgreSQL search looks at: the newest matches in the caller's scope.

``omni.domain.search`` ranks and cuts snippets for a small window of candidate message ids;
this module finds that window without reading millions of rows (bench/search_bench.py,
5,000,000 messages). Two ways, chosen by the planner's estimate of how many messages match the
words at all (``estimate``):

- **few matches** (fewer than ``sqrt(window × messages)``, e.g. an order number, two words
  together) or a date range: the GIN index alone (with ``ix_messages_created_at`` for dates),
  every match read once, the newest in scope kept;
- **many matches** (a common word): walk the newest messages backwards and stop at the window,
  one walk per visible queue over ``ix_messages_search_queue (search_queue_id, id)`` so an
  operator's walk never reads other queues' rows; an admin without a queue filter walks
  ``messages`` itself.

``messages.search_queue_id`` is the conversation's queue, copied by migration
``0040_searchperf18``'s triggers. Scope is applied twice: on the copy (and the ids of the
conversations kept for the caller outside their queues), which is what makes it cheap, and as
the exact rule on ``conversations`` (``visible_conversations_filter``), so the copy can only
narrow, never widen, what a caller sees.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import ColumnElement, Select, literal_column, or_, select, text, true, union, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import Principal

__all__ = ["PG_COLUMN", "PG_QUEUE", "estimate", "kept_conversations", "window_ids"]

PG_COLUMN = "search_tsv"
"""The stored generated tsvector of ``messages`` (migration ``0037_search18``), GIN-indexed."""
PG_QUEUE = "search_queue_id"
"""``messages``' copy of its conversation's queue (migration ``0040_searchperf18``, kept by
triggers, not mapped in the models)."""


async def estimate(session: AsyncSession, words: str) -> tuple[float, float]:
    """The planner's guess of the messages matching ``words`` and of all messages (no rows
    read: its statistics of the tsvector's lexemes, kept by ``ANALYZE``/autovacuum)."""
    plan = (
        await session.execute(
            text(
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE search_tsv @@ "
                "(websearch_to_tsquery('russian'::regconfig, :q) "
                "|| websearch_to_tsquery('english'::regconfig, :q))"
            ),
            {"q": words},
        )
    ).scalar_one()
    rows = float((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])
    total = (
        await session.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass"))
    ).scalar_one()
    return rows, max(float(total), 1.0)


async def kept_conversations(session: AsyncSession, who: Principal, queues: set[int]) -> list[int]:
    """Conversations the caller may open outside their queues: assigned, reserved or offered
    to them (the rest of ``visible_conversations_filter``)."""
    c = m.Conversation
    elsewhere = or_(c.queue_id.is_(None), c.queue_id.not_in(queues)) if queues else true()
    # a union, so each part reads its own index (an OR of the three reads every conversation)
    offered = select(m.Offer.conversation_id).where(m.Offer.user_id == who.id)
    mine = union(
        select(c.id).where(c.assigned_user_id == who.id, elsewhere),
        select(c.id).where(c.preferred_user_id == who.id, elsewhere),
        select(c.id).where(c.id.in_(offered), elsewhere),
    )
    return list(await session.scalars(mine))


async def window_ids(
    session: AsyncSession,
    who: Principal,
    *,
    words: str,
    match: ColumnElement[bool],
    message_where: list[ColumnElement[bool]],
    conversation_where: list[ColumnElement[bool]],
    queues: set[int] | None,
    queue_id: int | None,
    dated: bool,
    size: int,
) -> Select[Any]:
    """A statement of the newest ``size`` message ids (column ``id``) matching ``match`` and
    the conditions, in scope. ``message_where`` are conditions on ``messages`` only (kind,
    dates), ``conversation_where`` the exact scope and filters on ``conversations``."""
    msg, c = m.Message, m.Conversation
    queue: ColumnElement[Any] = literal_column(f"messages.{PG_QUEUE}")
    walls = set(queues) if queues is not None else None
    if queue_id is not None:
        walls = {queue_id} if walls is None or queue_id in walls else set()
    kept = await kept_conversations(session, who, queues) if queues is not None else []
    rows, total = await estimate(session, words)
    few = rows < math.sqrt(size * total)

    def part(*where: ColumnElement[bool]) -> Select[Any]:
        return (
            select(msg.id.label("id"))
            .join(c, c.id == msg.conversation_id)
            .where(match, *message_where, *where, *conversation_where)
        )

    if few or dated:
        # every match through the GIN index (and the date index), newest kept. "+ 0" keeps
        # the planner from walking the primary key backwards for the order (its costing
        # misses that a rare match means reading most of the table) and from ANDing in a
        # bitmap of a whole queue's rows
        where: list[ColumnElement[bool]] = []
        if walls is not None:
            where.append(or_((queue + 0).in_(walls), msg.conversation_id.in_(kept)))
        return part(*where).order_by((msg.id + 0).desc()).limit(size)
    if walls is None:
        return part().order_by(msg.id.desc()).limit(size)
    # ordered as ix_messages_search_queue is, so each walk reads only its queue's rows (by
    # id alone the planner would walk the primary key and drop the other queues' rows)
    walks = [part(queue == qid).order_by(queue.desc(), msg.id.desc()).limit(size) for qid in sorted(walls)]
    if kept:
        walks.append(part(msg.conversation_id.in_(kept)).order_by(msg.id.desc()).limit(size))
    if not walks:
        return part(false_()).limit(0)
    if len(walks) == 1:
        return walks[0]
    each = union_all(*(w.subquery().select() for w in walks)).subquery("walks")
    return select(each.c.id).order_by(each.c.id.desc()).limit(size)


def false_() -> ColumnElement[bool]:
    return literal_column("false")
