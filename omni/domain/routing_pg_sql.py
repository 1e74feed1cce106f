"""The statements of ``routing_pg``'s decision, built once each (every value a bound
parameter, so SQLAlchemy compiles each once and asyncpg prepares each once per connection)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Integer,
    and_,
    any_,
    bindparam,
    case,
    exists,
    false,
    func,
    lateral,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from omni.db import models as m
from omni.domain.capacity import fits_clause, load_rows, units_clause

__all__ = ["candidates_statement", "decision_statement", "fresh_statement", "lock_statement"]

# Constants written into the SQL, not bound (``models.sql_constant``): a prepared statement is
# then planned once, its generic plan as good as one planned for the values at hand.
_VOICE = m.sql_constant(m.Medium.VOICE)
_TRIED = [m.sql_constant("declined"), m.sql_constant("timeout")]


def _skills(u: Any, column: Any) -> Any:
    """The operator's skill ids or levels as one array, ordered by skill id."""
    return (
        select(func.array_agg(aggregate_order_by(column, m.UserSkill.skill_id)))
        .where(m.UserSkill.user_id == u.id)
        .scalar_subquery()
    )


@cache
def decision_statement() -> Any:
    """Steps 1 and 2 in one statement: the waiting conversation locked (``FOR NO KEY UPDATE
    SKIP LOCKED``, no row when another transaction holds it), every column as one row, with
    the version of the queues' configuration (``routing_config``), the round-robin pointer of
    its queue and, as one JSON value ``[candidates, full]``, the candidates of its queue (or its
    named operator): receiving active operators with the columns of ``candidates_statement``
    (the last three only where the queue's strategy, its required skills or an earlier offer
    ask for them), and ``[id, load units]`` of those without room for the conversation
    (``capacity.fits_clause``; only when the queue requires no skills, else they are among the
    candidates). Either part is ``null`` when empty."""
    c = m.Conversation.__table__
    version = (
        select(m.RoutingConfig.version)
        .where(m.RoutingConfig.id == literal_column("1", Integer))
        .scalar_subquery()
    )
    conv = (
        select(c, version.label("config_version"))
        .where(c.c.id == bindparam("cid"), c.c.status == m.sql_constant(m.ConversationStatus.QUEUED))
        # ``NO KEY UPDATE``: a row inserted that refers to the conversation (the customer's
        # message, an offer, a call) holds ``KEY SHARE`` on it until it commits, which a plain
        # ``FOR UPDATE`` would skip as if the conversation were being decided elsewhere.
        .with_for_update(of=c, skip_locked=True, key_share=True)
        .cte("conv")
    )
    qm, u, p, s = m.QueueMember, m.User, m.OperatorPresence, m.OperatorStatus
    who = union_all(
        select(qm.user_id)
        .join(conv, qm.queue_id == conv.c.queue_id)
        .where(conv.c.preferred_user_id.is_(None)),
        select(conv.c.preferred_user_id).where(conv.c.preferred_user_id.is_not(None)),
    )
    load = _load_of(u.id)
    strategy = select(m.Queue.strategy).where(m.Queue.id == conv.c.queue_id).scalar_subquery()
    wants_skills = exists().where(m.QueueSkill.queue_id == conv.c.queue_id)
    tried = exists().where(
        m.Offer.conversation_id == conv.c.id,
        m.Offer.user_id == u.id,
        m.Offer.state.in_(_TRIED),
        m.Offer.created_at >= func.coalesce(conv.c.enqueued_at, conv.c.created_at),
    )
    handled = (
        select(func.count())
        .where(
            m.Conversation.queue_id == conv.c.queue_id,
            m.Conversation.accepted_at >= bindparam("day"),
            m.Conversation.assigned_user_id == u.id,
        )
        .scalar_subquery()
    )
    receives = case((conv.c.medium == _VOICE, s.receives_voice), else_=s.receives_chats)
    row = func.json_build_array(
        u.id,
        u.capacity,
        u.chat_weight,
        u.voice_weight,
        u.handles_chat,
        u.handles_voice,
        p.idle_since,
        *load.c,
        case((conv.c.offered_at.is_not(None), tried), else_=false()),
        case((strategy == m.sql_constant(m.Strategy.FEWEST_HANDLED), handled), else_=literal(0)),
        case((wants_skills, _skills(u, m.UserSkill.skill_id)), else_=null()),
        case((wants_skills, _skills(u, m.UserSkill.level)), else_=null()),
    )
    # Without required skills (whose levels ``routing_config.membership`` reads of every
    # member), the members without room come as ``[id, load units]`` pairs only: all the router
    # does with them is remember their load (``RoutePass.sized_up``).
    blocks = select(m.Queue.chats_block_calls).where(m.Queue.id == conv.c.queue_id).scalar_subquery()
    room = or_(wants_skills, fits_clause(u, load.c, conv.c.medium, blocks))
    candidates = (
        select(
            func.json_build_array(
                func.json_agg(row).filter(room),
                func.json_agg(func.json_build_array(u.id, units_clause(u, load.c))).filter(not_(room)),
                type_=JSON,
            )
        )
        .select_from(u)
        .join(p, p.user_id == u.id)
        .join(s, s.id == p.status_id)
        .join(conv, true())
        .join(load, true())
        .where(u.id.in_(who), u.is_active.is_(True), receives.is_(True))
        .scalar_subquery()
    )
    last_user = (
        select(m.QueueRoutingState.last_user_id)
        .where(m.QueueRoutingState.queue_id == conv.c.queue_id)
        .scalar_subquery()
    )
    return select(
        conv,
        candidates.label("candidates"),
        last_user.label("last_user_id"),
    )


