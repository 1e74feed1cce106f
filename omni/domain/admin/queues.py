"""Queues: their settings, members, required skills and result codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed, _emit_members_changed, _queue_members
from omni.domain.admin.checks import (
    _ID,
    _OPTIONAL_ID,
    ADMIN,
    MAX_SKILL_LEVEL,
    MIN_SKILL_LEVEL,
    OPERATOR,
    OVERFLOW_ACTIONS,
    SUPERVISOR,
    Checker,
    _apply,
    _audit,
    _boolean,
    _business_hours,
    _choice,
    _clean,
    _columns,
    _deny_auditor,
    _ensure_unique,
    _escalation,
    _flush,
    _get,
    _id_list,
    _integer,
    _items,
    _new,
    _no_repeats,
    _referenced,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
    visible_queue_ids,
    visible_user_ids,
)
from omni.domain.calendars import check_calendar_ids
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.i18n import _l

# --- queues -------------------------------------------------------------------------------

_QUEUE_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "group_id": _OPTIONAL_ID,
    "strategy": _choice(m.Strategy),
    "priority": _integer(),
    "business_hours": _business_hours,
    "queue_timeout_seconds": _integer(0),
    "operator_timeout_seconds": _integer(0),
    "auto_accept": _boolean,
    "overflow_action": _choice(OVERFLOW_ACTIONS),
    "overflow_queue_id": _OPTIONAL_ID,
    "overflow_scenario": _text(64, allow_empty=True),
    "sla_seconds": _integer(1),
    "wrap_up_seconds": _integer(0),
    "idle_close_minutes": _integer(0, 7 * 24 * 60),
    "missed_offers_pause": _integer(0, 100),
    "default_result_code_id": _OPTIONAL_ID,
    "chats_block_calls": _boolean,
    "manual_pick": _boolean,
    "escalation": _escalation,
    "script": _text(20000, allow_empty=True, strip=False),
    "affinity_seconds": _integer(0),
    "affinity_skip_ivr": _boolean,
    "blend_notice": _boolean,
    "blend_reoffer_seconds": _integer(0),
}


async def queue_dicts(session: AsyncSession, queues: Sequence[m.Queue]) -> list[dict[str, Any]]:
    """Queues with members, skills and result codes, loaded in three queries for the lot."""
    ids = [q.id for q in queues]
    members: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    skills: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    codes: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for mm in await session.scalars(
            select(m.QueueMember)
            .where(m.QueueMember.queue_id.in_(ids))
            .order_by(m.QueueMember.position, m.QueueMember.user_id)
        ):
            members[mm.queue_id].append(
                {"user_id": mm.user_id, "position": mm.position, "penalty": mm.penalty}
            )
        for qs in await session.scalars(
            select(m.QueueSkill).where(m.QueueSkill.queue_id.in_(ids)).order_by(m.QueueSkill.skill_id)
        ):
            skills[qs.queue_id].append({"skill_id": qs.skill_id, "min_level": qs.min_level})
        for qid, cid in (
            await session.execute(
                select(m.QueueResultCode.queue_id, m.QueueResultCode.result_code_id)
                .where(m.QueueResultCode.queue_id.in_(ids))
                .order_by(m.QueueResultCode.result_code_id)
            )
        ).all():
            codes[qid].append(cid)
    out = []
    for q in queues:
        body = _columns(q)
        body["escalation"] = list(q.escalation or [])
        body["members"] = members[q.id]
        body["skills"] = skills[q.id]
        body["result_code_ids"] = codes[q.id]
        out.append(body)
    return out


async def queue_detail(session: AsyncSession, queue: m.Queue) -> dict[str, Any]:
    return (await queue_dicts(session, [queue]))[0]


async def _scoped_queue(session: AsyncSession, who: Principal, queue_id: int, *, manage: bool) -> m.Queue:
    """A queue the caller may see (``manage``: and edit); others' queues are 'not found'."""
    if manage:
        check_role(who, ADMIN, SUPERVISOR)
    else:
        _deny_auditor(who)
    queue = await session.get(m.Queue, queue_id)
    visible = await visible_queue_ids(session, who)
    if queue is None or (visible is not None and queue.id not in visible):
        raise NotFound("queue {queue_id} not found", queue_id=queue_id)
    return queue


async def list_queues(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Queue]:
    _deny_auditor(who)
    stmt = select(m.Queue).order_by(m.Queue.id).limit(clamp_limit(limit))
    visible = await visible_queue_ids(session, who)
    if visible is not None:
        stmt = stmt.where(m.Queue.id.in_(visible))
    return list(await session.scalars(stmt))


async def access_queue(session: AsyncSession, who: Principal, queue_id: int) -> m.Queue:
    return await _scoped_queue(session, who, queue_id, manage=False)


async def _allowed_codes(session: AsyncSession, queue_id: int) -> set[int]:
    return set(
        await session.scalars(
            select(m.QueueResultCode.result_code_id).where(m.QueueResultCode.queue_id == queue_id)
        )
    )


