"""The router: pick an operator for each waiting conversation and make the offer.

Every decision runs in its own short transaction that locks what it assigns: the
conversation row (``FOR UPDATE SKIP LOCKED``) and the chosen operator's presence row
(``FOR UPDATE SKIP LOCKED``). Load is re-read after the operator lock is held, so two app
nodes can never assign one conversation twice nor push an operator past capacity. SQLite
runs the same code; its transactions are serialised by ``Database``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import BareTransaction, Database, HeldConnection, driver
from omni.db import models as m
from omni.db.outbox import unflushed
from omni.db.unit_of_work import unit_of_work
from omni.domain import deadlines, routing_pg
from omni.domain.capacity import Load, fits, loads_for, remaining
from omni.domain.events import emit
from omni.domain.place import offer_why, set_aside
from omni.domain.presence import do_refresh_activity, get_presence
from omni.domain.routing_config import node_config, queue_config
from omni.domain.serialize import conversation_dict

QUEUED = m.ConversationStatus.QUEUED


@dataclass(frozen=True, slots=True)
class Operator:
    """A read-only snapshot of an operator for one decision (cheaper than ORM rows)."""

    id: int
    capacity: int
    chat_weight: int
    voice_weight: int
    handles_chat: bool
    handles_voice: bool
    idle_since: datetime


@dataclass(slots=True)
class Candidate:
    """An operator who may take the conversation, with what strategies sort on."""

    user: Operator
    load: Load
    position: int = 0
    penalty: int = 0
    skill_score: int = 0
    handled_today: int = 0

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def idle_since(self) -> datetime:
        return self.user.idle_since


def order_candidates(
    strategy: str,
    candidates: Sequence[Candidate],
    *,
    last_user_id: int | None = None,
    rng: random.Random | None = None,
) -> list[Candidate]:
    """Order eligible operators by the queue's strategy (first = offered first).

    Pure function: every strategy is tested on plain data. Ties break on user id so the
    order is deterministic.
    """
    items = sorted(candidates, key=lambda c: c.id)
    match strategy:
        case m.Strategy.RING_ALL:
            return items
        case m.Strategy.ROUND_ROBIN:
            ordered = sorted(items, key=lambda c: (c.position, c.id))
            if last_user_id is None:
                return ordered
            after = [c for c in ordered if (c.position, c.id) > _key_of(ordered, last_user_id)]
            before = [c for c in ordered if c not in after]
            return after + before
        case m.Strategy.LONGEST_IDLE:
            return sorted(items, key=lambda c: (c.idle_since, c.id))
        case m.Strategy.FEWEST_HANDLED:
            return sorted(items, key=lambda c: (c.handled_today, c.idle_since, c.id))
        case m.Strategy.LINEAR:
            return sorted(items, key=lambda c: (c.position, c.id))
        case m.Strategy.RANDOM:
            shuffled = list(items)
            (rng or random.SystemRandom()).shuffle(shuffled)
            return shuffled
        case m.Strategy.LEAST_LOADED:
            return sorted(items, key=lambda c: (-remaining(c.user, c.load), c.idle_since, c.id))
        case m.Strategy.SKILL_LEVEL:
            return sorted(items, key=lambda c: (-c.skill_score, c.penalty, c.idle_since, c.id))
    raise ValueError(f"unknown routing strategy '{strategy}'")


def _key_of(ordered: Sequence[Candidate], user_id: int) -> tuple[int, int]:
    for c in ordered:
        if c.id == user_id:
            return (c.position, c.id)
    # The last answerer left the queue: continue after their id in list order.
    return (min((c.position for c in ordered), default=0), user_id)


@dataclass
class RoutePass:
    """Per-pass caches; a pass is short so queue settings are read once."""

    queues: dict[int, m.Queue] = field(default_factory=dict)
    members: dict[int, list[m.QueueMember]] = field(default_factory=dict)
    skills: dict[int, list[m.QueueSkill]] = field(default_factory=dict)
    dead_keys: set[tuple[object, ...]] = field(default_factory=set)
    no_operator: bool = False
    """Set by ``do_assign`` when nobody could take the conversation (not mere contention)."""
    orm_only: bool = False
    """Decide through the ORM even on PostgreSQL (tests compare it with ``routing_pg``)."""
    held: set[int] = field(default_factory=set)
    """Operators a conversation ahead in this pass may be waiting for: its row or theirs was
    locked by another transaction, so it was not decided. Nobody behind it in the line is
    offered to them in this pass (``hold_back``), or a lock held for a moment (a customer's
    message, a status change) would hand its operator to the next in line and the one ahead
    would lose its place; the next pass offers it in its turn."""
    full: dict[int, int] = field(default_factory=dict)
    """Operators without room for a conversation ahead in this pass that went to nobody, with
    the load (units) they had then. A pass only adds load; an operator seen with less later was
    freed by another transaction meanwhile (a close, a decline) and joins ``held``: the one
    ahead might have fitted them too, and the pass that the freeing change requests offers it
    in its turn. (A conversation that went to someone else waits for nobody: its full
    operators are forgotten, ``deciding``.)"""
    deciding: dict[int, int] = field(default_factory=dict)
    """``full`` candidates of the conversation being decided (kept by ``do_assign`` only when
    it goes to nobody)."""

    def sized_up(self, user: Operator, load: Load, medium: str, *, chats_block_calls: bool) -> bool:
        """Whether ``user`` has room for one more conversation of ``medium``; remembers the
        load of those without room, and holds back those freed since (``full``)."""
        units = load.units(user)
        if not fits(user, load, medium, chats_block_calls=chats_block_calls):
            self.deciding[user.id] = units
            return False
        if units < self.full.get(user.id, units):
            self.held.add(user.id)
        return True

    def decided(self, assignment: Assignment | None) -> None:
        if assignment is None:
            for uid, units in self.deciding.items():
                self.full[uid] = min(units, self.full.get(uid, units))
        self.deciding.clear()

    async def queue(self, session: AsyncSession, queue_id: int) -> m.Queue | None:
        if queue_id not in self.queues:
            q = await session.get(m.Queue, queue_id)
            if q is None:
                return None
            self.queues[queue_id] = q
            self.members[queue_id] = list(
                await session.scalars(select(m.QueueMember).where(m.QueueMember.queue_id == queue_id))
            )
            self.skills[queue_id] = list(
                await session.scalars(select(m.QueueSkill).where(m.QueueSkill.queue_id == queue_id))
            )
        return self.queues[queue_id]


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def _candidates(
    session: AsyncSession, conv: m.Conversation, rp: RoutePass, now: datetime
) -> tuple[m.Queue, list[Candidate]] | None:
    primary = await rp.queue(session, conv.queue_id) if conv.queue_id else None
    if primary is None:
        return None
    queue_ids = [primary.id] + [q for q in (conv.extra_queue_ids or []) if q != primary.id]
    member_of: dict[int, tuple[int, int]] = {}
    skill_score: dict[int, int] = {}
    user_skills: dict[int, dict[int, int]] = {}
    all_member_ids: set[int] = set()
    for qid in queue_ids:
        if await rp.queue(session, qid) is None:
            continue
        all_member_ids |= {mm.user_id for mm in rp.members[qid]}
    if conv.preferred_user_id is not None:
        all_member_ids = {conv.preferred_user_id}
    if not all_member_ids:
        return primary, []
    if any(rp.skills.get(qid) for qid in queue_ids):
        for uid, sid, level in (
            await session.execute(
                select(m.UserSkill.user_id, m.UserSkill.skill_id, m.UserSkill.level).where(
                    m.UserSkill.user_id.in_(all_member_ids)
                )
            )
        ).all():
            user_skills.setdefault(uid, {})[sid] = level
    for qid in queue_ids:
        if qid not in rp.queues:
            continue
        required = rp.skills[qid]
        members = rp.members[qid]
        if conv.preferred_user_id is not None:
            members = [mm for mm in members if mm.user_id == conv.preferred_user_id] or [
                m.QueueMember(queue_id=qid, user_id=conv.preferred_user_id, position=0, penalty=0)
            ]
        for mm in members:
            levels = user_skills.get(mm.user_id, {})
            ok = all(
                levels.get(req.skill_id, 0) >= req.min_level - conv.skill_relax
                for req in required
                if req.min_level - conv.skill_relax > 0
            )
            if not ok and conv.preferred_user_id is None:
                continue
            if mm.user_id not in member_of or qid == primary.id:
                member_of[mm.user_id] = (mm.position, mm.penalty)
                skill_score[mm.user_id] = sum(levels.get(req.skill_id, 0) for req in required)
    if not member_of:
        return primary, []
    receives = (
        m.OperatorStatus.receives_voice if conv.medium == m.Medium.VOICE else m.OperatorStatus.receives_chats
    )
    rows = [
        Operator(*row)
        for row in (
            await session.execute(
                select(
                    m.User.id,
                    m.User.capacity,
                    m.User.chat_weight,
                    m.User.voice_weight,
                    m.User.handles_chat,
                    m.User.handles_voice,
                    m.OperatorPresence.idle_since,
                )
                .join(m.OperatorPresence, m.OperatorPresence.user_id == m.User.id)
                .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
                .where(
                    m.User.id.in_(
                        [conv.preferred_user_id]
                        if conv.preferred_user_id is not None
                        else select(m.QueueMember.user_id).where(m.QueueMember.queue_id.in_(queue_ids))
                    ),
                    m.User.is_active.is_(True),
                    receives.is_(True),
                )
            )
        ).all()
        if row[0] in member_of
    ]
    if not rows:
        return primary, []
    loads = await loads_for(
        session, [u.id for u in rows], members_of=None if conv.preferred_user_id is not None else queue_ids
    )
    tried: set[int] = set_aside(conv)
    if conv.offered_at is not None:  # never offered yet: nobody can have declined it
        tried |= set(
            await session.scalars(
                select(m.Offer.user_id).where(
                    m.Offer.conversation_id == conv.id,
                    m.Offer.state.in_(("declined", "timeout")),
                    m.Offer.created_at >= (conv.enqueued_at or conv.created_at),
                )
            )
        )
    handled: dict[int, int] = {}
    if primary.strategy == m.Strategy.FEWEST_HANDLED:
        handled = {
            uid: int(n)
            for uid, n in (
                await session.execute(
                    select(m.Conversation.assigned_user_id, func.count())
                    .where(
                        m.Conversation.queue_id == primary.id,
                        m.Conversation.accepted_at >= _start_of_day(now),
                        m.Conversation.assigned_user_id.in_(member_of),
                    )
                    .group_by(m.Conversation.assigned_user_id)
                )
            ).all()
            if uid is not None
        }
    result = [
        Candidate(
            user=u,
            load=loads[u.id],
            position=member_of[u.id][0],
            penalty=member_of[u.id][1],
            skill_score=skill_score.get(u.id, 0),
            handled_today=handled.get(u.id, 0),
        )
        for u in rows
        if rp.sized_up(u, loads[u.id], conv.medium, chats_block_calls=primary.chats_block_calls)
    ]
    untried = [c for c in result if c.id not in tried]
    # Everybody already had a go: ring them again rather than leave the customer waiting.
    return primary, untried or result


@dataclass(frozen=True, slots=True)
class Assignment:
    conversation_id: int
    user_ids: tuple[int, ...]
    auto_accepted: bool


async def do_assign(
    tx: AsyncSession | BareTransaction, conversation_id: int, rp: RoutePass, now: datetime | None = None
) -> Assignment | None:
    """One routing decision for one conversation (the caller owns the transaction: a session's,
    or a :class:`~omni.db.BareTransaction`, which makes a session only when the decision needs
    ORM objects: an auto-accept queue, a conversation locked elsewhere).

    ``now`` pins the clock (tests, simulations); by default the offer's timestamps are read
    from the clock once the locks are held and the load re-read, not when the decision
    started: waiting for the database under load must not date an offer (and the wait it
    ends) earlier than the moment the operator was really free to take it.
    """
    rp.deciding.clear()
    scope = tx if isinstance(tx, BareTransaction) else _InSession(tx)
    assignment = await _decide(scope, conversation_id, rp, now)
    rp.decided(assignment)
    return assignment


class _InSession:
    """A session's transaction as a decision sees a :class:`BareTransaction`."""

    __slots__ = ("_session", "uow")

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.uow = unit_of_work(session)

    @property
    def opened_session(self) -> AsyncSession:
        return self._session

    async def session(self) -> AsyncSession:
        return self._session

    async def statements(self) -> driver.Direct | driver.Core:
        # Anything the caller left pending is flushed first, as the session's autoflush would.
        if unflushed(self._session):
            await self._session.flush()
        return await driver.statements(await self._session.connection())


