"""REST of the retention policies and of erasing a contact (admins), in ``omni.api.admin`` style.

* ``GET/PUT /api/v1/admin/retention``: days each kind (messages, attachments, recordings,
  audit) is kept, ``null`` = forever, and what the last pass removed; ``PUT`` changes what it
  is given.
* ``POST /api/v1/admin/contacts/{id}/erase``: erase one contact's personal data on request
  (refused with 409 while one of its conversations is open); answers what was removed.

Handlers only translate HTTP to the domain (``omni.domain.retention``), which checks the role
and the input.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post, put
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import RowId, given
from omni.api.admin_responses import READ, WRITE, out
from omni.api.core import DEPS
from omni.db import models as m
from omni.domain import retention
from omni.domain.auth import Principal, check_role
from omni.services import Services

Days = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)] | None
"""Days kept; ``null`` keeps that kind forever. The domain names the field when out of range."""


class RetentionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    messages_days: Days | UnsetType = UNSET
    attachments_days: Days | UnsetType = UNSET
    recordings_days: Days | UnsetType = UNSET
    audit_days: Days | UnsetType = UNSET


class RetentionOut(msgspec.Struct, kw_only=True):
    messages_days: int | None
    attachments_days: int | None
    recordings_days: int | None
    audit_days: int | None
    last_run_at: str | None
    """When the last scheduled pass ran (ISO 8601), ``null`` before the first."""
    last_counts: dict[str, int]
    """What it removed, per kind with a policy."""


class ErasedOut(msgspec.Struct, kw_only=True):
    contact_id: int
    conversations: int
    messages: int
    attachments: int
    recordings: int
    events: int


class RetentionController(Controller):
    path = "/api/v1/admin/retention"
    dependencies = DEPS

    @get("/", responses=READ)
    async def get_retention(self, who: Principal, services: Services) -> RetentionOut:
        check_role(who, m.Role.ADMIN, m.Role.AUDITOR)
        async with services.db.transaction() as session:
            return out(retention.policies_dict(*await retention.get_policies(session)), RetentionOut)

    @put("/", responses=WRITE)
    async def update_retention(self, who: Principal, services: Services, data: RetentionIn) -> RetentionOut:
        sent = given(data)
        async with services.db.transaction() as session:
            await retention.check_update_policies(session, who, sent)
            return out(retention.policies_dict(*await retention.get_policies(session)), RetentionOut)


class ContactErasureController(Controller):
    path = "/api/v1/admin/contacts"
    dependencies = DEPS

    @post("/{contact_id:int}/erase", status_code=200, responses=WRITE)
    async def erase_contact(self, who: Principal, services: Services, contact_id: RowId) -> ErasedOut:
        async with services.db.transaction() as session:
            counts = await retention.check_erase_contact(session, who, contact_id, services.settings)
        return ErasedOut(contact_id=contact_id, **counts)


CONTROLLERS = [RetentionController, ContactErasureController]
