"""What the administration REST API accepts: request bodies, path ids and query parameters.

Every number is bounded by the column it ends up in and every string refuses NUL and has a
ceiling, so a 22-digit timeout or a NUL in a name is a 400 naming the field at the edge rather
than a 500 from the driver. The bounds are the *columns'*, never tighter than the domain's own
checks (``omni.domain.admin``), which keep their messages for values the columns could hold.
Update bodies leave every field ``UNSET`` by default: PATCH changes exactly what was sent.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.params import Parameter
from msgspec import UNSET, UnsetType

from omni.api.contracts import (
    INT32_MAX,
    INT64_MAX,
    NO_NUL,
    Id,
    Int32,
    IntId,
    Name,
    OptIntId,
    OptSeq,
    Text,
    between,
)


def given(body: msgspec.Struct) -> dict[str, Any]:
    """The fields the caller sent, as plain JSON values: what the domain validates and audits.

    A JSON round trip rather than ``to_builtins``, which keeps tuples (business-hour spans).
    """
    sent: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(body))
    return sent


# --- path and query parameters -------------------------------------------------------------


RowId = IntId
"""The admin entities' ids are INTEGER on PostgreSQL; a larger one can name no row."""

BigRowId = Id
"""Webhook deliveries and audit records are BIGINT."""

OptionalRowId = OptIntId
OptionalCursor = OptSeq

Limit = Annotated[int, between(-(2**31), INT32_MAX, "clamped to 1..1000")]
"""How many rows; the domain clamps it (``clamp_limit``), the type only keeps it a number."""

Query = Annotated[str, Parameter(max_length=255, pattern=NO_NUL)]
OptionalQuery = Annotated[str | None, Parameter(max_length=255, pattern=NO_NUL)]

Script = Annotated[str, msgspec.Meta(max_length=100_000, pattern=NO_NUL)]
"""A queue's operator script (the domain allows 20,000 characters)."""

# A bounded JSON document (inbox config, contact custom fields, a webhook filter): scalars and
# at most three levels of containers, so a 100k-deep body never reaches the domain.
Scalar = bool | Annotated[int, msgspec.Meta(ge=-(2**63), le=INT64_MAX)] | float | Text | None
Leaf = Scalar | list[Scalar] | dict[Name, Scalar]
Value = Scalar | list[Leaf] | dict[Name, Leaf]
Document = dict[Name, Value]


# --- request bodies -----------------------------------------------------------------------
# Update structs are the base (all optional); create structs re-declare what they require.


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: Name | UnsetType = UNSET
    password: Text | UnsetType = UNSET
    role: Name | UnsetType = UNSET
    display_name: Name | UnsetType = UNSET
    email: Name | UnsetType | None = UNSET
    language: Name | UnsetType = UNSET
    sip_extension: Name | UnsetType | None = UNSET
    phone_endpoint: Name | UnsetType = UNSET
    handles_chat: bool | UnsetType = UNSET
    handles_voice: bool | UnsetType = UNSET
    capacity: Int32 | UnsetType = UNSET
    chat_weight: Int32 | UnsetType = UNSET
    voice_weight: Int32 | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


class UserCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: Name
    password: Text
    role: Name
    display_name: Name | UnsetType = UNSET
    email: Name | UnsetType | None = UNSET
    language: Name | UnsetType = UNSET
    sip_extension: Name | UnsetType | None = UNSET
    phone_endpoint: Name | UnsetType = UNSET
    handles_chat: bool | UnsetType = UNSET
    handles_voice: bool | UnsetType = UNSET
    capacity: Int32 | UnsetType = UNSET
    chat_weight: Int32 | UnsetType = UNSET
    voice_weight: Int32 | UnsetType = UNSET


class UserSkillIn(msgspec.Struct, forbid_unknown_fields=True):
    skill_id: Int32
    level: Int32


class UserSkillsIn(msgspec.Struct, forbid_unknown_fields=True):
    skills: list[UserSkillIn]


class ScopeIn(msgspec.Struct, forbid_unknown_fields=True):
    group_ids: list[Int32] | UnsetType = UNSET
    queue_ids: list[Int32] | UnsetType = UNSET


class GroupIdsIn(msgspec.Struct, forbid_unknown_fields=True):
    group_ids: list[Int32]


class NameCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class NameUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET


class HolidayIn(msgspec.Struct, forbid_unknown_fields=True):
    """A local day the queue is closed all day: ``{"date": "2026-12-31", "name": "New Year"}``."""

    date: Name
    name: Name | UnsetType = UNSET


class BusinessHoursIn(msgspec.Struct, forbid_unknown_fields=True):
    """``days`` keys are "0" (Monday) to "6"; each holds ``[["09:00", "18:00"], ...]``;
    ``holidays`` close whole local days; ``calendars`` are ids of shared holiday calendars
    (``/api/v1/admin/calendars``) whose days off close the queue too."""

    timezone: Name
    days: dict[Name, list[tuple[Name, Name]]]
    holidays: list[HolidayIn] | UnsetType = UNSET
    calendars: list[Int32] | UnsetType = UNSET


