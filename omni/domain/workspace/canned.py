"""Canned replies: the operator's (render, personal ones) and the shared ones admins and
supervisors manage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import masking
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    _OPTIONAL_ID,
    ADMIN,
    SUPERVISOR,
    Checker,
    _apply,
    _audit,
    _clean,
    _flush,
    _iso,
    _managed_queue,
    _new,
    _readable_scope,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    access_conversation,
    check_role,
    visible_queue_ids,
)
from omni.domain.conversations import MAX_BODY
from omni.domain.errors import Conflict, InvalidInput, NotFound

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")
_SHORTCUT = re.compile(r"[\w-]{1,32}")


# --- canned replies ---------------------------------------------------------------------


def render_placeholders(text: str, values: Mapping[str, str]) -> str:
    """``{{contact.name}}`` and friends replaced; an unknown placeholder stays as typed."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


async def placeholder_values(session: AsyncSession, who: Principal, conv: m.Conversation) -> dict[str, str]:
    contact = await session.get(m.Contact, conv.contact_id)
    operator = await session.get(m.User, who.id)
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    masker = await masking.masker_for(session, who)  # the reply text is shown to the operator
    return {
        "contact.name": (contact.name if contact else "") or "",
        "contact.email": (masker.email(contact.email) if contact else "") or "",
        "contact.phone": (masker.phone(contact.phone) if contact else "") or "",
        "operator.name": (operator.display_name or operator.username) if operator else who.username,
        "queue.name": queue.name if queue else "",
    }


def _canned_dict(row: m.CannedReply, values: Mapping[str, str] | None) -> dict[str, Any]:
    scope = (
        "personal" if row.owner_user_id is not None else ("queue" if row.queue_id is not None else "global")
    )
    return {
        "id": row.id,
        "shortcut": row.shortcut,
        "title": row.title,
        "body": row.body,
        "text": render_placeholders(row.body, values) if values is not None else row.body,
        "scope": scope,
        "queue_id": row.queue_id,
    }


async def canned_replies(
    session: AsyncSession, who: Principal, conv_id: int | None = None
) -> list[dict[str, Any]]:
    """Shared replies, the queue's (the conversation's, or every visible queue's without one)
    and the caller's own; ``text`` is the body rendered for the conversation."""
    shared = m.CannedReply.owner_user_id.is_(None)
    values: dict[str, str] | None = None
    if conv_id is not None:
        conv = await access_conversation(session, who, conv_id)
        values = await placeholder_values(session, who, conv)
        queue_cond = m.CannedReply.queue_id == conv.queue_id if conv.queue_id is not None else None
    else:
        queues = await visible_queue_ids(session, who)
        queue_cond = (
            m.CannedReply.queue_id.is_not(None) if queues is None else m.CannedReply.queue_id.in_(queues)
        )
    conds = [and_(shared, m.CannedReply.queue_id.is_(None)), m.CannedReply.owner_user_id == who.id]
    if queue_cond is not None:
        conds.append(and_(shared, queue_cond))
    rows = await session.scalars(
        select(m.CannedReply).where(or_(*conds)).order_by(m.CannedReply.shortcut, m.CannedReply.id)
    )
    return [_canned_dict(row, values) for row in rows]


async def check_save_personal_canned(
    session: AsyncSession,
    who: Principal,
    *,
    shortcut: str,
    title: str,
    body: str,
    reply_id: int | None = None,
) -> dict[str, Any]:
    """Create (or edit one of) the caller's own canned replies."""
    shortcut = shortcut.strip().lstrip("/")
    if not _SHORTCUT.fullmatch(shortcut):
        raise InvalidInput("the shortcut is 1-32 letters, digits, '_' or '-'", field="shortcut")
    title = title.strip()[:128] or shortcut
    if not body.strip():
        raise InvalidInput("the reply is empty", field="body")
    if len(body) > MAX_BODY:
        raise InvalidInput("the reply is longer than {max_body} characters", max_body=MAX_BODY, field="body")
    if reply_id is None:
        row = m.CannedReply(owner_user_id=who.id, queue_id=None, shortcut=shortcut, title=title, body=body)
        session.add(row)
    else:
        found = await session.get(m.CannedReply, reply_id)
        if found is None or found.owner_user_id != who.id:
            raise NotFound("canned reply {reply_id} not found", reply_id=reply_id)
        row = found
        row.shortcut, row.title, row.body = shortcut, title, body
    await session.flush()
    return _canned_dict(row, None)


async def check_delete_personal_canned(session: AsyncSession, who: Principal, reply_id: int) -> None:
    """Only one's own replies; shared ones are managed by supervisors in administration."""
    row = await session.get(m.CannedReply, reply_id)
    if row is None or row.owner_user_id != who.id:
        raise NotFound("canned reply {reply_id} not found", reply_id=reply_id)
    await session.delete(row)
    await session.flush()


# --- canned replies -----------------------------------------------------------------------
# Global (no queue) and per-queue replies; personal ones (``owner_user_id``) are the
# operators' own and are managed elsewhere, so these functions never touch them.

PLACEHOLDERS = ("contact.name", "contact.email", "contact.phone", "operator.name", "queue.name")
"""What a canned reply may say in ``{{...}}``; the composer fills these in."""
MAX_CANNED_BODY = 4000
_SHARED_SHORTCUT = re.compile(r"[a-z0-9_-]{1,32}")
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _shortcut(field: str, value: Any) -> str:
    text: str = _text(32)(field, value)
    if not _SHARED_SHORTCUT.fullmatch(text):
        raise InvalidInput(
            "{field} may hold lowercase latin letters, digits, '_' and '-' only (got '{text}')",
            text=text,
            field=field,
        )
    return text


