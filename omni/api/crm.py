"""REST of the CRM integration (``omni.domain.crm``).

* ``GET/PUT /api/v1/admin/crm`` (admins): the card URL template, its secret, timeout and cache;
  the push URL and secret; the Bitrix24 incoming-webhook URL, entity and user. Secrets are
  write-only (``*_secret_set`` says whether one is stored; an empty one keeps it) and the
  Bitrix24 token is shown hidden.
* ``GET /api/v1/conversations/{id}/crm-card`` (whoever may open the conversation): the
  customer's card from the CRM, usually cached by the fetch the offer started (else fetched
  now); a CRM that fails gives
  ``status: unavailable``, never an error.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, put
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import given
from omni.api.admin_responses import READ, WRITE, out
from omni.api.contracts import NO_NUL, Id, Int32
from omni.api.core import DEPS
from omni.db import models as m
from omni.domain import crm
from omni.domain.auth import Principal, check_role
from omni.services import Services

Url = Annotated[str, msgspec.Meta(max_length=4096, pattern=NO_NUL)]
"""The domain names the field when it is longer than its column or not an http(s) URL."""
Secret = Annotated[str, msgspec.Meta(max_length=1024, pattern=NO_NUL)]


class CrmSettingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    fetch_url: Url | UnsetType = UNSET
    """Card URL template; placeholders ``{phone}``, ``{email}``, ``{identity}``,
    ``{identity_kind}``, ``{contact_id}``, ``{conversation_id}``, ``{channel}``; empty = off."""
    fetch_secret: Secret | UnsetType = UNSET
    fetch_timeout_ms: Int32 | UnsetType = UNSET
    fetch_cache_seconds: Int32 | UnsetType = UNSET
    push_url: Url | UnsetType = UNSET
    push_secret: Secret | UnsetType = UNSET
    bitrix_url: Url | UnsetType = UNSET
    bitrix_entity: Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)] | UnsetType = UNSET
    bitrix_user_id: Int32 | UnsetType = UNSET


class CrmSettingsOut(msgspec.Struct, kw_only=True):
    fetch_url: str
    fetch_secret_set: bool
    fetch_timeout_ms: int
    fetch_cache_seconds: int
    push_url: str
    push_secret_set: bool
    push_subscription_id: int | None
    """The webhook subscription carrying the pushes (its delivery log is the push log)."""
    bitrix_url: str
    """With the token hidden."""
    bitrix_entity: str
    bitrix_user_id: int
    bitrix_subscription_id: int | None


class CrmCardField(msgspec.Struct, kw_only=True):
    label: str
    value: str


class CrmCard(msgspec.Struct, kw_only=True):
    title: str
    url: str
    fields: list[CrmCardField]


class CrmCardOut(msgspec.Struct, kw_only=True):
    status: str
    """``ok``; ``off`` (no card URL configured); ``unavailable`` (the CRM failed: timeout, error,
    not JSON — logged on the server)."""
    card: CrmCard | None
    cached: bool


class CrmSettingsController(Controller):
    path = "/api/v1/admin/crm"
    dependencies = DEPS

    @get("/", responses=READ)
    async def get_crm(self, who: Principal, services: Services) -> CrmSettingsOut:
        check_role(who, m.Role.ADMIN)
        async with services.db.transaction() as session:
            return out(crm.settings_dict(await crm.get_settings(session)), CrmSettingsOut)

    @put("/", responses=WRITE)
    async def update_crm(self, who: Principal, services: Services, data: CrmSettingsIn) -> CrmSettingsOut:
        async with services.db.transaction() as session:
            row = await crm.check_update_settings(session, who, given(data))
            return out(crm.settings_dict(row), CrmSettingsOut)


class CrmCardController(Controller):
    path = "/api/v1/conversations/{conversation_id:int}/crm-card"
    dependencies = DEPS

    @get("/", responses=READ)
    async def crm_card(self, who: Principal, services: Services, conversation_id: Id) -> CrmCardOut:
        return out(await crm.card_for(services.db, who, conversation_id), CrmCardOut)


CONTROLLERS = [CrmSettingsController, CrmCardController]
