"""The customer card: the operator's edits from a conversation, and the admin's card fields."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, masking
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    _OPTIONAL_ID,
    ADMIN,
    SUPERVISOR,
    Checker,
    _apply,
    _audit,
    _boolean,
    _choice,
    _clean,
    _columns,
    _flush,
    _integer,
    _managed_queue,
    _new,
    _readable_scope,
    _strings,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    access_conversation,
    check_role,
)
from omni.domain.contacts import normalise_phone, phone_region_and_timezone
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied

MAX_TEXT_FIELD = 2000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BUILTIN_FIELDS: dict[str, str] = {"name": "text", "email": "email", "phone": "phone"}
"""Contact columns the card edits besides the configurable fields (key → kind)."""


# --- the card in a conversation --------------------------------------------------------


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


# --- customer card ----------------------------------------------------------------------


def check_field_value(
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


async def check_update_card(
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
            clean[key] = check_field_value(key, BUILTIN_FIELDS[key], raw)
            continue
        spec = fields.get(key)
        if spec is None:
            raise InvalidInput("the card has no field '{field}'", field=key)
        if not spec.editable:
            raise PermissionDenied("'{label}' can't be edited", label=spec.label, field=key)
        clean[key] = check_field_value(
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
    return await masking.masked_card(session, who, card_dict(contact, list(fields.values())))


# --- customer card fields -----------------------------------------------------------------

CARD_FIELD_KINDS = ("text", "number", "email", "phone", "date", "select", "checkbox")
_CARD_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _card_key(field: str, value: Any) -> str:
    text: str = _text(64)(field, value)
    if not _CARD_KEY.fullmatch(text):
        raise InvalidInput(
            "{field} starts with a lowercase latin letter, then letters, digits or '_' (got '{text}')",
            text=text,
            field=field,
        )
    return text


_CARD_FIELDS: dict[str, Checker] = {
    "queue_id": _OPTIONAL_ID,
    "key": _card_key,
    "label": _text(128),
    "label_ru": _text(128, allow_empty=True),
    "kind": _choice(CARD_FIELD_KINDS),
    "options": _strings(128),
    "required": _boolean,
    "editable": _boolean,
    "position": _integer(0),
}


def card_field_dict(f: m.CardField) -> dict[str, Any]:
    body = _columns(f)
    body["options"] = list(f.options or [])
    return body


async def list_card_fields(
    session: AsyncSession, who: Principal, *, queue_id: int | None = None, limit: int
) -> list[m.CardField]:
    """Fields for every queue and per queue; supervisors see the shared ones and their queues'."""
    visible = await _readable_scope(session, who)
    stmt = (
        select(m.CardField)
        .order_by(m.CardField.queue_id.nulls_first(), m.CardField.position, m.CardField.id)
        .limit(clamp_limit(limit))
    )
    if visible is not None:
        stmt = stmt.where(or_(m.CardField.queue_id.is_(None), m.CardField.queue_id.in_(visible)))
    if queue_id is not None:
        stmt = stmt.where(m.CardField.queue_id == queue_id)
    return list(await session.scalars(stmt))


async def access_card_field(session: AsyncSession, who: Principal, field_id: int) -> m.CardField:
    visible = await _readable_scope(session, who)
    row = await session.get(m.CardField, field_id)
    if row is None or (visible is not None and row.queue_id is not None and row.queue_id not in visible):
        raise NotFound("card field {field_id} not found", field_id=field_id)
    return row


async def _check_card_field(
    session: AsyncSession, who: Principal, clean: Mapping[str, Any], row: m.CardField, own_id: int | None
) -> None:
    """Values live in ``Contact.custom_fields[key]``, so a key names one field per queue: a
    queue's field may not reuse a global key (nor a global one any queue's key)."""
    if own_id is not None and "key" in clean and clean["key"] != row.key:
        raise InvalidInput(
            "a card field key can't change once created (contacts keep values under it); "
            "create a new field instead",
            field="key",
        )
    queue_id = clean.get("queue_id", row.queue_id)
    if "queue_id" in clean:
        await _managed_queue(session, who, queue_id, "queue_id")
    if "key" in clean or "queue_id" in clean:
        key = clean.get("key", row.key)
        stmt = select(m.CardField.queue_id).where(m.CardField.key == key)
        if queue_id is not None:
            stmt = stmt.where(or_(m.CardField.queue_id.is_(None), m.CardField.queue_id == queue_id))
        if own_id is not None:
            stmt = stmt.where(m.CardField.id != own_id)
        clash = (await session.execute(stmt.limit(1))).first()
        if clash is not None:
            where = "every queue" if clash[0] is None else f"queue {clash[0]}"
            raise Conflict(
                "a card field with key '{key}' already exists for {where}", key=key, where=where, field="key"
            )
    kind = clean.get("kind", row.kind)
    options = clean.get("options", row.options or [])
    if kind == "select" and not options:
        raise InvalidInput("a select field needs at least one option", field="options")
    if kind != "select" and options and "options" in clean:
        raise InvalidInput("only select fields have options (this one is {kind})", kind=kind, field="options")


async def _managed_card_field(session: AsyncSession, who: Principal, field_id: int) -> m.CardField:
    check_role(who, ADMIN, SUPERVISOR)
    row = await access_card_field(session, who, field_id)
    await _managed_queue(session, who, row.queue_id, "queue_id")
    return row


async def check_create_card_field(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.CardField:
    check_role(who, ADMIN, SUPERVISOR)
    clean = _clean(data, _CARD_FIELDS, ("key", "label"))
    clean.setdefault("queue_id", None)
    row = _new(m.CardField)
    await _check_card_field(session, who, clean, row, None)
    _apply(row, clean)
    if row.kind != "select":
        row.options = []
    session.add(row)
    await _flush(session)
    _audit(session, who, "card_field.create", "card_field", row.id, data)
    _changed(session, "card_field", row.id, "created")
    return row


async def check_update_card_field(
    session: AsyncSession, who: Principal, field_id: int, data: Mapping[str, Any]
) -> m.CardField:
    row = await _managed_card_field(session, who, field_id)
    clean = _clean(data, _CARD_FIELDS)
    await _check_card_field(session, who, clean, row, row.id)
    _apply(row, clean)
    if row.kind != "select":
        row.options = []
    await _flush(session)
    _audit(session, who, "card_field.update", "card_field", row.id, data)
    _changed(session, "card_field", row.id, "updated")
    return row


async def check_delete_card_field(session: AsyncSession, who: Principal, field_id: int) -> None:
    """Contacts keep their stored values; only the field's definition goes."""
    row = await _managed_card_field(session, who, field_id)
    await session.delete(row)
    await _flush(session)
    _audit(session, who, "card_field.delete", "card_field", field_id, {"key": row.key})
    _changed(session, "card_field", field_id, "deleted")