def _canned_body(field: str, value: Any) -> str:
    text: str = _text(MAX_CANNED_BODY, strip=False)(field, value)
    if not text.strip():
        raise InvalidInput("{field} must not be empty", field=field)
    for found in _ANY_PLACEHOLDER.finditer(text):
        name = found.group(1).strip()
        if name not in PLACEHOLDERS:
            raise InvalidInput(
                "unknown placeholder {{{{{name}}}}}; use one of: {names}",
                name=name,
                names=", ".join(f"{{{{{p}}}}}" for p in PLACEHOLDERS),
                field=field,
            )
    return text


_CANNED_FIELDS: dict[str, Checker] = {
    "queue_id": _OPTIONAL_ID,
    "shortcut": _shortcut,
    "title": _text(128),
    "body": _canned_body,
}


def canned_reply_dict(c: m.CannedReply) -> dict[str, Any]:
    return {
        "id": c.id,
        "queue_id": c.queue_id,
        "shortcut": c.shortcut,
        "title": c.title,
        "body": c.body,
        "created_at": _iso(c.created_at),
    }


async def list_canned_replies(
    session: AsyncSession, who: Principal, *, queue_id: int | None = None, limit: int
) -> list[m.CannedReply]:
    """Shared replies (global and per queue); supervisors see the global ones and their queues'."""
    visible = await _readable_scope(session, who)
    stmt = (
        select(m.CannedReply)
        .where(m.CannedReply.owner_user_id.is_(None))
        .order_by(m.CannedReply.queue_id.nulls_first(), m.CannedReply.shortcut)
        .limit(clamp_limit(limit))
    )
    if visible is not None:
        stmt = stmt.where(or_(m.CannedReply.queue_id.is_(None), m.CannedReply.queue_id.in_(visible)))
    if queue_id is not None:
        stmt = stmt.where(m.CannedReply.queue_id == queue_id)
    return list(await session.scalars(stmt))


async def access_canned_reply(session: AsyncSession, who: Principal, reply_id: int) -> m.CannedReply:
    visible = await _readable_scope(session, who)
    reply = await session.get(m.CannedReply, reply_id)
    if (
        reply is None
        or reply.owner_user_id is not None
        or (visible is not None and reply.queue_id is not None and reply.queue_id not in visible)
    ):
        raise NotFound("canned reply {reply_id} not found", reply_id=reply_id)
    return reply


async def _check_canned(
    session: AsyncSession, who: Principal, clean: Mapping[str, Any], reply: m.CannedReply, own_id: int | None
) -> None:
    queue_id = clean.get("queue_id", reply.queue_id)
    if "queue_id" in clean:
        await _managed_queue(session, who, queue_id, "queue_id")
    shortcut = clean.get("shortcut", reply.shortcut)
    if "shortcut" in clean or "queue_id" in clean:
        stmt = select(m.CannedReply.id).where(
            m.CannedReply.owner_user_id.is_(None),
            m.CannedReply.shortcut == shortcut,
            m.CannedReply.queue_id.is_(None) if queue_id is None else m.CannedReply.queue_id == queue_id,
        )
        if own_id is not None:
            stmt = stmt.where(m.CannedReply.id != own_id)
        if await session.scalar(stmt.limit(1)) is not None:
            where = "global replies" if queue_id is None else f"queue {queue_id}"
            raise Conflict(
                "the shortcut '{shortcut}' is already used in {where}",
                shortcut=shortcut,
                where=where,
                field="shortcut",
            )


async def _managed_reply(session: AsyncSession, who: Principal, reply_id: int) -> m.CannedReply:
    check_role(who, ADMIN, SUPERVISOR)
    reply = await access_canned_reply(session, who, reply_id)
    await _managed_queue(session, who, reply.queue_id, "queue_id")
    return reply


async def check_create_canned_reply(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.CannedReply:
    check_role(who, ADMIN, SUPERVISOR)
    clean = _clean(data, _CANNED_FIELDS, ("shortcut", "title", "body"))
    clean.setdefault("queue_id", None)
    reply = _new(m.CannedReply)
    await _check_canned(session, who, clean, reply, None)
    _apply(reply, clean)
    session.add(reply)
    await _flush(session)
    _audit(session, who, "canned_reply.create", "canned_reply", reply.id, data)
    _changed(session, "canned", reply.id, "created")
    return reply


async def check_update_canned_reply(
    session: AsyncSession, who: Principal, reply_id: int, data: Mapping[str, Any]
) -> m.CannedReply:
    reply = await _managed_reply(session, who, reply_id)
    clean = _clean(data, _CANNED_FIELDS)
    await _check_canned(session, who, clean, reply, reply.id)
    _apply(reply, clean)
    await _flush(session)
    _audit(session, who, "canned_reply.update", "canned_reply", reply.id, data)
    _changed(session, "canned", reply.id, "updated")
    return reply


async def check_delete_canned_reply(session: AsyncSession, who: Principal, reply_id: int) -> None:
    reply = await _managed_reply(session, who, reply_id)
    await session.delete(reply)
    await _flush(session)
    _audit(session, who, "canned_reply.delete", "canned_reply", reply_id, {"shortcut": reply.shortcut})
    _changed(session, "canned", reply_id, "deleted")