async def _decide(
    scope: _InSession | BareTransaction, conversation_id: int, rp: RoutePass, now: datetime | None
) -> Assignment | None:
    rp.no_operator = False
    if isinstance(scope, BareTransaction):
        engine = scope.conn.sync_engine
    else:
        engine = scope.opened_session.get_bind().engine
    if not rp.orm_only and engine.dialect.name == "postgresql":
        # Steps 1–5 straight on asyncpg, in the transaction (``omni.db.driver``).
        run = scope.run if isinstance(scope, BareTransaction) else await scope.statements()
        day = _start_of_day(now or datetime.now(UTC))  # for "handled today"
        conv = await run.named(routing_pg.decision_statement(), {"cid": conversation_id, "day": day})
        if conv is None:
            await hold_back(await scope.session(), rp, conversation_id)
            return None  # taken by another node, or no longer waiting
        node = node_config(engine, conv.config_version)
        config = await queue_config(run.conn, node, conv.queue_id) if conv.queue_id is not None else None
        if config is None:
            return None
        if not config.queue.auto_accept:  # a row will do: the rules only read it
            return await routing_pg.assign_on_postgres(
                run, scope.uow, scope.opened_session, rp, now, conv, node, config
            )
        # Auto-accept hands ORM objects to do_accept_offer: decide below (the lock is ours).
    session = await scope.session()
    pinned = now
    now = now or datetime.now(UTC)
    conv = await session.scalar(
        select(m.Conversation)
        .where(m.Conversation.id == conversation_id, m.Conversation.status == QUEUED)
        .with_for_update(skip_locked=True, key_share=True)
    )
    if conv is None:
        await hold_back(session, rp, conversation_id)
        return None  # taken by another node, or no longer waiting
    found = await _candidates(session, conv, rp, now)
    if found is None:
        return None
    queue, candidates = found
    if not candidates:
        rp.no_operator = True
        return None
    candidates = [c for c in candidates if c.id not in rp.held]
    if not candidates:
        return None  # whoever could take it waits for a conversation ahead (``RoutePass.held``)
    last_user_id = None
    if queue.strategy == m.Strategy.ROUND_ROBIN:
        last_user_id = await session.scalar(
            select(m.QueueRoutingState.last_user_id).where(m.QueueRoutingState.queue_id == queue.id)
        )
    ordered = order_candidates(queue.strategy, candidates, last_user_id=last_user_id)
    chosen: list[Operator] = []
    contended: set[int] = set()
    for cand in ordered:
        locked = (
            await session.execute(
                select(m.OperatorStatus.receives_voice, m.OperatorStatus.receives_chats)
                .select_from(m.OperatorPresence)
                .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
                .where(m.OperatorPresence.user_id == cand.id)
                .with_for_update(of=m.OperatorPresence, skip_locked=True)
            )
        ).first()
        if locked is None:
            contended.add(cand.id)  # another transaction holds this operator right now
            continue
        # Status and load are re-read under the lock: what another node committed counts.
        receives = locked.receives_voice if conv.medium == m.Medium.VOICE else locked.receives_chats
        fresh = (await loads_for(session, [cand.id]))[cand.id]
        if not receives or not fits(cand.user, fresh, conv.medium, chats_block_calls=queue.chats_block_calls):
            continue
        chosen.append(cand.user)
        if queue.strategy != m.Strategy.RING_ALL:
            break
    if not chosen:
        rp.no_operator = not contended
        rp.held |= contended  # this one may still go to them: nobody behind it does
        return None
    now = pinned or datetime.now(UTC)  # the moment of the offer: after the locks (see above)
    conv.status = m.ConversationStatus.OFFERED
    conv.offered_at = now
    auto = queue.auto_accept and len(chosen) == 1
    if len(chosen) == 1:
        conv.assigned_user_id = chosen[0].id
    expires = now + timedelta(seconds=queue.operator_timeout_seconds)
    for user in chosen:
        offer = m.Offer(
            conversation_id=conv.id,
            user_id=user.id,
            queue_id=queue.id,
            state="pending",
            created_at=now,
            expires_at=expires,
        )
        session.add(offer)
        await session.flush()
        if not auto:
            deadlines.schedule(session, deadlines.OFFER_TIMEOUT, offer.id, expires)
        payload = conversation_dict(conv)
        payload.update(
            offer_id=offer.id,
            expires_at=expires.isoformat(),
            timeout_seconds=queue.operator_timeout_seconds,
            why=offer_why(conv, user.id),
        )
        emit(
            session,
            "conversation.offered",
            payload,
            conversation_id=conv.id,
            queue_id=queue.id,
            user_id=user.id,
        )
    if auto:
        from omni.domain.conversations import do_accept_offer

        offer_row = await session.scalar(
            select(m.Offer).where(m.Offer.conversation_id == conv.id, m.Offer.state == "pending")
        )
        assert offer_row is not None
        await do_accept_offer(session, conv, offer_row, now=now)
    else:
        for user in chosen:
            await do_refresh_activity(session, await get_presence(session, user.id), now=now, ringing=True)
    return Assignment(conv.id, tuple(u.id for u in chosen), auto)


