"""Operator scripts (VICIdial-style): the text an operator follows beside the conversation,
the card fields it asks for, and optional POSTs at start and at close.

One script per queue plus at most one global script (used where a queue has none). The text
takes the canned replies' placeholders; the fields are card fields (the contact's name, email,
phone or a configured field), so filling them is ``check_update_card``. A POST is an event
(``script.started`` / ``script.closed``, the filled fields in its payload) delivered by the
webhook machinery (signed, retried, visible in the deliveries list) through a subscription the
script owns; that subscription's event type matches no real event, so the relay's fan-out
never sends it anything else.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import masking
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    _OPTIONAL_ID,
    ADMIN,
    SUPERVISOR,
    Checker,
    _audit,
    _boolean,
    _clean,
    _flush,
    _iso,
    _managed_queue,
    _readable_scope,
    _strings,
    _text,
    clamp_limit,
)
from omni.domain.auth import Principal, access_conversation, check_role
from omni.domain.automation.actions import add_delivery
from omni.domain.errors import Conflict, InvalidInput, NotFound
from omni.domain.events import emit
from omni.domain.webhooks import check_subscription
from omni.domain.workspace.canned import _canned_body, placeholder_values, render_placeholders
from omni.domain.workspace.cards import BUILTIN_FIELDS, card_fields_for, check_update_card

SCRIPT_EVENT_TYPE = "automation/script"
STEPS = ("start", "close")


def _url(field_name: str, value: Any) -> str:
    text: str = _text(2048, allow_empty=True)(field_name, value)
    if text:
        try:
            check_subscription(text, [], {})
        except InvalidInput as exc:
            exc.field = field_name
            raise
    return text


_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "queue_id": _OPTIONAL_ID,
    "body": _canned_body,
    "fields": _strings(64),
    "start_url": _url,
    "close_url": _url,
    "active": _boolean,
}


def script_dict(row: m.OperatorScript) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "queue_id": row.queue_id,
        "body": row.body,
        "fields": row.fields,
        "start_url": row.start_url,
        "close_url": row.close_url,
        "start_subscription_id": row.start_subscription_id,
        "close_subscription_id": row.close_subscription_id,
        "active": row.active,
        "created_at": _iso(row.created_at),
    }


async def list_scripts(
    session: AsyncSession, who: Principal, *, queue_id: int | None = None, limit: int = 1000
) -> list[m.OperatorScript]:
    visible = await _readable_scope(session, who)
    stmt = select(m.OperatorScript).order_by(m.OperatorScript.queue_id.nulls_first(), m.OperatorScript.id)
    if visible is not None:
        stmt = stmt.where(or_(m.OperatorScript.queue_id.is_(None), m.OperatorScript.queue_id.in_(visible)))
    if queue_id is not None:
        stmt = stmt.where(m.OperatorScript.queue_id == queue_id)
    return list(await session.scalars(stmt.limit(clamp_limit(limit))))


async def access_script(session: AsyncSession, who: Principal, script_id: int) -> m.OperatorScript:
    visible = await _readable_scope(session, who)
    row = await session.get(m.OperatorScript, script_id)
    if row is None or (visible is not None and row.queue_id is not None and row.queue_id not in visible):
        raise NotFound("operator script {script_id} not found", script_id=script_id)
    return row


async def _subscription(session: AsyncSession, current: int | None, url: str, name: str) -> int | None:
    """The script's own subscription for ``url`` (kept when the URL is the same)."""
    if not url:
        return None
    sub = await session.get(m.WebhookSubscription, current) if current is not None else None
    if sub is not None and sub.url == url:
        return sub.id
    sub = m.WebhookSubscription(
        name=f"script: {name}"[:128],
        url=url,
        secret=secrets.token_urlsafe(32),
        event_types=[SCRIPT_EVENT_TYPE],
        filter={},
        active=True,
        kind="generic",
        created_at=datetime.now(UTC),
    )
    session.add(sub)
    await session.flush()
    return sub.id


async def _save(
    session: AsyncSession,
    who: Principal,
    row: m.OperatorScript,
    data: Mapping[str, Any],
    required: tuple[str, ...],
) -> None:
    clean = _clean(data, _FIELDS, required)
    queue_id = clean.get("queue_id", row.queue_id)
    if "queue_id" in clean or row.id is None:
        await _managed_queue(session, who, queue_id, "queue_id")
    if "fields" in clean:
        known = set(BUILTIN_FIELDS) | {f.key for f in await card_fields_for(session, queue_id)}
        for key in clean["fields"]:
            if key not in known:
                raise InvalidInput("the card has no field '{key}'", key=key, field="fields")
    same = select(m.OperatorScript.id).where(
        m.OperatorScript.queue_id.is_(None) if queue_id is None else m.OperatorScript.queue_id == queue_id
    )
    if row.id is not None:
        same = same.where(m.OperatorScript.id != row.id)
    if await session.scalar(same.limit(1)) is not None:
        raise Conflict("this queue already has a script", field="queue_id")
    for key, value in clean.items():
        setattr(row, key, value)
    row.start_subscription_id = await _subscription(
        session, row.start_subscription_id, row.start_url, row.name
    )
    row.close_subscription_id = await _subscription(
        session, row.close_subscription_id, row.close_url, row.name
    )


