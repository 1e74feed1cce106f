"""REST API of the contacts workspace (beside search/create/edit in ``omni.api.admin_channels``):

* ``POST /api/v1/contacts/{id}/merge`` ``{"other_id": N}``: contact N joins contact ``id`` (its
  conversations, identities, tags and card fields move over; N is deleted; audited);
* ``POST /api/v1/contacts/{id}/blacklist`` ``{"blacklisted": true, "reason": "..."}``: put a
  contact on the blacklist or take them off (operators may only add), the reason audited.

Exports of the contacts go through the report exports (``POST /api/v1/reports/contacts/exports``,
``omni.domain.reports.contacts``); erasing personal data is ``POST /api/v1/admin/contacts/{id}/erase``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, post

from omni.api.admin_bodies import RowId
from omni.api.admin_responses import WRITE, ContactDetailOut, out
from omni.api.contracts import NO_NUL, IntId
from omni.api.core import DEPS
from omni.domain import contacts, masking
from omni.domain.auth import Principal
from omni.services import Services

Reason = Annotated[str, msgspec.Meta(max_length=contacts.BLACKLIST_REASON_MAX, pattern=NO_NUL)]


class ContactMergeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    other_id: IntId
    """The contact that joins this one and is then deleted."""


class ContactBlacklistIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    blacklisted: bool = True
    reason: Reason = ""


class ContactWorkspaceController(Controller):
    path = "/api/v1/contacts"
    dependencies = DEPS

    @post("/{contact_id:int}/merge", status_code=200, responses=WRITE)
    async def merge_contacts(
        self, who: Principal, services: Services, contact_id: RowId, data: ContactMergeIn
    ) -> ContactDetailOut:
        """Admins and supervisors (over contacts they both see). 422 on ``other_id`` when it is
        this contact, unknown, out of scope or erased."""
        async with services.db.transaction() as session:
            keep = await contacts.check_merge_contacts(session, who, contact_id, data.other_id)
            masker = await masking.masker_for(session, who)
            return out(masker.payload(await contacts.contact_detail(session, keep)), ContactDetailOut)

    @post("/{contact_id:int}/blacklist", status_code=200, responses=WRITE)
    async def set_blacklisted(
        self, who: Principal, services: Services, contact_id: RowId, data: ContactBlacklistIn
    ) -> ContactDetailOut:
        async with services.db.transaction() as session:
            contact = await contacts.check_set_contact_blacklisted(
                session, who, contact_id, blacklisted=data.blacklisted, reason=data.reason
            )
            masker = await masking.masker_for(session, who)
            return out(masker.payload(await contacts.contact_detail(session, contact)), ContactDetailOut)


CONTROLLERS = [ContactWorkspaceController]
