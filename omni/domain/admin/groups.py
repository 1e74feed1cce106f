"""Groups and skills: who supervises whom, and what operators are good at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    ADMIN,
    SUPERVISOR,
    Checker,
    _apply,
    _audit,
    _clean,
    _deny_auditor,
    _ensure_unique,
    _flush,
    _get,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
)
from omni.i18n import _l

# --- groups -------------------------------------------------------------------------------

_GROUP_FIELDS: dict[str, Checker] = {"name": _text(128)}


async def group_dicts(session: AsyncSession, groups: Sequence[m.Group]) -> list[dict[str, Any]]:
    members: dict[int, list[int]] = {g.id: [] for g in groups}
    if groups:
        rows = await session.execute(
            select(m.GroupMember.group_id, m.GroupMember.user_id)
            .where(m.GroupMember.group_id.in_(members))
            .order_by(m.GroupMember.user_id)
        )
        for gid, uid in rows.all():
            members[gid].append(uid)
    return [{"id": g.id, "name": g.name, "user_ids": members[g.id]} for g in groups]


async def list_groups(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Group]:
    check_role(who, ADMIN, SUPERVISOR)
    stmt = select(m.Group).order_by(m.Group.id).limit(clamp_limit(limit))
    if who.role == SUPERVISOR:
        stmt = stmt.where(
            m.Group.id.in_(
                select(m.SupervisorScope.group_id).where(
                    m.SupervisorScope.supervisor_id == who.id,
                    m.SupervisorScope.group_id.is_not(None),
                )
            )
        )
    return list(await session.scalars(stmt))


async def _check_group(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "name" in clean:
        await _ensure_unique(
            session,
            m.Group.name,
            m.Group.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a group named '{value}' already exists"),
        )


async def check_create_group(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Group:
    check_role(who, ADMIN)
    clean = _clean(data, _GROUP_FIELDS, ("name",))
    await _check_group(session, clean, None)
    group = m.Group(**clean)
    session.add(group)
    await _flush(session)
    _audit(session, who, "group.create", "group", group.id, data)
    _changed(session, "group", group.id, "created")
    return group


async def check_update_group(
    session: AsyncSession, who: Principal, group_id: int, data: Mapping[str, Any]
) -> m.Group:
    check_role(who, ADMIN)
    group = await _get(session, m.Group, group_id, "group")
    clean = _clean(data, _GROUP_FIELDS)
    await _check_group(session, clean, group.id)
    _apply(group, clean)
    await _flush(session)
    _audit(session, who, "group.update", "group", group.id, data)
    _changed(session, "group", group.id, "updated")
    return group


async def check_delete_group(session: AsyncSession, who: Principal, group_id: int) -> None:
    """Members and scopes go with the group; its queues stay, without a group."""
    check_role(who, ADMIN)
    group = await _get(session, m.Group, group_id, "group")
    await session.delete(group)
    await _flush(session)
    _audit(session, who, "group.delete", "group", group_id, {"name": group.name})
    _changed(session, "group", group_id, "deleted")


# --- skills -------------------------------------------------------------------------------

_SKILL_FIELDS: dict[str, Checker] = {"name": _text(64)}


def skill_dict(s: m.Skill) -> dict[str, Any]:
    return {"id": s.id, "name": s.name}


async def list_skills(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Skill]:
    _deny_auditor(who)
    return list(await session.scalars(select(m.Skill).order_by(m.Skill.id).limit(clamp_limit(limit))))


async def _check_skill(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "name" in clean:
        await _ensure_unique(
            session,
            m.Skill.name,
            m.Skill.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a skill named '{value}' already exists"),
        )


async def check_create_skill(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Skill:
    check_role(who, ADMIN)
    clean = _clean(data, _SKILL_FIELDS, ("name",))
    await _check_skill(session, clean, None)
    skill = m.Skill(**clean)
    session.add(skill)
    await _flush(session)
    _audit(session, who, "skill.create", "skill", skill.id, data)
    _changed(session, "skill", skill.id, "created")
    return skill


async def check_update_skill(
    session: AsyncSession, who: Principal, skill_id: int, data: Mapping[str, Any]
) -> m.Skill:
    check_role(who, ADMIN)
    skill = await _get(session, m.Skill, skill_id, "skill")
    clean = _clean(data, _SKILL_FIELDS)
    await _check_skill(session, clean, skill.id)
    _apply(skill, clean)
    await _flush(session)
    _audit(session, who, "skill.update", "skill", skill.id, data)
    _changed(session, "skill", skill.id, "updated")
    return skill


async def check_delete_skill(session: AsyncSession, who: Principal, skill_id: int) -> None:
    """Users' levels and queues' requirements of the skill go with it."""
    check_role(who, ADMIN)
    skill = await _get(session, m.Skill, skill_id, "skill")
    await session.delete(skill)
    await _flush(session)
    _audit(session, who, "skill.delete", "skill", skill_id, {"name": skill.name})
    _changed(session, "skill", skill_id, "deleted")
