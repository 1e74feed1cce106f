"""The operator single window: what the operator reads and does beside the lifecycle actions.

One conversation's view (messages, customer card, the queue's script and result codes,
transfer targets), the contact's history across channels, canned replies with placeholders,
card edits, the blacklist, taking a waiting conversation by hand, and the panels of the window
(waiting line, missed/abandoned list). Every read goes through ``access_conversation`` or the
caller's visible queues, so an operator of another group gets "not found" whatever they ask.

History rule: the contact's other conversations are shown when the caller could open them on
their own (their queues, or ones they handled); the rest are only counted (``hidden``), because
another group's conversation may hold what this group must not read. Private notes of shown
conversations are included: they are staff-only, and the caller is staff of that queue.

Functions run inside the caller's transaction; actions emit their events there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, deadlines
from omni.domain.auth import Principal, access_conversation, conversation_scope_filter, visible_queue_ids
from omni.domain.capacity import fits, loads_for
from omni.domain.contacts import normalise_phone, phone_region_and_timezone
from omni.domain.conversations import MAX_BODY, bot_gateway, do_accept_offer, do_end, list_callbacks
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.events import emit
from omni.domain.presence import get_presence, presence_dict, refresh_activity_of
from omni.domain.richtext import sanitize
from omni.domain.serialize import callback_dict, conversation_dict, message_dict
from omni.i18n import Label

S = m.ConversationStatus
HISTORY_CONVERSATIONS = 20
HISTORY_MESSAGES = 500
VIEW_MESSAGES = 1000
WAITING_LIMIT = 200
MAX_TEXT_FIELD = 2000
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")
_SHORTCUT = re.compile(r"[\w-]{1,32}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BUILTIN_FIELDS: dict[str, str] = {"name": "text", "email": "email", "phone": "phone"}
"""Contact columns the card edits besides the configurable fields (key → kind)."""


# --- the window's panels ----------------------------------------------------------------


async def _contact_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(m.Contact.id, m.Contact.name).where(m.Contact.id.in_(ids)))
    return {cid: name or "" for cid, name in rows.all()}


async def _queues(session: AsyncSession, ids: set[int]) -> dict[int, m.Queue]:
    if not ids:
        return {}
    return {q.id: q for q in await session.scalars(select(m.Queue).where(m.Queue.id.in_(ids)))}


def _queue_brief(q: m.Queue) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "manual_pick": q.manual_pick, "wrap_up_seconds": q.wrap_up_seconds}


async def waiting_panel(
    session: AsyncSession, who: Principal, *, limit: int = WAITING_LIMIT
) -> list[dict[str, Any]]:
    """Conversations waiting in the caller's queues (or transferred to them by name), each
    with its place in its own queue's line, the contact's name, whether it may be taken
    by hand (``manual_pick``) and whether it fits the caller's free capacity now (``fits``)."""
    queues = await visible_queue_ids(session, who)
    position = (
        func.row_number()
        .over(
            partition_by=m.Conversation.queue_id,
            order_by=(m.Conversation.priority.desc(), m.Conversation.first_enqueued_at, m.Conversation.id),
        )
        .label("position")
    )
    line = select(m.Conversation.id.label("id"), position).where(m.Conversation.status == S.QUEUED).subquery()
    stmt = (
        select(m.Conversation, line.c.position)
        .join(line, line.c.id == m.Conversation.id)
        .order_by(m.Conversation.priority.desc(), m.Conversation.first_enqueued_at, m.Conversation.id)
        .limit(limit)
    )
    if queues is not None:
        stmt = stmt.where(
            or_(m.Conversation.queue_id.in_(queues), m.Conversation.preferred_user_id == who.id)
        )
    rows = (await session.execute(stmt)).all()
    names = await _contact_names(session, {c.contact_id for c, _ in rows})
    qs = await _queues(session, {c.queue_id for c, _ in rows if c.queue_id is not None})
    user = await session.get(m.User, who.id) if rows else None
    load = (await loads_for(session, [who.id]))[who.id] if rows else None
    items = []
    for conv, pos in rows:
        q = qs.get(conv.queue_id) if conv.queue_id is not None else None
        items.append(
            conversation_dict(conv)
            | {
                "position": int(pos),
                "contact_name": names.get(conv.contact_id, ""),
                "queue_name": q.name if q else "",
                "manual_pick": bool(q and q.manual_pick) and conv.preferred_user_id in (None, who.id),
                # The same rule check_take applies, so Take is greyed out before it would be refused.
                "fits": user is not None
                and load is not None
                and fits(user, load, conv.medium, chats_block_calls=q.chats_block_calls if q else True),
            }
        )
    return items


