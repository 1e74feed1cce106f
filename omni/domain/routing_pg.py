"""The router's decision on PostgreSQL in five statements, on plain rows.

``routing.do_assign`` on the ORM cost about 13 statements and 5 ms of Python per decision:
the conversation and presence rows loaded as objects, candidates, their loads, declined
offers, the round-robin pointer and skills each read apart, and every write flushed on its
own. This path makes the same decision with the same locks, and writes the same rows and
events, in:

1. lock the conversation (``FOR UPDATE SKIP LOCKED``), its columns as one row, with the
   version of the queues' configuration, which each node caches (``routing_config``);
2. one query for the candidates: active members of the queues in a receiving status, with
   their load, whether they already declined or let this offer time out, the round-robin
   pointer, today's handled count and skill levels (the last three only when asked for);
3. lock the chosen operator's presence row (``FOR UPDATE SKIP LOCKED``) with its status;
4. re-read that operator's load (a new statement, so a new snapshot: what another node
   committed before our lock was granted counts) and take the offer's id from its sequence;
5. one statement with data-modifying CTEs: the conversation update, the offers, their
   timeout deadlines, the status-history change and presence update of an operator who
   starts ringing, and the outbox events in the order the ORM path emits them.

Strategies order candidates with the same pure ``routing.order_candidates``; skill
filtering, capacity (``capacity.fits``) and the "everyone declined: ring again" rule are
the same code. Steps 3–4 repeat per operator for ``ring_all``. A queue with auto-accept
goes through the ORM path (``do_accept_offer`` needs the objects). SQLite keeps the ORM
path; ``tests/domain/test_routing_pg.py`` checks both give the same rows and events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    Integer,
    any_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.util import identity_key

from omni.db import models as m
from omni.db.unit_of_work import unit_of_work
from omni.domain import deadlines
from omni.domain.capacity import Load, fits, load_rows
from omni.domain.events import checked_payload
from omni.domain.place import offer_why, set_aside
from omni.domain.presence import presence_dict
from omni.domain.routing_config import NodeConfig, QueueConfig, membership, queue_config
from omni.domain.routing_signal import request_routing
from omni.domain.serialize import conversation_dict

if TYPE_CHECKING:
    from omni.domain.routing import Assignment, RoutePass

__all__ = ["assign_on_postgres", "conversation_lock_statement"]

_VOICE = m.Medium.VOICE.value
_BUSY = (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP)


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
def conversation_lock_statement() -> Any:
    """Step 1: the waiting conversation locked, every column as one row, with the version of
    the queues' configuration (``routing_config``)."""
    c = m.Conversation.__table__
    version = select(m.RoutingConfig.version).where(m.RoutingConfig.id == 1).scalar_subquery()
    return (
        select(c, version.label("config_version"))
        .where(c.c.id == bindparam("cid"), c.c.status == m.ConversationStatus.QUEUED.value)
        # ``NO KEY UPDATE``: a row inserted that refers to the conversation (the customer's
        # message, an offer, a call) holds ``KEY SHARE`` on it until it commits, which a plain
        # ``FOR UPDATE`` would skip as if the conversation were being decided elsewhere.
        .with_for_update(of=c, skip_locked=True, key_share=True)
    )


@cache
def _candidates_statement(preferred: bool, voice: bool) -> Any:
    """Step 2, built once per shape; every value is a bound parameter."""
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
        m.Offer.state.in_(("declined", "timeout")),
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
def _lock_statement() -> Any:
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
def _fresh_statement() -> Any:
    """Step 4: the load again, in a new snapshot, and the offer's id."""
    lr = load_rows(bindparam("uid", type_=Integer)).cte("lr")
    ringing = select(m.OperatorStatus.id).where(m.OperatorStatus.code == m.StatusKind.RINGING.value)
    return select(
        *_load_columns(lr, bindparam("uid", type_=Integer)),
        func.nextval(func.pg_get_serial_sequence(m.Offer.__tablename__, "id")),
        ringing.scalar_subquery(),
    )


@dataclass(slots=True)
class _Chosen:
    """An operator locked and still fitting, with what the writes need of them."""

    user: Any
    offer_id: int
    status: Any  # the locked row of ``_lock_statement``
    ringing_id: int | None


def _load(row: Sequence[Any], at: int) -> Load:
    return Load(
        chats=int(row[at]),
        calls=int(row[at + 1]),
        offers_chat=int(row[at + 2]),
        offers_voice=int(row[at + 3]),
    )