async def hold_back(session: AsyncSession, rp: RoutePass, conversation_id: int) -> None:
    """The pass could not lock a conversation's row: when it still waits, another transaction
    holds it for a moment (a router on another node deciding it, the customer's message being
    stored, a callback being requested), so the operators who could take it are held back for
    the rest of the pass (``RoutePass.held``) rather than offered the conversations behind it.
    A plain read: it waits for no lock."""
    row = (
        await session.execute(
            select(
                m.Conversation.status,
                m.Conversation.queue_id,
                m.Conversation.extra_queue_ids,
                m.Conversation.preferred_user_id,
            ).where(m.Conversation.id == conversation_id)
        )
    ).first()
    if row is None or row.status != QUEUED:
        return  # taken by another node, or no longer waiting
    if row.preferred_user_id is not None:
        rp.held.add(row.preferred_user_id)
        return
    for qid in [row.queue_id, *(row.extra_queue_ids or [])]:
        if qid is not None and await rp.queue(session, qid) is not None:
            rp.held |= {mm.user_id for mm in rp.members[qid]}


async def free_queue_ids(session: AsyncSession) -> tuple[set[int], set[int]]:
    """Queues that have at least one operator able to take something, and those operators."""
    rows = (
        await session.execute(
            select(m.User, m.QueueMember.queue_id)
            .join(m.QueueMember, m.QueueMember.user_id == m.User.id)
            .join(m.OperatorPresence, m.OperatorPresence.user_id == m.User.id)
            .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
            .where(
                m.User.is_active.is_(True),
                or_(m.OperatorStatus.receives_chats.is_(True), m.OperatorStatus.receives_voice.is_(True)),
            )
        )
    ).all()
    users = {u.id: u for u, _ in rows}
    loads = await loads_for(session, users)
    free_users = {
        uid
        for uid, u in users.items()
        if fits(u, loads[uid], m.Medium.CHAT, chats_block_calls=True)
        or fits(u, loads[uid], m.Medium.VOICE, chats_block_calls=False)
    }
    return {qid for u, qid in rows if u.id in free_users}, free_users