def _load_of(uid: Any) -> Any:
    """Assigned chats, assigned calls, offered chats, offered calls of the operator ``uid`` (a
    column of the enclosing query), as a ``LATERAL`` subquery counted as ``capacity.add_load``
    counts them: a few index look-ups per candidate, whatever the size of the tables.

    Not a CTE of every member's load probed per candidate: PostgreSQL re-ran the members'
    subquery for every pending offer once their number outgrew the table's statistics (18 ms
    of a 20 ms decision after 300 offers in one pass, bench/README.md)."""
    lr = load_rows(uid, one=True).subquery("lr")
    voice = lr.c.medium == _VOICE
    chat = lr.c.medium.is_distinct_from(_VOICE)
    return lateral(
        select(
            *[
                func.coalesce(func.sum(lr.c.n).filter(and_(lr.c.kind == kind, medium)), 0).label(name)
                for name, kind, medium in (
                    ("chats", "a", chat),
                    ("calls", "a", voice),
                    ("offers_chat", "o", chat),
                    ("offers_voice", "o", voice),
                )
            ]
        )
    ).alias("load")


def _load_columns(lr: Any, uid: Any) -> list[Any]:
    """Assigned chats, assigned calls, offered chats, offered calls of ``uid`` from a
    ``load_rows`` CTE, counted as ``capacity.add_load`` counts them."""
    voice = lr.c.medium == _VOICE
    chat = lr.c.medium.is_distinct_from(_VOICE)
    return [
        select(func.coalesce(func.sum(lr.c.n), 0))
        .where(lr.c.uid == uid, lr.c.kind == kind, medium)
        .scalar_subquery()
        for kind, medium in (("a", chat), ("a", voice), ("o", chat), ("o", voice))
    ]


@cache
def candidates_statement(preferred: bool, voice: bool) -> Any:
    """Step 2 on its own, for a conversation that also waits in other queues (escalation,
    overflow): built once per shape; every value is a bound parameter."""
    u = m.User
    who: Any
    if preferred:
        who = bindparam("preferred", type_=Integer)
    else:
        who = select(m.QueueMember.user_id).where(
            m.QueueMember.queue_id == any_(bindparam("queues", type_=ARRAY(Integer)))
        )
    lr = load_rows(who).cte("lr")
    receives = m.OperatorStatus.receives_voice if voice else m.OperatorStatus.receives_chats
    tried = exists().where(
        m.Offer.conversation_id == bindparam("cid"),
        m.Offer.user_id == u.id,
        m.Offer.state.in_(_TRIED),
        m.Offer.created_at >= bindparam("since"),
    )
    handled = (
        select(func.count())
        .where(
            m.Conversation.queue_id == bindparam("primary"),
            m.Conversation.accepted_at >= bindparam("day"),
            m.Conversation.assigned_user_id == u.id,
        )
        .scalar_subquery()
    )
    skill_ids = (
        select(func.array_agg(aggregate_order_by(m.UserSkill.skill_id, m.UserSkill.skill_id)))
        .where(m.UserSkill.user_id == u.id)
        .scalar_subquery()
    )
    skill_levels = (
        select(func.array_agg(aggregate_order_by(m.UserSkill.level, m.UserSkill.skill_id)))
        .where(m.UserSkill.user_id == u.id)
        .scalar_subquery()
    )
    last_user = (
        select(m.QueueRoutingState.last_user_id)
        .where(m.QueueRoutingState.queue_id == bindparam("primary"))
        .scalar_subquery()
    )
    want = bindparam
    return (
        select(
            u.id,
            u.capacity,
            u.chat_weight,
            u.voice_weight,
            u.handles_chat,
            u.handles_voice,
            m.OperatorPresence.idle_since,
            *_load_columns(lr, u.id),
            case((want("want_tried"), tried), else_=false()),
            case((want("want_handled"), handled), else_=literal(0)),
            case((want("want_skills"), skill_ids), else_=null()).label("skill_ids"),
            case((want("want_skills"), skill_levels), else_=null()).label("skill_levels"),
            case((want("want_rr"), last_user), else_=null()),
        )
        .join(m.OperatorPresence, m.OperatorPresence.user_id == u.id)
        .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
        .where(u.id == who if preferred else u.id.in_(who), u.is_active.is_(True), receives.is_(True))
    )


@cache
def lock_statement() -> Any:
    """Step 3: the presence row locked, with what ``do_refresh_activity`` reads of it."""
    p, s = m.OperatorPresence, m.OperatorStatus
    return (
        select(
            s.receives_voice,
            s.receives_chats,
            s.id,
            s.code,
            s.name,
            s.colour,
            s.kind,
            p.since,
            p.reason,
            p.effective_code,
            p.effective_since,
            p.connections,
            p.over_limit_flagged,
        )
        .select_from(p)
        .join(s, s.id == p.status_id)
        .where(p.user_id == bindparam("uid"))
        .with_for_update(of=p, skip_locked=True)
    )


@cache
def fresh_statement() -> Any:
    """Step 4: the load again, in a new snapshot, and the offer's id."""
    lr = load_rows(bindparam("uid", type_=Integer)).cte("lr")
    ringing = select(m.OperatorStatus.id).where(m.OperatorStatus.code == m.sql_constant(m.StatusKind.RINGING))
    return select(
        *_load_columns(lr, bindparam("uid", type_=Integer)),
        func.nextval(func.pg_get_serial_sequence(m.Offer.__tablename__, "id")),
        ringing.scalar_subquery(),
    )
