"""Which messages a PostgreSQL search looks at: the newest matches in the caller's scope.

``omni.domain.search`` ranks and cuts snippets for a small window of candidate message ids;
this module finds that window without reading millions of rows (bench/search_bench.py,
5,000,000 messages). The way is chosen from the planner's statistics, no rows read
(``estimate``):

- **few matches** (a word outside the statistics' common lexemes, e.g. an order number, or
  fewer expected than ``sqrt(window × messages)``, e.g. two words together): every match
  through the GIN index, the newest in scope kept;
- **many matches** (a common word): walk the newest messages backwards and stop at the window,
  one walk per visible queue over ``ix_messages_search_queue (search_queue_id, id)`` so an
  operator's walk never reads other queues' rows; an admin without a queue filter walks
  ``messages`` itself; with a date range, one walk backwards per visible queue over
  ``ix_messages_search_queue_created`` (an admin: over ``ix_messages_created_at``).

The planner gets a few settings for the search's statements only (``PLANNER``, and bitmap or
merge/hash joins off for one way or the other); bench/README.md has the plans behind each.

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

__all__ = ["PG_COLUMN", "PG_QUEUE", "estimate", "kept_conversations", "reset_planner", "window_ids"]

PG_COLUMN = "search_tsv"
"""The stored generated tsvector of ``messages`` (migration ``0037_search18``), GIN-indexed."""
PG_QUEUE = "search_queue_id"
"""``messages``' copy of its conversation's queue (migration ``0040_searchperf18``, kept by
triggers, not mapped in the models)."""


PLANNER = {
    "max_parallel_workers_per_gather": "0",
    "random_page_cost": "1.1",
    "plan_cache_mode": "force_custom_plan",
}
"""Set for the statements of a search (``window_ids``); see bench/README.md for the plans. The
driver prepares each statement once and PostgreSQL switches a prepared statement to a generic
plan after five runs: planned without the words, it can't tell a rare word from a common one."""


PATH_SETTINGS = ("enable_bitmapscan", "enable_mergejoin", "enable_hashjoin")
"""Turned off for one way to the window or the other (``window_ids``)."""


async def reset_planner(session: AsyncSession) -> None:
    """Back to the session's settings after a search's statements ran."""
    await session.execute(
        text("SELECT set_config(name, reset_val, true) FROM pg_settings WHERE name = ANY(:names)"),
        {"names": [*PLANNER, *PATH_SETTINGS]},
    )


async def _set_planner(session: AsyncSession, **settings: str) -> None:
    """``SET LOCAL`` in one round trip."""
    calls = ", ".join(f"set_config('{name}', '{value}', true)" for name, value in settings.items())
    await session.execute(text(f"SELECT {calls}"))


