"""JSON shapes of domain rows, shared by events, REST and Socket.IO."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omni.db import models as m


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def conversation_dict(c: m.Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "contact_id": c.contact_id,
        "inbox_id": c.inbox_id,
        "channel": c.channel,
        "medium": c.medium,
        "status": c.status,
        "queue_id": c.queue_id,
        "extra_queue_ids": list(c.extra_queue_ids or []),
        "priority": c.priority,
        "assigned_user_id": c.assigned_user_id,
        "subject": c.subject,
        "variables": dict(c.variables or {}),
        "created_at": _iso(c.created_at),
        "enqueued_at": _iso(c.enqueued_at),
        "first_enqueued_at": _iso(c.first_enqueued_at),
        "offered_at": _iso(c.offered_at),
        "accepted_at": _iso(c.accepted_at),
        "wrap_up_at": _iso(c.wrap_up_at),
        "closed_at": _iso(c.closed_at),
        "hold_seconds": c.hold_seconds,
        "result_code_id": c.result_code_id,
        "closed_by": c.closed_by,
        "last_message_at": _iso(c.last_message_at),
        "label_ids": list(c.label_ids or []),
    }


def message_dict(msg: m.Message) -> dict[str, Any]:
    return {
        "id": msg.id,
        "conversation_id": msg.conversation_id,
        "direction": msg.direction,
        "author_user_id": msg.author_user_id,
        "body": msg.body,
        "attachments": list(msg.attachments or []),
        "client_id": msg.client_id,
        "external_id": msg.external_id,
        "delivery": msg.delivery,
        "created_at": _iso(msg.created_at),
    }


def callback_dict(cb: m.Callback) -> dict[str, Any]:
    return {
        "id": cb.id,
        "conversation_id": cb.conversation_id,
        "contact_id": cb.contact_id,
        "queue_id": cb.queue_id,
        "kind": cb.kind,
        "reason": cb.reason,
        "target_user_id": cb.target_user_id,
        "state": cb.state,
        "claimed_by_id": cb.claimed_by_id,
        "claimed_at": _iso(cb.claimed_at),
        "due_at": _iso(cb.due_at),
        "note": cb.note,
        "created_at": _iso(cb.created_at),
    }
