"""Request and response bodies (msgspec structs) of omni/api/core.py and omni/api/bots.py.

Requests: Litestar validates them and answers 400 with the field. Field types come from
``omni.api.contracts`` (ids of BIGINT tables ``Id``, of INTEGER tables ``IntId``, other
INTEGER columns ``Int32``/``Count``, strings ``Name``/``Text``/``LongText``), so a value
PostgreSQL can't hold never reaches it.

Responses: the wire shape of today's JSON, field for field and in the same order; the domain's
``*_dict`` serializers are converted at the edge (``msgspec.convert``), so the events and
Socket.IO payloads built from the same dicts stay as they are. Timestamps are ISO strings as
the serializers write them (``+00:00``), not re-encoded datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from omni.api.contracts import Count, Int32, IntId, LongText, Name, Seq, Text
from omni.domain.event_types import ConversationPayload


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Name
    password: Text
    otp: Name | None = None
    """The current six-digit code of the user's authenticator app, when they sign in with a
    second factor (without it such a user gets 401 ``otp_required``)."""


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Text


class StatusIn(msgspec.Struct, forbid_unknown_fields=True):
    status: Name
    reason: Text = ""


class InboundIn(msgspec.Struct, forbid_unknown_fields=True):
    """A customer message entering through the API (a CRM or custom channel)."""

    identity_kind: Name
    identity_value: Name
    body: LongText = ""
    client_id: Name | None = None
    external_id: Name | None = None
    contact_name: Text = ""
    contact_phone: Name | None = None
    contact_email: Name | None = None
    subject: Text = ""
    medium: Name = "chat"
    priority: Int32 = 0


class MessageIn(msgspec.Struct, forbid_unknown_fields=True):
    body: LongText
    client_id: Name | None = None
    private: bool = False


class CloseIn(msgspec.Struct, forbid_unknown_fields=True):
    result_code_id: IntId
    callback_at: datetime | None = None
    """A campaign conversation's callback code: when to call back (with a time zone)."""
    for_me: bool = False
    """The campaign callback is for the closing operator only (else for anyone)."""


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    to_user_id: IntId | None = None
    to_queue_id: IntId | None = None
    note: LongText = ""


class CallbackIn(msgspec.Struct, forbid_unknown_fields=True):
    due_at: datetime | None = None
    kind: Name = "standard"
    target_user_id: IntId | None = None
    note: LongText = ""


class CallbackDoneIn(msgspec.Struct, forbid_unknown_fields=True):
    note: LongText = ""


# --- responses ----------------------------------------------------------------------------


class OkOut(msgspec.Struct):
    ok: bool


class UserOut(msgspec.Struct):
    """``omni.domain.admin.user_dict``."""

    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    language: str
    is_active: bool
    sip_extension: str | None
    phone_endpoint: str
    handles_chat: bool
    handles_voice: bool
    capacity: int
    chat_weight: int
    voice_weight: int
    created_at: str | None


class TokenOut(msgspec.Struct):
    """The token itself is shown once, here."""

    id: int
    name: str
    token: str


class PresenceOut(msgspec.Struct):
    """``omni.domain.presence.presence_dict``."""

    user_id: int
    status: str
    status_name: str
    colour: str
    since: str
    reason: str
    activity: str
    activity_since: str
    over_limit: bool
    connected: bool


class ConversationOut(ConversationPayload):
    """``omni.domain.serialize.conversation_dict``: the same shape the conversation events
    carry (``omni.domain.event_types``), declared once."""


class MessageOut(msgspec.Struct):
    """``omni.domain.serialize.message_dict``; ``attachments`` are file descriptors."""

    id: int
    conversation_id: int
    direction: str
    author_user_id: int | None
    body: str
    attachments: list[dict[str, Any]]
    client_id: str | None
    external_id: str | None
    delivery: str
    created_at: str | None
    masked: bool = False
    """Phones or e-mails in ``body`` are masked for this reader (``POST /api/v1/messages/{id}/reveal``)."""


class ConversationDetailOut(ConversationOut):
    """The conversation with its messages and, while it waits, its place in the queue."""

    messages: list[MessageOut]
    position: int | None
    estimated_wait_seconds: int | None


class CallbackOut(msgspec.Struct):
    """``omni.domain.serialize.callback_dict``."""

    id: int
    conversation_id: int | None
    contact_id: int
    queue_id: int | None
    kind: str
    reason: str
    target_user_id: int | None
    state: str
    claimed_by_id: int | None
    claimed_at: str | None
    due_at: str | None
    note: str
    created_at: str | None


class InboundOut(msgspec.Struct):
    """201 for a new message, 200 (``duplicate``) when its client/external id was seen."""

    conversation: ConversationOut
    message: MessageOut
    duplicate: bool


class EventOut(msgspec.Struct):
    """``omni.domain.events.DomainEvent.to_wire``: ``data`` is the event type's payload."""

    seq: int
    type: str
    at: str
    conversation_id: int | None
    queue_id: int | None
    user_id: int | None
    data: dict[str, Any]


__all__ = [
    "CallbackDoneIn",
    "CallbackIn",
    "CallbackOut",
    "CloseIn",
    "ConversationDetailOut",
    "ConversationOut",
    "Count",
    "EventOut",
    "InboundIn",
    "InboundOut",
    "LoginIn",
    "MessageIn",
    "MessageOut",
    "OkOut",
    "PresenceOut",
    "Seq",
    "StatusIn",
    "TokenIn",
    "TokenOut",
    "TransferIn",
    "UserOut",
]