async def assign_on_postgres(
    conn: AsyncConnection,
    session: AsyncSession,
    rp: RoutePass,
    now: datetime | None,
    conv: Any,
    node: NodeConfig,
    primary_config: QueueConfig,
) -> Assignment | None:
    """Steps 2–5 for the conversation ``conv`` (locked by ``routing.do_assign``'s step 1, its
    columns as attributes of a plain object), ``primary_config`` its queue's configuration.

    Returns and flags ``rp.no_operator`` as ``routing.do_assign`` does.
    """
    from omni.domain.routing import Assignment, Candidate, Operator, _start_of_day, order_candidates

    pinned = now
    now = now or datetime.now(UTC)
    primary = primary_config.queue
    configs = {primary.id: primary_config}
    for qid in conv.extra_queue_ids or ():
        if qid not in configs:
            extra = await queue_config(conn, node, qid)
            if extra is not None:
                configs[qid] = extra
    preferred = conv.preferred_user_id
    if preferred is None and not any(q.members for q in configs.values()):
        rp.no_operator = True
        return None
    want_skills = any(q.skills for q in configs.values())
    stmt = _candidates_statement(preferred is not None, conv.medium == m.Medium.VOICE)
    params: dict[str, Any] = {
        "cid": conv.id,
        "since": conv.enqueued_at or conv.created_at,
        "primary": primary.id,
        "day": _start_of_day(now),
        "want_tried": conv.offered_at is not None,
        "want_handled": primary.strategy == m.Strategy.FEWEST_HANDLED,
        "want_skills": want_skills,
        "want_rr": primary.strategy == m.Strategy.ROUND_ROBIN,
    }
    if preferred is not None:
        params["preferred"] = preferred
    else:
        params["queues"] = list(configs)
    rows = (await conn.execute(stmt, params)).all()
    member_of, skill_score = membership(conv, configs, primary.id, rows if want_skills else ())
    result: list[Candidate] = []
    tried: set[int] = set_aside(conv)
    last_user_id: int | None = None
    for r in rows:
        last_user_id = r[15]
        if r[0] not in member_of:
            continue
        user = Operator(*r[:7])
        load = _load(r, 7)
        if r[11]:
            tried.add(user.id)
        if not rp.sized_up(user, load, conv.medium, chats_block_calls=primary.chats_block_calls):
            continue
        result.append(
            Candidate(
                user=user,
                load=load,
                position=member_of[user.id][0],
                penalty=member_of[user.id][1],
                skill_score=skill_score.get(user.id, 0),
                handled_today=int(r[12] or 0),
            )
        )
    # Everybody already had a go: ring them again rather than leave the customer waiting.
    candidates = [c for c in result if c.id not in tried] or result
    if not candidates:
        rp.no_operator = True
        return None
    candidates = [c for c in candidates if c.id not in rp.held]
    if not candidates:
        return None  # whoever could take it waits for a conversation ahead (``RoutePass.held``)
    ordered = order_candidates(primary.strategy, candidates, last_user_id=last_user_id)
    chosen: list[_Chosen] = []
    contended: set[int] = set()
    for cand in ordered:
        locked = (await conn.execute(_lock_statement(), {"uid": cand.id})).first()
        if locked is None:
            contended.add(cand.id)  # another transaction holds this operator right now
            continue
        # Status and load are re-read under the lock: what another node committed counts.
        receives = locked.receives_voice if conv.medium == m.Medium.VOICE else locked.receives_chats
        fresh_row = (await conn.execute(_fresh_statement(), {"uid": cand.id})).one()
        fresh = _load(fresh_row, 0)
        if not receives or not fits(
            cand.user, fresh, conv.medium, chats_block_calls=primary.chats_block_calls
        ):
            continue
        chosen.append(_Chosen(cand.user, int(fresh_row[4]), locked, fresh_row[5]))
        if primary.strategy != m.Strategy.RING_ALL:
            break
    if not chosen:
        rp.no_operator = not contended
        rp.held |= contended  # this one may still go to them: nobody behind it does
        return None
    now = pinned or datetime.now(UTC)  # the moment of the offer: after the locks
    await _write(conn, session, conv, primary, chosen, now)
    return Assignment(conv.id, tuple(c.user.id for c in chosen), False)


