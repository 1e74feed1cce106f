"""Saved views: the filters of a conversation list a user keeps under a name.

A view is private to its owner, or shared with one of the owner's groups (``group_id``): its
members see it in their console and may open it, only the owner (or an admin) changes or
deletes it. A view stores filters, never rows: opening it runs the filters inside the
*viewer's* scope (``conversation_scope_filter``), so a view shared with someone who sees
fewer queues shows them fewer conversations, never more.

Filters (all optional, each a list; an empty or missing list doesn't filter):
``status``, ``queue_id``, ``channel``, ``label_id``, ``operator_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.admin.checks import _boolean, _clean, _flush, _optional, _text
from omni.domain.auth import Principal, conversation_scope_filter, visible_queue_ids
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied

__all__ = [
    "FILTER_KEYS",
    "TARGETS",
    "check_create_view",
    "check_delete_view",
    "check_update_view",
    "get_view",
    "list_views",
    "view_conditions",
    "view_dict",
]

TARGETS = ("conversations", "history")
MAX_VALUES = 100
MAX_VIEWS_PER_USER = 100
_INT_MAX = 2**31 - 1


def _id_list(field: str, value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_VALUES:
        raise InvalidInput("{field} must be a list of at most {max_len} ids", max_len=MAX_VALUES, field=field)
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= _INT_MAX:
            raise InvalidInput(
                "{field} must be a list of at most {max_len} ids", max_len=MAX_VALUES, field=field
            )
    return sorted(set(value))


def _choice_list(choices: tuple[str, ...] | None) -> Any:
    def check(field: str, value: Any) -> list[str]:
        if not isinstance(value, list) or len(value) > MAX_VALUES:
            raise InvalidInput("{field} must be a list of names", field=field)
        for item in value:
            if not isinstance(item, str) or not item or len(item) > 32:
                raise InvalidInput("{field} must be a list of names", field=field)
            if choices is not None and item not in choices:
                raise InvalidInput("unknown {field} '{value}'", value=item, field=field)
        return sorted(set(value))

    return check


FILTER_KEYS: dict[str, Any] = {
    "status": _choice_list(tuple(s.value for s in m.ConversationStatus)),
    "queue_id": _id_list,
    "channel": _choice_list(None),
    "label_id": _id_list,
    "operator_id": _id_list,
}


def _target(field: str, value: Any) -> str:
    if value not in TARGETS:
        raise InvalidInput("{field} must be one of {choices}", choices=", ".join(TARGETS), field=field)
    return str(value)


def _group(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INT_MAX:
        raise InvalidInput("{field} must be a whole number", field=field)
    return value


def _filters(field: str, value: Any) -> dict[str, Any]:
    return _clean(value, FILTER_KEYS, prefix="filters.")


_FIELDS = {
    "name": _text(64),
    "target": _target,
    "filters": _filters,
    "group_id": _optional(_group),
    "pinned": _boolean,
}


def view_dict(view: m.SavedView) -> dict[str, Any]:
    return {
        "id": view.id,
        "owner_id": view.owner_id,
        "group_id": view.group_id,
        "name": view.name,
        "target": view.target,
        "filters": dict(view.filters or {}),
        "pinned": view.pinned,
    }


async def _groups_of(session: AsyncSession, user_id: int) -> set[int]:
    return set(await session.scalars(select(m.GroupMember.group_id).where(m.GroupMember.user_id == user_id)))


def _no_auditors(who: Principal) -> None:
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")


async def list_views(
    session: AsyncSession, who: Principal, *, target: str | None = None
) -> list[m.SavedView]:
    """The caller's own views and those shared with a group they belong to."""
    _no_auditors(who)
    groups = await _groups_of(session, who.id)
    cond: list[ColumnElement[bool]] = [m.SavedView.owner_id == who.id]
    if groups:
        cond.append(m.SavedView.group_id.in_(groups))
    stmt = select(m.SavedView).where(or_(*cond))
    if target is not None:
        stmt = stmt.where(m.SavedView.target == target)
    return list(
        await session.scalars(stmt.order_by(m.SavedView.pinned.desc(), m.SavedView.name, m.SavedView.id))
    )


