"""REST of the integration admin added for the admin pages (issue 16): a webhook's test send,
one delivery with the event it carried (the payload view), and the bodies of the audit log's
filters and of an admin-issued API token. Same contract as ``omni.api.admin``.

The list routes these extend (``GET /api/v1/audit``, ``GET /api/v1/webhooks/{id}/deliveries``,
``POST /api/v1/tokens``) stay in their controllers: a path has one controller.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post

from omni.api.admin_bodies import BigRowId, RowId
from omni.api.admin_responses import READ, WRITE, DeliveryOut, JsonObject, TokenOut, out
from omni.api.contracts import IntId, Name
from omni.api.core import DEPS
from omni.domain import webhook_probe, webhooks
from omni.domain.auth import Principal
from omni.services import Services


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    user_id: IntId


class TokenCreatedOut(TokenOut, kw_only=True):
    """The only body that carries the token itself: only its digest is stored."""

    token: str


class DeliveryDetailOut(DeliveryOut, kw_only=True):
    event_type: str | None
    event: JsonObject | None
    """The event as the receiver got it (``null`` once the event was purged)."""


class WebhookTestOut(msgspec.Struct, kw_only=True):
    ok: bool
    """The receiver answered 2xx."""
    status_code: int | None
    error: str


class WebhookTestController(Controller):
    path = "/api/v1/webhooks/{webhook_id:int}/test"
    dependencies = DEPS

    @post("/", status_code=200, responses=WRITE)
    async def send_test(self, who: Principal, services: Services, webhook_id: RowId) -> WebhookTestOut:
        """POSTs one signed ``webhook.test`` event now and reports the answer (no retries)."""
        result = await webhook_probe.send_test(services.db, who, webhook_id, services.settings.webhook)
        return WebhookTestOut(ok=result.ok, status_code=result.status_code, error=result.error)


class DeliveryDetailController(Controller):
    path = "/api/v1/webhook-deliveries/{delivery_id:int}"
    dependencies = DEPS

    @get("/", responses=READ)
    async def get_delivery(
        self, who: Principal, services: Services, delivery_id: BigRowId
    ) -> DeliveryDetailOut:
        async with services.db.transaction() as session:
            row, event = await webhooks.access_delivery(session, who, delivery_id)
            return out(webhooks.delivery_detail_dict(row, event), DeliveryDetailOut)


CONTROLLERS: list[type[Controller]] = [WebhookTestController, DeliveryDetailController]