async def waiting_line(
    session: AsyncSession, *, limit: int = 10_000, paused_channels: Collection[str] = ()
) -> Sequence[Any]:
    """Waiting conversations a free operator might take, in routing order (highest priority,
    then longest wait). Rows: id, queue_id, medium, skill_relax, escalation_step,
    preferred_user_id. Empty when nobody is free.

    Conversations on ``paused_channels`` (their adapter can't reach anyone now, e.g. the PBX
    link is down) are left out: they keep their place (still ``queued``, so positions, waits
    and queue timeouts stay true) and are offered once the channel is back."""
    queue_ids, free_users = await free_queue_ids(session)
    if not free_users:
        return []
    cond = or_(
        m.Conversation.queue_id.in_(queue_ids),
        m.Conversation.preferred_user_id.in_(free_users),
        m.Conversation.escalation_step > 0,
    )
    return (
        await session.execute(
            select(
                m.Conversation.id,
                m.Conversation.queue_id,
                m.Conversation.medium,
                m.Conversation.skill_relax,
                m.Conversation.escalation_step,
                m.Conversation.preferred_user_id,
            )
            .where(
                m.Conversation.status == QUEUED,
                cond,
                *([m.Conversation.channel.not_in(list(paused_channels))] if paused_channels else []),
            )
            .order_by(m.Conversation.priority.desc(), m.Conversation.first_enqueued_at, m.Conversation.id)
            .limit(limit)
        )
    ).all()