class EscalationStepIn(msgspec.Struct, forbid_unknown_fields=True):
    after_seconds: Int32
    relax_levels: Int32 | UnsetType = UNSET
    add_queue_id: Int32 | UnsetType | None = UNSET


class QueueUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    group_id: Int32 | UnsetType | None = UNSET
    strategy: Name | UnsetType = UNSET
    priority: Int32 | UnsetType = UNSET
    business_hours: BusinessHoursIn | UnsetType | None = UNSET
    queue_timeout_seconds: Int32 | UnsetType = UNSET
    operator_timeout_seconds: Int32 | UnsetType = UNSET
    auto_accept: bool | UnsetType = UNSET
    overflow_action: Name | UnsetType = UNSET
    overflow_queue_id: Int32 | UnsetType | None = UNSET
    overflow_scenario: Name | UnsetType = UNSET
    sla_seconds: Int32 | UnsetType = UNSET
    wrap_up_seconds: Int32 | UnsetType = UNSET
    idle_close_minutes: Int32 | UnsetType = UNSET
    missed_offers_pause: Int32 | UnsetType = UNSET
    default_result_code_id: Int32 | UnsetType | None = UNSET
    chats_block_calls: bool | UnsetType = UNSET
    manual_pick: bool | UnsetType = UNSET
    escalation: list[EscalationStepIn] | UnsetType = UNSET
    script: Script | UnsetType = UNSET
    affinity_seconds: Int32 | UnsetType = UNSET
    affinity_skip_ivr: bool | UnsetType = UNSET
    blend_notice: bool | UnsetType = UNSET
    blend_reoffer_seconds: Int32 | UnsetType = UNSET


class QueueCreate(QueueUpdate, kw_only=True):
    name: Name


class MemberIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: Int32
    position: Int32 | UnsetType = UNSET
    penalty: Int32 | UnsetType = UNSET


class MembersIn(msgspec.Struct, forbid_unknown_fields=True):
    members: list[MemberIn]


class QueueSkillIn(msgspec.Struct, forbid_unknown_fields=True):
    skill_id: Int32
    min_level: Int32 | UnsetType = UNSET


class QueueSkillsIn(msgspec.Struct, forbid_unknown_fields=True):
    skills: list[QueueSkillIn]


class QueueResultCodesIn(msgspec.Struct, forbid_unknown_fields=True):
    result_code_ids: list[Int32]
    default_result_code_id: Int32 | UnsetType | None = UNSET


class StatusUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Name | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    name_ru: Name | UnsetType = UNSET
    colour: Name | UnsetType = UNSET
    kind: Name | UnsetType = UNSET
    receives_voice: bool | UnsetType = UNSET
    receives_chats: bool | UnsetType = UNSET
    takes_outbound: bool | UnsetType = UNSET
    productive: bool | UnsetType = UNSET
    selectable: bool | UnsetType = UNSET
    max_duration_seconds: Int32 | UnsetType | None = UNSET


class StatusCreate(StatusUpdate, kw_only=True):
    code: Name
    name: Name


class ResultCodeUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Name | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    name_ru: Name | UnsetType = UNSET
    colour: Name | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ResultCodeCreate(ResultCodeUpdate, kw_only=True):
    code: Name
    name: Name


class ContactCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Text | UnsetType = UNSET
    phone: Name | UnsetType | None = UNSET
    email: Name | UnsetType | None = UNSET
    custom_fields: Document | UnsetType = UNSET
    tags: list[Name] | UnsetType = UNSET


class ContactUpdate(ContactCreate, kw_only=True):
    blacklisted: bool | UnsetType = UNSET


class InboxUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    channel: Name | UnsetType = UNSET
    queue_id: Int32 | UnsetType | None = UNSET
    config: Document | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class InboxCreate(InboxUpdate, kw_only=True):
    name: Name
    channel: Name


class WebhookUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    url: Text | UnsetType = UNSET
    secret: Text | UnsetType = UNSET
    event_types: list[Name] | UnsetType = UNSET
    filter: Document | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class WebhookCreate(WebhookUpdate, kw_only=True):
    name: Name
    url: Text


class CannedReplyUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    queue_id: Int32 | UnsetType | None = UNSET
    shortcut: Name | UnsetType = UNSET
    title: Name | UnsetType = UNSET
    body: Text | UnsetType = UNSET


class CannedReplyCreate(CannedReplyUpdate, kw_only=True):
    shortcut: Name
    title: Name
    body: Text


class CardFieldUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    queue_id: Int32 | UnsetType | None = UNSET
    key: Name | UnsetType = UNSET
    label: Name | UnsetType = UNSET
    label_ru: Name | UnsetType = UNSET
    kind: Name | UnsetType = UNSET
    options: list[Name] | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    editable: bool | UnsetType = UNSET
    position: Int32 | UnsetType = UNSET


class CardFieldCreate(CardFieldUpdate, kw_only=True):
    key: Name
    label: Name
