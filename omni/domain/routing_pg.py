"""The router's decision on PostgreSQL in four statements, on plain rows.

``routing.do_assign`` on the ORM cost about 13 statements and 5 ms of Python per decision:
the conversation and presence rows loaded as objects, candidates, their loads, declined
offers, the round-robin pointer and skills each read apart, and every write flushed on its
own. This path makes the same decision with the same locks, and writes the same rows and
events, in five steps, the first two one statement (``routing_pg_sql.decision_statement``)
unless the conversation also waits in other queues:

1. lock the conversation (``FOR UPDATE SKIP LOCKED``), its columns as one row, with the
   version of the queues' configuration, which each node caches (``routing_config``);
2. the candidates: active members of the queues in a receiving status, with their load,
   whether they already declined or let this offer time out, the round-robin pointer,
   today's handled count and skill levels (the last two only when asked for);
3. lock the chosen operator's presence row (``FOR UPDATE SKIP LOCKED``) with its status;
4. re-read that operator's load (a new statement, so a new snapshot: what another node
   committed before our lock was granted counts) and take the offer's id from its sequence;
5. one statement with data-modifying CTEs: the conversation update, the offers, their
   timeout deadlines, the status-history change and presence update of an operator who
   starts ringing, and the outbox events in the order the ORM path emits them.

Every statement runs straight on the asyncpg connection of the session's transaction
(``omni.db.driver``): SQLAlchemy's execution cost more Python per statement than the statement
took in PostgreSQL.

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
    Text,
    bindparam,
    cast,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from omni.db import models as m
from omni.db.driver import Core, Direct
from omni.db.unit_of_work import UnitOfWork
from omni.domain import deadlines
from omni.domain.capacity import Load, fits
from omni.domain.events import encoded_payload
from omni.domain.place import offer_why, set_aside
from omni.domain.presence import presence_dict
from omni.domain.routing_config import NodeConfig, QueueConfig, membership, queue_config
from omni.domain.routing_pg_sql import (
    candidates_statement,
    decision_statement,
    fresh_statement,
    lock_statement,
)
from omni.domain.serialize import conversation_dict

if TYPE_CHECKING:
    from omni.domain.routing import Assignment, RoutePass

__all__ = ["assign_on_postgres", "decision_statement"]

_BUSY = (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP)


@dataclass(slots=True)
class _Chosen:
    """An operator locked and still fitting, with what the writes need of them."""

    user: Any
    offer_id: int
    status: Any  # the locked row of ``lock_statement``
    ringing_id: int | None


def _load(row: Sequence[Any], at: int) -> Load:
    return Load(
        chats=int(row[at]),
        calls=int(row[at + 1]),
        offers_chat=int(row[at + 2]),
        offers_voice=int(row[at + 3]),
    )


async def assign_on_postgres(
    run: Direct | Core,
    uow: UnitOfWork,
    session: AsyncSession | None,
    rp: RoutePass,
    now: datetime | None,
    conv: Any,
    node: NodeConfig,
    primary_config: QueueConfig,
) -> Assignment | None:
    """Steps 2–5 for the conversation ``conv``, locked by ``routing.do_assign``'s first
    statement (``decision_statement``: its columns as attributes of a plain object, with the
    candidates of its queue as ``conv.candidates``), ``primary_config`` its queue's
    configuration.

    Returns and flags ``rp.no_operator`` as ``routing.do_assign`` does. ``uow`` is the
    transaction's unit of work (the relay and routing nudges after the commit); ``session`` the
    transaction's ORM session if it has one (its objects of the rows written are expired).
    """
    from omni.domain.routing import Assignment, Candidate, Operator, _start_of_day, order_candidates

    pinned = now
    now = now or datetime.now(UTC)
    primary = primary_config.queue
    configs = {primary.id: primary_config}
    for qid in conv.extra_queue_ids or ():
        if qid not in configs:
            extra = await queue_config(run.conn, node, qid)
            if extra is not None:
                configs[qid] = extra
    preferred = conv.preferred_user_id
    if preferred is None and not any(q.members for q in configs.values()):
        rp.no_operator = True
        return None
    want_skills = any(q.skills for q in configs.values())
    rows: Sequence[Sequence[Any]]
    last_user_id: int | None
    full: Sequence[Sequence[Any]] = ()
    if len(configs) == 1:  # step 2 came with step 1
        fitting, without_room = conv.candidates or (None, None)
        rows, full, last_user_id = fitting or (), without_room or (), conv.last_user_id
    else:  # other queues too: their members are candidates as well
        params: dict[str, Any] = {
            "cid": conv.id,
            "since": conv.enqueued_at or conv.created_at,
            "primary": primary.id,
            "day": _start_of_day(now),
            "want_tried": conv.offered_at is not None,
            "want_handled": primary.strategy == m.Strategy.FEWEST_HANDLED,
            "want_skills": want_skills,
            "want_rr": True,
        }
        if preferred is not None:
            params["preferred"] = preferred
        else:
            params["queues"] = list(configs)
        stmt = candidates_statement(preferred is not None, conv.medium == m.Medium.VOICE)
        rows = await run.rows(stmt, params)
        last_user_id = rows[0][15] if rows else None
    if primary.strategy != m.Strategy.ROUND_ROBIN:
        last_user_id = None
    member_of, skill_score = membership(conv, configs, primary.id, rows if want_skills else ())
    for uid, units in full:  # members without room: remembered as ``RoutePass.sized_up`` does
        if uid in member_of:
            rp.deciding[uid] = units
    result: list[Candidate] = []
    tried: set[int] = set_aside(conv)
    for r in rows:
        if r[0] not in member_of:
            continue
        idle = r[6]
        idle = datetime.fromisoformat(idle) if isinstance(idle, str) else idle  # JSON: text
        user = Operator(r[0], r[1], r[2], r[3], r[4], r[5], idle)
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
        locked = await run.named(lock_statement(), {"uid": cand.id})
        if locked is None:
            contended.add(cand.id)  # another transaction holds this operator right now
            continue
        # Status and load are re-read under the lock: what another node committed counts.
        receives = locked.receives_voice if conv.medium == m.Medium.VOICE else locked.receives_chats
        fresh_row = await run.first(fresh_statement(), {"uid": cand.id})
        assert fresh_row is not None  # a SELECT without FROM: always one row
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
    await _write(run, uow, session, conv, primary, chosen, now)
    return Assignment(conv.id, tuple(c.user.id for c in chosen), False)


def _typed(table: Any, names: dict[str, str]) -> dict[str, Any]:
    """``{column: bound parameter named names[column]}`` with the column's type (JSON, UTC
    timestamps): multi-row ``VALUES`` don't take it from the column by themselves."""
    return {col: bindparam(name, type_=table.c[col].type) for col, name in names.items()}


