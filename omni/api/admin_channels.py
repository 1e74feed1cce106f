"""REST API of the administration, second half: contacts, inboxes, webhooks and their
deliveries (the outside world), canned replies and card fields (the operator's workspace).

Same contract as ``omni.api.admin``: handlers translate HTTP to ``omni.domain.admin`` calls,
accept the bounded types of ``omni.api.admin_bodies`` and answer the structs of
``omni.api.admin_responses``, with ``READ`` / ``WRITE`` documenting the refusals.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import QueryParameter

from omni.api.admin_bodies import (
    BigRowId,
    CannedReplyCreate,
    CannedReplyUpdate,
    CardFieldCreate,
    CardFieldUpdate,
    ContactCreate,
    ContactUpdate,
    InboxCreate,
    InboxUpdate,
    Limit,
    OptionalCursor,
    OptionalQuery,
    OptionalRowId,
    Query,
    RowId,
    WebhookCreate,
    WebhookUpdate,
    given,
)
from omni.api.admin_responses import (
    OK,
    READ,
    REMOVE,
    WRITE,
    CannedReplyOut,
    CardFieldOut,
    ContactDetailOut,
    ContactOut,
    DeliveryOut,
    InboxOut,
    InboxSecretOut,
    OkOut,
    WebhookCreatedOut,
    WebhookOut,
    out,
    out_list,
)
from omni.api.contracts import NO_NUL
from omni.api.core import DEPS
from omni.domain import admin, masking, webhooks
from omni.domain.auth import Principal
from omni.services import Services


class ContactController(Controller):
    path = "/api/v1/contacts"
    dependencies = DEPS

    @get("/", responses=READ)
    async def search_contacts(
        self,
        who: Principal,
        services: Services,
        q: Query = "",
        limit: Limit = 100,
        blacklisted: bool | None = None,
    ) -> list[ContactOut]:
        """``q``: name, phone (any way typed), e-mail or a channel identity; ``blacklisted``:
        only contacts on (true) or off (false) the blacklist."""
        async with services.db.transaction() as session:
            rows = await admin.search_contacts(session, who, q, limit=limit, blacklisted=blacklisted)
            masker = await masking.masker_for(session, who)
            return out_list([masker.payload(admin.contact_dict(c)) for c in rows], ContactOut)

    @post("/", responses=WRITE)
    async def create_contact(
        self, who: Principal, services: Services, data: ContactCreate
    ) -> ContactDetailOut:
        async with services.db.transaction() as session:
            contact = await admin.check_create_contact(session, who, given(data))
            masker = await masking.masker_for(session, who)
            return out(masker.payload(await admin.contact_detail(session, contact)), ContactDetailOut)

    @get("/{contact_id:int}", responses=READ)
    async def get_contact(self, who: Principal, services: Services, contact_id: RowId) -> ContactDetailOut:
        async with services.db.transaction() as session:
            contact = await admin.access_admin_contact(session, who, contact_id)
            masker = await masking.masker_for(session, who)
            return out(masker.payload(await admin.contact_detail(session, contact)), ContactDetailOut)

    @patch("/{contact_id:int}", responses=WRITE)
    async def update_contact(
        self, who: Principal, services: Services, contact_id: RowId, data: ContactUpdate
    ) -> ContactDetailOut:
        async with services.db.transaction() as session:
            contact = await admin.check_update_contact(session, who, contact_id, given(data))
            masker = await masking.masker_for(session, who)
            return out(masker.payload(await admin.contact_detail(session, contact)), ContactDetailOut)


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
            inbox = await admin.check_create_inbox(session, who, given(data))
            return out(admin.inbox_dict(inbox, show_secrets=True), InboxOut)

    @get("/{inbox_id:int}", responses=READ)
    async def get_inbox(self, who: Principal, services: Services, inbox_id: RowId) -> InboxOut:
        async with services.db.transaction() as session:
            inbox = await admin.access_inbox(session, who, inbox_id)
            return out(admin.inbox_dict(inbox, show_secrets=who.is_admin), InboxOut)

    @patch("/{inbox_id:int}", responses=WRITE)
    async def update_inbox(
        self, who: Principal, services: Services, inbox_id: RowId, data: InboxUpdate
    ) -> InboxOut:
        async with services.db.transaction() as session:
            inbox = await admin.check_update_inbox(session, who, inbox_id, given(data))
            return out(admin.inbox_dict(inbox, show_secrets=True), InboxOut)

    @post("/{inbox_id:int}/secret", status_code=200, responses=WRITE)
    async def rotate_secret(self, who: Principal, services: Services, inbox_id: RowId) -> InboxSecretOut:
        """Shown once. Sites sign their user ids with it (HMAC-SHA256) for widget identity."""
        async with services.db.transaction() as session:
            secret = await admin.check_rotate_inbox_secret(
                session, who, inbox_id, services.settings.effective_secret_key()
            )
            inbox = await admin.access_inbox(session, who, inbox_id)
            body = admin.inbox_dict(inbox, show_secrets=True)
        body["secret"] = secret
        if inbox.channel == "widget":
            base = services.settings.public_base_url.rstrip("/")
            src = f"{base}/widget/omni-widget.js"
            body["install_snippet"] = f'<script src="{src}" data-inbox="{inbox.public_token}" async></script>'

        return out(body, InboxSecretOut)

    @delete("/{inbox_id:int}", status_code=200, responses=REMOVE)
    async def delete_inbox(self, who: Principal, services: Services, inbox_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_inbox(session, who, inbox_id)
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
            hook, secret = await admin.check_create_webhook(session, who, given(data))
            return out({**admin.webhook_dict(hook), "secret": secret}, WebhookCreatedOut)

    @patch("/{webhook_id:int}", responses=WRITE)
    async def update_webhook(
        self, who: Principal, services: Services, webhook_id: RowId, data: WebhookUpdate
    ) -> WebhookOut:
        async with services.db.transaction() as session:
            hook = await admin.check_update_webhook(session, who, webhook_id, given(data))
            return out(admin.webhook_dict(hook), WebhookOut)

    @delete("/{webhook_id:int}", status_code=200, responses=REMOVE)
    async def delete_webhook(self, who: Principal, services: Services, webhook_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_webhook(session, who, webhook_id)
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
        event_type: OptionalQuery = None,
        before_id: OptionalCursor = None,
        limit: Limit = 100,
    ) -> list[DeliveryOut]:
        """Newest first, paged back with ``before_id``; ``event_type`` may end in ``.*``."""
        async with services.db.transaction() as session:
            rows = await webhooks.list_delivery_log(
                session,
                who,
                webhook_id=webhook_id,
                state=delivery_state,
                event_type=event_type,
                before_id=before_id,
                limit=limit,
            )
            return out_list([webhooks.delivery_dict(d) for d, _ in rows], DeliveryOut)


class WebhookDeliveryController(Controller):
    path = "/api/v1/webhook-deliveries"
    dependencies = DEPS

    @post("/{delivery_id:int}/replay", status_code=200, responses=WRITE)
    async def replay(self, who: Principal, services: Services, delivery_id: BigRowId) -> DeliveryOut:
        """Enqueued only after commit, so the worker never sees the delivery still failed."""
        from omni.worker import enqueue_deliveries

        async with services.db.transaction() as session:
            row = await admin.check_replay_delivery(session, who, delivery_id)
            body = out(webhooks.delivery_dict(row), DeliveryOut)
        # The broker call blocks (Redis in production); keep it off the event loop.
        await asyncio.to_thread(enqueue_deliveries, [delivery_id])
        return body


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
                admin.canned_reply_dict(await admin.check_create_canned_reply(session, who, given(data))),
                CannedReplyOut,
            )

    @get("/{reply_id:int}", responses=READ)
    async def get_canned_reply(self, who: Principal, services: Services, reply_id: RowId) -> CannedReplyOut:
        async with services.db.transaction() as session:
            return out(
                admin.canned_reply_dict(await admin.access_canned_reply(session, who, reply_id)),
                CannedReplyOut,
            )

    @patch("/{reply_id:int}", responses=WRITE)
    async def update_canned_reply(
        self, who: Principal, services: Services, reply_id: RowId, data: CannedReplyUpdate
    ) -> CannedReplyOut:
        async with services.db.transaction() as session:
            reply = await admin.check_update_canned_reply(session, who, reply_id, given(data))
            return out(admin.canned_reply_dict(reply), CannedReplyOut)

    @delete("/{reply_id:int}", status_code=200, responses=REMOVE)
    async def delete_canned_reply(self, who: Principal, services: Services, reply_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_canned_reply(session, who, reply_id)
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
                admin.card_field_dict(await admin.check_create_card_field(session, who, given(data))),
                CardFieldOut,
            )

    @get("/{field_id:int}", responses=READ)
    async def get_card_field(self, who: Principal, services: Services, field_id: RowId) -> CardFieldOut:
        async with services.db.transaction() as session:
            return out(
                admin.card_field_dict(await admin.access_card_field(session, who, field_id)), CardFieldOut
            )

    @patch("/{field_id:int}", responses=WRITE)
    async def update_card_field(
        self, who: Principal, services: Services, field_id: RowId, data: CardFieldUpdate
    ) -> CardFieldOut:
        async with services.db.transaction() as session:
            row = await admin.check_update_card_field(session, who, field_id, given(data))
            return out(admin.card_field_dict(row), CardFieldOut)

    @delete("/{field_id:int}", status_code=200, responses=REMOVE)
    async def delete_card_field(self, who: Principal, services: Services, field_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_card_field(session, who, field_id)
        return OK