async def _managed(session: AsyncSession, who: Principal, script_id: int) -> m.OperatorScript:
    check_role(who, ADMIN, SUPERVISOR)
    row = await access_script(session, who, script_id)
    await _managed_queue(session, who, row.queue_id, "queue_id")
    return row


async def check_create_script(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.OperatorScript:
    check_role(who, ADMIN, SUPERVISOR)
    row = m.OperatorScript(
        name="", queue_id=None, body="", fields=[], start_url="", close_url="", active=True
    )
    await _save(session, who, row, data, ("name", "body"))
    session.add(row)
    await _flush(session)
    _audit(session, who, "operator_script.create", "operator_script", row.id, data)
    _changed(session, "operator_script", row.id, "created")
    return row


async def check_update_script(
    session: AsyncSession, who: Principal, script_id: int, data: Mapping[str, Any]
) -> m.OperatorScript:
    row = await _managed(session, who, script_id)
    await _save(session, who, row, data, ())
    await _flush(session)
    _audit(session, who, "operator_script.update", "operator_script", row.id, data)
    _changed(session, "operator_script", row.id, "updated")
    return row


async def check_delete_script(session: AsyncSession, who: Principal, script_id: int) -> None:
    row = await _managed(session, who, script_id)
    await session.delete(row)
    await _flush(session)
    _audit(session, who, "operator_script.delete", "operator_script", script_id, {"name": row.name})
    _changed(session, "operator_script", script_id, "deleted")


# --- in the operator's window ---------------------------------------------------------------


async def _script_of(session: AsyncSession, conv: m.Conversation) -> m.OperatorScript | None:
    rows = list(
        await session.scalars(
            select(m.OperatorScript).where(
                m.OperatorScript.active.is_(True),
                or_(m.OperatorScript.queue_id.is_(None), m.OperatorScript.queue_id == conv.queue_id),
            )
        )
    )
    own = [r for r in rows if r.queue_id is not None]
    chosen = own or rows
    return chosen[0] if chosen else None


async def script_for_conversation(
    session: AsyncSession, who: Principal, conv_id: int
) -> dict[str, Any] | None:
    """The script beside this conversation: its text with placeholders filled in and the
    fields it asks for with their current values (masked as the card is), or ``None``."""
    conv = await access_conversation(session, who, conv_id)
    script = await _script_of(session, conv)
    if script is None:
        return None
    contact = await session.get(m.Contact, conv.contact_id)
    assert contact is not None
    specs = {f.key: f for f in await card_fields_for(session, conv.queue_id)}
    values = await _field_values(session, who, contact, list(script.fields or []))
    return {
        "id": script.id,
        "name": script.name,
        "text": render_placeholders(script.body, await placeholder_values(session, who, conv)),
        "fields": [
            {
                "key": key,
                "label": specs[key].label if key in specs else key,
                "kind": specs[key].kind if key in specs else BUILTIN_FIELDS.get(key, "text"),
                "value": values.get(key),
            }
            for key in script.fields or []
        ],
    }


async def _field_values(
    session: AsyncSession, who: Principal | None, contact: m.Contact, keys: list[str]
) -> dict[str, Any]:
    custom = contact.custom_fields or {}
    builtin = {"name": contact.name, "email": contact.email, "phone": contact.phone}
    if who is not None:
        masker = await masking.masker_for(session, who)
        builtin["email"] = masker.email(contact.email)
        builtin["phone"] = masker.phone(contact.phone)
    return {k: (builtin[k] if k in builtin else custom.get(k)) for k in keys}


async def check_script_step(
    session: AsyncSession, who: Principal, conv_id: int, step: str, values: Mapping[str, Any]
) -> tuple[dict[str, Any], list[int]]:
    """The operator starts or finishes the script: the values fill the card
    (``check_update_card``: same checks, same audit), then the step's event is emitted with the
    fields as filled and, if the script has a URL for the step, a delivery is made for it.
    Returns the script as shown now and the delivery ids to enqueue after commit."""
    if step not in STEPS:
        raise InvalidInput("unknown step '{step}'; use start or close", step=step, field="step")
    conv = await access_conversation(session, who, conv_id)
    script = await _script_of(session, conv)
    if script is None:
        raise NotFound("this conversation has no script")
    unknown = sorted(set(values) - set(script.fields or []))
    if unknown:
        raise InvalidInput("the script has no field '{key}'", key=unknown[0], field="values")
    if values:
        await check_update_card(session, who, conv_id, values)
    contact = await session.get(m.Contact, conv.contact_id)
    assert contact is not None
    await session.refresh(contact)
    # The receiver is the customer's own CRM: it gets the values unmasked, as CRM pushes do.
    filled = await _field_values(session, None, contact, list(script.fields or []))
    row = emit(
        session,
        "script.started" if step == "start" else "script.closed",
        {
            "script_id": script.id,
            "conversation_id": conv.id,
            "queue_id": conv.queue_id,
            "user_id": who.id,
            "fields": filled,
        },
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=who.id,
    )
    await session.flush()  # writes the event: its id is the delivery's
    assert row.id is not None
    sub_id = script.start_subscription_id if step == "start" else script.close_subscription_id
    deliveries = [await add_delivery(session, sub_id, row.id)] if sub_id is not None else []
    shown = await script_for_conversation(session, who, conv_id)
    assert shown is not None
    return shown, deliveries
