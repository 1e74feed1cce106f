"""What the widget may send, as types: every ``/widget`` event is decoded into one of these
with ``omni.wire.decode`` before anything else runs, so a wrong shape (a list instead of an
object, a dict as the body, a 20-digit id, a NUL in an id) is refused with an ack naming the
field, and never reaches the database as a Python repr or an overflow.

The message body and the pre-chat fields are plain strings here on purpose: their length and
NUL checks answer with the widget's own codes (``too_long`` with ``max``, ``bad_characters``),
which the widget translates (``check_message``); everything else is bounded by its type.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from omni.api.contracts import NO_NUL, Id, Int32, Seq

ClientId = Annotated[str, msgspec.Meta(max_length=128, pattern=NO_NUL)]
FileId = Annotated[str, msgspec.Meta(max_length=128, pattern=NO_NUL)]
ButtonId = Annotated[str, msgspec.Meta(max_length=256, pattern=NO_NUL)]
Lang = Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
MAX_FIELD = 100_000
"""Pre-chat fields are cut to their column's size when stored; this only bounds the frame."""
Field = Annotated[str, msgspec.Meta(max_length=MAX_FIELD)]


class MessageIn(msgspec.Struct, frozen=True):
    """``message``: one customer message (stored before the ack; same ``client_id`` = resend)."""

    client_id: ClientId = ""
    body: str = ""
    attachments: Annotated[list[FileId], msgspec.Meta(max_length=1000)] | None = None
    button: ButtonId | None = None
    name: Field | None = None
    email: Field | None = None
    phone: Field | None = None
    subject: Field | None = None
    lang: Lang | None = None


class RateIn(msgspec.Struct, frozen=True):
    """``rate``: the answer to the satisfaction question (1…number of labels)."""

    rating: Int32 = 0


class CallMeIn(msgspec.Struct, frozen=True):
    """``call_me``: call me back on this number when it is my turn (keeps the place in line)."""

    phone: str = ""


class TranscriptIn(msgspec.Struct, frozen=True):
    """``transcript``: mail me this conversation, to ``email`` or the address already known."""

    email: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class TypingIn(msgspec.Struct, frozen=True):
    """``typing``: the customer is (not) typing."""

    typing: bool = True


class SeenIn(msgspec.Struct, frozen=True):
    """``seen``: the widget received or showed an operator message."""

    message_id: Id
    state: Literal["delivered", "read"]


class ResumeIn(msgspec.Struct, frozen=True):
    """``resume``: the messages above the last id the widget knows it has."""

    after: Seq


class LeaveIn(msgspec.Struct, frozen=True):
    """``leave``: no fields; any object (or nothing) is accepted."""


Token = Annotated[str, msgspec.Meta(max_length=1024, pattern=NO_NUL)]


class ConnectAuth(msgspec.Struct, frozen=True):
    """The ``auth`` of a ``/widget`` connection: the inbox's public token and either the
    visitor token from the last ``welcome`` or a site user id with its HMAC."""

    inbox: Token = ""
    visitor: Token = ""
    user_id: Token | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | None = None
    user_hash: Token = ""
    lang: Lang = ""


UserField = Annotated[str, msgspec.Meta(max_length=1024)]
"""Bounded for the frame only; ``omni.domain.visitor_profile`` checks each field's own limit."""


class SetUserIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``set_user`` (``Omni.setUser``): who the site says the visitor is; ``null`` clears."""

    name: UserField | msgspec.UnsetType | None = msgspec.UNSET
    email: UserField | msgspec.UnsetType | None = msgspec.UNSET
    phone: UserField | msgspec.UnsetType | None = msgspec.UNSET


AttributeValue = Annotated[str, msgspec.Meta(max_length=100_000)] | int | float | bool | None


class SetAttributesIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``set_attributes`` (``Omni.setCustomAttributes``): card fields from the site."""

    attributes: Annotated[dict[str, AttributeValue], msgspec.Meta(max_length=200)]