async def callbacks_panel(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """The shared missed/abandoned list the caller may take from, then the ones they took."""
    rows = await list_callbacks(session, who)
    rows += list(
        await session.scalars(
            select(m.Callback)
            .where(m.Callback.state == "claimed", m.Callback.claimed_by_id == who.id)
            .order_by(m.Callback.claimed_at)
        )
    )
    names = await _contact_names(session, {cb.contact_id for cb in rows})
    conv_ids = {cb.conversation_id for cb in rows if cb.conversation_id is not None}
    channels: dict[int, str] = {}
    if conv_ids:
        channels = dict(
            (
                await session.execute(
                    select(m.Conversation.id, m.Conversation.channel).where(m.Conversation.id.in_(conv_ids))
                )
            ).all()
        )
    phones = dict(
        (
            await session.execute(
                select(m.Contact.id, m.Contact.phone).where(m.Contact.id.in_({cb.contact_id for cb in rows}))
            )
        ).all()
    )
    return [
        callback_dict(cb)
        | {
            "contact_name": names.get(cb.contact_id, ""),
            "contact_phone": phones.get(cb.contact_id),
            "channel": channels.get(cb.conversation_id) if cb.conversation_id is not None else None,
        }
        for cb in rows
    ]


async def snapshot(session: AsyncSession, who: Principal) -> dict[str, Any]:
    """Everything the single window shows after a (re)connect; ``last_seq`` is where the
    client resumes the event stream from."""
    p = await get_presence(session, who.id)
    status = await session.get(m.OperatorStatus, p.status_id)
    assert status is not None
    mine = list(
        await session.scalars(
            select(m.Conversation)
            .where(m.Conversation.assigned_user_id == who.id, m.Conversation.status.in_(m.OPEN_STATUSES))
            .order_by(m.Conversation.accepted_at, m.Conversation.id)
        )
    )
    offers = list(
        await session.scalars(
            select(m.Offer).where(m.Offer.user_id == who.id, m.Offer.state == "pending").order_by(m.Offer.id)
        )
    )
    offered: dict[int, m.Conversation] = {}
    if offers:
        offered = {
            c.id: c
            for c in await session.scalars(
                select(m.Conversation).where(m.Conversation.id.in_({o.conversation_id for o in offers}))
            )
        }
    convs = [*mine, *offered.values()]
    names = await _contact_names(session, {c.contact_id for c in convs})
    qs = await _queues(session, {c.queue_id for c in convs if c.queue_id is not None})
    last_seq = await session.scalar(select(m.Event.id).order_by(m.Event.id.desc()).limit(1))

    def brief(c: m.Conversation) -> dict[str, Any]:
        q = qs.get(c.queue_id) if c.queue_id is not None else None
        return conversation_dict(c) | {
            "contact_name": names.get(c.contact_id, ""),
            "queue_name": q.name if q else "",
            "wrap_up_seconds": q.wrap_up_seconds if q else 0,
        }

    return {
        "presence": presence_dict(p, status),
        "conversations": [brief(c) for c in mine],
        "offers": [
            {
                "id": o.id,
                "conversation_id": o.conversation_id,
                "expires_at": o.expires_at.isoformat(),
                "conversation": brief(offered[o.conversation_id]),
            }
            for o in offers
        ],
        "waiting": await waiting_panel(session, who),
        "callbacks": await callbacks_panel(session, who),
        "last_seq": last_seq or 0,
    }


# --- one conversation -------------------------------------------------------------------


def local_time(tz_name: str | None, now: datetime | None = None) -> tuple[str | None, int | None]:
    """The customer's wall-clock time (ISO, with offset) and UTC offset in seconds, if known."""
    if not tz_name:
        return None, None
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return None, None
    local = (now or datetime.now(UTC)).astimezone(zone)
    offset = local.utcoffset()
    return local.isoformat(timespec="seconds"), int(offset.total_seconds()) if offset is not None else 0


async def card_fields_for(session: AsyncSession, queue_id: int | None) -> list[m.CardField]:
    """The card's configurable fields for a queue: shared ones and the queue's own, in order."""
    cond: ColumnElement[bool] = m.CardField.queue_id.is_(None)
    if queue_id is not None:
        cond = or_(cond, m.CardField.queue_id == queue_id)
    rows = await session.scalars(
        select(m.CardField).where(cond).order_by(m.CardField.position, m.CardField.id)
    )
    return list(rows)


def card_dict(
    contact: m.Contact, fields: Sequence[m.CardField], now: datetime | None = None
) -> dict[str, Any]:
    values = contact.custom_fields or {}
    when, offset = local_time(contact.timezone, now)
    return {
        "contact": {
            "id": contact.id,
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "region": contact.region,
            "timezone": contact.timezone,
            "local_time": when,
            "utc_offset_seconds": offset,
            "blacklisted": contact.blacklisted,
            "tags": list(contact.tags or []),
        },
        "fields": [
            {
                "key": f.key,
                "label": f.label,
                "label_ru": f.label_ru,
                "kind": f.kind,
                "options": list(f.options or []),
                "required": f.required,
                "editable": f.editable,
                "value": values.get(f.key),
            }
            for f in fields
        ],
    }


async def _user_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(m.User.id, m.User.display_name, m.User.username).where(m.User.id.in_(ids))
    )
    return {uid: display or username for uid, display, username in rows.all()}


