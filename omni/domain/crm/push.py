"""Lead/result push on close: what a closed conversation sends to the CRM, and how.

Pushes are deliveries of the managed webhook subscriptions (``omni.domain.crm.config``):
``do_deliver`` locks the delivery, calls :func:`send` for a CRM kind and records the outcome
like any webhook (retries with backoff, the delivery log, replay). ``crm_push`` POSTs one signed
JSON document (result, card, transcript and recording links); ``bitrix24`` runs the Bitrix24
connector (``omni.domain.crm.bitrix``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.crm.card import last_card
from omni.domain.events import DomainEvent
from omni.domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from omni.settings import WebhookSettings

MAX_TRANSCRIPT = 500
"""Messages sent inline; the transcript link has them all."""


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def facts(session: AsyncSession, conversation_id: int, base_url: str) -> dict[str, Any] | None:
    """Everything a CRM keeps of a closed conversation (None once it is gone)."""
    conv = await session.get(m.Conversation, conversation_id)
    if conv is None:
        return None
    contact = await session.get(m.Contact, conv.contact_id)
    identities = list(
        await session.scalars(
            select(m.ContactIdentity).where(m.ContactIdentity.contact_id == conv.contact_id)
        )
    )
    operator = await session.get(m.User, conv.assigned_user_id) if conv.assigned_user_id else None
    result = await session.get(m.ResultCode, conv.result_code_id) if conv.result_code_id else None
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    messages = list(
        await session.scalars(
            select(m.Message)
            .where(m.Message.conversation_id == conv.id, m.Message.direction.in_(("in", "out")))
            .order_by(m.Message.id)
            .limit(MAX_TRANSCRIPT)
        )
    )
    call = await session.scalar(
        select(m.Call).where(m.Call.conversation_id == conv.id).order_by(m.Call.id.desc()).limit(1)
    )
    base = base_url.rstrip("/")
    return {
        "conversation": {
            "id": conv.id,
            "channel": conv.channel,
            "medium": conv.medium,
            "queue": {"id": queue.id, "name": queue.name} if queue else None,
            "subject": conv.subject,
            "created_at": _iso(conv.created_at),
            "accepted_at": _iso(conv.accepted_at),
            "closed_at": _iso(conv.closed_at),
            "closed_by": conv.closed_by,
            "url": f"{base}/app#c={conv.id}",
        },
        "result": {"code": result.code, "name": result.name} if result else None,
        "operator": (
            {
                "id": operator.id,
                "username": operator.username,
                "name": operator.display_name or operator.username,
            }
            if operator
            else None
        ),
        "contact": {
            "id": contact.id if contact else conv.contact_id,
            "name": contact.name if contact else "",
            "phone": contact.phone if contact else None,
            "email": contact.email if contact else None,
            "identities": [{"kind": i.kind, "value": i.value} for i in identities],
        },
        "card": await last_card(session, conv.id),
        "transcript": [
            {"at": _iso(msg.created_at), "direction": msg.direction, "body": msg.body} for msg in messages
        ],
        "call": (
            {
                "direction": call.direction,
                "number": call.caller_number,
                "talk_seconds": round(call.talk_seconds),
                "answered": call.answered_at is not None,
                "started_at": _iso(call.created_at),
            }
            if call is not None
            else None
        ),
        "recording_url": (
            f"{base}/api/v1/conversations/{conv.id}/recording"
            if call is not None and call.recording_path
            else None
        ),
    }


async def push_result(
    session: AsyncSession,
    sub: m.WebhookSubscription,
    event: DomainEvent,
    delivery_id: int,
    cfg: WebhookSettings,
    client: httpx.AsyncClient | None,
    base_url: str,
) -> tuple[int | None, str]:
    """POST the signed result document: ``(HTTP status, error)``, an empty error is success."""
    data = await facts(session, event.conversation_id or 0, base_url) if event.conversation_id else None
    if data is None:
        return None, "conversation gone"
    body = json.dumps(
        {"delivery_id": delivery_id, "event": event.to_wire(), **data}, separators=(",", ":")
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Omni-CRM/1",
        "X-Omni-Event": "crm.result",
        "X-Omni-Delivery": str(delivery_id),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(sub.secret, timestamp, body),
    }
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=cfg.timeout_seconds) as own:
                resp = await own.post(sub.url, content=body, headers=headers)
        else:
            resp = await client.post(sub.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= resp.status_code < 300:
        return resp.status_code, ""
    return resp.status_code, f"HTTP {resp.status_code}: {resp.text[:200]}"
