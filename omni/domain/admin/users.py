"""Users: accounts, their skills, groups and (for supervisors) scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed, _emit_members_changed, _queue_members, _queues_of
from omni.domain.admin.checks import (
    _ID,
    ADMIN,
    LANGUAGES,
    MAX_SKILL_LEVEL,
    MIN_SKILL_LEVEL,
    SUPERVISOR,
    Checker,
    _apply,
    _audit,
    _boolean,
    _choice,
    _clean,
    _columns,
    _email,
    _ensure_unique,
    _flush,
    _get,
    _id_list,
    _integer,
    _iso,
    _items,
    _new,
    _no_repeats,
    _optional,
    _password,
    _referenced,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
    visible_user_ids,
)
from omni.domain.errors import InvalidInput, NotFound
from omni.i18n import _l

# --- users --------------------------------------------------------------------------------

_USER_FIELDS: dict[str, Checker] = {
    "username": _text(64, no_spaces=True),
    "password": _password,
    "role": _choice(m.Role),
    "display_name": _text(128, allow_empty=True),
    "email": _optional(_email),
    "language": _choice(LANGUAGES),
    "sip_extension": _optional(_text(32, no_spaces=True)),
    "phone_endpoint": _choice(m.PhoneEndpoint),
    "handles_chat": _boolean,
    "handles_voice": _boolean,
    "capacity": _integer(1),
    "chat_weight": _integer(1),
    "voice_weight": _integer(1),
}
_USER_UPDATE_FIELDS = {**_USER_FIELDS, "is_active": _boolean}


def user_dict(u: m.User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "email": u.email,
        "role": u.role,
        "language": u.language,
        "is_active": u.is_active,
        "sip_extension": u.sip_extension,
        "phone_endpoint": u.phone_endpoint,
        "handles_chat": u.handles_chat,
        "handles_voice": u.handles_voice,
        "capacity": u.capacity,
        "chat_weight": u.chat_weight,
        "voice_weight": u.voice_weight,
        "created_at": _iso(u.created_at),
    }


async def user_detail(session: AsyncSession, u: m.User) -> dict[str, Any]:
    """The user with skills, groups and (for supervisors) scope: what an edit form needs."""
    body = user_dict(u)
    body["two_factor"] = u.totp_enabled_at is not None
    skills = await session.scalars(
        select(m.UserSkill).where(m.UserSkill.user_id == u.id).order_by(m.UserSkill.skill_id)
    )
    body["skills"] = [{"skill_id": s.skill_id, "level": s.level} for s in skills]
    body["group_ids"] = sorted(
        await session.scalars(select(m.GroupMember.group_id).where(m.GroupMember.user_id == u.id))
    )
    if u.role == SUPERVISOR:
        scopes = (
            await session.scalars(select(m.SupervisorScope).where(m.SupervisorScope.supervisor_id == u.id))
        ).all()
        body["scope"] = {
            "group_ids": sorted(s.group_id for s in scopes if s.group_id is not None),
            "queue_ids": sorted(s.queue_id for s in scopes if s.queue_id is not None),
        }
    return body


async def _user_in_scope(session: AsyncSession, who: Principal, user_id: int) -> m.User:
    """Admins reach every user, supervisors the ones they supervise; others are refused."""
    check_role(who, ADMIN, SUPERVISOR)
    user = await session.get(m.User, user_id)
    visible = await visible_user_ids(session, who)
    if user is None or (visible is not None and user.id not in visible):
        raise NotFound("user {user_id} not found", user_id=user_id)
    return user


async def _check_user(
    session: AsyncSession, clean: Mapping[str, Any], row: Mapping[str, Any], own_id: int | None
) -> None:
    if "username" in clean:
        await _ensure_unique(
            session,
            m.User.username,
            m.User.id,
            clean["username"],
            own_id=own_id,
            field="username",
            message=_l("a user named '{value}' already exists"),
        )
    if clean.get("sip_extension"):
        ext = clean["sip_extension"]
        await _ensure_unique(
            session,
            m.User.sip_extension,
            m.User.id,
            ext,
            own_id=own_id,
            field="sip_extension",
            message=_l("SIP extension '{value}' belongs to another user"),
        )
    load_fields = {"capacity", "chat_weight", "voice_weight", "handles_chat", "handles_voice"}
    if not load_fields & set(clean):
        return  # an old row that breaks the rule still gets its unrelated fields edited
    merged = {**row, **clean}
    for medium, noun in (("chat", "chat"), ("voice", "call")):
        weight = merged[f"{medium}_weight"]
        if merged[f"handles_{medium}"] and weight > merged["capacity"]:
            raise InvalidInput(
                "{field} ({weight}) exceeds capacity ({capacity}): this user could never "
                "take a {noun}; lower the weight or turn handles_{medium} off",
                medium=medium,
                weight=weight,
                capacity=merged["capacity"],
                noun=noun,
                field=f"{medium}_weight",
            )


async def list_users(session: AsyncSession, who: Principal, *, limit: int) -> list[m.User]:
    check_role(who, ADMIN, SUPERVISOR)
    stmt = select(m.User).order_by(m.User.id).limit(clamp_limit(limit))
    visible = await visible_user_ids(session, who)
    if visible is not None:
        stmt = stmt.where(m.User.id.in_(visible))
    return list(await session.scalars(stmt))


async def access_user(session: AsyncSession, who: Principal, user_id: int) -> m.User:
    return await _user_in_scope(session, who, user_id)


async def check_create_user(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.User:
    check_role(who, ADMIN)
    clean = _clean(data, _USER_FIELDS, ("username", "password", "role"))
    user = _new(m.User)
    await _check_user(session, clean, _columns(user), None)
    clean["password_hash"] = clean.pop("password")
    _apply(user, clean)
    session.add(user)
    await _flush(session)
    _audit(session, who, "user.create", "user", user.id, data)
    _changed(session, "user", user.id, "created")
    return user


async def check_update_user(
    session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]
) -> m.User:
    check_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    clean = _clean(data, _USER_UPDATE_FIELDS)
    if user.id == who.id:
        if clean.get("is_active") is False:
            raise InvalidInput("you cannot deactivate yourself", field="is_active")
        if "role" in clean and clean["role"] != user.role:
            raise InvalidInput("you cannot change your own role", field="role")
    await _check_user(session, clean, _columns(user), user.id)
    # Whether the user serves their queues hangs on being an active operator.
    serving = "is_active" in clean or "role" in clean
    before = await _queue_members(session, await _queues_of(session, user.id)) if serving else {}
    if "password" in clean:
        clean["password_hash"] = clean.pop("password")
        if user.id != who.id:
            # A reset password must lock out whoever knew the old one.
            await session.execute(delete(m.UserSession).where(m.UserSession.user_id == user.id))
    _apply(user, clean)
    await _flush(session)
    _audit(session, who, "user.update", "user", user.id, data)
    _changed(session, "user", user.id, "updated", user_id=user.id)
    await _emit_members_changed(session, before)
    return user


async def check_deactivate_user(session: AsyncSession, who: Principal, user_id: int) -> m.User:
    """Users are never deleted: their name stays on conversations, history and the audit log."""
    check_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    if user.id == who.id:
        raise InvalidInput("you cannot deactivate yourself", field="user_id")
    before = await _queue_members(session, await _queues_of(session, user.id))
    user.is_active = False
    await session.execute(delete(m.UserSession).where(m.UserSession.user_id == user.id))
    await _flush(session)
    _audit(session, who, "user.deactivate", "user", user.id, {"username": user.username})
    _changed(session, "user", user.id, "updated")
    await _emit_members_changed(session, before)
    return user


_USER_SKILL: dict[str, Checker] = {
    "skill_id": _ID,
    "level": _integer(MIN_SKILL_LEVEL, MAX_SKILL_LEVEL),
}


async def check_set_user_skills(
    session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]
) -> m.User:
    user = await _user_in_scope(session, who, user_id)
    clean = _clean(
        data, {"skills": lambda f, v: _items(f, v, _USER_SKILL, ("skill_id", "level"))}, ("skills",)
    )
    items: list[dict[str, Any]] = clean["skills"]
    _no_repeats("skills", items, "skill_id")
    for i, item in enumerate(items):
        await _referenced(session, m.Skill, item["skill_id"], f"skills[{i}].skill_id", "skill")
    await session.execute(delete(m.UserSkill).where(m.UserSkill.user_id == user.id))
    session.add_all(m.UserSkill(user_id=user.id, skill_id=i["skill_id"], level=i["level"]) for i in items)
    await _flush(session)
    _audit(session, who, "user.skills", "user", user.id, data)
    _changed(session, "user", user.id, "updated")
    return user


async def check_set_supervisor_scope(
    session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]
) -> m.User:
    check_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    if user.role != SUPERVISOR:
        raise InvalidInput(
            "user '{username}' has the role {role}: only supervisors have a scope",
            username=user.username,
            role=user.role,
            field="user_id",
        )
    clean = _clean(data, {"group_ids": _id_list, "queue_ids": _id_list})
    group_ids: list[int] = clean.get("group_ids", [])
    queue_ids: list[int] = clean.get("queue_ids", [])
    for i, gid in enumerate(group_ids):
        await _referenced(session, m.Group, gid, f"group_ids[{i}]", "group")
    for i, qid in enumerate(queue_ids):
        await _referenced(session, m.Queue, qid, f"queue_ids[{i}]", "queue")
    await session.execute(delete(m.SupervisorScope).where(m.SupervisorScope.supervisor_id == user.id))
    session.add_all(m.SupervisorScope(supervisor_id=user.id, group_id=g) for g in group_ids)
    session.add_all(m.SupervisorScope(supervisor_id=user.id, queue_id=q) for q in queue_ids)
    await _flush(session)
    _audit(session, who, "user.scope", "user", user.id, data)
    _changed(session, "user", user.id, "updated")
    return user


async def check_set_user_groups(
    session: AsyncSession, who: Principal, user_id: int, data: Mapping[str, Any]
) -> m.User:
    check_role(who, ADMIN)
    user = await _get(session, m.User, user_id, "user")
    group_ids: list[int] = _clean(data, {"group_ids": _id_list}, ("group_ids",))["group_ids"]
    for i, gid in enumerate(group_ids):
        await _referenced(session, m.Group, gid, f"group_ids[{i}]", "group")
    await session.execute(delete(m.GroupMember).where(m.GroupMember.user_id == user.id))
    session.add_all(m.GroupMember(group_id=g, user_id=user.id) for g in group_ids)
    await _flush(session)
    _audit(session, who, "user.groups", "user", user.id, data)
    _changed(session, "user", user.id, "updated")
    return user
