"""What the administration REST API answers: one struct per body, the same JSON as the domain's
serializers (``omni.domain.admin.*_dict``) produce, so the admin UI and API clients read exactly
what they read before while ``/schema/openapi.json`` now describes it.

Handlers convert at the edge (``msgspec.convert(admin.user_dict(u), UserOut)``): the domain keeps
its plain dicts (the web pages and the audit log use them), the transport states the contract.
Timestamps stay the ISO strings the serializers write (``+00:00``, not msgspec's ``Z``).
Stored JSON documents (an inbox's config, a contact's custom fields, a webhook filter, an audit
record's input) are whatever the domain accepted for that channel or action: ``JsonObject``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from msgspec import UNSET, UnsetType

from omni.api.contracts import ErrorBody
from omni.api.schemas import UserOut as UserOut  # re-exported: the admin routes return it too

JsonObject = dict[str, object]
"""A stored JSON document whose keys the domain checks per channel or action."""

T = TypeVar("T")


def out(value: object, kind: type[T]) -> T:
    """A serializer's dict as the declared response type (raises if the two ever drift)."""
    return msgspec.convert(value, kind)


def out_list(values: Sequence[object], kind: type[T]) -> list[T]:
    return msgspec.convert(values, list[kind])  # type: ignore[valid-type]


# --- the refusals every admin route can answer ---------------------------------------------


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


_COMMON = {
    400: _error("Malformed input: a value of the wrong type or out of its column's range"),
    401: _error("Not signed in, or the API token is invalid or revoked"),
    403: _error("The caller's role may not do this"),
    422: _error("The domain refused a value; `field` names it and `errors` lists every problem"),
}
READ: dict[int, ResponseSpec] = {**_COMMON, 404: _error("No such row, or outside the caller's scope")}
"""Statuses of reads."""
_CONFLICT = _error("Clashes with another row (a duplicate name, a row still in use) or a concurrent change")
REMOVE: dict[int, ResponseSpec] = {**READ, 409: _CONFLICT}
"""Statuses of deletes: a row still in use (a queue inboxes route to) is a conflict."""
WRITE: dict[int, ResponseSpec] = {**REMOVE, 413: _error("The request body is too large")}
"""Statuses of creates and updates."""


# --- users, groups, skills ----------------------------------------------------------------


class UserSkillOut(msgspec.Struct):
    skill_id: int
    level: int


class ScopeOut(msgspec.Struct):
    group_ids: list[int]
    queue_ids: list[int]


class UserDetailOut(UserOut, kw_only=True):
    """A user with skills and groups; ``scope`` only for supervisors."""

    skills: list[UserSkillOut]
    group_ids: list[int]
    two_factor: bool
    """Signs in with a TOTP code (``POST /api/v1/users/{id}/totp/reset`` clears it)."""
    scope: ScopeOut | UnsetType = UNSET


class PasswordResetOut(msgspec.Struct, kw_only=True):
    user_id: int
    url: str
    """The one-time link (shown once; only its digest is stored)."""
    expires_at: str


class GroupOut(msgspec.Struct):
    id: int
    name: str
    user_ids: list[int]


class SkillOut(msgspec.Struct):
    id: int
    name: str


class OkOut(msgspec.Struct):
    """A delete that leaves nothing to show."""

    ok: bool = True


OK = OkOut()


# --- queues, statuses, result codes -------------------------------------------------------


class HolidayOut(msgspec.Struct):
    date: str
    name: str = ""


class BusinessHoursOut(msgspec.Struct):
    timezone: str
    days: dict[str, list[list[str]]]
    holidays: list[HolidayOut] | UnsetType = UNSET
    """Only when the queue has holidays (the stored document, key for key)."""
    calendars: list[int] | UnsetType = UNSET
    """Ids of the shared holiday calendars the queue follows, only when it follows some."""


class EscalationStepOut(msgspec.Struct):
    after_seconds: int
    relax_levels: int | UnsetType = UNSET
    add_queue_id: int | UnsetType | None = UNSET


