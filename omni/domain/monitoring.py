"""Supervisor live monitoring: queue KPIs, operator rows, and the supervisor's actions.

Everything is scoped by ``auth.visible_queue_ids`` / ``auth.visible_user_ids``: an admin sees
every queue and operator, a supervisor only the groups and queues of their scope. An action
on an operator or a conversation outside the scope is refused with ``PermissionDenied``
(``forbidden``) whether or not the target exists, so ids don't leak.

KPI definitions (PRODUCT.md, "Supervisor"), per queue, for **today** — the same as the queue
summary report's (``omni.domain.reports.queues``), so the monitor's today equals the report's:

* *today* starts at local midnight in the install's time zone (``get_config``; UTC until an
  admin sets one); ``queue_stats`` takes ``tz`` to override it;
* the day's *contacts* of a queue are the conversations whose current ``queue_id`` is the queue
  and whose ``first_enqueued_at`` (the start of the customer's wait) is today;
* *wait* = ``accepted_at - first_enqueued_at`` (answered) or ``closed_at - first_enqueued_at``
  (abandoned);
* *answered* = contacts with ``accepted_at``; *abandoned* = contacts the customer left while
  waiting (status ``abandoned``); *short abandoned* = abandoned with wait < the install's
  ``short_abandon_seconds``;
* *offered* = contacts that have left the line (answered, abandoned, missed, overflowed to a
  bot) minus short abandoned — a customer still waiting has no outcome yet;
* **SL** = answered with wait <= ``queue.sla_seconds`` / offered (``None`` without offered);
* **ASA** = mean wait of answered;
* **AHT** = mean of talk + hold + wrap-up over today's contacts answered and closed (talk =
  ``(wrap_up_at or closed_at) - accepted_at - hold_seconds``, wrap-up = ``closed_at -
  wrap_up_at``): a contact's handling counts on the day its wait began.

The longest current wait is coloured: green below the queue's SLA, amber below twice the SLA,
red beyond; the thresholds travel in the payload so the page recolours as it ticks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, grants, presence
from omni.domain.auth import Principal, visible_queue_ids, visible_user_ids
from omni.domain.conversations import _message_event
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.events import emit
from omni.domain.place import offer_why
from omni.domain.reports.config import get_config
from omni.domain.serialize import conversation_dict
from omni.i18n import Label

S = m.ConversationStatus
AMBER_FACTOR = 2
"""Longest wait is amber from the SLA threshold up to this many times it, red beyond."""
MAX_TEXT = 2_000
WAITING = (S.QUEUED, S.OFFERED)
IN_SERVICE = (S.ACTIVE, S.ON_HOLD, S.WRAP_UP)
SUPERVISORS = (m.Role.SUPERVISOR, m.Role.ADMIN)


def day_start(now: datetime, tz: tzinfo = UTC) -> datetime:
    """Midnight of ``now``'s day in ``tz``, as an aware UTC datetime."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def wait_level(seconds: float, sla_seconds: int) -> str:
    """``green`` below the SLA, ``amber`` below ``AMBER_FACTOR`` × SLA, ``red`` beyond."""
    if seconds < sla_seconds:
        return "green"
    if seconds < sla_seconds * AMBER_FACTOR:
        return "amber"
    return "red"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


@dataclass(slots=True)
class _QueueDay:
    waiting: int = 0
    oldest: datetime | None = None
    in_service: int = 0
    answered: int = 0
    answered_in_sla: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    missed: int = 0
    offered: int = 0
    waits: list[float] = field(default_factory=list)
    talk: list[float] = field(default_factory=list)
    hold: list[float] = field(default_factory=list)
    wrap: list[float] = field(default_factory=list)


