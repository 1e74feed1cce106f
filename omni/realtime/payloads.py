"""What each ``/operator`` and ``/supervisor`` call accepts, as typed structs.

Every handler decodes its payload with ``omni.wire.decode(data, Struct)`` before touching it:
a non-object, a missing or mistyped field, an id beyond BIGINT or a string with a NUL byte is
refused with an ack ``{ok: false, error: "invalid", detail, field}`` in the caller's language
instead of an ``AttributeError`` / ``OverflowError`` with no ack, or a Python repr stored as
text. Limits on lengths are generous upper bounds; the domain keeps its own, friendlier limits
(a message body's 10,000 characters) below them.

``OPERATOR_CALLS`` / ``SUPERVISOR_CALLS`` map each event name to its struct; the console's
TypeScript types are generated from them (``scripts/gen_ts_types.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import inspect as mi

from omni.api.contracts import NO_NUL, Id, Name, Seq, Text
from omni.domain.errors import InvalidInput
from omni.wire import decode as decode_struct

C = TypeVar("C", bound="Call")

Body = Annotated[str, msgspec.Meta(max_length=100_000, pattern=NO_NUL)]
"""A message or reply body: the domain refuses more than its limit with its own message."""
Key = Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
"""A scenario key or a client-generated id."""
CardValue = Text | int | float | bool | None | list[Text]
"""One customer-card value; the field's kind is checked by the domain."""


