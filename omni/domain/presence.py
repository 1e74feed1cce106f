"""Shared operator presence: one status for every channel, every change on the record.

The operator (or a supervisor) chooses a status; what the operator is *doing* — ringing,
talking, wrap-up — is derived from their conversations. Both feed ``status_history``, the
time accounting that reports read (in line, available, pause, DND, wrap-up, talking,
ringing, offline).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import deadlines
from omni.domain.capacity import HOLDING
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.events import emit
from omni.domain.routing_signal import request_routing

_status_cache: dict[str, int] = {}


async def status_by_code(session: AsyncSession, code: str) -> m.OperatorStatus:
    row = await session.scalar(select(m.OperatorStatus).where(m.OperatorStatus.code == code))
    if row is None:
        raise NotFound("status '{code}' does not exist", code=code)
    return row


async def get_presence(session: AsyncSession, user_id: int, *, lock: bool = False) -> m.OperatorPresence:
    """The operator's presence row, created as offline on first use."""
    # populate_existing: a row already in the session may be older than what the lock sees.
    stmt = (
        select(m.OperatorPresence)
        .where(m.OperatorPresence.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None:
        # Two sockets of one operator connecting at once both miss the row: a plain insert made
        # the second fail on the primary key (and its socket got no answers). The loser of the
        # race inserts nothing and reads the winner's row.
        offline = await status_by_code(session, m.StatusKind.OFFLINE)
        now = datetime.now(UTC)
        insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert_(m.OperatorPresence)
            .values(
                user_id=user_id,
                status_id=offline.id,
                since=now,
                effective_code=offline.code,
                effective_since=now,
                idle_since=now,
                connections=0,
                reason="",
                over_limit_flagged=False,
            )
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        row = (await session.scalars(stmt)).one()
    return row


def presence_dict(p: m.OperatorPresence, status: m.OperatorStatus) -> dict[str, object]:
    return {
        "user_id": p.user_id,
        "status": status.code,
        "status_name": status.name,
        "colour": status.colour,
        "since": p.since.isoformat(),
        "reason": p.reason,
        "activity": p.effective_code,
        "activity_since": p.effective_since.isoformat(),
        "over_limit": p.over_limit_flagged,
        "connected": p.connections > 0,
    }


async def do_set_status(
    session: AsyncSession,
    user_id: int,
    status: m.OperatorStatus,
    *,
    reason: str = "",
    set_by: int | None = None,
) -> m.OperatorPresence:
    """Change the chosen status (no permission checks: callers use ``check_set_status``)."""
    presence = await get_presence(session, user_id, lock=True)
    now = datetime.now(UTC)
    changed = presence.status_id != status.id
    presence.status_id = status.id
    presence.reason = reason[:256]
    if changed:
        presence.since = now
        presence.over_limit_flagged = False
    await do_refresh_activity(session, presence, now=now, set_by=set_by, force_event=True)
    if status.receives_chats or status.receives_voice:
        request_routing(session)
    return presence


async def check_set_status(
    session: AsyncSession,
    actor_id: int,
    actor_role: m.Role,
    user_id: int,
    code: str,
    reason: str = "",
    supervised: set[int] | None = None,
) -> m.OperatorPresence:
    """Validate a status change and apply it.

    Operators change their own status to a selectable one; supervisors change the operators
    in their scope (``supervised``) and must give a reason.
    """
    status = await status_by_code(session, code)
    if actor_id == user_id and actor_role == m.Role.OPERATOR:
        if not status.selectable:
            raise InvalidInput("status '{code}' is set by the system, not chosen", code=code, field="status")
    else:
        if actor_role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
            raise PermissionDenied("only supervisors change another operator's status")
        if supervised is not None and user_id not in supervised:
            raise NotFound("operator {user_id} not found", user_id=user_id)
        if actor_id != user_id and not reason.strip():
            raise InvalidInput("give a reason when changing another operator's status", field="reason")
    if status.kind in (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP):
        raise InvalidInput(
            "status '{code}' follows the operator's work and can't be set", code=code, field="status"
        )
    return await do_set_status(session, user_id, status, reason=reason, set_by=actor_id)


async def do_refresh_activity(
    session: AsyncSession,
    presence: m.OperatorPresence,
    *,
    now: datetime | None = None,
    set_by: int | None = None,
    force_event: bool = False,
    ringing: bool | None = None,
) -> None:
    """Recompute what the operator is doing and record a change in the status history.

    ``ringing=True`` is the router's shortcut: it has just made an offer, so the operator is
    ringing without asking the database.
    """
    now = now or datetime.now(UTC)
    chosen = await session.get(m.OperatorStatus, presence.status_id)
    assert chosen is not None
    uid = presence.user_id
    code = chosen.code
    if chosen.kind != m.StatusKind.OFFLINE:
        if ringing is None:
            ringing = await session.scalar(
                select(exists().where(m.Offer.user_id == uid, m.Offer.state == m.OFFER_PENDING))
            )
        if ringing:
            code = m.StatusKind.RINGING
        else:
            statuses = set(
                await session.scalars(
                    select(m.Conversation.status)
                    .where(m.Conversation.assigned_user_id == uid, m.Conversation.status.in_(HOLDING))
                    .distinct()
                )
            )
            if statuses & {m.ConversationStatus.ACTIVE, m.ConversationStatus.ON_HOLD}:
                code = m.StatusKind.TALKING
            elif m.ConversationStatus.WRAP_UP in statuses:
                code = m.StatusKind.WRAP_UP
    if code != presence.effective_code:
        was_busy = presence.effective_code in (
            m.StatusKind.RINGING,
            m.StatusKind.TALKING,
            m.StatusKind.WRAP_UP,
        )
        await session.execute(
            update(m.StatusHistory)
            .where(m.StatusHistory.user_id == uid, m.StatusHistory.ended_at.is_(None))
            .values(ended_at=now)
        )
        status_row = chosen if code == chosen.code else await status_by_code(session, code)
        session.add(
            m.StatusHistory(
                user_id=uid,
                status_id=status_row.id,
                status_code=code,
                started_at=now,
                reason=presence.reason if code == chosen.code else "",
                set_by_id=set_by,
            )
        )
        presence.effective_code = code
        presence.effective_since = now
        if was_busy and code == chosen.code:
            presence.idle_since = now
        if code == chosen.code and (chosen.receives_chats or chosen.receives_voice):
            request_routing(session)
        force_event = True
    if force_event:
        emit(session, "presence.changed", presence_dict(presence, chosen), user_id=uid)


async def do_refresh_activity_of(session: AsyncSession, user_id: int) -> None:
    await do_refresh_activity(session, await get_presence(session, user_id))


async def do_connect(session: AsyncSession, user_id: int, sid: str, node_id: str) -> m.OperatorPresence:
    """A socket of the operator connected; the first one brings them online as available."""
    presence = await get_presence(session, user_id, lock=True)
    now = datetime.now(UTC)
    session.add(
        m.OperatorConnection(sid=sid, user_id=user_id, node_id=node_id, connected_at=now, seen_at=now)
    )
    await session.flush()
    presence.connections = await _count_connections(session, user_id)
    await deadlines.cancel(session, deadlines.PRESENCE_OFFLINE, user_id)
    status = await session.get(m.OperatorStatus, presence.status_id)
    if status is not None and status.kind == m.StatusKind.OFFLINE:
        await do_set_status(session, user_id, await status_by_code(session, "available"))
    return presence


async def _count_connections(session: AsyncSession, user_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(m.OperatorConnection)
            .where(m.OperatorConnection.user_id == user_id)
        )
        or 0
    )


async def do_disconnect(session: AsyncSession, user_id: int, sid: str, grace_seconds: float) -> None:
    """The last socket closing starts a grace timer; on expiry the operator goes offline."""
    presence = await get_presence(session, user_id, lock=True)
    await session.execute(delete(m.OperatorConnection).where(m.OperatorConnection.sid == sid))
    presence.connections = await _count_connections(session, user_id)
    if presence.connections == 0:
        now = datetime.now(UTC)
        presence.last_disconnect_at = now
        deadlines.schedule(
            session, deadlines.PRESENCE_OFFLINE, user_id, now + timedelta(seconds=grace_seconds)
        )


async def do_heartbeat_node(session: AsyncSession, node_id: str, now: datetime) -> None:
    """This node is alive: its sockets stay counted."""
    await session.execute(
        update(m.OperatorConnection).where(m.OperatorConnection.node_id == node_id).values(seen_at=now)
    )


async def do_reap_dead_nodes(
    session: AsyncSession, now: datetime, *, ttl_seconds: float, grace_seconds: float
) -> int:
    """Drop sockets of nodes that stopped heartbeating (crashed, killed) and start the offline
    grace for operators left with none, so nobody stays "online" behind a dead node."""
    stale = (
        await session.execute(
            select(m.OperatorConnection.sid, m.OperatorConnection.user_id)
            .where(m.OperatorConnection.seen_at < now - timedelta(seconds=ttl_seconds))
            .with_for_update(skip_locked=True)
        )
    ).all()
    for sid, user_id in stale:
        await do_disconnect(session, user_id, sid, grace_seconds)
    return len(stale)


async def do_offline_deadline(session: AsyncSession, user_id: int) -> None:
    await get_presence(session, user_id, lock=True)  # serialise with a reconnect in flight
    if await _count_connections(session, user_id) == 0:
        await do_set_status(
            session, user_id, await status_by_code(session, m.StatusKind.OFFLINE), reason="disconnected"
        )


async def do_flag_over_limit(session: AsyncSession, now: datetime) -> int:
    """Flag operators who stayed in a status longer than its max duration (e.g. lunch 60 min)."""
    rows = (
        await session.execute(
            select(m.OperatorPresence, m.OperatorStatus)
            .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
            .where(
                m.OperatorStatus.max_duration_seconds.is_not(None),
                m.OperatorPresence.over_limit_flagged.is_(False),
            )
            .with_for_update(of=m.OperatorPresence, skip_locked=True)
        )
    ).all()
    flagged = 0
    for presence, status in rows:
        assert status.max_duration_seconds is not None
        if presence.since + timedelta(seconds=status.max_duration_seconds) <= now:
            presence.over_limit_flagged = True
            payload = presence_dict(presence, status)
            payload["limit_seconds"] = status.max_duration_seconds
            emit(session, "presence.over_limit", payload, user_id=presence.user_id)
            flagged += 1
    return flagged
