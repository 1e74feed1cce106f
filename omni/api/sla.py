"""REST of chat service levels and transcripts (``omni.domain.sla``, ``omni.domain.transcript``).

* ``GET /api/v1/admin/sla``: the policies of the queues the caller sees (admins, supervisors).
* ``PUT /api/v1/admin/sla/{queue_id}``: create or change a queue's policy (the admin form's
  twin); ``DELETE`` removes it. Audited in the domain.
* ``GET /api/v1/sla/open``: the running reply clocks the caller may see, soonest breach first
  (what the operator and supervisor lists sort and colour by; live changes come as
  ``sla.changed`` / ``sla.breached`` events).
* ``POST /api/v1/conversations/{id}/transcript``: mail the customer the conversation (to the
  given address, or the one on their card); 202 with the address.
* ``GET /api/v1/conversations/{id}/transcript.pdf``: the same transcript as a PDF (attachment).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.openapi import ResponseSpec
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import RowId, given
from omni.api.admin_responses import READ, REMOVE, WRITE, OkOut, out, out_list
from omni.api.contracts import Id
from omni.api.core import DEPS
from omni.db import models as m
from omni.domain import sla, transcript, transcript_pdf
from omni.domain.auth import Principal, check_role
from omni.services import Services

Seconds = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
"""Seconds; the domain names the field when out of range (0 = not measured)."""


class SlaPolicyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    first_response_seconds: Seconds | UnsetType = UNSET
    next_response_seconds: Seconds | UnsetType = UNSET
    warning_percent: Seconds | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    transcript_at_close: bool | UnsetType = UNSET


class SlaPolicyOut(msgspec.Struct, kw_only=True):
    queue_id: int
    first_response_seconds: int
    next_response_seconds: int
    warning_percent: int
    active: bool
    transcript_at_close: bool


class SlaTargetOut(msgspec.Struct, kw_only=True):
    id: int
    conversation_id: int
    queue_id: int | None
    user_id: int | None
    kind: str
    """``first`` (reply after being put in line) or ``next`` (reply after a customer message)."""
    started_at: str | None
    warning_at: str | None
    due_at: str | None
    breached_at: str | None
    replied_at: str | None
    ended_at: str | None
    state: str
    """ok | warning | breached (now)."""


class TranscriptIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    email: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    """Empty: the address on the customer's card."""


class TranscriptOut(msgspec.Struct, kw_only=True):
    to: str


class SlaAdminController(Controller):
    path = "/api/v1/admin/sla"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_sla_policies(self, who: Principal, services: Services) -> list[SlaPolicyOut]:
        check_role(who, m.Role.ADMIN, m.Role.SUPERVISOR)
        async with services.db.transaction() as session:
            rows = await sla.list_policies(session, who)
            return out_list([sla.policy_dict(p) for p in rows], SlaPolicyOut)

    @put("/{queue_id:int}", responses=WRITE)
    async def save_sla_policy(
        self, who: Principal, services: Services, queue_id: RowId, data: SlaPolicyIn
    ) -> SlaPolicyOut:
        async with services.db.transaction() as session:
            policy = await sla.check_save_policy(session, who, queue_id, given(data))
            return out(sla.policy_dict(policy), SlaPolicyOut)

    @delete("/{queue_id:int}", status_code=200, responses=REMOVE)
    async def delete_sla_policy(self, who: Principal, services: Services, queue_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await sla.check_delete_policy(session, who, queue_id)
        return OkOut()


class SlaController(Controller):
    path = "/api/v1"
    dependencies = DEPS

    @get("/sla/open", responses=READ)
    async def open_sla_targets(self, who: Principal, services: Services) -> list[SlaTargetOut]:
        async with services.db.transaction() as session:
            rows = await sla.open_targets(session, who)
            return out_list([sla.target_dict(t) for t in rows], SlaTargetOut)

    @post("/conversations/{conversation_id:int}/transcript", status_code=202, responses=WRITE)
    async def send_transcript(
        self, who: Principal, services: Services, conversation_id: Id, data: TranscriptIn
    ) -> TranscriptOut:
        async with services.db.transaction() as session:
            to = await transcript.check_request(
                session, who, conversation_id, data.email, services.settings.smtp
            )
        return TranscriptOut(to=to)

    @get(
        "/conversations/{conversation_id:int}/transcript.pdf",
        responses={**READ, 200: ResponseSpec(None, media_type="application/pdf", description="The PDF")},
    )
    async def download_transcript(
        self, who: Principal, services: Services, conversation_id: Id
    ) -> Response[bytes]:
        """What the customer was told (no notes), in their language and time zone; audited."""
        async with services.db.transaction() as session:
            said = await transcript_pdf.check_staff_pdf(session, who, conversation_id)
        pdf = await asyncio.to_thread(transcript_pdf.render, said)
        name = transcript_pdf.filename(conversation_id)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )


CONTROLLERS = [SlaAdminController, SlaController]