async def allowed_result_codes(session: AsyncSession, queue_id: int | None) -> list[m.ResultCode]:
    """The queue's allowed codes; a queue with none configured accepts every active code
    (the same rule ``check_close`` applies)."""
    stmt = select(m.ResultCode).where(m.ResultCode.active.is_(True)).order_by(m.ResultCode.name)
    if queue_id is not None:
        allowed = select(m.QueueResultCode.result_code_id).where(m.QueueResultCode.queue_id == queue_id)
        if await session.scalar(select(func.count()).select_from(allowed.subquery())):
            stmt = stmt.where(m.ResultCode.id.in_(allowed))
    return list(await session.scalars(stmt))


async def transfer_targets(session: AsyncSession, who: Principal, conv: m.Conversation) -> dict[str, Any]:
    """Queues (any: handing over to another group is what a transfer is for) and the active
    operators of the caller's and the conversation's queues."""
    queues = [
        {"id": qid, "name": name}
        for qid, name in (
            await session.execute(select(m.Queue.id, m.Queue.name).order_by(m.Queue.name))
        ).all()
    ]
    mine = await visible_queue_ids(session, who)
    stmt = (
        select(m.User.id, m.User.display_name, m.User.username)
        .where(
            m.User.role == m.Role.OPERATOR,
            m.User.is_active.is_(True),
            m.User.id != who.id,
        )
        .order_by(m.User.display_name, m.User.username)
    )
    if mine is not None:
        reach = mine | {q for q in (conv.queue_id, *conv.extra_queue_ids) if q is not None}
        stmt = stmt.where(
            m.User.id.in_(select(m.QueueMember.user_id).where(m.QueueMember.queue_id.in_(reach)))
        )
    operators = [
        {"id": uid, "name": display or username}
        for uid, display, username in (await session.execute(stmt)).all()
    ]
    return {"queues": queues, "operators": operators}


def call_state(call: m.Call, conv: m.Conversation) -> str:
    """``ringing`` (not answered yet; an outbound call: dialling) → ``talking`` / ``on_hold`` →
    ``ended``; the conversation's own lifecycle goes on to wrap-up independently."""
    if call.ended_at is not None:
        return "ended"
    if call.answered_at is None and conv.accepted_at is None:
        return "ringing"
    return "on_hold" if conv.status == S.ON_HOLD else "talking"