async def queue_stats(
    session: AsyncSession, who: Principal, now: datetime, *, tz: tzinfo | None = None
) -> list[dict[str, Any]]:
    """KPIs of every queue the caller may see, ordered by name (see the module docstring)."""
    config = await get_config(session)
    grace = float(config.short_abandon_seconds)
    tz = tz or config.tz
    queue_ids = await visible_queue_ids(session, who)
    stmt = select(m.Queue).order_by(m.Queue.name)
    if queue_ids is not None:
        stmt = stmt.where(m.Queue.id.in_(queue_ids))
    queues = (await session.scalars(stmt)).all()
    if not queues:
        return []
    ids = [q.id for q in queues]
    since = day_start(now, tz)
    C = m.Conversation
    rows = (
        await session.execute(
            select(
                C.queue_id,
                C.status,
                C.created_at,
                C.first_enqueued_at,
                C.accepted_at,
                C.wrap_up_at,
                C.closed_at,
                C.hold_seconds,
            ).where(
                C.queue_id.in_(ids),
                or_(
                    C.status.in_((*WAITING, *IN_SERVICE)),
                    C.first_enqueued_at >= since,
                    C.closed_at >= since,
                ),
            )
        )
    ).all()
    days = {qid: _QueueDay() for qid in ids}
    sla = {q.id: q.sla_seconds for q in queues}
    for qid, status, created, enqueued, accepted, wrap_up, closed, hold in rows:
        if qid is None:  # excluded by the query; narrows the type
            continue
        d = days[qid]
        if status in WAITING:
            d.waiting += 1
            start = enqueued or created
            if d.oldest is None or start < d.oldest:
                d.oldest = start
        elif status in IN_SERVICE:
            d.in_service += 1
        if enqueued is not None and enqueued >= since and status not in WAITING:
            if accepted is not None:
                wait = max(0.0, (accepted - enqueued).total_seconds())
                d.answered += 1
                d.waits.append(wait)
                d.offered += 1
                if wait <= sla[qid]:
                    d.answered_in_sla += 1
            elif status == S.ABANDONED:
                d.abandoned += 1
                left = max(0.0, ((closed or enqueued) - enqueued).total_seconds())
                if left < grace:
                    d.abandoned_short += 1
                else:
                    d.offered += 1
            else:  # missed, or overflowed to a bot: left the line unanswered
                if status == S.MISSED:
                    d.missed += 1
                d.offered += 1
        today = enqueued is not None and enqueued >= since
        if status == S.CLOSED and closed is not None and today and accepted is not None:
            ended = wrap_up or closed
            d.hold.append(float(hold or 0))
            d.talk.append(max(0.0, (ended - accepted).total_seconds() - (hold or 0)))
            d.wrap.append(max(0.0, (closed - ended).total_seconds()))
    result: list[dict[str, Any]] = []
    for q in queues:
        d = days[q.id]
        longest = max(0.0, (now - d.oldest).total_seconds()) if d.oldest else 0.0
        handle = [t + h + w for t, h, w in zip(d.talk, d.hold, d.wrap, strict=True)]
        result.append(
            {
                "id": q.id,
                "name": q.name,
                "sla_seconds": q.sla_seconds,
                "waiting": d.waiting,
                "longest_wait_seconds": round(longest, 1),
                "longest_wait_since": d.oldest.isoformat() if d.oldest else None,
                "longest_wait_level": wait_level(longest, q.sla_seconds) if d.oldest else "green",
                "thresholds": {"amber": q.sla_seconds, "red": q.sla_seconds * AMBER_FACTOR},
                "in_service": d.in_service,
                "offered_today": d.offered,
                "answered_today": d.answered,
                "answered_in_sla_today": d.answered_in_sla,
                "service_level_pct": (round(100.0 * d.answered_in_sla / d.offered, 1) if d.offered else None),
                "abandoned_today": d.abandoned,
                "abandoned_short_today": d.abandoned_short,
                "missed_today": d.missed,
                "asa_seconds": _mean(d.waits),
                "aht_seconds": _mean(handle),
                "avg_talk_seconds": _mean(d.talk),
                "avg_hold_seconds": _mean(d.hold),
                "avg_wrap_up_seconds": _mean(d.wrap),
                "closed_today": len(handle),
            }
        )
    return result


