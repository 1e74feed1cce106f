"""REST API of the administration: users, groups, skills, queues, statuses, result codes,
contacts, inboxes, webhooks, the audit log and API tokens.

Handlers only translate HTTP to ``omni.domain.admin`` calls, which check roles, scope and
input and write the audit record; one transaction per request, so a refusal stores nothing.
Update bodies leave every field ``UNSET`` by default: PATCH changes exactly what was sent.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.params import Parameter
from msgspec import UNSET, UnsetType

from omni.api.core import DEPS
from omni.domain import admin, webhooks
from omni.domain.auth import Principal
from omni.services import Services


def given(body: msgspec.Struct) -> dict[str, Any]:
    """The fields the caller sent, as plain JSON values: what the domain validates and audits.

    A JSON round trip rather than ``to_builtins``, which keeps tuples (business-hour spans).
    """
    out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(body))
    return out


# --- request bodies -----------------------------------------------------------------------
# Update structs are the base (all optional); create structs re-declare what they require.


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: str | UnsetType = UNSET
    password: str | UnsetType = UNSET
    role: str | UnsetType = UNSET
    display_name: str | UnsetType = UNSET
    email: str | UnsetType | None = UNSET
    language: str | UnsetType = UNSET
    sip_extension: str | UnsetType | None = UNSET
    handles_chat: bool | UnsetType = UNSET
    handles_voice: bool | UnsetType = UNSET
    capacity: int | UnsetType = UNSET
    chat_weight: int | UnsetType = UNSET
    voice_weight: int | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


class UserCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: str
    password: str
    role: str
    display_name: str | UnsetType = UNSET
    email: str | UnsetType | None = UNSET
    language: str | UnsetType = UNSET
    sip_extension: str | UnsetType | None = UNSET
    handles_chat: bool | UnsetType = UNSET
    handles_voice: bool | UnsetType = UNSET
    capacity: int | UnsetType = UNSET
    chat_weight: int | UnsetType = UNSET
    voice_weight: int | UnsetType = UNSET


class UserSkillIn(msgspec.Struct, forbid_unknown_fields=True):
    skill_id: int
    level: int


class UserSkillsIn(msgspec.Struct, forbid_unknown_fields=True):
    skills: list[UserSkillIn]


class ScopeIn(msgspec.Struct, forbid_unknown_fields=True):
    group_ids: list[int] | UnsetType = UNSET
    queue_ids: list[int] | UnsetType = UNSET


class GroupIdsIn(msgspec.Struct, forbid_unknown_fields=True):
    group_ids: list[int]


class NameCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class NameUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: str | UnsetType = UNSET


class BusinessHoursIn(msgspec.Struct, forbid_unknown_fields=True):
    """``days`` keys are "0" (Monday) to "6"; each holds ``[["09:00", "18:00"], ...]``."""

    timezone: str
    days: dict[str, list[tuple[str, str]]]


class EscalationStepIn(msgspec.Struct, forbid_unknown_fields=True):
    after_seconds: int
    relax_levels: int | UnsetType = UNSET
    add_queue_id: int | UnsetType | None = UNSET


class QueueUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    group_id: int | UnsetType | None = UNSET
    strategy: str | UnsetType = UNSET
    priority: int | UnsetType = UNSET
    business_hours: BusinessHoursIn | UnsetType | None = UNSET
    queue_timeout_seconds: int | UnsetType = UNSET
    operator_timeout_seconds: int | UnsetType = UNSET
    auto_accept: bool | UnsetType = UNSET
    overflow_action: str | UnsetType = UNSET
    overflow_queue_id: int | UnsetType | None = UNSET
    overflow_scenario: str | UnsetType = UNSET
    sla_seconds: int | UnsetType = UNSET
    wrap_up_seconds: int | UnsetType = UNSET
    default_result_code_id: int | UnsetType | None = UNSET
    chats_block_calls: bool | UnsetType = UNSET
    manual_pick: bool | UnsetType = UNSET
    escalation: list[EscalationStepIn] | UnsetType = UNSET
    script: str | UnsetType = UNSET


class QueueCreate(QueueUpdate, kw_only=True):
    name: str


class MemberIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: int
    position: int | UnsetType = UNSET
    penalty: int | UnsetType = UNSET


class MembersIn(msgspec.Struct, forbid_unknown_fields=True):
    members: list[MemberIn]


class QueueSkillIn(msgspec.Struct, forbid_unknown_fields=True):
    skill_id: int
    min_level: int | UnsetType = UNSET


class QueueSkillsIn(msgspec.Struct, forbid_unknown_fields=True):
    skills: list[QueueSkillIn]


class QueueResultCodesIn(msgspec.Struct, forbid_unknown_fields=True):
    result_code_ids: list[int]
    default_result_code_id: int | UnsetType | None = UNSET


class StatusUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    name_ru: str | UnsetType = UNSET
    colour: str | UnsetType = UNSET
    kind: str | UnsetType = UNSET
    receives_voice: bool | UnsetType = UNSET
    receives_chats: bool | UnsetType = UNSET
    productive: bool | UnsetType = UNSET
    selectable: bool | UnsetType = UNSET
    max_duration_seconds: int | UnsetType | None = UNSET


class StatusCreate(StatusUpdate, kw_only=True):
    code: str
    name: str


class ResultCodeUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    name_ru: str | UnsetType = UNSET
    colour: str | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ResultCodeCreate(ResultCodeUpdate, kw_only=True):
    code: str
    name: str


class ContactCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    phone: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    custom_fields: dict[str, Any] | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET


class ContactUpdate(ContactCreate, kw_only=True):
    blacklisted: bool | UnsetType = UNSET


class InboxUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    channel: str | UnsetType = UNSET
    queue_id: int | UnsetType | None = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class InboxCreate(InboxUpdate, kw_only=True):
    name: str
    channel: str


class WebhookUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    url: str | UnsetType = UNSET
    secret: str | UnsetType = UNSET
    event_types: list[str] | UnsetType = UNSET
    filter: dict[str, Any] | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class WebhookCreate(WebhookUpdate, kw_only=True):
    name: str
    url: str


class CannedReplyUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    queue_id: int | UnsetType | None = UNSET
    shortcut: str | UnsetType = UNSET
    title: str | UnsetType = UNSET
    body: str | UnsetType = UNSET


class CannedReplyCreate(CannedReplyUpdate, kw_only=True):
    shortcut: str
    title: str
    body: str


class CardFieldUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    queue_id: int | UnsetType | None = UNSET
    key: str | UnsetType = UNSET
    label: str | UnsetType = UNSET
    label_ru: str | UnsetType = UNSET
    kind: str | UnsetType = UNSET
    options: list[str] | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    editable: bool | UnsetType = UNSET
    position: int | UnsetType = UNSET


class CardFieldCreate(CardFieldUpdate, kw_only=True):
    key: str
    label: str


OK: dict[str, Any] = {"ok": True}


# --- controllers --------------------------------------------------------------------------


class UserController(Controller):
    path = "/api/v1/users"
    dependencies = DEPS

    @get("/")
    async def list_users(self, who: Principal, services: Services, limit: int = 1000) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            return [admin.user_dict(u) for u in await admin.list_users(session, who, limit=limit)]

    @post("/")
    async def create_user(self, who: Principal, services: Services, data: UserCreate) -> dict[str, Any]:
        async with services.db.transaction() as session:
            user = await admin.create_user(session, who, given(data))
            return await admin.user_detail(session, user)

    @get("/{user_id:int}")
    async def get_user(self, who: Principal, services: Services, user_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return await admin.user_detail(session, await admin.get_user(session, who, user_id))

    @patch("/{user_id:int}")
    async def update_user(
        self, who: Principal, services: Services, user_id: int, data: UserUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            user = await admin.update_user(session, who, user_id, given(data))
            return await admin.user_detail(session, user)

    @delete("/{user_id:int}", status_code=200)
    async def deactivate_user(self, who: Principal, services: Services, user_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.user_dict(await admin.deactivate_user(session, who, user_id))

    @put("/{user_id:int}/skills")
    async def set_skills(
        self, who: Principal, services: Services, user_id: int, data: UserSkillsIn
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            user = await admin.set_user_skills(session, who, user_id, given(data))
            return await admin.user_detail(session, user)

    @put("/{user_id:int}/scope")
    async def set_scope(
        self, who: Principal, services: Services, user_id: int, data: ScopeIn
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            user = await admin.set_supervisor_scope(session, who, user_id, given(data))
            return await admin.user_detail(session, user)

    @put("/{user_id:int}/groups")
    async def set_groups(
        self, who: Principal, services: Services, user_id: int, data: GroupIdsIn
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            user = await admin.set_user_groups(session, who, user_id, given(data))
            return await admin.user_detail(session, user)


class GroupController(Controller):
    path = "/api/v1/groups"
    dependencies = DEPS

    @get("/")
    async def list_groups(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            groups = await admin.list_groups(session, who, limit=limit)
            return await admin.group_dicts(session, groups)

    @post("/")
    async def create_group(self, who: Principal, services: Services, data: NameCreate) -> dict[str, Any]:
        async with services.db.transaction() as session:
            group = await admin.create_group(session, who, given(data))
            return (await admin.group_dicts(session, [group]))[0]

    @patch("/{group_id:int}")
    async def update_group(
        self, who: Principal, services: Services, group_id: int, data: NameUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            group = await admin.update_group(session, who, group_id, given(data))
            return (await admin.group_dicts(session, [group]))[0]

    @delete("/{group_id:int}", status_code=200)
    async def delete_group(self, who: Principal, services: Services, group_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_group(session, who, group_id)
        return OK


class SkillController(Controller):
    path = "/api/v1/skills"
    dependencies = DEPS

    @get("/")
    async def list_skills(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            return [admin.skill_dict(s) for s in await admin.list_skills(session, who, limit=limit)]

    @post("/")
    async def create_skill(self, who: Principal, services: Services, data: NameCreate) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.skill_dict(await admin.create_skill(session, who, given(data)))

    @patch("/{skill_id:int}")
    async def update_skill(
        self, who: Principal, services: Services, skill_id: int, data: NameUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.skill_dict(await admin.update_skill(session, who, skill_id, given(data)))

    @delete("/{skill_id:int}", status_code=200)
    async def delete_skill(self, who: Principal, services: Services, skill_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_skill(session, who, skill_id)
        return OK


class QueueController(Controller):
    path = "/api/v1/queues"
    dependencies = DEPS

    @get("/")
    async def list_queues(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            queues = await admin.list_queues(session, who, limit=limit)
            return await admin.queue_dicts(session, queues)

    @post("/")
    async def create_queue(self, who: Principal, services: Services, data: QueueCreate) -> dict[str, Any]:
        async with services.db.transaction() as session:
            queue = await admin.create_queue(session, who, given(data))
            return await admin.queue_detail(session, queue)

    @get("/{queue_id:int}")
    async def get_queue(self, who: Principal, services: Services, queue_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return await admin.queue_detail(session, await admin.get_queue(session, who, queue_id))

    @patch("/{queue_id:int}")
    async def update_queue(
        self, who: Principal, services: Services, queue_id: int, data: QueueUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            queue = await admin.update_queue(session, who, queue_id, given(data))
            return await admin.queue_detail(session, queue)

    @delete("/{queue_id:int}", status_code=200)
    async def delete_queue(self, who: Principal, services: Services, queue_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_queue(session, who, queue_id)
        return OK

    @put("/{queue_id:int}/members")
    async def set_members(
        self, who: Principal, services: Services, queue_id: int, data: MembersIn
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            queue = await admin.set_queue_members(session, who, queue_id, given(data))
            return await admin.queue_detail(session, queue)

    @put("/{queue_id:int}/skills")
    async def set_skills(
        self, who: Principal, services: Services, queue_id: int, data: QueueSkillsIn
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            queue = await admin.set_queue_skills(session, who, queue_id, given(data))
            return await admin.queue_detail(session, queue)

    @put("/{queue_id:int}/result-codes")
    async def set_result_codes(
        self, who: Principal, services: Services, queue_id: int, data: QueueResultCodesIn
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            queue = await admin.set_queue_result_codes(session, who, queue_id, given(data))
            return await admin.queue_detail(session, queue)


class StatusController(Controller):
    path = "/api/v1/statuses"
    dependencies = DEPS

    @get("/")
    async def list_statuses(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_statuses(session, who, limit=limit)
            return [admin.status_dict(s) for s in rows]

    @post("/")
    async def create_status(self, who: Principal, services: Services, data: StatusCreate) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.status_dict(await admin.create_status(session, who, given(data)))

    @patch("/{status_id:int}")
    async def update_status(
        self, who: Principal, services: Services, status_id: int, data: StatusUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            status = await admin.update_status(session, who, status_id, given(data))
            return admin.status_dict(status)

    @delete("/{status_id:int}", status_code=200)
    async def delete_status(self, who: Principal, services: Services, status_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_status(session, who, status_id)
        return OK


class ResultCodeController(Controller):
    path = "/api/v1/result-codes"
    dependencies = DEPS

    @get("/")
    async def list_result_codes(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_result_codes(session, who, limit=limit)
            return [admin.result_code_dict(c) for c in rows]

    @post("/")
    async def create_result_code(
        self, who: Principal, services: Services, data: ResultCodeCreate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.result_code_dict(await admin.create_result_code(session, who, given(data)))

    @patch("/{code_id:int}")
    async def update_result_code(
        self, who: Principal, services: Services, code_id: int, data: ResultCodeUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            code = await admin.update_result_code(session, who, code_id, given(data))
            return admin.result_code_dict(code)

    @delete("/{code_id:int}", status_code=200)
    async def deactivate_result_code(
        self, who: Principal, services: Services, code_id: int
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.result_code_dict(await admin.deactivate_result_code(session, who, code_id))


class ContactController(Controller):
    path = "/api/v1/contacts"
    dependencies = DEPS

    @get("/")
    async def search_contacts(
        self, who: Principal, services: Services, q: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.search_contacts(session, who, q, limit=limit)
            return [admin.contact_dict(c) for c in rows]

    @post("/")
    async def create_contact(self, who: Principal, services: Services, data: ContactCreate) -> dict[str, Any]:
        async with services.db.transaction() as session:
            contact = await admin.create_contact(session, who, given(data))
            return await admin.contact_detail(session, contact)

    @get("/{contact_id:int}")
    async def get_contact(self, who: Principal, services: Services, contact_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            contact = await admin.get_contact(session, who, contact_id)
            return await admin.contact_detail(session, contact)

    @patch("/{contact_id:int}")
    async def update_contact(
        self, who: Principal, services: Services, contact_id: int, data: ContactUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            contact = await admin.update_contact(session, who, contact_id, given(data))
            return await admin.contact_detail(session, contact)


class InboxController(Controller):
    path = "/api/v1/inboxes"
    dependencies = DEPS

    @get("/")
    async def list_inboxes(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_inboxes(session, who, limit=limit)
            return [admin.inbox_dict(i, show_secrets=who.is_admin) for i in rows]

    @post("/")
    async def create_inbox(self, who: Principal, services: Services, data: InboxCreate) -> dict[str, Any]:
        async with services.db.transaction() as session:
            inbox = await admin.create_inbox(session, who, given(data))
            return admin.inbox_dict(inbox, show_secrets=True)

    @get("/{inbox_id:int}")
    async def get_inbox(self, who: Principal, services: Services, inbox_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            inbox = await admin.get_inbox(session, who, inbox_id)
            return admin.inbox_dict(inbox, show_secrets=who.is_admin)

    @patch("/{inbox_id:int}")
    async def update_inbox(
        self, who: Principal, services: Services, inbox_id: int, data: InboxUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            inbox = await admin.update_inbox(session, who, inbox_id, given(data))
            return admin.inbox_dict(inbox, show_secrets=True)

    @post("/{inbox_id:int}/secret", status_code=200)
    async def rotate_secret(self, who: Principal, services: Services, inbox_id: int) -> dict[str, Any]:
        """Shown once. Sites sign their user ids with it (HMAC-SHA256) for widget identity."""
        async with services.db.transaction() as session:
            secret = await admin.rotate_inbox_secret(
                session, who, inbox_id, services.settings.effective_secret_key()
            )
            inbox = await admin.get_inbox(session, who, inbox_id)
            body = admin.inbox_dict(inbox, show_secrets=True)
        body["secret"] = secret
        if inbox.channel == "widget":
            base = services.settings.public_base_url.rstrip("/")
            src = f"{base}/widget/omni-widget.js"
            body["install_snippet"] = f'<script src="{src}" data-inbox="{inbox.public_token}" async></script>'

        return body

    @delete("/{inbox_id:int}", status_code=200)
    async def delete_inbox(self, who: Principal, services: Services, inbox_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_inbox(session, who, inbox_id)
        return OK


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    dependencies = DEPS

    @get("/")
    async def list_webhooks(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_webhooks(session, who, limit=limit)
            return [admin.webhook_dict(w) for w in rows]

    @post("/")
    async def create_webhook(self, who: Principal, services: Services, data: WebhookCreate) -> dict[str, Any]:
        """The only response that carries the secret: the CRM needs it to check signatures."""
        async with services.db.transaction() as session:
            hook, secret = await admin.create_webhook(session, who, given(data))
            return {**admin.webhook_dict(hook), "secret": secret}

    @patch("/{webhook_id:int}")
    async def update_webhook(
        self, who: Principal, services: Services, webhook_id: int, data: WebhookUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            hook = await admin.update_webhook(session, who, webhook_id, given(data))
            return admin.webhook_dict(hook)

    @delete("/{webhook_id:int}", status_code=200)
    async def delete_webhook(self, who: Principal, services: Services, webhook_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_webhook(session, who, webhook_id)
        return OK

    @get("/{webhook_id:int}/deliveries")
    async def list_deliveries(
        self,
        who: Principal,
        services: Services,
        webhook_id: int,
        # ``state`` is a name Litestar reserves for the app state, hence the alias.
        delivery_state: Annotated[str | None, Parameter(query="state")] = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_deliveries(session, who, webhook_id, state=delivery_state, limit=limit)
            return [webhooks.delivery_dict(d) for d in rows]


class WebhookDeliveryController(Controller):
    path = "/api/v1/webhook-deliveries"
    dependencies = DEPS

    @post("/{delivery_id:int}/replay", status_code=200)
    async def replay(self, who: Principal, services: Services, delivery_id: int) -> dict[str, Any]:
        """Enqueued only after commit, so the worker never sees the delivery still failed."""
        from omni.worker import enqueue_deliveries

        async with services.db.transaction() as session:
            row = await admin.replay_delivery(session, who, delivery_id)
            body = webhooks.delivery_dict(row)
        # The broker call blocks (Redis in production); keep it off the event loop.
        await asyncio.to_thread(enqueue_deliveries, [delivery_id])
        return body


class AuditController(Controller):
    path = "/api/v1/audit"
    dependencies = DEPS

    @get("/")
    async def list_audit(
        self,
        who: Principal,
        services: Services,
        user_id: int | None = None,
        action: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_audit(
                session, who, user_id=user_id, action=action, before_id=before_id, limit=limit
            )
            return [admin.audit_dict(a) for a in rows]


class TokenController(Controller):
    """Listing and revoking; tokens are created at ``POST /api/v1/me/tokens``."""

    path = "/api/v1/tokens"
    dependencies = DEPS

    @get("/")
    async def list_tokens(
        self, who: Principal, services: Services, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            return [admin.token_dict(t) for t in await admin.list_tokens(session, who, limit=limit)]

    @delete("/{token_id:int}", status_code=200)
    async def revoke_token(self, who: Principal, services: Services, token_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.token_dict(await admin.revoke_token(session, who, token_id))


class CannedReplyController(Controller):
    """Shared canned replies: global (no queue, admins) and per queue (supervisors too)."""

    path = "/api/v1/canned-replies"
    dependencies = DEPS

    @get("/")
    async def list_canned_replies(
        self, who: Principal, services: Services, queue_id: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_canned_replies(session, who, queue_id=queue_id, limit=limit)
            return [admin.canned_reply_dict(r) for r in rows]

    @post("/")
    async def create_canned_reply(
        self, who: Principal, services: Services, data: CannedReplyCreate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.canned_reply_dict(await admin.create_canned_reply(session, who, given(data)))

    @get("/{reply_id:int}")
    async def get_canned_reply(self, who: Principal, services: Services, reply_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.canned_reply_dict(await admin.get_canned_reply(session, who, reply_id))

    @patch("/{reply_id:int}")
    async def update_canned_reply(
        self, who: Principal, services: Services, reply_id: int, data: CannedReplyUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            reply = await admin.update_canned_reply(session, who, reply_id, given(data))
            return admin.canned_reply_dict(reply)

    @delete("/{reply_id:int}", status_code=200)
    async def delete_canned_reply(self, who: Principal, services: Services, reply_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_canned_reply(session, who, reply_id)
        return OK


class CardFieldController(Controller):
    """Fields of the customer card: for every queue (admins) or one queue (supervisors too)."""

    path = "/api/v1/card-fields"
    dependencies = DEPS

    @get("/")
    async def list_card_fields(
        self, who: Principal, services: Services, queue_id: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        async with services.db.transaction() as session:
            rows = await admin.list_card_fields(session, who, queue_id=queue_id, limit=limit)
            return [admin.card_field_dict(r) for r in rows]

    @post("/")
    async def create_card_field(
        self, who: Principal, services: Services, data: CardFieldCreate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.card_field_dict(await admin.create_card_field(session, who, given(data)))

    @get("/{field_id:int}")
    async def get_card_field(self, who: Principal, services: Services, field_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            return admin.card_field_dict(await admin.get_card_field(session, who, field_id))

    @patch("/{field_id:int}")
    async def update_card_field(
        self, who: Principal, services: Services, field_id: int, data: CardFieldUpdate
    ) -> dict[str, Any]:
        async with services.db.transaction() as session:
            row = await admin.update_card_field(session, who, field_id, given(data))
            return admin.card_field_dict(row)

    @delete("/{field_id:int}", status_code=200)
    async def delete_card_field(self, who: Principal, services: Services, field_id: int) -> dict[str, Any]:
        async with services.db.transaction() as session:
            await admin.delete_card_field(session, who, field_id)
        return OK


CONTROLLERS: list[type[Controller]] = [
    UserController,
    GroupController,
    SkillController,
    QueueController,
    StatusController,
    ResultCodeController,
    ContactController,
    InboxController,
    WebhookController,
    WebhookDeliveryController,
    AuditController,
    TokenController,
    CannedReplyController,
    CardFieldController,
]
