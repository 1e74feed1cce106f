"""Labels on conversations: coloured tags, global or of one queue.

Who does what:

* **Admins** manage every label; **supervisors** manage the labels of the queues in their
  scope (a global label is an admin's: it shows in every queue, beyond a supervisor's scope).
* Whoever may act on a conversation applies or removes labels on it: its operator (the one
  handling it), or a supervisor/admin whose scope holds it (``access_conversation``). A label
  fits a conversation when it is global or of the conversation's queue.

``conversation_labels`` is the truth (filters join it); ``Conversation.label_ids`` is its copy
written here in the same transaction, so every conversation event, webhooks included, carries
the labels without a join. Nothing else writes either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import _clean, _colour, _flush, _optional, _text
from omni.domain.auth import Principal, access_conversation, visible_queue_ids
from omni.domain.conversations._common import _event
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied

__all__ = [
    "MAX_LABELS_PER_CONVERSATION",
    "check_create_label",
    "check_delete_label",
    "check_set_labels",
    "check_update_label",
    "do_set_labels",
    "get_label",
    "label_dict",
    "labels_by_id",
    "list_labels",
]

MAX_LABELS_PER_CONVERSATION = 20
MAX_IDS = 100


def _queue_id(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise InvalidInput("{field} must be a whole number", field=field)
    return value


_FIELDS = {"name": _text(64), "color": _colour, "queue_id": _optional(_queue_id)}


def label_dict(label: m.Label) -> dict[str, Any]:
    return {"id": label.id, "name": label.name, "color": label.color, "queue_id": label.queue_id}


async def list_labels(session: AsyncSession, who: Principal, *, queue_id: int | None = None) -> list[m.Label]:
    """The labels the caller sees: global ones and those of the queues in their scope
    (``queue_id``: those that fit a conversation of that queue)."""
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    stmt = select(m.Label).order_by(m.Label.name, m.Label.id)
    queues = await visible_queue_ids(session, who)
    if queues is not None:
        stmt = stmt.where(or_(m.Label.queue_id.is_(None), m.Label.queue_id.in_(queues)))
    if queue_id is not None:
        stmt = stmt.where(or_(m.Label.queue_id.is_(None), m.Label.queue_id == queue_id))
    return list(await session.scalars(stmt))


async def _may_manage(session: AsyncSession, who: Principal, queue_id: int | None) -> None:
    if who.role == m.Role.ADMIN:
        return
    if who.role != m.Role.SUPERVISOR:
        raise PermissionDenied("only admins and supervisors manage labels")
    if queue_id is None:
        raise PermissionDenied("only admins manage global labels")
    if queue_id not in (await visible_queue_ids(session, who) or set()):
        raise PermissionDenied("queue {queue_id} is outside your scope", queue_id=queue_id)


async def _check_unique(session: AsyncSession, name: str, queue_id: int | None, own_id: int | None) -> None:
    same = select(m.Label.id).where(
        m.Label.name == name, m.Label.queue_id.is_(None) if queue_id is None else m.Label.queue_id == queue_id
    )
    if own_id is not None:
        same = same.where(m.Label.id != own_id)
    if await session.scalar(same.limit(1)) is not None:
        raise InvalidInput("a label '{value}' already exists", value=name, field="name")


async def get_label(session: AsyncSession, who: Principal, label_id: int) -> m.Label:
    """A label the caller sees (global, or of a queue in scope); others are not found."""
    label = await session.get(m.Label, label_id)
    visible = await visible_queue_ids(session, who)
    if label is None or (
        visible is not None and label.queue_id is not None and label.queue_id not in visible
    ):
        raise NotFound("label {label_id} not found", label_id=label_id)
    return label


async def check_create_label(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Label:
    clean = _clean(data, _FIELDS, ("name",))
    queue_id = clean.get("queue_id")
    await _may_manage(session, who, queue_id)
    if queue_id is not None and await session.get(m.Queue, queue_id) is None:
        raise InvalidInput("queue {queue_id} does not exist", queue_id=queue_id, field="queue_id")
    await _check_unique(session, clean["name"], queue_id, None)
    label = m.Label(**clean)
    session.add(label)
    await _flush(session)
    audit.record(session, who, "label.create", object_type="label", object_id=label.id, data=dict(data))
    _changed(session, "label", label.id, "created")
    return label


async def check_update_label(
    session: AsyncSession, who: Principal, label_id: int, data: Mapping[str, Any]
) -> m.Label:
    """Name and colour change; the queue does not (labelled conversations would stop fitting)."""
    label = await get_label(session, who, label_id)
    await _may_manage(session, who, label.queue_id)
    clean = _clean(data, {k: v for k, v in _FIELDS.items() if k != "queue_id"})
    if "name" in clean:
        await _check_unique(session, clean["name"], label.queue_id, label.id)
    for key, value in clean.items():
        setattr(label, key, value)
    await _flush(session)
    audit.record(session, who, "label.update", object_type="label", object_id=label.id, data=dict(data))
    _changed(session, "label", label.id, "updated")
    return label


async def check_delete_label(session: AsyncSession, who: Principal, label_id: int) -> None:
    """The label comes off every conversation (their copies too), then goes."""
    label = await get_label(session, who, label_id)
    await _may_manage(session, who, label.queue_id)
    conv_ids = list(
        await session.scalars(
            select(m.ConversationLabel.conversation_id).where(m.ConversationLabel.label_id == label.id)
        )
    )
    for conv in await session.scalars(select(m.Conversation).where(m.Conversation.id.in_(conv_ids))):
        conv.label_ids = [i for i in conv.label_ids or [] if i != label.id]
    await session.execute(delete(m.ConversationLabel).where(m.ConversationLabel.label_id == label.id))
    await session.delete(label)
    await _flush(session)
    audit.record(
        session,
        who,
        "label.delete",
        object_type="label",
        object_id=label_id,
        data={"name": label.name, "conversations": len(conv_ids)},
    )
    _changed(session, "label", label_id, "deleted")


def _ids(field: str, values: Iterable[Any]) -> list[int]:
    out: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
            raise InvalidInput("{field} must be a list of ids", field=field)
        out.append(value)
    if len(out) > MAX_IDS:
        raise InvalidInput("{field} must have at most {max_len} items", max_len=MAX_IDS, field=field)
    return out


async def labels_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, m.Label]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {label.id: label for label in await session.scalars(select(m.Label).where(m.Label.id.in_(wanted)))}


async def do_set_labels(
    session: AsyncSession,
    conv: m.Conversation,
    *,
    add: Iterable[int] = (),
    remove: Iterable[int] = (),
    user_id: int | None = None,
) -> bool:
    """Apply ``add`` and take off ``remove`` (both checked by the caller); True if anything
    changed, then ``conversation.labels_changed`` is emitted with the labels as they are."""
    current = list(
        await session.scalars(
            select(m.ConversationLabel.label_id).where(m.ConversationLabel.conversation_id == conv.id)
        )
    )
    to_add = [i for i in dict.fromkeys(add) if i not in current]
    to_remove = [i for i in dict.fromkeys(remove) if i in current and i not in to_add]
    if not to_add and not to_remove:
        return False
    if len(current) + len(to_add) - len(to_remove) > MAX_LABELS_PER_CONVERSATION:
        raise InvalidInput(
            "a conversation can have at most {max_len} labels",
            max_len=MAX_LABELS_PER_CONVERSATION,
            field="add",
        )
    if to_remove:
        await session.execute(
            delete(m.ConversationLabel).where(
                m.ConversationLabel.conversation_id == conv.id, m.ConversationLabel.label_id.in_(to_remove)
            )
        )
    session.add_all(m.ConversationLabel(conversation_id=conv.id, label_id=i, user_id=user_id) for i in to_add)
    after = sorted((set(current) | set(to_add)) - set(to_remove))
    conv.label_ids = after
    await session.flush()
    found = await labels_by_id(session, after)
    _event(
        session,
        "conversation.labels_changed",
        conv,
        added=to_add,
        removed=to_remove,
        labels=[label_dict(found[i]) for i in after if i in found],
        by_user_id=user_id,
    )
    return True


async def check_set_labels(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    *,
    add: Iterable[Any] = (),
    remove: Iterable[Any] = (),
) -> m.Conversation:
    """An operator (on a conversation they handle) or a supervisor/admin in scope labels it.

    Every label in ``add`` must fit the conversation (global, or of its queue); removing one
    that is not there is not an error (two people may click at once)."""
    add_ids, remove_ids = _ids("add", add), _ids("remove", remove)
    conv = await access_conversation(session, who, conv_id, for_update=True)
    if who.role == m.Role.OPERATOR and conv.assigned_user_id != who.id:
        raise PermissionDenied("only the operator handling the conversation can do this")
    found = await labels_by_id(session, add_ids)
    for label_id in add_ids:
        label = found.get(label_id)
        if label is None:
            raise InvalidInput("label {label_id} does not exist", label_id=label_id, field="add")
        if label.queue_id is not None and label.queue_id != conv.queue_id:
            raise InvalidInput("label '{name}' belongs to another queue", name=label.name, field="add")
    if await do_set_labels(session, conv, add=add_ids, remove=remove_ids, user_id=who.id):
        audit.record(
            session,
            who,
            "conversation.labels",
            object_type="conversation",
            object_id=conv.id,
            data={"add": add_ids, "remove": remove_ids},
        )
    return conv