def call_dict(call: m.Call, conv: m.Conversation) -> dict[str, Any]:
    """The telephony facts of a voice conversation (``calls``) the console shows.

    ``recording``: a recording path is stored; the file itself is checked when it is played
    (``GET /api/v1/conversations/{id}/recording``, which refuses paths outside the directory)."""
    answered = call.answered_at or (conv.accepted_at if call.direction == "out" else None)
    return {
        "state": call_state(call, conv),
        "direction": call.direction,
        "number": call.caller_number,
        "answered_at": answered.isoformat() if answered else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "hold_started_at": conv.hold_started_at.isoformat() if conv.hold_started_at else None,
        "ring_seconds": round(call.ring_seconds, 1),
        "talk_seconds": round(call.talk_seconds, 1),
        "hold_seconds": conv.hold_seconds,
        "recording": bool(call.recording_path),
        "recording_url": f"/api/v1/conversations/{conv.id}/recording" if call.recording_path else None,
    }


async def call_facts(session: AsyncSession, conv: m.Conversation) -> dict[str, Any] | None:
    call = await session.scalar(select(m.Call).where(m.Call.conversation_id == conv.id))
    return call_dict(call, conv) if call is not None else None


async def conversation_view(session: AsyncSession, who: Principal, conv_id: int) -> dict[str, Any]:
    """One conversation as the centre and right columns show it."""
    conv = await access_conversation(session, who, conv_id)
    messages = list(
        await session.scalars(
            select(m.Message)
            .where(m.Message.conversation_id == conv.id)
            .order_by(m.Message.id.desc())
            .limit(VIEW_MESSAGES)
        )
    )
    messages.reverse()
    contact = await session.get(m.Contact, conv.contact_id)
    assert contact is not None
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    codes = await allowed_result_codes(session, conv.queue_id)
    authors = await _user_names(
        session,
        {msg.author_user_id for msg in messages if msg.author_user_id is not None}
        | ({conv.assigned_user_id} if conv.assigned_user_id is not None else set()),
    )
    return {
        "conversation": conversation_dict(conv)
        | {
            "contact_name": contact.name,
            "queue_name": queue.name if queue else "",
            "wrap_up_seconds": queue.wrap_up_seconds if queue else 0,
        },
        "messages": [message_dict(msg) for msg in messages],
        "authors": {str(uid): name for uid, name in authors.items()},
        "card": card_dict(contact, await card_fields_for(session, conv.queue_id)),
        "script": sanitize(queue.script) if queue and queue.script else "",
        "result_codes": [
            {"id": c.id, "code": c.code, "name": c.name, "name_ru": c.name_ru, "colour": c.colour}
            for c in codes
        ],
        "default_result_code_id": queue.default_result_code_id if queue else None,
        "queue": _queue_brief(queue) if queue else None,
        "transfer": await transfer_targets(session, who, conv),
        "bot_scenarios": await published_scenarios(session),
        "call": await call_facts(session, conv) if conv.medium == m.Medium.VOICE else None,
    }


async def contact_history(session: AsyncSession, who: Principal, conv_id: int) -> dict[str, Any]:
    """The contact's other conversations on every channel, newest first, with their messages
    (see the module docstring for which ones are shown)."""
    conv = await access_conversation(session, who, conv_id)
    queues = await visible_queue_ids(session, who)
    scope = conversation_scope_filter(queues, who)
    if queues is not None:
        scope = [or_(*scope, m.Conversation.preferred_user_id == who.id)]
    others = list(
        await session.scalars(
            select(m.Conversation)
            .where(m.Conversation.contact_id == conv.contact_id, m.Conversation.id != conv.id, *scope)
            .order_by(m.Conversation.created_at.desc(), m.Conversation.id.desc())
            .limit(HISTORY_CONVERSATIONS)
        )
    )
    total = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.contact_id == conv.contact_id, m.Conversation.id != conv.id)
    )
    visible_total = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.contact_id == conv.contact_id, m.Conversation.id != conv.id, *scope)
    )
    by_conv: dict[int, list[dict[str, Any]]] = {c.id: [] for c in others}
    if others:
        for msg in await session.scalars(
            select(m.Message)
            .where(m.Message.conversation_id.in_(by_conv))
            .order_by(m.Message.id.desc())
            .limit(HISTORY_MESSAGES)
        ):
            by_conv[msg.conversation_id].append(message_dict(msg))
    qs = await _queues(session, {c.queue_id for c in others if c.queue_id is not None})
    codes = {
        code.id: code.name_in(who.language)  # the result in the reader's language
        for code in await session.scalars(
            select(m.ResultCode).where(
                m.ResultCode.id.in_({c.result_code_id for c in others if c.result_code_id is not None})
            )
        )
    }
    return {
        "contact_id": conv.contact_id,
        "conversations": [
            conversation_dict(c)
            | {
                "queue_name": qs[c.queue_id].name if c.queue_id in qs else "",
                "result_code_name": codes.get(c.result_code_id) if c.result_code_id is not None else None,
                "messages": list(reversed(by_conv[c.id])),
            }
            for c in others
        ],
        "hidden": int(total or 0) - int(visible_total or 0),
    }


