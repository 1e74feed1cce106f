"""REST API of the administration: users, groups, skills, queues, statuses, result codes,
contacts, inboxes, webhooks, the audit log and API tokens.

Handlers only translate HTTP to ``omni.domain.admin`` calls, which check roles, scope and
input and write the audit record; one transaction per request, so a refusal stores nothing.
What they accept is declared in ``omni.api.admin_bodies`` (bounded by the columns), what they
answer in ``omni.api.admin_responses`` (the serializers' JSON, typed); ``READ`` / ``WRITE``
document the refusals (``ErrorBody``) each route can answer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.params import QueryParameter

from omni.api.admin_bodies import (
    BigRowId,
    CannedReplyCreate,
    CannedReplyUpdate,
    CardFieldCreate,
    CardFieldUpdate,
    ContactCreate,
    ContactUpdate,
    GroupIdsIn,
    InboxCreate,
    InboxUpdate,
    Limit,
    MembersIn,
    NameCreate,
    NameUpdate,
    OptionalCursor,
    OptionalQuery,
    OptionalRowId,
    Query,
    QueueCreate,
    QueueResultCodesIn,
    QueueSkillsIn,
    QueueUpdate,
    ResultCodeCreate,
    ResultCodeUpdate,
    RowId,
    ScopeIn,
    StatusCreate,
    StatusUpdate,
    UserCreate,
    UserSkillsIn,
    UserUpdate,
    WebhookCreate,
    WebhookUpdate,
)
from omni.api.admin_responses import (
    READ,
    WRITE,
    AuditOut,
    CannedReplyOut,
    CardFieldOut,
    ContactDetailOut,
    ContactOut,
    DeliveryOut,
    GroupOut,
    InboxOut,
    InboxSecretOut,
    OkOut,
    QueueOut,
    ResultCodeOut,
    SkillOut,
    StatusOut,
    TokenOut,
    UserDetailOut,
    UserOut,
    WebhookCreatedOut,
    WebhookOut,
    out,
    out_list,
)
from omni.api.contracts import NO_NUL
from omni.api.core import DEPS
from omni.domain import admin, webhooks
from omni.domain.auth import Principal
from omni.services import Services


def given(body: msgspec.Struct) -> dict[str, Any]:
    """The fields the caller sent, as plain JSON values: what the domain validates and audits.

    A JSON round trip rather than ``to_builtins``, which keeps tuples (business-hour spans).
    """
    sent: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(body))
    return sent


OK = OkOut()


# --- controllers --------------------------------------------------------------------------


class UserController(Controller):
    path = "/api/v1/users"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_users(self, who: Principal, services: Services, limit: Limit = 1000) -> list[UserOut]:
        async with services.db.transaction() as session:
            return out_list(
                [admin.user_dict(u) for u in await admin.list_users(session, who, limit=limit)], UserOut
            )

    @post("/", responses=WRITE)
    async def create_user(self, who: Principal, services: Services, data: UserCreate) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.create_user(session, who, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @get("/{user_id:int}", responses=READ)
    async def get_user(self, who: Principal, services: Services, user_id: RowId) -> UserDetailOut:
        async with services.db.transaction() as session:
            return out(
                await admin.user_detail(session, await admin.get_user(session, who, user_id)), UserDetailOut
            )

    @patch("/{user_id:int}", responses=WRITE)
    async def update_user(
        self, who: Principal, services: Services, user_id: RowId, data: UserUpdate
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.update_user(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @delete("/{user_id:int}", status_code=200, responses=READ)
    async def deactivate_user(self, who: Principal, services: Services, user_id: RowId) -> UserOut:
        async with services.db.transaction() as session:
            return out(admin.user_dict(await admin.deactivate_user(session, who, user_id)), UserOut)

    @put("/{user_id:int}/skills", responses=WRITE)
    async def set_skills(
        self, who: Principal, services: Services, user_id: RowId, data: UserSkillsIn
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.set_user_skills(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @put("/{user_id:int}/scope", responses=WRITE)
    async def set_scope(
        self, who: Principal, services: Services, user_id: RowId, data: ScopeIn
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.set_supervisor_scope(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @put("/{user_id:int}/groups", responses=WRITE)
    async def set_groups(
        self, who: Principal, services: Services, user_id: RowId, data: GroupIdsIn
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.set_user_groups(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)


class GroupController(Controller):
    path = "/api/v1/groups"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_groups(self, who: Principal, services: Services, limit: Limit = 1000) -> list[GroupOut]:
        async with services.db.transaction() as session:
            groups = await admin.list_groups(session, who, limit=limit)
            return out_list(await admin.group_dicts(session, groups), GroupOut)

    @post("/", responses=WRITE)
    async def create_group(self, who: Principal, services: Services, data: NameCreate) -> GroupOut:
        async with services.db.transaction() as session:
            group = await admin.create_group(session, who, given(data))
            return out((await admin.group_dicts(session, [group]))[0], GroupOut)

    @patch("/{group_id:int}", responses=WRITE)
    async def update_group(
        self, who: Principal, services: Services, group_id: RowId, data: NameUpdate
    ) -> GroupOut:
        async with services.db.transaction() as session:
            group = await admin.update_group(session, who, group_id, given(data))
            return out((await admin.group_dicts(session, [group]))[0], GroupOut)

    @delete("/{group_id:int}", status_code=200, responses=READ)
    async def delete_group(self, who: Principal, services: Services, group_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.delete_group(session, who, group_id)
        return OK


class SkillController(Controller):
    path = "/api/v1/skills"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_skills(self, who: Principal, services: Services, limit: Limit = 1000) -> list[SkillOut]:
        async with services.db.transaction() as session:
            return out_list(
                [admin.skill_dict(s) for s in await admin.list_skills(session, who, limit=limit)], SkillOut
            )

    @post("/", responses=WRITE)
    async def create_skill(self, who: Principal, services: Services, data: NameCreate) -> SkillOut:
        async with services.db.transaction() as session:
            return out(admin.skill_dict(await admin.create_skill(session, who, given(data))), SkillOut)

    @patch("/{skill_id:int}", responses=WRITE)
    async def update_skill(
        self, who: Principal, services: Services, skill_id: RowId, data: NameUpdate
    ) -> SkillOut:
        async with services.db.transaction() as session:
            return out(
                admin.skill_dict(await admin.update_skill(session, who, skill_id, given(data))), SkillOut
            )

    @delete("/{skill_id:int}", status_code=200, responses=READ)
    async def delete_skill(self, who: Principal, services: Services, skill_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.delete_skill(session, who, skill_id)
        return OK


class QueueController(Controller):
    path = "/api/v1/queues"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_queues(self, who: Principal, services: Services, limit: Limit = 1000) -> list[QueueOut]:
        async with services.db.transaction() as session:
            queues = await admin.list_queues(session, who, limit=limit)
            return out_list(await admin.queue_dicts(session, queues), QueueOut)

    @post("/", responses=WRITE)
    async def create_queue(self, who: Principal, services: Services, data: QueueCreate) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.create_queue(session, who, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @get("/{queue_id:int}", responses=READ)
    async def get_queue(self, who: Principal, services: Services, queue_id: RowId) -> QueueOut:
        async with services.db.transaction() as session:
            return out(
                await admin.queue_detail(session, await admin.get_queue(session, who, queue_id)), QueueOut
            )

    @patch("/{queue_id:int}", responses=WRITE)
    async def update_queue(
        self, who: Principal, services: Services, queue_id: RowId, data: QueueUpdate
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.update_queue(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @delete("/{queue_id:int}", status_code=200, responses=READ)
    async def delete_queue(self, who: Principal, services: Services, queue_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.delete_queue(session, who, queue_id)
        return OK

    @put("/{queue_id:int}/members", responses=WRITE)
    async def set_members(
        self, who: Principal, services: Services, queue_id: RowId, data: MembersIn
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.set_queue_members(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @put("/{queue_id:int}/skills", responses=WRITE)
    async def set_skills(
        self, who: Principal, services: Services, queue_id: RowId, data: QueueSkillsIn
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.set_queue_skills(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @put("/{queue_id:int}/result-codes", responses=WRITE)
    async def set_result_codes(
        self, who: Principal, services: Services, queue_id: RowId, data: QueueResultCodesIn
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.set_queue_result_codes(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)


class StatusController(Controller):
    path = "/api/v1/statuses"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_statuses(self, who: Principal, services: Services, limit: Limit = 1000) -> list[StatusOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_statuses(session, who, limit=limit)
            return out_list([admin.status_dict(s) for s in rows], StatusOut)

    @post("/", responses=WRITE)
    async def create_status(self, who: Principal, services: Services, data: StatusCreate) -> StatusOut:
        async with services.db.transaction() as session:
            return out(admin.status_dict(await admin.create_status(session, who, given(data))), StatusOut)

    @patch("/{status_id:int}", responses=WRITE)
    async def update_status(
        self, who: Principal, services: Services, status_id: RowId, data: StatusUpdate
    ) -> StatusOut:
        async with services.db.transaction() as session:
            status = await admin.update_status(session, who, status_id, given(data))
            return out(admin.status_dict(status), StatusOut)

    @delete("/{status_id:int}", status_code=200, responses=READ)
    async def delete_status(self, who: Principal, services: Services, status_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.delete_status(session, who, status_id)
        return OK


class ResultCodeController(Controller):
    path = "/api/v1/result-codes"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_result_codes(
        self, who: Principal, services: Services, limit: Limit = 1000
    ) -> list[ResultCodeOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_result_codes(session, who, limit=limit)
            return out_list([admin.result_code_dict(c) for c in rows], ResultCodeOut)

    @post("/", responses=WRITE)
    async def create_result_code(
        self, who: Principal, services: Services, data: ResultCodeCreate
    ) -> ResultCodeOut:
        async with services.db.transaction() as session:
            return out(
                admin.result_code_dict(await admin.create_result_code(session, who, given(data))),
                ResultCodeOut,
            )

    @patch("/{code_id:int}", responses=WRITE)
    async def update_result_code(
        self, who: Principal, services: Services, code_id: RowId, data: ResultCodeUpdate
    ) -> ResultCodeOut:
        async with services.db.transaction() as session:
            code = await admin.update_result_code(session, who, code_id, given(data))
            return out(admin.result_code_dict(code), ResultCodeOut)

    @delete("/{code_id:int}", status_code=200, responses=READ)
    async def deactivate_result_code(
        self, who: Principal, services: Services, code_id: RowId
    ) -> ResultCodeOut:
        async with services.db.transaction() as session:
            return out(
                admin.result_code_dict(await admin.deactivate_result_code(session, who, code_id)),
                ResultCodeOut,
            )


class ContactController(Controller):
    path = "/api/v1/contacts"
    dependencies = DEPS

    @get("/", responses=READ)
    async def search_contacts(
        self, who: Principal, services: Services, q: Query = "", limit: Limit = 100
    ) -> list[ContactOut]:
        async with services.db.transaction() as session:
            rows = await admin.search_contacts(session, who, q, limit=limit)
            return out_list([admin.contact_dict(c) for c in rows], ContactOut)

    @post("/", responses=WRITE)
    async def create_contact(
        self, who: Principal, services: Services, data: ContactCreate
    ) -> ContactDetailOut:
        async with services.db.transaction() as session:
            contact = await admin.create_contact(session, who, given(data))
            return out(await admin.contact_detail(session, contact), ContactDetailOut)

    @get("/{contact_id:int}", responses=READ)
    async def get_contact(self, who: Principal, services: Services, contact_id: RowId) -> ContactDetailOut:
        async with services.db.transaction() as session:
            contact = await admin.get_contact(session, who, contact_id)
            return out(await admin.contact_detail(session, contact), ContactDetailOut)

    @patch("/{contact_id:int}", responses=WRITE)
    async def update_contact(
        self, who: Principal, services: Services, contact_id: RowId, data: ContactUpdate
    ) -> ContactDetailOut:
        async with services.db.transaction() as session:
            contact = await admin.update_contact(session, who, contact_id, given(data))
            return out(await admin.contact_detail(session, contact), ContactDetailOut)


class InboxController(Controller):
    path = "/api/v1/inboxes"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_inboxes(self, who: Principal, services: Services, limit: Limit = 1000) -> list[InboxOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_inboxes(session, who, limit=limit)
            return out_list([admin.inbox_dict(i, show_secrets=who.is_admin) for i in rows], InboxOut)

    @post("/", responses=WRITE)
    async def create_inbox(self, who: Principal, services: Services, data: InboxCreate) -> InboxOut:
        async with services.db.transaction() as session:
            inbox = await admin.create_inbox(session, who, given(data))
            return out(admin.inbox_dict(inbox, show_secrets=True), InboxOut)

    @get("/{inbox_id:int}", responses=READ)
    async def get_inbox(self, who: Principal, services: Services, inbox_id: RowId) -> InboxOut:
        async with services.db.transaction() as session:
            inbox = await admin.get_inbox(session, who, inbox_id)
            return out(admin.inbox_dict(inbox, show_secrets=who.is_admin), InboxOut)

    @patch("/{inbox_id:int}", responses=WRITE)
    async def update_inbox(
        self, who: Principal, services: Services, inbox_id: RowId, data: InboxUpdate
    ) -> InboxOut:
        async with services.db.transaction() as session:
            inbox = await admin.update_inbox(session, who, inbox_id, given(data))
            return out(admin.inbox_dict(inbox, show_secrets=True), InboxOut)

    @post("/{inbox_id:int}/secret", status_code=200, responses=WRITE)
    async def rotate_secret(self, who: Principal, services: Services, inbox_id: RowId) -> InboxSecretOut:
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

        return out(body, InboxSecretOut)

    @delete("/{inbox_id:int}", status_code=200, responses=READ)
    async def delete_inbox(self, who: Principal, services: Services, inbox_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.delete_inbox(session, who, inbox_id)
        return OK


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_webhooks(
        self, who: Principal, services: Services, limit: Limit = 1000
    ) -> list[WebhookOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_webhooks(session, who, limit=limit)
            return out_list([admin.webhook_dict(w) for w in rows], WebhookOut)

    @post("/", responses=WRITE)
    async def create_webhook(
        self, who: Principal, services: Services, data: WebhookCreate
    ) -> WebhookCreatedOut:
        """The only response that carries the secret: the CRM needs it to check signatures."""
        async with services.db.transaction() as session:
            hook, secret = await admin.create_webhook(session, who, given(data))
            return out({**admin.webhook_dict(hook), "secret": secret}, WebhookCreatedOut)

    @patch("/{webhook_id:int}", responses=WRITE)
    async def update_webhook(
        self, who: Principal, services: Services, webhook_id: RowId, data: WebhookUpdate
    ) -> WebhookOut:
        async with services.db.transaction() as session:
            hook = await admin.update_webhook(session, who, webhook_id, given(data))
            return out(admin.webhook_dict(hook), WebhookOut)

    @delete("/{webhook_id:int}", status_code=200, responses=READ)
    async def delete_webhook(self, who: Principal, services: Services, webhook_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.delete_webhook(session, who, webhook_id)
        return OK

    @get("/{webhook_id:int}/deliveries", responses=READ)
    async def list_deliveries(
        self,
        who: Principal,
        services: Services,
        webhook_id: RowId,
        # ``state`` is a name Litestar reserves for the app state, hence the alias.
        delivery_state: Annotated[
            str | None, QueryParameter(name="state", max_length=255, pattern=NO_NUL)
        ] = None,
        limit: Limit = 100,
    ) -> list[DeliveryOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_deliveries(session, who, webhook_id, state=delivery_state, limit=limit)
            return out_list([webhooks.delivery_dict(d) for d in rows], DeliveryOut)


class WebhookDeliveryController(Controller):
    path = "/api/v1/webhook-deliveries"
    dependencies = DEPS

    @post("/{delivery_id:int}/replay", status_code=200, responses=WRITE)
    async def replay(self, who: Principal, services: Services, delivery_id: BigRowId) -> DeliveryOut:
        """Enqueued only after commit, so the worker never sees the delivery still failed."""
        from omni.worker import enqueue_deliveries

        async with services.db.transaction() as session:
            row = await admin.replay_delivery(session, who, delivery_id)
            body = out(webhooks.delivery_dict(row), DeliveryOut)
        # The broker call blocks (Redis in production); keep it off the event loop.
        await asyncio.to_thread(enqueue_deliveries, [delivery_id])
        return body


class AuditController(Controller):
    path = "/api/v1/audit"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_audit(
        self,
        who: Principal,
        services: Services,
        user_id: OptionalRowId = None,
        action: OptionalQuery = None,
        before_id: OptionalCursor = None,
        limit: Limit = 100,
    ) -> list[AuditOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_audit(
                session, who, user_id=user_id, action=action, before_id=before_id, limit=limit
            )
            return out_list([admin.audit_dict(a) for a in rows], AuditOut)


class TokenController(Controller):
    """Listing and revoking; tokens are created at ``POST /api/v1/me/tokens``."""

    path = "/api/v1/tokens"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_tokens(self, who: Principal, services: Services, limit: Limit = 1000) -> list[TokenOut]:
        async with services.db.transaction() as session:
            return out_list(
                [admin.token_dict(t) for t in await admin.list_tokens(session, who, limit=limit)], TokenOut
            )

    @delete("/{token_id:int}", status_code=200, responses=READ)
    async def revoke_token(self, who: Principal, services: Services, token_id: RowId) -> TokenOut:
        async with services.db.transaction() as session:
            return out(admin.token_dict(await admin.revoke_token(session, who, token_id)), TokenOut)


class CannedReplyController(Controller):
    """Shared canned replies: global (no queue, admins) and per queue (supervisors too)."""

    path = "/api/v1/canned-replies"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_canned_replies(
        self, who: Principal, services: Services, queue_id: OptionalRowId = None, limit: Limit = 1000
    ) -> list[CannedReplyOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_canned_replies(session, who, queue_id=queue_id, limit=limit)
            return out_list([admin.canned_reply_dict(r) for r in rows], CannedReplyOut)

    @post("/", responses=WRITE)
    async def create_canned_reply(
        self, who: Principal, services: Services, data: CannedReplyCreate
    ) -> CannedReplyOut:
        async with services.db.transaction() as session:
            return out(
                admin.canned_reply_dict(await admin.create_canned_reply(session, who, given(data))),
                CannedReplyOut,
            )

    @get("/{reply_id:int}", responses=READ)
    async def get_canned_reply(self, who: Principal, services: Services, reply_id: RowId) -> CannedReplyOut:
        async with services.db.transaction() as session:
            return out(
                admin.canned_reply_dict(await admin.get_canned_reply(session, who, reply_id)), CannedReplyOut
            )

    @patch("/{reply_id:int}", responses=WRITE)
    async def update_canned_reply(
        self, who: Principal, services: Services, reply_id: RowId, data: CannedReplyUpdate
    ) -> CannedReplyOut:
        async with services.db.transaction() as session:
            reply = await admin.update_canned_reply(session, who, reply_id, given(data))
            return out(admin.canned_reply_dict(reply), CannedReplyOut)

    @delete("/{reply_id:int}", status_code=200, responses=READ)
    async def delete_canned_reply(self, who: Principal, services: Services, reply_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.delete_canned_reply(session, who, reply_id)
        return OK


class CardFieldController(Controller):
    """Fields of the customer card: for every queue (admins) or one queue (supervisors too)."""

    path = "/api/v1/card-fields"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_card_fields(
        self, who: Principal, services: Services, queue_id: OptionalRowId = None, limit: Limit = 1000
    ) -> list[CardFieldOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_card_fields(session, who, queue_id=queue_id, limit=limit)
            return out_list([admin.card_field_dict(r) for r in rows], CardFieldOut)

    @post("/", responses=WRITE)
    async def create_card_field(
        self, who: Principal, services: Services, data: CardFieldCreate
    ) -> CardFieldOut:
        async with services.db.transaction() as session:
            return out(
                admin.card_field_dict(await admin.create_card_field(session, who, given(data))), CardFieldOut
            )

    @get("/{field_id:int}", responses=READ)
    async def get_card_field(self, who: Principal, services: Services, field_id: RowId) -> CardFieldOut:
        async with services.db.transaction() as session:
            return out(
                admin.card_field_dict(await admin.get_card_field(session, who, field_id)), CardFieldOut
            )

    @patch("/{field_id:int}", responses=WRITE)
    async def update_card_field(
        self, who: Principal, services: Services, field_id: RowId, data: CardFieldUpdate
    ) -> CardFieldOut:
        async with services.db.transaction() as session:
            row = await admin.update_card_field(session, who, field_id, given(data))
            return out(admin.card_field_dict(row), CardFieldOut)

    @delete("/{field_id:int}", status_code=200, responses=READ)
    async def delete_card_field(self, who: Principal, services: Services, field_id: RowId) -> OkOut:
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