async def get_view(session: AsyncSession, who: Principal, view_id: int) -> m.SavedView:
    """A view the caller may open (own or shared with their group); others are not found."""
    _no_auditors(who)
    view = await session.get(m.SavedView, view_id)
    if view is not None and (
        view.owner_id == who.id
        or (view.group_id is not None and view.group_id in await _groups_of(session, who.id))
    ):
        return view
    raise NotFound("saved view {view_id} not found", view_id=view_id)


async def _owned(session: AsyncSession, who: Principal, view_id: int) -> m.SavedView:
    view = (
        await get_view(session, who, view_id)
        if who.role != m.Role.ADMIN
        else await session.get(m.SavedView, view_id)
    )
    if view is None:
        raise NotFound("saved view {view_id} not found", view_id=view_id)
    if view.owner_id != who.id and who.role != m.Role.ADMIN:
        raise PermissionDenied("only the owner of a saved view can change it")
    return view


async def _check_group(session: AsyncSession, who: Principal, owner_id: int, group_id: int | None) -> None:
    if group_id is None:
        return
    if await session.get(m.Group, group_id) is None:
        raise InvalidInput("group {group_id} does not exist", group_id=group_id, field="group_id")
    if who.role != m.Role.ADMIN and group_id not in await _groups_of(session, owner_id):
        raise InvalidInput("you can share a view only with a group you belong to", field="group_id")


async def check_create_view(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.SavedView:
    _no_auditors(who)
    clean = _clean(data, _FIELDS, ("name",))
    await _check_group(session, who, who.id, clean.get("group_id"))
    count = len(list(await session.scalars(select(m.SavedView.id).where(m.SavedView.owner_id == who.id))))
    if count >= MAX_VIEWS_PER_USER:
        raise InvalidInput(
            "you can keep at most {max_len} saved views", max_len=MAX_VIEWS_PER_USER, field="name"
        )
    view = m.SavedView(owner_id=who.id, **clean)
    session.add(view)
    await _flush(session)
    audit.record(session, who, "view.create", object_type="saved_view", object_id=view.id, data=dict(data))
    return view


async def check_update_view(
    session: AsyncSession, who: Principal, view_id: int, data: Mapping[str, Any]
) -> m.SavedView:
    _no_auditors(who)
    view = await _owned(session, who, view_id)
    clean = _clean(data, _FIELDS)
    if "group_id" in clean:
        await _check_group(session, who, view.owner_id, clean["group_id"])
    for key, value in clean.items():
        setattr(view, key, value)
    await _flush(session)
    audit.record(session, who, "view.update", object_type="saved_view", object_id=view.id, data=dict(data))
    return view


async def check_delete_view(session: AsyncSession, who: Principal, view_id: int) -> None:
    _no_auditors(who)
    view = await _owned(session, who, view_id)
    await session.delete(view)
    await _flush(session)
    audit.record(
        session, who, "view.delete", object_type="saved_view", object_id=view_id, data={"name": view.name}
    )


def view_conditions(filters: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions on ``m.Conversation`` for a view's (checked) filters."""
    c = m.Conversation
    out: list[ColumnElement[bool]] = []
    if filters.get("status"):
        out.append(c.status.in_(filters["status"]))
    if filters.get("queue_id"):
        out.append(c.queue_id.in_(filters["queue_id"]))
    if filters.get("channel"):
        out.append(c.channel.in_(filters["channel"]))
    if filters.get("operator_id"):
        out.append(c.assigned_user_id.in_(filters["operator_id"]))
    if filters.get("label_id"):
        labelled = select(m.ConversationLabel.conversation_id).where(
            m.ConversationLabel.label_id.in_(filters["label_id"])
        )
        out.append(c.id.in_(labelled))
    return out


async def view_conversations(
    session: AsyncSession, who: Principal, view_id: int, *, limit: int = 100
) -> list[m.Conversation]:
    """Open the view: its filters inside the viewer's scope, newest first."""
    view = await get_view(session, who, view_id)
    queues = await visible_queue_ids(session, who)
    stmt = (
        select(m.Conversation)
        .where(*conversation_scope_filter(queues, who), *view_conditions(view.filters or {}))
        .order_by(m.Conversation.id.desc())
        .limit(min(max(limit, 1), 1000))
    )
    return list(await session.scalars(stmt))
