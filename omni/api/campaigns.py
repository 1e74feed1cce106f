"""REST API of outbound campaigns: ``/api/v1/campaigns``.

Handlers only translate HTTP to ``omni.domain.outbound.campaigns``, which checks roles, scope
and input and writes the audit record; one transaction per request, so a refusal stores
nothing. Bodies are bounded by their columns here (a 400 naming the field); the domain's own
checks answer 422 with ``field`` and every problem in ``errors``. ``PUT /{id}`` changes the
fields it is given (the rest keep their values), like the admin API's ``PATCH``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.params import QueryParameter
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import Limit, RowId, Script, given
from omni.api.admin_responses import READ, REMOVE, WRITE, JsonObject, OkOut, out, out_list
from omni.api.contracts import NO_NUL, Int32, Name, Text
from omni.api.core import DEPS
from omni.db.models.outbound import CampaignState
from omni.domain.auth import Principal
from omni.domain.outbound import campaigns
from omni.services import Services

StateName = Literal["draft", "running", "paused", "finished"]
ChannelName = Literal["voice", "telegram"]
Template = Annotated[str, msgspec.Meta(max_length=100_000, pattern=NO_NUL)]
"""A Telegram message template (the domain allows 4,096 characters: Telegram's limit)."""
Span = tuple[Name, Name]


# --- bodies -------------------------------------------------------------------------------


class CallerIdIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    number: Name
    region: Name | UnsetType = UNSET
    """``RU`` or ``RU-MOW``: the engine prefers a number of the customer's region."""
    active: bool | UnsetType = UNSET


class CampaignResultCodeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    result_code_id: Int32
    action: Name
    """retry | dnc | finish | callback"""
    retry_minutes: Int32 | UnsetType | None = UNSET
    """``retry`` only: minutes until the next attempt."""
    global_dnc: bool | UnsetType = UNSET
    """``dnc`` only: the global list instead of the campaign's."""


class EscalationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Not read (``unread_minutes``) or not answered (``unanswered_minutes``) in time → a call
    attempt in the voice campaign ``campaign_id``."""

    campaign_id: Int32 | UnsetType = UNSET
    unread_minutes: Int32 | UnsetType = UNSET
    unanswered_minutes: Int32 | UnsetType = UNSET


class CampaignUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    queue_id: Int32 | UnsetType = UNSET
    operator_ids: list[Int32] | UnsetType = UNSET
    channel: Name | UnsetType = UNSET
    dial_mode: Name | UnsetType = UNSET
    inbox_id: Int32 | UnsetType | None = UNSET
    priority: Int32 | UnsetType = UNSET
    timezone: Name | UnsetType = UNSET
    default_region: Name | UnsetType = UNSET
    schedule: dict[Name, list[Span]] | UnsetType = UNSET
    """Windows in the customer's local time by ISO weekday: ``{"1": [["09:00", "21:00"]]}``."""
    holidays: list[Name] | UnsetType = UNSET
    calendar_ids: list[Int32] | UnsetType = UNSET
    """Shared holiday calendars (``/api/v1/admin/calendars``) whose days off have no calls."""
    starts_on: Name | UnsetType | None = UNSET
    ends_on: Name | UnsetType | None = UNSET
    max_attempts: Int32 | UnsetType = UNSET
    retry_rules: dict[Name, Name | list[Int32]] | UnsetType = UNSET
    """Minutes per outcome: ``{"busy": "15;60;1440", "no_answer": [60, 240]}``."""
    max_concurrency: Int32 | UnsetType = UNSET
    preview_seconds: Int32 | UnsetType = UNSET
    preview_auto_dial: bool | UnsetType = UNSET
    ring_seconds: Int32 | UnsetType = UNSET
    script: Script | UnsetType = UNSET
    message_template: Template | UnsetType = UNSET
    escalation: EscalationIn | UnsetType | None = UNSET
    predial_url: Text | UnsetType = UNSET
    predial_timeout_ms: Int32 | UnsetType = UNSET
    predial_on_timeout: Name | UnsetType = UNSET
    inbound_priority: bool | UnsetType = UNSET
    target_abandon_pct: float | UnsetType = UNSET
    """Predictive: the drop rate (% of answered calls) the pacing keeps under; default 3."""
    max_lines_per_operator: float | UnsetType = UNSET
    drop_seconds: Int32 | UnsetType = UNSET
    drop_prompt_id: Int32 | UnsetType | None = UNSET
    drop_text: Script | UnsetType = UNSET
    amd_enabled: bool | UnsetType = UNSET
    machine_action: Name | UnsetType = UNSET
    """``retry`` or ``message`` (leave ``machine_prompt_id``/``machine_text``)."""
    machine_prompt_id: Int32 | UnsetType | None = UNSET
    machine_text: Script | UnsetType = UNSET
    scenario: Name | UnsetType = UNSET
    """Agentless: the published voice scenario an answered call runs."""
    caller_ids: list[CallerIdIn] | UnsetType = UNSET
    result_codes: list[CampaignResultCodeIn] | UnsetType = UNSET


class CampaignCreate(CampaignUpdate, kw_only=True):
    name: Name
    queue_id: Int32


class StateIn(msgspec.Struct, forbid_unknown_fields=True):
    state: StateName


class ResultCodesIn(msgspec.Struct, forbid_unknown_fields=True):
    result_codes: list[CampaignResultCodeIn]


# --- answers ------------------------------------------------------------------------------


class CallerIdOut(msgspec.Struct):
    number: str
    region: str
    active: bool
    last_used_at: str | None


class CampaignResultCodeOut(msgspec.Struct):
    result_code_id: int
    code: str
    name: str
    action: str
    retry_minutes: int | None
    global_dnc: bool


class CampaignOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    state: str
    channel: str
    dial_mode: str
    queue_id: int
    inbox_id: int | None
    priority: int
    timezone: str
    default_region: str
    schedule: dict[str, list[list[str]]]
    holidays: list[str]
    calendar_ids: list[int]
    starts_on: str | None
    ends_on: str | None
    max_attempts: int
    retry_rules: dict[str, list[int]]
    max_concurrency: int
    preview_seconds: int
    preview_auto_dial: bool
    ring_seconds: int
    script: str
    message_template: str
    escalation: JsonObject | None
    predial_url: str
    predial_timeout_ms: int
    predial_on_timeout: str
    inbound_priority: bool
    target_abandon_pct: float
    max_lines_per_operator: float
    drop_seconds: int
    drop_prompt_id: int | None
    drop_text: str
    amd_enabled: bool
    machine_action: str
    machine_prompt_id: int | None
    machine_text: str
    scenario: str
    created_by: int | None
    created_at: str | None
    updated_at: str | None
    started_at: str | None
    finished_at: str | None
    operator_ids: list[int]
    caller_ids: list[CallerIdOut]
    result_codes: list[CampaignResultCodeOut]


# --- routes -------------------------------------------------------------------------------


class CampaignController(Controller):
    path = "/api/v1/campaigns"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_campaigns(
        self,
        who: Principal,
        services: Services,
        state_filter: Annotated[StateName | None, QueryParameter(name="state")] = None,
        channel: ChannelName | None = None,
        limit: Limit = 1000,
    ) -> list[CampaignOut]:
        """Campaigns the caller may read, highest priority first; ``state``/``channel`` filter."""
        async with services.db.transaction() as session:
            rows = await campaigns.list_campaigns(
                session, who, state=state_filter, channel=channel, limit=limit
            )
            return out_list([await campaigns.campaign_detail(session, c) for c in rows], CampaignOut)

    @post("/", responses=WRITE)
    async def create_campaign(self, who: Principal, services: Services, data: CampaignCreate) -> CampaignOut:
        async with services.db.transaction() as session:
            campaign = await campaigns.check_create_campaign(session, who, given(data))
            return out(await campaigns.campaign_detail(session, campaign), CampaignOut)

    @get("/{campaign_id:int}", responses=READ)
    async def get_campaign(self, who: Principal, services: Services, campaign_id: RowId) -> CampaignOut:
        async with services.db.transaction() as session:
            campaign = await campaigns.access_campaign(session, who, campaign_id)
            return out(await campaigns.campaign_detail(session, campaign), CampaignOut)

    @put("/{campaign_id:int}", responses=WRITE)
    async def update_campaign(
        self, who: Principal, services: Services, campaign_id: RowId, data: CampaignUpdate
    ) -> CampaignOut:
        async with services.db.transaction() as session:
            campaign = await campaigns.check_update_campaign(session, who, campaign_id, given(data))
            return out(await campaigns.campaign_detail(session, campaign), CampaignOut)

    @delete("/{campaign_id:int}", status_code=200, responses=REMOVE)
    async def delete_campaign(self, who: Principal, services: Services, campaign_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await campaigns.check_delete_campaign(session, who, campaign_id)
        return OkOut()

    @post("/{campaign_id:int}/state", status_code=200, responses=REMOVE)
    async def set_state(
        self, who: Principal, services: Services, campaign_id: RowId, data: StateIn
    ) -> CampaignOut:
        """Start (``running``), pause, resume or finish; 409 says why a change is refused."""
        async with services.db.transaction() as session:
            campaign = await campaigns.check_set_state(session, who, campaign_id, CampaignState(data.state))
            return out(await campaigns.campaign_detail(session, campaign), CampaignOut)

    @get("/{campaign_id:int}/result-codes", responses=READ)
    async def get_result_codes(
        self, who: Principal, services: Services, campaign_id: RowId
    ) -> list[CampaignResultCodeOut]:
        async with services.db.transaction() as session:
            campaign = await campaigns.access_campaign(session, who, campaign_id)
            return out_list(await campaigns.result_code_dicts(session, campaign.id), CampaignResultCodeOut)

    @put("/{campaign_id:int}/result-codes", responses=WRITE)
    async def set_result_codes(
        self, who: Principal, services: Services, campaign_id: RowId, data: ResultCodesIn
    ) -> list[CampaignResultCodeOut]:
        async with services.db.transaction() as session:
            campaign = await campaigns.check_set_result_codes(session, who, campaign_id, given(data))
            return out_list(await campaigns.result_code_dicts(session, campaign.id), CampaignResultCodeOut)


CONTROLLERS = [CampaignController]