def _typed(table: Any, names: dict[str, str]) -> dict[str, Any]:
    """``{column: bound parameter named names[column]}`` with the column's type (JSON, UTC
    timestamps): multi-row ``VALUES`` don't take it from the column by themselves."""
    return {col: bindparam(name, type_=table.c[col].type) for col, name in names.items()}


def _rows(table: Any, rows: list[dict[str, str]]) -> tuple[list[str], Any]:
    """``INSERT … SELECT`` of bound parameters, row after row: a multi-row ``VALUES`` would
    keep SQLAlchemy from caching the compiled statement, and the ordinal keeps the rows (and
    so the ids the sequence hands them) in the given order."""
    cols = list(rows[0])
    parts = [
        select(
            *[
                cast(bindparam(name, type_=table.c[col].type), table.c[col].type).label(col)
                for col, name in row.items()
            ],
            literal_column(str(i)).label("ord"),
        )
        for i, row in enumerate(rows)
    ]
    sub = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    return cols, select(*[sub.c[col] for col in cols]).order_by(sub.c.ord)


@cache
def _write_statement(offers: int, ringing: tuple[bool, ...]) -> Any:
    """Step 5 for ``offers`` operators of whom ``len(ringing)`` start ringing (``True``: their
    ``idle_since`` resets too), built once per shape: every value is a bound parameter, so
    SQLAlchemy compiles it once and asyncpg prepares it once per connection."""
    tables: list[Any] = [
        model.__table__
        for model in (m.Conversation, m.Offer, m.Deadline, m.StatusHistory, m.OperatorPresence, m.Event)
    ]
    conv_t, offer_t, deadline_t, history_t, presence_t, event_t = tables
    ctes: list[Any] = [
        update(conv_t)
        .where(conv_t.c.id == bindparam("cid"))
        .values(_typed(conv_t, {"status": "status", "offered_at": "now", "assigned_user_id": "assigned"}))
        .cte("conv_offered"),
        insert(offer_t)
        .from_select(
            *_rows(
                offer_t,
                [
                    {
                        "id": f"offer_{i}",
                        "conversation_id": "cid",
                        "user_id": f"user_{i}",
                        "queue_id": "queue",
                        "state": "pending",
                        "created_at": "now",
                        "expires_at": "expires",
                    }
                    for i in range(offers)
                ],
            )
        )
        .cte("offers_made"),
        insert(deadline_t)
        .from_select(
            *_rows(
                deadline_t,
                [
                    {
                        "kind": "timeout_kind",
                        "ref_id": f"offer_{i}",
                        "due_at": "expires",
                        "done": "not_done",
                        "payload": "no_payload",
                    }
                    for i in range(offers)
                ],
            )
        )
        .cte("offer_timeouts"),
    ]
    for j, idle in enumerate(ringing):
        ctes.append(
            update(history_t)
            .where(history_t.c.user_id == bindparam(f"ring_user_{j}"), history_t.c.ended_at.is_(None))
            .values(_typed(history_t, {"ended_at": "now"}))
            .cte(f"history_ended_{j}")
        )
        values = {"effective_code": f"ring_code_{j}", "effective_since": "now"}
        if idle:
            values["idle_since"] = "now"
        ctes.append(
            update(presence_t)
            .where(presence_t.c.user_id == bindparam(f"ring_user_{j}"))
            .values(_typed(presence_t, values))
            .cte(f"presence_{j}")
        )
    if ringing:  # one INSERT: its rows take their ids in this order
        ctes.append(
            insert(history_t)
            .from_select(
                *_rows(
                    history_t,
                    [
                        {
                            "user_id": f"ring_user_{j}",
                            "status_id": f"ring_status_{j}",
                            "status_code": f"ring_code_{j}",
                            "started_at": "now",
                            "reason": f"ring_reason_{j}",
                        }
                        for j in range(len(ringing))
                    ],
                )
            )
            .cte("history_started")
        )
    stmt = insert(event_t).from_select(
        *_rows(
            event_t,
            [
                {
                    "type": f"ev_type_{k}",
                    "payload": f"ev_payload_{k}",
                    "conversation_id": f"ev_conv_{k}",
                    "queue_id": f"ev_queue_{k}",
                    "user_id": f"ev_user_{k}",
                    "created_at": f"ev_at_{k}",
                    "dispatched": "not_done",
                }
                for k in range(offers + len(ringing))
            ],
        )
    )
    for cte in ctes:
        stmt = stmt.add_cte(cte)
    return stmt