async def estimate(session: AsyncSession, words: str) -> tuple[float, float]:
    """The planner's guess of the messages matching ``words`` and of all messages, from its
    statistics (no rows read). A word outside the statistics' most common lexemes (an order
    number, a phone) counts as matching nothing: the planner would guess it at about half the
    rarest common lexeme's frequency, a hundred thousand rows on millions of messages."""
    params = {"q": words}
    common, total, russian, english = (
        await session.execute(
            text(
                "SELECT (SELECT most_common_elems::text::text[] FROM pg_stats "
                "WHERE schemaname = current_schema() AND tablename = 'messages' "
                "AND attname = 'search_tsv'), "
                "(SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass), "
                "tsvector_to_array(to_tsvector('russian'::regconfig, :q)), "
                "tsvector_to_array(to_tsvector('english'::regconfig, :q))"
            ),
            params,
        )
    ).one()
    total = max(float(total or 0), 1.0)
    # the query is the Russian parse OR the English one: rare when both have a word outside
    # the common lexemes
    known = set(common or ())
    if common and all(p and not set(p) <= known for p in (russian, english)):
        return 0.0, total
    plan = (
        await session.execute(
            text(
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE search_tsv @@ "
                "(websearch_to_tsquery('russian'::regconfig, :q) "
                "|| websearch_to_tsquery('english'::regconfig, :q))"
            ),
            params,
        )
    ).scalar_one()
    return float((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"]), total


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
    tsq: ColumnElement[Any],
    message_where: list[ColumnElement[bool]],
    conversation_where: list[ColumnElement[bool]],
    queues: set[int] | None,
    queue_id: int | None,
    dated: bool,
    size: int,
) -> Select[Any]:
    """A statement of the newest ``size`` message ids (column ``id``) whose text matches the
    query ``tsq``, in scope. ``message_where`` are conditions on ``messages`` only (kind,
    dates), ``conversation_where`` the exact scope and filters on ``conversations``."""
    msg, c = m.Message, m.Conversation
    # planner settings for this search's statements (``reset_planner`` undoes them): a window
    # is a few hundred rows by design, so parallel workers cost more than they save (far more
    # on a busy server), and the pages a search reads are a hot table's, not cold random ones
    await _set_planner(session, **PLANNER)
    queue: ColumnElement[Any] = literal_column(f"messages.{PG_QUEUE}")
    walls = set(queues) if queues is not None else None
    if queue_id is not None:
        walls = {queue_id} if walls is None or queue_id in walls else set()
    kept = await kept_conversations(session, who, queues) if queues is not None else []
    rows, total = await estimate(session, words)
    if rows < math.sqrt(size * total):
        # every match through the GIN index, newest kept. "+ 0" keeps the planner from
        # walking the primary key backwards for the order (its costing misses that a rare
        # match means reading most of the table) and from ANDing in a bitmap of a whole
        # queue's rows; each match joins its conversation by primary key (guessing a rare
        # word at ~1 % of the table, the planner would merge-join all the conversations)
        await _set_planner(session, enable_mergejoin="off", enable_hashjoin="off")
        match = literal_column(f"messages.{PG_COLUMN}").op("@@")(tsq)
        where: list[ColumnElement[bool]] = [match, *message_where, *conversation_where]
        if walls is not None:
            where.append(or_((queue + 0).in_(walls), msg.conversation_id.in_(kept)))
        stmt = select(msg.id.label("id")).join(c, c.id == msg.conversation_id).where(*where)
        return stmt.order_by((msg.id + 0).desc()).limit(size)

    # the walks test the text row by row and stop at ``size`` matches; with bitmap scans off
    # (GIN has no other kind) the planner can't trade that for a bitmap of every message with
    # a common word, hundreds of thousands of rows, and still knows how common the word is
    await _set_planner(session, enable_bitmapscan="off")
    walked = literal_column(f"messages.{PG_COLUMN}").op("@@")(tsq)

    def walk(*where: ColumnElement[bool], by_queue: bool = False) -> Select[Any]:
        return (
            select(msg.id.label("id"))
            .join(c, c.id == msg.conversation_id)
            .where(walked, *message_where, *where, *conversation_where)
            .order_by(*([queue.desc(), msg.id.desc()] if by_queue else [msg.id.desc()]))
            .limit(size)
        )

    if dated and walls is None:
        # a common word in a date range, every queue: the newest messages of the range
        # backwards over ix_messages_created_at until ``size`` match
        return (
            select(msg.id.label("id"))
            .join(c, c.id == msg.conversation_id)
            .where(walked, *message_where, *conversation_where)
            .order_by(msg.created_at.desc(), msg.id.desc())
            .limit(size)
        )
    if dated and walls is not None:
        # in scope: the range of each visible queue backwards over
        # ix_messages_search_queue_created (search_queue_id, created_at), so a supervisor's walk
        # reads their queues' rows of the range only, not every queue's (migration
        # ``0043_searchperf2``: 401k rows read → 40k for 2 of 20 queues over 30 days)
        def dated_walk(*where: ColumnElement[bool], by_queue: bool = False) -> Select[int, Any]:
            return (
                select(msg.id.label("id"), msg.created_at.label("at"))
                .join(c, c.id == msg.conversation_id)
                .where(walked, *message_where, *where, *conversation_where)
                .order_by(*([queue.desc()] if by_queue else []), msg.created_at.desc(), msg.id.desc())
                .limit(size)
            )

        ranges = [dated_walk(queue.between(qid, qid), by_queue=True) for qid in sorted(walls)]
        if kept:
            ranges.append(dated_walk(msg.conversation_id.in_(kept)))
        if not ranges:
            return select(msg.id.label("id")).where(literal_column("false")).limit(0)
        newest = union_all(*(w.subquery().select() for w in ranges)).subquery("ranges")
        return select(newest.c.id).order_by(newest.c.at.desc(), newest.c.id.desc()).limit(size)
    if walls is None:
        return walk()
    # ordered as ix_messages_search_queue is, so each walk reads only its queue's rows. The
    # queue is a range, not "=": an equality would make the planner drop the queue from the
    # order and walk the primary key instead, reading and dropping the other queues' rows
    walks = [walk(queue.between(qid, qid), by_queue=True) for qid in sorted(walls)]
    if kept:
        walks.append(walk(msg.conversation_id.in_(kept)))
    if not walks:
        return select(msg.id.label("id")).where(literal_column("false")).limit(0)
    if len(walks) == 1:
        return walks[0]
    each = union_all(*(w.subquery().select() for w in walks)).subquery("walks")
    return select(each.c.id).order_by(each.c.id.desc()).limit(size)