# --- canned replies ---------------------------------------------------------------------


def render_placeholders(text: str, values: Mapping[str, str]) -> str:
    """``{{contact.name}}`` and friends replaced; an unknown placeholder stays as typed."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


async def placeholder_values(session: AsyncSession, who: Principal, conv: m.Conversation) -> dict[str, str]:
    contact = await session.get(m.Contact, conv.contact_id)
    operator = await session.get(m.User, who.id)
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    return {
        "contact.name": (contact.name if contact else "") or "",
        "contact.email": (contact.email if contact else "") or "",
        "contact.phone": (contact.phone if contact else "") or "",
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


async def save_personal_canned(
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


async def delete_personal_canned(session: AsyncSession, who: Principal, reply_id: int) -> None:
    """Only one's own replies; shared ones are managed by supervisors in administration."""
    row = await session.get(m.CannedReply, reply_id)
    if row is None or row.owner_user_id != who.id:
        raise NotFound("canned reply {reply_id} not found", reply_id=reply_id)
    await session.delete(row)
    await session.flush()


# --- customer card ----------------------------------------------------------------------


def validate_field_value(
    key: str, kind: str, value: Any, *, options: Sequence[Any] = (), required: bool = False
) -> Any:
    """One card value checked and normalised for its kind; ``None`` clears it. Errors name
    the field (``field=key``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput("'{field}' is required", field=key)
        return None
    match kind:
        case "number":
            if isinstance(value, bool):
                raise InvalidInput("'{field}' must be a number", field=key)
            try:
                number = float(str(value).strip().replace(",", "."))
            except ValueError:
                raise InvalidInput("'{field}' must be a number", field=key) from None
            if not math.isfinite(number):
                raise InvalidInput("'{field}' must be a number", field=key)
            return int(number) if number.is_integer() and abs(number) < 2**53 else number
        case "email":
            text = str(value).strip()
            local, _, domain = text.rpartition("@")
            if (
                len(text) > 254
                or not local
                or "." not in domain.strip(".")
                or any(ch.isspace() for ch in text)
            ):
                raise InvalidInput(
                    "'{field}' must be an email address (got '{text}')", text=text[:64], field=key
                )
            return text
        case "phone":
            try:
                return normalise_phone(str(value).strip())
            except InvalidInput as exc:
                raise InvalidInput("'{field}': {text}", text=exc, field=key) from None
        case "date":
            text = str(value).strip()
            try:
                if not _DATE.fullmatch(text):
                    raise ValueError(text)
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise InvalidInput("'{field}' must be a date like 2024-12-31", field=key) from None
        case "select":
            allowed = [str(o) for o in options]
            if str(value) not in allowed:
                raise InvalidInput(
                    "'{field}' must be one of: {allowed}", allowed=", ".join(allowed), field=key
                )
            return str(value)
        case "checkbox":
            if isinstance(value, bool):
                return value
            if value in ("true", "false"):
                return value == "true"
            raise InvalidInput("'{field}' must be true or false", field=key)
        case _:
            text = str(value)
            if len(text) > MAX_TEXT_FIELD:
                raise InvalidInput(
                    "'{field}' is longer than {max_text_field} characters",
                    max_text_field=MAX_TEXT_FIELD,
                    field=key,
                )
            return text


async def _locked_contact(session: AsyncSession, contact_id: int) -> m.Contact:
    contact = await session.scalar(select(m.Contact).where(m.Contact.id == contact_id).with_for_update())
    assert contact is not None
    return contact


async def update_card(
    session: AsyncSession, who: Principal, conv_id: int, values: Mapping[str, Any]
) -> dict[str, Any]:
    """Edit the customer card from a conversation: the contact's name/email/phone and the
    queue's configurable fields. All values are checked before any is stored; a field marked
    not editable is refused. The change is audit-logged (field names, not values)."""
    if not values:
        raise InvalidInput("nothing to change", field="values")
    conv = await access_conversation(session, who, conv_id)
    fields = {f.key: f for f in await card_fields_for(session, conv.queue_id)}
    clean: dict[str, Any] = {}
    for key, raw in values.items():
        if key in BUILTIN_FIELDS:
            clean[key] = validate_field_value(key, BUILTIN_FIELDS[key], raw)
            continue
        spec = fields.get(key)
        if spec is None:
            raise InvalidInput("the card has no field '{field}'", field=key)
        if not spec.editable:
            raise PermissionDenied("'{label}' can't be edited", label=spec.label, field=key)
        clean[key] = validate_field_value(
            key, spec.kind, raw, options=spec.options or [], required=spec.required
        )
    contact = await _locked_contact(session, conv.contact_id)
    custom = dict(contact.custom_fields or {})
    for key, value in clean.items():
        if key == "name":
            contact.name = (value or "")[:256]
        elif key == "email":
            contact.email = value
        elif key == "phone":
            contact.phone = value
            contact.region, contact.timezone = phone_region_and_timezone(value) if value else (None, None)
        elif value is None:
            custom.pop(key, None)
        else:
            custom[key] = value
    contact.custom_fields = custom
    audit.record(
        session,
        who,
        "contact.update",
        object_type="contact",
        object_id=contact.id,
        data={"conversation_id": conv.id, "fields": sorted(clean)},
    )
    await session.flush()
    return card_dict(contact, list(fields.values()))


async def set_blacklisted(
    session: AsyncSession, who: Principal, conv_id: int, *, blacklisted: bool = True, reason: str = ""
) -> m.Contact:
    """Add the conversation's contact to the blacklist (do-not-contact); audit-logged.

    Operators may only add; taking a contact off the list is for supervisors and admins.
    """
    if not blacklisted and who.role not in (m.Role.SUPERVISOR, m.Role.ADMIN):
        raise PermissionDenied("only supervisors take a contact off the blacklist")
    conv = await access_conversation(session, who, conv_id)
    contact = await _locked_contact(session, conv.contact_id)
    contact.blacklisted = blacklisted
    audit.record(
        session,
        who,
        "contact.blacklist" if blacklisted else "contact.unblacklist",
        object_type="contact",
        object_id=contact.id,
        data={"conversation_id": conv.id, "reason": reason[:256]},
    )
    return contact


# --- taking from the queue by hand ------------------------------------------------------


async def check_take(session: AsyncSession, who: Principal, conv_id: int) -> m.Conversation:
    """Take a waiting conversation from the queue without an offer.

    Allowed where the queue has ``manual_pick``, the caller is in the queue, their status
    receives this medium and their capacity has room. Locks like the router: the conversation
    ``FOR UPDATE SKIP LOCKED`` (someone else assigning it right now = conflict), then the
    caller's presence row, with load re-read under that lock, so a take and a routing
    decision can never both assign it nor push the operator past capacity.
    """
    conv = await session.scalar(
        select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update(skip_locked=True)
    )
    await access_conversation(session, who, conv_id)  # not found outside the caller's scope
    if conv is None:
        raise Conflict("another operator is taking this conversation right now")
    queues = await visible_queue_ids(session, who)
    if queues is not None and not (queues & {conv.queue_id, *conv.extra_queue_ids}):
        raise PermissionDenied("you are not in this conversation's queue")
    if conv.status != S.QUEUED:
        raise Conflict(
            "the conversation is no longer waiting (it is {status})", status=Label("status", conv.status)
        )
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    if queue is None or not queue.manual_pick:
        raise PermissionDenied("this queue does not allow taking conversations by hand")
    if conv.preferred_user_id is not None and conv.preferred_user_id != who.id:
        raise Conflict("this conversation was transferred to another operator")
    presence = await get_presence(session, who.id, lock=True)
    status = await session.get(m.OperatorStatus, presence.status_id)
    assert status is not None
    voice = conv.medium == m.Medium.VOICE
    if not (status.receives_voice if voice else status.receives_chats):
        raise Conflict(
            "your status '{name}' does not take {value}",
            name=status.name,
            value="calls" if voice else "chats",
            field="status",
        )
    user = await session.get(m.User, who.id)
    assert user is not None
    load = (await loads_for(session, [who.id]))[who.id]
    if not fits(user, load, conv.medium, chats_block_calls=queue.chats_block_calls):
        raise Conflict("you have no free capacity for another conversation")
    now = datetime.now(UTC)
    offer = m.Offer(
        conversation_id=conv.id,
        user_id=who.id,
        queue_id=queue.id,
        state="pending",
        created_at=now,
        expires_at=now,
    )
    session.add(offer)
    await session.flush()
    await do_accept_offer(session, conv, offer, now=now)
    return conv


# --- handing back to a bot --------------------------------------------------------------


async def published_scenarios(session: AsyncSession) -> list[dict[str, str]]:
    """Scenarios an operator may hand a conversation to (those with an active revision)."""
    rows = await session.execute(
        select(m.Scenario.key, m.Scenario.name)
        .where(m.Scenario.active_revision_id.is_not(None))
        .order_by(m.Scenario.name)
    )
    return [{"key": key, "name": name} for key, name in rows.all()]


async def check_caller_can_move(session: AsyncSession, conv_id: int) -> m.Call:
    """A blind transfer or a transfer to the IVR redirects the caller's channel: the call must
    be in progress and inbound (on a click-to-call the first leg is the operator's phone)."""
    call = await session.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
    if call is None or call.ended_at is not None:
        raise Conflict("there is no call in progress for this conversation")
    if call.direction != "in":
        raise Conflict("an outgoing call can only be transferred to an extension or attended")
    return call


async def check_hand_to_bot(
    session: AsyncSession, who: Principal, conv_id: int, scenario_key: str
) -> m.Conversation:
    """The handling operator (or a supervisor in scope) passes the conversation to a published
    scenario, e.g. a CSAT survey once the talk is over.

    The operator's handling ends first (``do_end``: handle time stops, wrap-up is not waited
    for), then the runner starts the scenario and the conversation is ``bot``; the operator
    stays its ``assigned_user_id`` so answers are credited to them, but it no longer counts
    against their capacity. Emits ``conversation.handed_to_bot``.
    """
    conv = await access_conversation(session, who, conv_id, for_update=True)
    if conv.assigned_user_id != who.id and who.role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
        raise PermissionDenied("only the operator handling the conversation can do this")
    if conv.status not in (S.ACTIVE, S.ON_HOLD, S.WRAP_UP):
        raise Conflict(
            "a {status} conversation can't be handed to a bot", status=Label("status", conv.status)
        )
    gateway = bot_gateway(session)
    if gateway is None:
        raise Conflict("scenarios are not running on this server")
    scenario = await session.scalar(select(m.Scenario).where(m.Scenario.key == scenario_key))
    if scenario is None or scenario.active_revision_id is None:
        raise InvalidInput(
            "scenario '{scenario_key}' is not published", scenario_key=scenario_key, field="scenario"
        )
    handler = conv.assigned_user_id
    if conv.status in (S.ACTIVE, S.ON_HOLD):
        await do_end(session, conv, by="operator")
    await deadlines.cancel(session, deadlines.WRAP_UP, conv.id)
    if not await gateway.hand_to_bot(session, conv, scenario_key):
        raise InvalidInput(
            "scenario '{scenario_key}' is not published", scenario_key=scenario_key, field="scenario"
        )
    emit(
        session,
        "conversation.handed_to_bot",
        conversation_dict(conv) | {"scenario": scenario_key, "by_user_id": who.id},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=handler,
    )
    audit.record(
        session,
        who,
        "conversation.hand_to_bot",
        object_type="conversation",
        object_id=conv.id,
        data={"scenario": scenario_key},
    )
    if handler is not None:
        await refresh_activity_of(session, handler)
    return conv