async def _write(
    conn: AsyncConnection,
    session: AsyncSession,
    conv: Any,
    queue: m.Queue,
    chosen: list[_Chosen],
    now: datetime,
) -> None:
    """Step 5: every row of the offer in one statement; events in the ORM path's order
    (each operator's ``conversation.offered``, then each ``presence.changed``)."""
    conv.status = m.ConversationStatus.OFFERED
    conv.offered_at = now
    if len(chosen) == 1:
        conv.assigned_user_id = chosen[0].user.id
    expires = now + timedelta(seconds=queue.operator_timeout_seconds)
    params: dict[str, Any] = {
        "cid": conv.id,
        "status": conv.status,
        "now": now,
        "assigned": conv.assigned_user_id,
        "queue": queue.id,
        "pending": "pending",
        "expires": expires,
        "timeout_kind": deadlines.OFFER_TIMEOUT,
        "not_done": False,
        "no_payload": {},
    }
    events: list[tuple[str, dict[str, Any], int | None, int | None, int]] = []
    for i, c in enumerate(chosen):
        params[f"offer_{i}"] = c.offer_id
        params[f"user_{i}"] = c.user.id
        payload = conversation_dict(conv)
        payload.update(
            offer_id=c.offer_id,
            expires_at=expires.isoformat(),
            timeout_seconds=queue.operator_timeout_seconds,
            why=offer_why(conv, c.user.id),
        )
        events.append(("conversation.offered", payload, conv.id, queue.id, c.user.id))
    ringing: list[bool] = []
    for c in chosen:
        change = _ringing(c, now)
        if change is None:
            continue
        code, status_id, reason, idle = change
        j = len(ringing)
        ringing.append(idle)
        params.update(
            {
                f"ring_user_{j}": c.user.id,
                f"ring_code_{j}": code,
                f"ring_status_{j}": status_id,
                f"ring_reason_{j}": reason,
            }
        )
        s = c.status
        presence = m.OperatorPresence(
            user_id=c.user.id,
            status_id=s.id,
            since=s.since,
            reason=s.reason,
            effective_code=code,
            effective_since=now,
            connections=s.connections,
            over_limit_flagged=s.over_limit_flagged,
        )
        status = m.OperatorStatus(id=s.id, code=s.code, name=s.name, colour=s.colour)
        events.append(("presence.changed", presence_dict(presence, status), None, None, c.user.id))
        if code == s.code:
            request_routing(session)
    for k, (type_, payload, conversation_id, queue_id, user_id) in enumerate(events):
        # As ``events.emit`` writes a row: the payload checked, the clock read per event.
        params[f"ev_type_{k}"] = type_
        params[f"ev_payload_{k}"] = checked_payload(type_, payload)
        params[f"ev_conv_{k}"] = conversation_id
        params[f"ev_queue_{k}"] = queue_id
        params[f"ev_user_{k}"] = user_id
        params[f"ev_at_{k}"] = datetime.now(UTC)
    await conn.execute(_write_statement(len(chosen), tuple(ringing)), params)
    unit_of_work(session).events_written = True
    _expire_loaded(session, conv.id, [c.user.id for c in chosen])


def _ringing(c: _Chosen, now: datetime) -> tuple[str, int, str, bool] | None:
    """What ``presence.do_refresh_activity(..., ringing=True)`` changes: ``(code, status id,
    reason, idle_since reset)`` of the new activity, or ``None`` when it stays the same."""
    s = c.status
    code = s.code if s.kind == m.StatusKind.OFFLINE else m.StatusKind.RINGING.value
    if code == s.effective_code:
        return None
    if code == s.code:
        return code, s.id, s.reason, s.effective_code in _BUSY
    if c.ringing_id is None:
        from omni.domain.errors import NotFound

        raise NotFound("status '{code}' does not exist", code=code)
    return code, c.ringing_id, "", False


def _expire_loaded(session: AsyncSession, conversation_id: int, user_ids: list[int]) -> None:
    """Rows this transaction already held as objects were changed behind the ORM's back:
    expire them so a later read in the same transaction sees the offer."""
    sync = session.sync_session
    keys = [identity_key(m.Conversation, conversation_id)] + [
        identity_key(m.OperatorPresence, u) for u in user_ids
    ]
    for key in keys:
        obj = sync.identity_map.get(key)
        if obj is not None:
            sync.expire(obj)