def decision_transaction(
    held: HeldConnection,
) -> AbstractAsyncContextManager[AsyncSession | BareTransaction]:
    """The transaction of one decision of a pass on ``held``: bare on PostgreSQL, a session's
    on SQLite (whose decisions take the ORM path anyway)."""
    if held.db.is_sqlite:
        return held.transaction()
    return held.bare()


class _PausedMeanwhile(Exception):
    """The conversation's channel went down while this pass decided it: roll the offer back."""


async def do_route_pending(
    db: Database,
    *,
    max_assignments: int = 10_000,
    paused_channels: Collection[str] = (),
    still_paused: Callable[[], Collection[str]] | None = None,
) -> list[Assignment]:
    """One routing pass over the waiting line, highest priority and longest wait first
    (conversations of ``paused_channels`` are skipped, see ``waiting_line``).

    ``still_paused`` reads the paused channels again after each decision, before it commits:
    a channel that went down during the pass (the AMI link lost) must not get an offer from
    it. The operator's row is read inside the decision, so an operator made available after
    the report (as a supervisor would, seeing the link down) always meets the new state here.
    """
    rp = RoutePass()
    done: list[Assignment] = []
    async with db.transaction() as session:
        rows = await waiting_line(session, limit=max_assignments, paused_channels=paused_channels)
    # One connection for the pass's decisions (a transaction each, as before): no pool
    # checkout, check-in and reset per decision (bench/README.md, "Issue 15 … (later)").
    held = HeldConnection(db)
    try:
        for conv_id, qid, medium, relax, step, preferred in rows:
            key = (qid, medium, relax, step, preferred)
            if key in rp.dead_keys:
                continue
            try:
                # PostgreSQL: a transaction without an ORM session unless the decision needs one
                # (``HeldConnection.bare``; bench/README.md, "Issue 15 … route6").
                async with decision_transaction(held) as tx:
                    assignment = await do_assign(tx, conv_id, rp)
                    newly = set(still_paused()) - set(paused_channels) if still_paused else set()
                    if assignment is not None and newly:
                        session = tx if isinstance(tx, AsyncSession) else await tx.session()
                        channel = await session.scalar(
                            select(m.Conversation.channel).where(m.Conversation.id == conv_id)
                        )
                        if channel in newly:
                            raise _PausedMeanwhile
            except _PausedMeanwhile:
                continue
            if assignment is None:
                if rp.no_operator and step == 0 and preferred is None:
                    rp.dead_keys.add(key)
                continue
            done.append(assignment)
            if len(done) >= max_assignments:
                break
    finally:
        await held.close()
    return done


