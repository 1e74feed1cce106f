"""REST of per-role grants, masked webhooks (admins) and revealing a contact's data.

* ``GET /api/v1/admin/grants``: every grant with its label, and each editable role (supervisor,
  operator, auditor) with the grants it holds and those an admin may change for it.
* ``PUT /api/v1/admin/grants/{role}``: ``{"grants": {"call.barge": false}}`` turns grants off
  or back on for one role, ``"scopes": {"report.export": "own"}`` chooses the scope of a scoped
  grant; widening (``editable`` beyond the defaults) is at the scopes ``scope_choices`` lists
  (audited).
* ``GET/PUT /api/v1/admin/masked-webhooks``: the webhook subscriptions whose payloads carry
  masked phones and e-mails.
* ``POST /api/v1/contacts/{id}/reveal``: a masked reader with ``pii.reveal`` gets one contact's
  phone, e-mail and identities in full; every reveal is in the audit log.
* ``POST /api/v1/messages/{id}/reveal``: the same for one message a customer wrote (the phones
  and e-mails in its text), audited as ``message.reveal``.

Handlers translate HTTP to ``omni.domain.grants`` / ``omni.domain.masking``, which check the
role and the input.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post, put

from omni.api.admin_bodies import RowId
from omni.api.admin_responses import READ, WRITE, IdentityOut
from omni.api.core import DEPS
from omni.api.schemas import MessageOut
from omni.db import models as m
from omni.domain import grants, masking
from omni.domain.auth import Principal, check_role
from omni.i18n import Label
from omni.services import Services

GrantName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RoleName = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
ScopeName = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
WebhookId = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]


class GrantOut(msgspec.Struct, kw_only=True):
    name: str
    label: str
    """In the caller's language."""


class RoleGrantsOut(msgspec.Struct, kw_only=True):
    role: str
    label: str
    grants: dict[str, bool]
    """Every grant: whether the role holds it now."""
    editable: list[str]
    """The grants an admin may turn on or off for this role (the others it can never hold)."""
    scopes: dict[str, str] = {}
    """Scoped grants the role holds: ``own`` / ``group`` / ``all``."""
    scope_choices: dict[str, list[str]] = {}
    """Scoped grants: the scopes an admin may choose for this role."""


class GrantsOut(msgspec.Struct, kw_only=True):
    grants: list[GrantOut]
    roles: list[RoleGrantsOut]


class RoleGrantsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    grants: dict[GrantName, bool] = {}
    """Grant name → on/off; grants left out stay as they are."""
    scopes: dict[GrantName, ScopeName] = {}
    """Grant name → ``own`` / ``group`` / ``all`` (``scope_choices``); e.g. widen an operator's
    exports at ``own``: ``{"grants": {"report.export": true}, "scopes": {"report.export": "own"}}``."""


class MaskedWebhooksIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ids: Annotated[list[WebhookId], msgspec.Meta(max_length=1000)]


class MaskedWebhooksOut(msgspec.Struct, kw_only=True):
    ids: list[int]


class RevealOut(msgspec.Struct, kw_only=True):
    id: int
    phone: str | None
    email: str | None
    identities: list[IdentityOut]


async def _grants_out(services: Services, who: Principal) -> GrantsOut:
    async with services.db.transaction() as session:
        matrix = await grants.grant_matrix(session, who)
    lang = who.language
    return GrantsOut(
        grants=[GrantOut(name=g, label=grants.grant_label(g, lang)) for g in grants.GRANTS],
        roles=[
            RoleGrantsOut(
                role=r["role"],
                label=Label("role", r["role"]).show(lang),
                grants=r["grants"],
                editable=r["editable"],
                scopes=r["scopes"],
                scope_choices=r["scope_choices"],
            )
            for r in matrix
        ],
    )


class GrantsController(Controller):
    path = "/api/v1/admin/grants"
    dependencies = DEPS

    @get("/", responses=READ)
    async def get_grants(self, who: Principal, services: Services) -> GrantsOut:
        return await _grants_out(services, who)

    @put("/{role:str}", responses=WRITE)
    async def update_role_grants(
        self, who: Principal, services: Services, role: RoleName, data: RoleGrantsIn
    ) -> GrantsOut:
        async with services.db.transaction() as session:
            await grants.check_set_role_grants(session, who, role, data.grants, data.scopes)
        return await _grants_out(services, who)


class MaskedWebhooksController(Controller):
    path = "/api/v1/admin/masked-webhooks"
    dependencies = DEPS

    @get("/", responses=READ)
    async def get_masked_webhooks(self, who: Principal, services: Services) -> MaskedWebhooksOut:
        async with services.db.transaction() as session:
            check_role(who, m.Role.ADMIN)
            return MaskedWebhooksOut(ids=sorted(await grants.masked_webhook_ids(session)))

    @put("/", responses=WRITE)
    async def update_masked_webhooks(
        self, who: Principal, services: Services, data: MaskedWebhooksIn
    ) -> MaskedWebhooksOut:
        async with services.db.transaction() as session:
            ids = await grants.check_set_masked_webhooks(session, who, data.ids)
        return MaskedWebhooksOut(ids=sorted(ids))


class RevealController(Controller):
    path = "/api/v1/contacts"
    dependencies = DEPS

    @post("/{contact_id:int}/reveal", status_code=200, responses=WRITE)
    async def reveal_contact(self, who: Principal, services: Services, contact_id: RowId) -> RevealOut:
        """The contact's phone, e-mail and identities unmasked; audited as ``contact.reveal``."""
        async with services.db.transaction() as session:
            body = await masking.check_reveal_contact(session, who, contact_id)
        return msgspec.convert(body, RevealOut)


class MessageRevealController(Controller):
    path = "/api/v1/messages"
    dependencies = DEPS

    @post("/{message_id:int}/reveal", status_code=200, responses=WRITE)
    async def reveal_message(self, who: Principal, services: Services, message_id: RowId) -> MessageOut:
        """A customer's message with the phones and e-mails in it unmasked; audited as
        ``message.reveal``."""
        async with services.db.transaction() as session:
            body = await masking.check_reveal_message(session, who, message_id)
        return msgspec.convert(body, MessageOut)


CONTROLLERS = [GrantsController, MaskedWebhooksController, RevealController, MessageRevealController]