async def _check_default_code(
    session: AsyncSession, code_id: int | None, allowed: set[int], field: str
) -> None:
    code = await _referenced(session, m.ResultCode, code_id, field, "result code")
    if code is None:
        return
    if not code.active:
        raise InvalidInput("result code '{code}' is inactive", code=code.code, field=field)
    if allowed and code.id not in allowed:
        raise InvalidInput(
            "result code '{code}' is not among the queue's result codes", code=code.code, field=field
        )


async def _check_queue(
    session: AsyncSession,
    who: Principal,
    clean: Mapping[str, Any],
    queue: m.Queue,
    own_id: int | None,
) -> None:
    """References, uniqueness and the whole-row rules, before anything is changed."""
    visible = await visible_queue_ids(session, who)

    async def target(qid: int | None, field: str) -> None:
        if qid is None:
            return
        if qid == own_id:
            raise InvalidInput("a queue can't send conversations to itself", field=field)
        if visible is not None and qid not in visible:
            raise InvalidInput("queue {qid} does not exist", qid=qid, field=field)
        await _referenced(session, m.Queue, qid, field, "queue")

    if "name" in clean:
        await _ensure_unique(
            session,
            m.Queue.name,
            m.Queue.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a queue named '{value}' already exists"),
        )
    if "group_id" in clean and clean["group_id"] != queue.group_id:
        if who.role != ADMIN:
            raise PermissionDenied(
                "only an admin moves a queue to another group (it changes who supervises it)",
                field="group_id",
            )
        await _referenced(session, m.Group, clean["group_id"], "group_id", "group")
    if (clean.get("business_hours") or {}).get("calendars"):
        await check_calendar_ids(session, clean["business_hours"]["calendars"], "business_hours.calendars")
    if "overflow_queue_id" in clean:
        await target(clean["overflow_queue_id"], "overflow_queue_id")
    for i, step in enumerate(clean.get("escalation", [])):
        await target(step.get("add_queue_id"), f"escalation[{i}].add_queue_id")
    if "default_result_code_id" in clean:
        allowed = await _allowed_codes(session, own_id) if own_id is not None else set()
        await _check_default_code(session, clean["default_result_code_id"], allowed, "default_result_code_id")
    action = clean.get("overflow_action", queue.overflow_action)
    overflow_to = clean.get("overflow_queue_id", queue.overflow_queue_id)
    if action == "queue" and overflow_to is None:
        raise InvalidInput("overflow_action 'queue' needs overflow_queue_id", field="overflow_queue_id")
    if action == "bot" and ("overflow_action" in clean or "overflow_scenario" in clean):
        await _check_overflow_scenario(session, clean.get("overflow_scenario", queue.overflow_scenario))


async def _check_overflow_scenario(session: AsyncSession, key: str) -> None:
    """Overflow to a bot needs a scenario that can start now: one with a published revision
    (the runner refuses any other, and the customer would be left with nobody)."""
    if not key:
        raise InvalidInput(
            "overflow_action 'bot' needs overflow_scenario: the key of a published scenario",
            field="overflow_scenario",
        )
    published = await session.scalar(
        select(m.Scenario.id).where(m.Scenario.key == key, m.Scenario.active_revision_id.is_not(None))
    )
    if published is None:
        raise InvalidInput(
            "overflow_scenario '{key}' is not a published scenario; publish it or choose another",
            key=key,
            field="overflow_scenario",
        )


async def check_create_queue(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Queue:
    check_role(who, ADMIN)
    clean = _clean(data, _QUEUE_FIELDS, ("name",))
    queue = _new(m.Queue)
    await _check_queue(session, who, clean, queue, None)
    _apply(queue, clean)
    session.add(queue)
    await _flush(session)
    _audit(session, who, "queue.create", "queue", queue.id, data)
    _changed(session, "queue", queue.id, "created")
    return queue


async def check_update_queue(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(data, _QUEUE_FIELDS)
    await _check_queue(session, who, clean, queue, queue.id)
    _apply(queue, clean)
    await _flush(session)
    _audit(session, who, "queue.update", "queue", queue.id, data)
    _changed(session, "queue", queue.id, "updated")
    return queue


async def check_delete_queue(session: AsyncSession, who: Principal, queue_id: int) -> None:
    """Refused while anything still sends conversations here, so none are stranded."""
    check_role(who, ADMIN)
    queue = await _get(session, m.Queue, queue_id, "queue")
    waiting = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.queue_id == queue.id, m.Conversation.status.in_(m.OPEN_STATUSES))
    )
    if waiting:
        raise Conflict(
            "queue '{name}' has {waiting} open conversations; close them first",
            name=queue.name,
            waiting=waiting,
        )
    inboxes = list(await session.scalars(select(m.Inbox.name).where(m.Inbox.queue_id == queue.id)))
    if inboxes:
        raise Conflict(
            "inboxes route to queue '{name}': {inboxes}; point them elsewhere",
            name=queue.name,
            inboxes=", ".join(inboxes),
        )
    referrers = [
        q.name
        for q in await session.scalars(select(m.Queue).where(m.Queue.id != queue.id))
        if q.overflow_queue_id == queue.id
        or any(step.get("add_queue_id") == queue.id for step in q.escalation or [])
    ]
    if referrers:
        raise Conflict(
            "queues overflow or escalate to '{name}': {referrers}; change them first",
            name=queue.name,
            referrers=", ".join(referrers),
        )
    campaigns = list(await session.scalars(select(m.Campaign.name).where(m.Campaign.queue_id == queue.id)))
    if campaigns:
        raise Conflict(
            "campaigns work from queue '{name}': {campaigns}; move them to another queue first",
            name=queue.name,
            campaigns=", ".join(campaigns),
        )
    before = await _queue_members(session, [queue.id])  # the rows go with the queue
    await session.delete(queue)
    await _flush(session)
    _audit(session, who, "queue.delete", "queue", queue_id, {"name": queue.name})
    await _emit_members_changed(session, before)
    _changed(session, "queue", queue_id, "deleted")