async def operator_rows(
    session: AsyncSession, who: Principal, now: datetime, *, tz: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Every active operator the caller may see: status, time in it, work now and today."""
    user_ids = await visible_user_ids(session, who)
    stmt = (
        select(m.User)
        .where(m.User.role == m.Role.OPERATOR, m.User.is_active.is_(True))
        .order_by(m.User.display_name, m.User.username)
    )
    if user_ids is not None:
        stmt = stmt.where(m.User.id.in_(user_ids))
    users = (await session.scalars(stmt)).all()
    if not users:
        return []
    ids = [u.id for u in users]
    statuses = {s.id: s for s in (await session.scalars(select(m.OperatorStatus))).all()}
    by_code = {s.code: s for s in statuses.values()}
    presences = {
        p.user_id: p
        for p in (
            await session.scalars(select(m.OperatorPresence).where(m.OperatorPresence.user_id.in_(ids)))
        ).all()
    }
    C = m.Conversation
    current: dict[int, list[dict[str, Any]]] = defaultdict(list)
    in_service = (
        await session.scalars(
            select(C).where(C.assigned_user_id.in_(ids), C.status.in_(IN_SERVICE)).order_by(C.accepted_at)
        )
    ).all()
    voice_ids = [c.id for c in in_service if c.medium == m.Medium.VOICE]
    calls: dict[int, m.Call] = {}
    if voice_ids:
        found = await session.scalars(select(m.Call).where(m.Call.conversation_id.in_(voice_ids)))
        calls = {row.conversation_id: row for row in found}
    for conv in in_service:
        assert conv.assigned_user_id is not None
        call = calls.get(conv.id)
        current[conv.assigned_user_id].append(
            {
                "id": conv.id,
                "channel": conv.channel,
                "medium": conv.medium,
                "status": conv.status,
                "queue_id": conv.queue_id,
                # Its labels (coloured chips, the page's label filter; docs/organise.md).
                "label_ids": list(conv.label_ids or []),
                "accepted_at": conv.accepted_at.isoformat() if conv.accepted_at else None,
                # Voice: is the call still up (listen/check_whisper/barge/force-end make sense), and
                # its recording (played through GET /api/v1/conversations/{id}/recording).
                "call_live": call is not None and call.ended_at is None,
                # Why it went to this operator (omni.domain.place): the rule behind its offer.
                "why": offer_why(conv, conv.assigned_user_id),
                "recording_url": (
                    f"/api/v1/conversations/{conv.id}/recording" if call and call.recording_path else None
                ),
            }
        )
    since = day_start(now, tz)
    handled: dict[int, int] = defaultdict(int)
    for uid in await session.scalars(
        select(C.assigned_user_id).where(
            C.assigned_user_id.in_(ids),
            C.status == S.CLOSED,
            C.closed_at >= since,
            C.accepted_at.is_not(None),
        )
    ):
        if uid is not None:
            handled[uid] += 1
    offline = by_code[m.StatusKind.OFFLINE]
    rows: list[dict[str, Any]] = []
    for u in users:
        p = presences.get(u.id)
        status = statuses[p.status_id] if p is not None else offline
        since_status = p.since if p is not None else u.created_at
        in_status = max(0.0, (now - since_status).total_seconds())
        limit = status.max_duration_seconds
        activity = p.effective_code if p is not None else offline.code
        activity_status = by_code.get(activity, status)
        rows.append(
            {
                "id": u.id,
                "name": u.display_name or u.username,
                "username": u.username,
                "status": status.code,
                "status_name": status.name,
                "status_name_ru": status.name_ru,
                "colour": status.colour,
                "reason": p.reason if p is not None else "",
                "since": since_status.isoformat(),
                "time_in_status_seconds": round(in_status, 1),
                "max_duration_seconds": limit,
                "over_limit": bool(
                    (p is not None and p.over_limit_flagged) or (limit is not None and in_status >= limit)
                ),
                "activity": activity,
                "activity_name": activity_status.name,
                "activity_name_ru": activity_status.name_ru,
                "activity_colour": activity_status.colour,
                "activity_since": (p.effective_since if p is not None else since_status).isoformat(),
                "connected": bool(p is not None and p.connections > 0),
                "conversations": current.get(u.id, []),
                "conversation_count": len(current.get(u.id, [])),
                "handled_today": handled.get(u.id, 0),
            }
        )
    return rows


async def snapshot(session: AsyncSession, who: Principal, now: datetime | None = None) -> dict[str, Any]:
    """What the monitoring page shows, with the outbox position it is current to."""
    check_supervisor(who)
    # Read the position first: an event committed after it is replayed/applied on top.
    last_seq = await session.scalar(select(m.Event.id).order_by(m.Event.id.desc()).limit(1))
    now = now or datetime.now(UTC)
    config = await get_config(session)
    return {
        "now": now.isoformat(),
        "day_start": day_start(now, config.tz).isoformat(),
        "timezone": config.timezone,
        "short_abandon_seconds": float(config.short_abandon_seconds),
        "queues": await queue_stats(session, who, now, tz=config.tz),
        "operators": await operator_rows(session, who, now, tz=config.tz),
        "last_seq": last_seq or 0,
    }


# --- supervisor actions -------------------------------------------------------------------


def check_supervisor(who: Principal) -> None:
    if who.role not in SUPERVISORS:
        raise PermissionDenied("only supervisors and admins monitor and act on operators")


async def _supervised_operator(session: AsyncSession, who: Principal, user_id: int) -> m.User:
    """An active operator in the caller's scope, else ``forbidden`` (admins: ``not_found``)."""
    check_supervisor(who)
    scope = await visible_user_ids(session, who)
    if scope is not None and user_id not in scope:
        raise PermissionDenied("operator {user_id} is not in your groups", user_id=user_id)
    user = await session.get(m.User, user_id)
    if user is None or not user.is_active:
        raise NotFound("operator {user_id} not found", user_id=user_id)
    return user


async def _supervised_conversation(session: AsyncSession, who: Principal, conv_id: int) -> m.Conversation:
    """A conversation of a queue in the caller's scope, locked for the action."""
    check_supervisor(who)
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    scope = await visible_queue_ids(session, who)
    if scope is not None and (conv is None or not (scope & {conv.queue_id, *conv.extra_queue_ids})):
        raise PermissionDenied("conversation {conv_id} is not in your queues", conv_id=conv_id)
    if conv is None:
        raise NotFound("conversation {conv_id} not found", conv_id=conv_id)
    return conv


def _text(text: str, field_name: str) -> str:
    clean = text.strip()
    if not clean:
        raise InvalidInput("the message is empty", field=field_name)
    if len(clean) > MAX_TEXT:
        raise InvalidInput(
            "the message is longer than {max_text} characters", max_text=MAX_TEXT, field=field_name
        )
    return clean


async def _display_name(session: AsyncSession, who: Principal) -> str:
    user = await session.get(m.User, who.id)
    return (user.display_name or user.username) if user is not None else who.username


async def check_set_operator_status(
    session: AsyncSession, who: Principal, user_id: int, code: str, reason: str
) -> m.OperatorPresence:
    """A supervisor changes an operator's status (reason required), audit-logged."""
    await _supervised_operator(session, who, user_id)
    # In scope (checked above), so ``check_set_status`` needs no scope of its own.
    p = await presence.check_set_status(session, who.id, who.role, user_id, code, reason, supervised=None)
    audit.record(
        session,
        who,
        "supervisor.set_status",
        object_type="user",
        object_id=user_id,
        data={"status": code, "reason": reason[:256]},
    )
    return p


async def check_message_operator(
    session: AsyncSession, who: Principal, user_id: int, text: str
) -> dict[str, Any]:
    """Send a private message to one operator: a ``supervisor.message`` event to their room.

    The payload is ``{from_user_id, from_name, to_user_id, text, sent_at}``; only that operator
    (and the supervisors watching them) receive it. Audit-logged.
    """
    target = await _supervised_operator(session, who, user_id)
    body = _text(text, "text")
    payload = {
        "from_user_id": who.id,
        "from_name": await _display_name(session, who),
        "to_user_id": target.id,
        "text": body,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    emit(session, "supervisor.message", payload, user_id=target.id)
    audit.record(
        session, who, "supervisor.message", object_type="user", object_id=target.id, data={"text": body}
    )
    return payload


async def check_whisper(session: AsyncSession, who: Principal, conversation_id: int, text: str) -> m.Message:
    """Join a chat privately: a note (``direction="note"``) only staff see.

    It travels as an ordinary ``message.created`` to the handling operator; the outbound
    dispatcher sends ``out`` messages only and the widget's history lists ``in``/``out`` only,
    so the customer never receives it.
    """
    conv = await _supervised_conversation(session, who, conversation_id)
    await grants.check(session, who, grants.CHAT_WHISPER)
    body = _text(text, "text")
    if conv.status not in IN_SERVICE or conv.assigned_user_id is None:
        raise Conflict(
            "only a conversation being handled can be joined (it is {status})",
            status=Label("status", conv.status),
        )
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="note",
        author_user_id=who.id,
        body=body,
        attachments=[],
        delivery="stored",
        created_at=datetime.now(UTC),
    )
    session.add(message)
    await session.flush()
    _message_event(session, conv, message)
    audit.record(
        session,
        who,
        "supervisor.whisper",
        object_type="conversation",
        object_id=conv.id,
        data={"message_id": message.id},
    )
    return message


async def check_take_over(session: AsyncSession, who: Principal, conversation_id: int) -> m.Conversation:
    """The supervisor becomes the handler of an active (or held) conversation.

    Emits ``conversation.taken_over`` (the conversation plus ``from_user_id``, ``to_user_id``,
    ``by_name``) to the previous operator's room and the queue's room, so both sides update;
    both operators' derived activity (talking/available) and capacity follow at once.
    """
    conv = await _supervised_conversation(session, who, conversation_id)
    await grants.check(session, who, grants.CHAT_TAKE_OVER)
    if conv.status not in (S.ACTIVE, S.ON_HOLD):
        raise Conflict(
            "only an active conversation can be taken over (it is {status})",
            status=Label("status", conv.status),
        )
    previous = conv.assigned_user_id
    if previous == who.id:
        raise Conflict("you are already handling this conversation")
    conv.assigned_user_id = who.id
    conv.preferred_user_id = None
    emit(
        session,
        "conversation.taken_over",
        conversation_dict(conv)
        | {"from_user_id": previous, "to_user_id": who.id, "by_name": await _display_name(session, who)},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=previous if previous is not None else who.id,
    )
    await session.flush()
    for uid in (previous, who.id):
        if uid is not None:
            await presence.do_refresh_activity_of(session, uid)
    audit.record(
        session,
        who,
        "supervisor.take_over",
        object_type="conversation",
        object_id=conv.id,
        data={"from_user_id": previous},
    )
    return conv
