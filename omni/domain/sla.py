"""Service levels for chat (docs/sla.md): a policy per queue sets how long a customer may wait
for the first operator reply after being put in line, and for the next reply after each of
their messages.

One :class:`~omni.db.models.SlaTarget` row is one such wait. It is opened and closed by the
committed domain events (``conversation.queued``, ``message.created``, ``conversation.accepted``,
the end of handling) in the outbox relay's transaction (:func:`sla_sink`): the actions that
route and send stay untouched, and since the relay marks the events dispatched in the same
transaction, each event moves the clocks exactly once. The breach is a persisted deadline
(``SLA_BREACH``, ``omni.domain.deadlines``): any node fires it, also after a restart, and it
sets ``breached_at`` and emits ``sla.breached`` once. The clock is wall-clock time (business
hours are not subtracted: a chat waits in real time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from omni.db import models as m
from omni.domain import audit, deadlines
from omni.domain.admin.changes import ADMIN_CHANGED
from omni.domain.auth import Principal, visible_queue_ids
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.events import DomainEvent, emit, probed

log = logging.getLogger(__name__)

__all__ = [
    "FIELDS",
    "SLA_BREACH",
    "check_delete_policy",
    "check_save_policy",
    "conversation_condition",
    "do_breach",
    "get_policy",
    "list_policies",
    "open_targets",
    "policy_dict",
    "sla_sink",
    "state_of",
    "target_dict",
]

SLA_BREACH = "sla_breach"
"""Deadline kind: an SLA target's due time passed (``ref_id`` = the target)."""
CHANGED = "sla.changed"
BREACHED = "sla.breached"
MAX_SECONDS = 7 * 24 * 3600
"""A week: longer deadlines are a typo, not a service level."""
FIELDS = (
    "first_response_seconds",
    "next_response_seconds",
    "warning_percent",
    "active",
    "transcript_at_close",
)
ENDS = (
    "conversation.wrap_up",
    "conversation.closed",
    "conversation.abandoned",
    "conversation.missed",
    "conversation.handed_to_bot",
)
"""Events after which nobody owes the customer a reply: the open wait ends unbreached."""
HANDLED = (
    m.ConversationStatus.QUEUED,
    m.ConversationStatus.OFFERED,
    m.ConversationStatus.ACTIVE,
    m.ConversationStatus.ON_HOLD,
)

State = Literal["ok", "warning", "breached", "met", "ended"]


# --- reading ----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def state_of(target: m.SlaTarget, now: datetime) -> State:
    """What a list shows for the wait at ``now``: ok (green) → warning (amber) → breached (red)."""
    if target.ended_at is not None:
        return "met" if target.replied_at is not None and target.breached_at is None else "ended"
    if target.breached_at is not None or now >= target.due_at:
        return "breached"
    return "warning" if now >= target.warning_at else "ok"


def target_dict(target: m.SlaTarget, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": target.id,
        "conversation_id": target.conversation_id,
        "queue_id": target.queue_id,
        "user_id": target.user_id,
        "kind": target.kind,
        "started_at": _iso(target.started_at),
        "warning_at": _iso(target.warning_at),
        "due_at": _iso(target.due_at),
        "breached_at": _iso(target.breached_at),
        "replied_at": _iso(target.replied_at),
        "ended_at": _iso(target.ended_at),
        "state": state_of(target, now or datetime.now(UTC)),
    }


def policy_dict(policy: m.SlaPolicy) -> dict[str, Any]:
    return {
        "queue_id": policy.queue_id,
        "first_response_seconds": policy.first_response_seconds,
        "next_response_seconds": policy.next_response_seconds,
        "warning_percent": policy.warning_percent,
        "active": policy.active,
        "transcript_at_close": policy.transcript_at_close,
    }


async def get_policy(session: AsyncSession, queue_id: int | None) -> m.SlaPolicy | None:
    if queue_id is None:
        return None
    return await session.scalar(select(m.SlaPolicy).where(m.SlaPolicy.queue_id == queue_id))


async def list_policies(session: AsyncSession, who: Principal) -> list[m.SlaPolicy]:
    """Policies of the queues the caller sees (admins: all)."""
    queues = await visible_queue_ids(session, who)
    stmt = select(m.SlaPolicy).order_by(m.SlaPolicy.queue_id)
    if queues is not None:
        stmt = stmt.where(m.SlaPolicy.queue_id.in_(queues or {-1}))
    return list(await session.scalars(stmt))


async def open_targets(session: AsyncSession, who: Principal) -> list[m.SlaTarget]:
    """The running clocks the caller may see, soonest breach first: an operator's own chats and
    those waiting in their queues; a supervisor's queues; everything for an admin."""
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    stmt = select(m.SlaTarget).where(m.SlaTarget.ended_at.is_(None)).order_by(m.SlaTarget.due_at)
    queues = await visible_queue_ids(session, who)
    if queues is not None:
        mine = m.SlaTarget.user_id == who.id
        in_queue: ColumnElement[bool] = m.SlaTarget.queue_id.in_(queues or {-1})
        if who.role == m.Role.OPERATOR:
            in_queue = in_queue & m.SlaTarget.user_id.is_(None)
        stmt = stmt.where(mine | in_queue)
    return list(await session.scalars(stmt.limit(1000)))