class Call(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every call payload (unknown keys are ignored, as before, for old pages)."""


class Empty(Call):
    pass


class ResumeIn(Call):
    after: Seq


class SetStatusIn(Call):
    status: Name = ""
    reason: Text = ""


class OfferIn(Call):
    offer_id: Id


class ConversationIn(Call):
    conversation_id: Id


class SendIn(Call):
    conversation_id: Id
    body: Body = ""
    client_id: Key | None = None
    private: bool = False


class CloseIn(Call):
    conversation_id: Id
    result_code_id: Id
    callback_at: Name | None = None
    """A campaign callback code: when to call back (ISO with a zone; the browser sends UTC)."""
    for_me: bool = False
    """The callback is for the closing operator only (else for anyone of the campaign)."""


class HoldIn(Call):
    conversation_id: Id
    hold: bool = True


class LabelsIn(Call):
    """Labels to apply to / take off a conversation (``omni.domain.labels``)."""

    conversation_id: Id
    add: list[Id] = []
    remove: list[Id] = []


class LabelListIn(Call):
    queue_id: Id | None = None


class SnoozeIn(Call):
    """``until`` (ISO 8601 with a zone) and/or ``until_customer`` (``omni.domain.snooze``)."""

    conversation_id: Id
    until: Name | None = None
    """ISO 8601 with a zone (the browser sends UTC)."""
    until_customer: bool = False


class TypingIn(Call):
    conversation_id: Id
    typing: bool = True


class CallbackIn(Call):
    callback_id: Id


class CardUpdateIn(Call):
    conversation_id: Id
    values: dict[Name, CardValue]


class CannedIn(Call):
    conversation_id: Id | None = None


class CannedSaveIn(Call):
    shortcut: Name = ""
    title: Text = ""
    body: Body = ""
    id: Id | None = None


class CannedDeleteIn(Call):
    id: Id


class BlacklistIn(Call):
    conversation_id: Id
    blacklisted: bool = True
    reason: Text = ""


class TransferIn(Call):
    conversation_id: Id
    to_user_id: Id | None = None
    to_queue_id: Id | None = None
    note: Text = ""


class HandToBotIn(Call):
    conversation_id: Id
    scenario: Key = ""


class ScheduleCallbackIn(Call):
    conversation_id: Id
    due_at: Name | None = None
    """ISO 8601 with a zone (the browser sends UTC)."""
    kind: Name = "standard"
    note: Text = ""


class FinishCallbackIn(Call):
    callback_id: Id
    done: bool = True
    note: Text = ""


class CallTransferIn(Call):
    conversation_id: Id
    to_user_id: Id | None = None
    to_queue_id: Id | None = None
    to_scenario: Key | None = None
    to_extension: Name | None = None
    attended: bool = False
    note: Text = ""


class ClickToCallIn(Call):
    queue_id: Id
    number: Name = ""


class OperatorStatusIn(Call):
    user_id: Id
    status: Name = ""
    reason: Text = ""


class MessageOperatorIn(Call):
    user_id: Id
    text: Text = ""


class WhisperIn(Call):
    conversation_id: Id
    text: Text = ""


class CallSpyIn(Call):
    conversation_id: Id
    mode: Name = ""


class AttemptIn(Call):
    attempt_id: Id


class RescheduleIn(Call):
    attempt_id: Id
    at: Name = ""


class CampaignIn(Call):
    campaign_id: Id


class CampaignStateIn(Call):
    campaign_id: Id
    state: Literal["running", "paused"]


class AckError(msgspec.Struct, omit_defaults=True):
    """Every refused call's ack (``omni.realtime._err``)."""

    ok: bool
    """Always ``false``."""
    error: str
    detail: str
    field: str | None = None


OPERATOR_CALLS: dict[str, type[Call]] = {
    "snapshot": Empty,
    "resume": ResumeIn,
    "set_status": SetStatusIn,
    "accept": OfferIn,
    "decline": OfferIn,
    "send": SendIn,
    "end": ConversationIn,
    "close": CloseIn,
    "hold": HoldIn,
    "typing": TypingIn,
    "claim_callback": CallbackIn,
    "open": ConversationIn,
    "history": ConversationIn,
    "card_update": CardUpdateIn,
    "canned": CannedIn,
    "canned_save": CannedSaveIn,
    "canned_delete": CannedDeleteIn,
    "blacklist": BlacklistIn,
    "take": ConversationIn,
    "transfer": TransferIn,
    "hand_to_bot": HandToBotIn,
    "schedule_callback": ScheduleCallbackIn,
    "finish_callback": FinishCallbackIn,
    "queue": Empty,
    "callbacks": Empty,
    "call_hold": HoldIn,
    "call_hangup": ConversationIn,
    "call_transfer": CallTransferIn,
    "click_to_call": ClickToCallIn,
    "campaign_panel": Empty,
    "preview_call": AttemptIn,
    "preview_skip": AttemptIn,
    "preview_reschedule": RescheduleIn,
    "softphone": Empty,
    "labels": LabelListIn,
    "set_labels": LabelsIn,
    "snooze": SnoozeIn,
    "unsnooze": ConversationIn,
}

SUPERVISOR_CALLS: dict[str, type[Call]] = {
    "monitor": Empty,
    "resume": ResumeIn,
    "set_operator_status": OperatorStatusIn,
    "message_operator": MessageOperatorIn,
    "whisper": WhisperIn,
    "take_over": ConversationIn,
    "call_spy": CallSpyIn,
    "call_force_end": ConversationIn,
    "campaigns": Empty,
    "campaign_state": CampaignStateIn,
    "campaign_contacts": CampaignIn,
    "softphone": Empty,
}


def _takes_int(type_: type[Call], name: str) -> bool:
    info = mi.type_info(type_)
    assert isinstance(info, mi.StructType)
    for f in info.fields:
        if f.encode_name == name:
            kinds = f.type.types if isinstance(f.type, mi.UnionType) else (f.type,)
            return any(isinstance(k, mi.IntType) for k in kinds)
    return False


def decode(data: Any, type_: type[C]) -> C:
    """``omni.wire.decode`` for a call payload; a number field given something that is not a
    number keeps the refusal the window has always shown (``'offer_id' must be a number``)."""
    try:
        return decode_struct(data, type_)
    except InvalidInput as exc:
        field = exc.field
        if isinstance(data, dict) and field is not None and field in data and _takes_int(type_, field):
            value = data[field]
            if isinstance(value, bool) or not isinstance(value, int | None):
                raise InvalidInput("'{field}' must be a number", field=field) from exc
        raise