def _rows(table: Any, rows: list[dict[str, str]], documents: str = "") -> tuple[list[str], Any]:
    """``INSERT … SELECT`` of bound parameters, row after row: a multi-row ``VALUES`` would
    keep SQLAlchemy from caching the compiled statement, and the ordinal keeps the rows (and
    so the ids the sequence hands them) in the given order. The column ``documents`` is bound
    as JSON text already encoded (``events.encoded_payload``) and cast in SQL."""
    cols = list(rows[0])
    parts = [
        select(
            *[
                cast(
                    bindparam(name, type_=Text() if col == documents else table.c[col].type),
                    table.c[col].type,
                ).label(col)
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
            documents="payload",
        )
    )
    for cte in ctes:
        stmt = stmt.add_cte(cte)
    return stmt


async def _write(
    run: Direct | Core,
    uow: UnitOfWork,
    session: AsyncSession | None,
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
            uow.routing_needed = True  # ``routing_signal.request_routing``
    for k, (type_, payload, conversation_id, queue_id, user_id) in enumerate(events):
        # As ``events.emit`` writes a row: the payload checked, the clock read per event.
        params[f"ev_type_{k}"] = type_
        params[f"ev_payload_{k}"] = encoded_payload(type_, payload)
        params[f"ev_conv_{k}"] = conversation_id
        params[f"ev_queue_{k}"] = queue_id
        params[f"ev_user_{k}"] = user_id
        params[f"ev_at_{k}"] = datetime.now(UTC)
    await run.execute(_write_statement(len(chosen), tuple(ringing)), params)
    uow.events_written = True
    if session is not None:
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