def conversation_condition(state: Literal["running", "breached"]) -> ColumnElement[bool]:
    """A condition on ``Conversation`` for search filters and automation rules (the seam other
    features use): ``running`` = a reply clock runs now; ``breached`` = a reply was ever late."""
    t = m.SlaTarget
    where = t.ended_at.is_(None) if state == "running" else t.breached_at.is_not(None)
    return exists().where(t.conversation_id == m.Conversation.id, where)


# --- admin ------------------------------------------------------------------------------------


def _seconds(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
        raise InvalidInput("{field} must be between {min} and {max}", field=name, min=0, max=MAX_SECONDS)
    return value


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key not in FIELDS:
            raise InvalidInput("unknown field {name}", field=key, name=key)
        if key in ("active", "transcript_at_close"):
            if not isinstance(value, bool):
                raise InvalidInput("{field} must be true or false", field=key)
            clean[key] = value
        elif key == "warning_percent":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
                raise InvalidInput("{field} must be between {min} and {max}", field=key, min=1, max=99)
            clean[key] = value
        else:
            clean[key] = _seconds(key, value)
    return clean


async def _queue_in_scope(session: AsyncSession, who: Principal, queue_id: int) -> m.Queue:
    if who.role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
        raise PermissionDenied("only an admin or a supervisor sets service levels")
    queue = await session.get(m.Queue, queue_id)
    queues = await visible_queue_ids(session, who)
    if queue is None or (queues is not None and queue_id not in queues):
        raise NotFound("queue {queue_id} not found", queue_id=queue_id)
    return queue


async def check_save_policy(
    session: AsyncSession, who: Principal, queue_id: int, data: dict[str, Any]
) -> m.SlaPolicy:
    """Create or change the queue's policy (admins; supervisors for the queues they supervise);
    audited. Running clocks keep the deadline they started with."""
    await _queue_in_scope(session, who, queue_id)
    clean = _clean(data)
    policy = await get_policy(session, queue_id)
    created = policy is None
    if policy is None:
        policy = m.SlaPolicy(
            queue_id=queue_id,
            first_response_seconds=0,
            next_response_seconds=0,
            warning_percent=75,
            active=True,
            transcript_at_close=False,
        )
        session.add(policy)
    changes = {k: v for k, v in clean.items() if created or getattr(policy, k) != v}
    for key, value in changes.items():
        setattr(policy, key, value)
    await session.flush()
    if changes or created:
        audit.record(session, who, "sla.save", object_type="queue", object_id=queue_id, data=changes)
        emit(
            session,
            ADMIN_CHANGED,
            {"entity": "sla_policy", "id": queue_id, "action": "created" if created else "updated"},
        )
    return policy


async def check_delete_policy(session: AsyncSession, who: Principal, queue_id: int) -> None:
    await _queue_in_scope(session, who, queue_id)
    policy = await get_policy(session, queue_id)
    if policy is None:
        raise NotFound("queue {queue_id} has no service level", queue_id=queue_id)
    await session.delete(policy)
    # The queue's running clocks stop with it: nobody promised those customers a deadline now.
    running = await session.scalars(
        select(m.SlaTarget).where(m.SlaTarget.queue_id == queue_id, m.SlaTarget.ended_at.is_(None))
    )
    now = datetime.now(UTC)
    for target in running.all():
        await _end(session, target, now, None)
    audit.record(session, who, "sla.delete", object_type="queue", object_id=queue_id)
    emit(session, ADMIN_CHANGED, {"entity": "sla_policy", "id": queue_id, "action": "deleted"})


# --- the clocks -------------------------------------------------------------------------------


async def _open_target(session: AsyncSession, conversation_id: int) -> m.SlaTarget | None:
    return await session.scalar(
        select(m.SlaTarget)
        .where(m.SlaTarget.conversation_id == conversation_id, m.SlaTarget.ended_at.is_(None))
        .order_by(m.SlaTarget.id.desc())
        .limit(1)
    )


def _changed(session: AsyncSession, target: m.SlaTarget, type_: str = CHANGED) -> None:
    emit(
        session,
        type_,
        target_dict(target),
        conversation_id=target.conversation_id,
        queue_id=target.queue_id,
        user_id=target.user_id,
    )


async def _start(
    session: AsyncSession,
    conv: m.Conversation,
    policy: m.SlaPolicy,
    kind: Literal["first", "next"],
    at: datetime,
) -> m.SlaTarget | None:
    seconds = policy.first_response_seconds if kind == "first" else policy.next_response_seconds
    if seconds <= 0 or not policy.active:
        return None
    target = m.SlaTarget(
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
        kind=kind,
        started_at=at,
        warning_at=at + timedelta(seconds=seconds * policy.warning_percent / 100),
        due_at=at + timedelta(seconds=seconds),
    )
    session.add(target)
    await session.flush()
    deadlines.schedule(session, SLA_BREACH, target.id, target.due_at)
    _changed(session, target)
    return target


async def _end(session: AsyncSession, target: m.SlaTarget, at: datetime, replied_by: int | None) -> None:
    target.ended_at = at
    if replied_by is not None:
        target.replied_at = at
        target.user_id = replied_by
    await deadlines.cancel(session, SLA_BREACH, target.id)
    _changed(session, target)


async def _replied_before(session: AsyncSession, conversation_id: int, message_id: int) -> bool:
    found = await session.scalar(
        select(m.Message.id)
        .where(
            m.Message.conversation_id == conversation_id,
            m.Message.direction == "out",
            m.Message.author_user_id.is_not(None),
            m.Message.id < message_id,
        )
        .limit(1)
    )
    return found is not None


def _when(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback


async def on_event(session: AsyncSession, event: DomainEvent) -> None:
    """Move the clocks for one committed event (see the module docstring)."""
    cid = event.conversation_id
    if cid is None or not (event.type.startswith("conversation.") or event.type == "message.created"):
        return
    conv = await session.get(m.Conversation, cid)
    if conv is None or conv.medium != m.Medium.CHAT:
        return
    if event.type == "conversation.queued":
        if await _open_target(session, cid) is not None:
            return
        first = await session.scalar(
            select(func.count())
            .select_from(m.SlaTarget)
            .where(m.SlaTarget.conversation_id == cid, m.SlaTarget.kind == "first")
        )
        replied = await session.scalar(
            select(m.Message.id)
            .where(
                m.Message.conversation_id == cid,
                m.Message.direction == "out",
                m.Message.author_user_id.is_not(None),
                m.Message.created_at <= event.created_at,
            )
            .limit(1)
        )
        policy = await get_policy(session, event.payload.get("queue_id") or conv.queue_id)
        if not first and replied is None and policy is not None:
            await _start(
                session, conv, policy, "first", _when(event.payload.get("enqueued_at"), event.created_at)
            )
    elif event.type == "message.created":
        direction = event.payload.get("direction")
        at = _when(event.payload.get("created_at"), event.created_at)
        target = await _open_target(session, cid)
        if direction == "out" and event.payload.get("author_user_id") is not None:
            if target is not None:
                await _end(session, target, at, int(event.payload["author_user_id"]))
        elif direction == "in" and target is None and conv.status in HANDLED:
            policy = await get_policy(session, conv.queue_id)
            if policy is not None and await _replied_before(session, cid, int(event.payload["id"])):
                await _start(session, conv, policy, "next", at)
    elif event.type == "conversation.accepted":
        target = await _open_target(session, cid)
        if target is not None and event.user_id is not None and target.user_id != event.user_id:
            target.user_id = event.user_id
            _changed(session, target)
    elif event.type in ENDS:
        target = await _open_target(session, cid)
        if target is not None:
            await _end(session, target, event.created_at, None)
        if event.type == "conversation.closed":
            await _transcript_at_close(session, conv)


async def _transcript_at_close(session: AsyncSession, conv: m.Conversation) -> None:
    from omni.domain import transcript  # builds on this module's policy

    policy = await get_policy(session, conv.queue_id)
    if policy is not None and policy.transcript_at_close:
        await transcript.do_request(session, conv, None, by="close")


SLA_PROBE = or_(
    exists().where(m.SlaPolicy.id.is_not(None)),
    exists().where(m.SlaTarget.ended_at.is_(None)),
)
"""Whether any clock can move: a service level configured, or a target still open (one left
by a policy since deleted still ends). Without either, :func:`on_event` changes nothing."""


def sla_sink() -> Callable[[AsyncSession, Sequence[DomainEvent]], Any]:
    """The outbox relay's transactional sink that runs :func:`on_event` for each event.

    An install without service levels pays nothing per relay batch: the relay reads
    :data:`SLA_PROBE` with the batch and skips this sink when it is false (before, two indexed
    look-ups per batch, that is per message below saturation)."""

    async def sink(session: AsyncSession, events: Sequence[DomainEvent]) -> None:
        for event in events:
            await on_event(session, event)

    return probed(sink, SLA_PROBE)


async def do_breach(session: AsyncSession, deadline: m.Deadline) -> None:
    """The deadline passed: mark the wait breached and alert (``sla.breached`` goes to the
    handling operator's room and to the queue's supervisors) — once: the deadline row is done
    in this transaction and a breached or ended target is left alone."""
    target = await session.get(m.SlaTarget, deadline.ref_id, with_for_update=True)
    if target is None or target.ended_at is not None or target.breached_at is not None:
        return
    target.breached_at = target.due_at
    _changed(session, target, BREACHED)