_MEMBER: dict[str, Checker] = {
    "user_id": _ID,
    "position": _integer(0),
    "penalty": _integer(0),
}


async def check_set_queue_members(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    """Supervisors staff their queues from operators they already supervise."""
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(data, {"members": lambda f, v: _items(f, v, _MEMBER, ("user_id",))}, ("members",))
    items: list[dict[str, Any]] = clean["members"]
    _no_repeats("members", items, "user_id")
    visible = await visible_user_ids(session, who)
    for i, item in enumerate(items):
        field = f"members[{i}].user_id"
        if visible is not None and item["user_id"] not in visible:
            raise InvalidInput("user {user_id} does not exist", user_id=item["user_id"], field=field)
        user = await _referenced(session, m.User, item["user_id"], field, "user")
        assert user is not None
        if user.role != OPERATOR:
            raise InvalidInput(
                "user '{username}' has the role {role}; queues take operators only",
                username=user.username,
                role=user.role,
                field=field,
            )
    before = await _queue_members(session, [queue.id])
    await session.execute(delete(m.QueueMember).where(m.QueueMember.queue_id == queue.id))
    session.add_all(
        m.QueueMember(
            queue_id=queue.id,
            user_id=i["user_id"],
            position=i.get("position", 0),
            penalty=i.get("penalty", 0),
        )
        for i in items
    )
    await _flush(session)
    _audit(session, who, "queue.members", "queue", queue.id, data)
    if not await _emit_members_changed(session, before):
        _changed(session, "queue", queue.id, "updated")  # positions or penalties only
    return queue


_QUEUE_SKILL: dict[str, Checker] = {
    "skill_id": _ID,
    "min_level": _integer(MIN_SKILL_LEVEL, MAX_SKILL_LEVEL),
}


async def check_set_queue_skills(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(data, {"skills": lambda f, v: _items(f, v, _QUEUE_SKILL, ("skill_id",))}, ("skills",))
    items: list[dict[str, Any]] = clean["skills"]
    _no_repeats("skills", items, "skill_id")
    for i, item in enumerate(items):
        await _referenced(session, m.Skill, item["skill_id"], f"skills[{i}].skill_id", "skill")
    await session.execute(delete(m.QueueSkill).where(m.QueueSkill.queue_id == queue.id))
    session.add_all(
        m.QueueSkill(queue_id=queue.id, skill_id=i["skill_id"], min_level=i.get("min_level", 1))
        for i in items
    )
    await _flush(session)
    _audit(session, who, "queue.skills", "queue", queue.id, data)
    _changed(session, "queue", queue.id, "updated")
    return queue


async def check_set_queue_result_codes(
    session: AsyncSession, who: Principal, queue_id: int, data: Mapping[str, Any]
) -> m.Queue:
    """An empty list allows every active code; the default must be one the queue allows."""
    queue = await _scoped_queue(session, who, queue_id, manage=True)
    clean = _clean(
        data,
        {"result_code_ids": _id_list, "default_result_code_id": _OPTIONAL_ID},
        ("result_code_ids",),
    )
    code_ids: list[int] = clean["result_code_ids"]
    for i, cid in enumerate(code_ids):
        code = await _referenced(session, m.ResultCode, cid, f"result_code_ids[{i}]", "result code")
        assert code is not None
        if not code.active:
            raise InvalidInput(
                "result code '{code}' is inactive", code=code.code, field=f"result_code_ids[{i}]"
            )
    if "default_result_code_id" in clean:
        default = clean["default_result_code_id"]
        await _check_default_code(session, default, set(code_ids), "default_result_code_id")
    else:
        default = queue.default_result_code_id
        if default is not None and code_ids and default not in code_ids:
            raise InvalidInput(
                "the queue's default result code {default} is not in the list: include "
                "it or give a new default_result_code_id",
                default=default,
                field="default_result_code_id",
            )
    await session.execute(delete(m.QueueResultCode).where(m.QueueResultCode.queue_id == queue.id))
    session.add_all(m.QueueResultCode(queue_id=queue.id, result_code_id=c) for c in code_ids)
    queue.default_result_code_id = default
    await _flush(session)
    _audit(session, who, "queue.result_codes", "queue", queue.id, data)
    _changed(session, "queue", queue.id, "updated")
    return queue
