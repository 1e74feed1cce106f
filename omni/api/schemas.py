"""Request bodies (msgspec structs): Litestar validates them and answers 400 with the field."""

from __future__ import annotations

from datetime import datetime

import msgspec


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class StatusIn(msgspec.Struct, forbid_unknown_fields=True):
    status: str
    reason: str = ""


class InboundIn(msgspec.Struct, forbid_unknown_fields=True):
    """A customer message entering through the API (a CRM or custom channel)."""

    identity_kind: str
    identity_value: str
    body: str = ""
    client_id: str | None = None
    external_id: str | None = None
    contact_name: str = ""
    contact_phone: str | None = None
    contact_email: str | None = None
    subject: str = ""
    medium: str = "chat"
    priority: int = 0


class MessageIn(msgspec.Struct, forbid_unknown_fields=True):
    body: str
    client_id: str | None = None
    private: bool = False


class CloseIn(msgspec.Struct, forbid_unknown_fields=True):
    result_code_id: int


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    to_user_id: int | None = None
    to_queue_id: int | None = None
    note: str = ""


class CallbackIn(msgspec.Struct, forbid_unknown_fields=True):
    due_at: datetime | None = None
    kind: str = "standard"
    target_user_id: int | None = None
    note: str = ""


class CallbackDoneIn(msgspec.Struct, forbid_unknown_fields=True):
    note: str = ""