class MemberOut(msgspec.Struct):
    user_id: int
    position: int
    penalty: int


class QueueSkillOut(msgspec.Struct):
    skill_id: int
    min_level: int


class QueueOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    group_id: int | None
    strategy: str
    priority: int
    business_hours: BusinessHoursOut | None
    queue_timeout_seconds: int
    operator_timeout_seconds: int
    auto_accept: bool
    overflow_action: str
    overflow_queue_id: int | None
    overflow_scenario: str
    sla_seconds: int
    wrap_up_seconds: int
    idle_close_minutes: int
    """A chat with no message either way for this long is closed; 0 = never."""
    missed_offers_pause: int
    """Offers in a row an operator may let ring out before being paused; 0 = never."""
    default_result_code_id: int | None
    chats_block_calls: bool
    manual_pick: bool
    escalation: list[EscalationStepOut]
    script: str
    affinity_seconds: int = 0
    affinity_skip_ivr: bool = False
    blend_notice: bool = False
    blend_reoffer_seconds: int = 0
    members: list[MemberOut]
    skills: list[QueueSkillOut]
    result_code_ids: list[int]


class StatusOut(msgspec.Struct, kw_only=True):
    id: int
    code: str
    name: str
    name_ru: str
    colour: str
    kind: str
    receives_voice: bool
    receives_chats: bool
    takes_outbound: bool
    productive: bool
    selectable: bool
    max_duration_seconds: int | None
    is_system: bool


class ResultCodeOut(msgspec.Struct, kw_only=True):
    id: int
    code: str
    name: str
    name_ru: str
    colour: str
    active: bool


# --- contacts, inboxes, webhooks ----------------------------------------------------------


class ContactOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    email: str | None
    phone: str | None
    region: str | None
    timezone: str | None
    custom_fields: JsonObject
    tags: list[str]
    blacklisted: bool
    created_at: str | None


class IdentityOut(msgspec.Struct):
    id: int
    kind: str
    value: str


class ContactDetailOut(ContactOut, kw_only=True):
    identities: list[IdentityOut]


class InboxOut(msgspec.Struct, kw_only=True):
    """``config`` with nested secrets masked for everyone but admins."""

    id: int
    name: str
    channel: str
    queue_id: int | None
    public_token: str
    config: JsonObject
    active: bool


class InboxSecretOut(InboxOut, kw_only=True):
    """Shown once, after a rotation; ``install_snippet`` for web chat inboxes."""

    secret: str
    install_snippet: str | UnsetType = UNSET


class WebhookOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    url: str
    event_types: list[str]
    filter: JsonObject
    active: bool
    created_at: str | None


class WebhookCreatedOut(WebhookOut, kw_only=True):
    """The only body that carries the signing secret."""

    secret: str


class DeliveryOut(msgspec.Struct, kw_only=True):
    id: int
    subscription_id: int
    event_id: int
    state: str
    attempts: int
    next_attempt_at: str
    last_status_code: int | None
    last_error: str
    created_at: str
    delivered_at: str | None


# --- audit, tokens, canned replies, card fields -------------------------------------------


class AuditOut(msgspec.Struct, kw_only=True):
    id: int
    user_id: int | None
    action: str
    object_type: str
    object_id: str
    input: JsonObject
    result: str
    ip: str
    created_at: str | None


class TokenOut(msgspec.Struct, kw_only=True):
    id: int
    user_id: int
    name: str
    created_at: str | None
    last_used_at: str | None
    revoked: bool


class CannedReplyOut(msgspec.Struct, kw_only=True):
    id: int
    queue_id: int | None
    shortcut: str
    title: str
    body: str
    created_at: str | None


class CardFieldOut(msgspec.Struct, kw_only=True):
    id: int
    queue_id: int | None
    key: str
    label: str
    label_ru: str
    kind: str
    options: list[str]
    required: bool
    editable: bool
    position: int