# --- position and estimated wait --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitInfo:
    position: int
    estimated_wait_seconds: int | None


@dataclass(frozen=True, slots=True)
class QueueCapacity:
    """What expected waits are computed from: recent handle time and parallel slots."""

    aht_seconds: float | None
    slots: int

    def estimate(self, position: int) -> int | None:
        if self.aht_seconds is None or self.slots == 0:
            return None
        return int(math.ceil(position / self.slots) * self.aht_seconds)


async def queue_capacity(
    session: AsyncSession, queue_id: int, medium: str, *, window: int = 50
) -> QueueCapacity:
    """Average handle time of the last ``window`` handled conversations, and how many
    conversations the queue's operators in a receiving status can hold at once."""
    handle_times = (
        await session.execute(
            select(
                m.Conversation.accepted_at, func.coalesce(m.Conversation.wrap_up_at, m.Conversation.closed_at)
            )
            .where(
                m.Conversation.queue_id == queue_id,
                m.Conversation.medium == medium,
                m.Conversation.accepted_at.is_not(None),
                m.Conversation.status == m.ConversationStatus.CLOSED,
            )
            .order_by(m.Conversation.closed_at.desc())
            .limit(window)
        )
    ).all()
    samples = [
        (end - start).total_seconds() for start, end in handle_times if start is not None and end >= start
    ]
    aht = sum(samples) / len(samples) if samples else None
    receives = (
        m.OperatorStatus.receives_voice if medium == m.Medium.VOICE else m.OperatorStatus.receives_chats
    )
    staffed = (
        await session.execute(
            select(m.User.capacity, m.User.voice_weight, m.User.chat_weight)
            .join(m.QueueMember, m.QueueMember.user_id == m.User.id)
            .join(m.OperatorPresence, m.OperatorPresence.user_id == m.User.id)
            .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
            .where(m.QueueMember.queue_id == queue_id, receives.is_(True), m.User.is_active.is_(True))
        )
    ).all()
    slots = sum(
        max(1, cap // max(1, voice_w if medium == m.Medium.VOICE else chat_w))
        for cap, voice_w, chat_w in staffed
    )
    return QueueCapacity(aht, slots)


async def wait_info(session: AsyncSession, conv: m.Conversation, *, window: int = 50) -> WaitInfo:
    """Place in line and expected wait, for every channel to tell the customer.

    Expected wait = rounds ahead × the queue's recent average handle time, where a round is
    the number of conversations the online operators of the queue can take at once.
    """
    if (
        conv.status not in (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED)
        or conv.queue_id is None
    ):
        return WaitInfo(0, 0)
    first = conv.first_enqueued_at or conv.created_at
    ahead = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(
            m.Conversation.queue_id == conv.queue_id,
            m.Conversation.status == QUEUED,
            m.Conversation.id != conv.id,
            or_(
                m.Conversation.priority > conv.priority,
                and_(m.Conversation.priority == conv.priority, m.Conversation.first_enqueued_at < first),
            ),
        )
    )
    position = int(ahead or 0) + 1
    cap = await queue_capacity(session, conv.queue_id, conv.medium, window=window)
    return WaitInfo(position, cap.estimate(position))


async def line_wait_infos(
    session: AsyncSession, queue_id: int, *, channel: str | None = None, limit: int = 500
) -> dict[int, WaitInfo]:
    """Position and expected wait of everyone waiting in a queue, in three queries (for
    pushing updates to waiting customers whenever the line moves)."""
    line = (
        await session.execute(
            select(m.Conversation.id, m.Conversation.medium, m.Conversation.channel)
            .where(m.Conversation.queue_id == queue_id, m.Conversation.status == QUEUED)
            .order_by(m.Conversation.priority.desc(), m.Conversation.first_enqueued_at, m.Conversation.id)
            .limit(limit)
        )
    ).all()
    caps: dict[str, QueueCapacity] = {}
    result: dict[int, WaitInfo] = {}
    for position, (conv_id, medium, conv_channel) in enumerate(line, start=1):
        if channel is not None and conv_channel != channel:
            continue
        if medium not in caps:
            caps[medium] = await queue_capacity(session, queue_id, medium)
        result[conv_id] = WaitInfo(position, caps[medium].estimate(position))
    return result
