"""Scheduled report mailings over REST: ``/api/v1/report-schedules``.

Thin: bodies are bounded at the edge, ``omni.domain.reports.schedules`` checks roles, ownership
and every field (all problems at once) and writes the audit record; "send now" mails the report
as of now with the owner's scope (``omni.domain.reports.mailing.check_send_now``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import RowId, given
from omni.api.admin_responses import READ, REMOVE, WRITE, OkOut
from omni.api.contracts import INT32_MAX, NO_NUL, IntId
from omni.api.core import DEPS
from omni.domain.auth import Principal
from omni.domain.reports import Grouping, Preset
from omni.domain.reports import mailing as mail
from omni.domain.reports import schedules as sched
from omni.domain.reports.filters import DEFAULT_LIMIT, MAX_DURATION, MAX_LIMIT, MAX_QUERY
from omni.services import Services

Key = Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
Word = Annotated[str, msgspec.Meta(max_length=16, pattern=NO_NUL)]
Address = Annotated[str, msgspec.Meta(max_length=320, pattern=NO_NUL)]
Ids = Annotated[list[IntId], msgspec.Meta(max_length=200)]
Channels = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL)]], msgspec.Meta(max_length=50)
]
Recipients = Annotated[list[Address], msgspec.Meta(max_length=100)]
Weekday = Annotated[int, msgspec.Meta(ge=0, le=6)]
DayOfMonth = Annotated[int, msgspec.Meta(ge=1, le=31)]


class FiltersIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The report's filter as chosen (``FilterParams``): a preset is resolved at each send."""

    preset: Preset | None = None
    since: date | None = None
    until: date | None = None
    grouping: Grouping = Grouping.DAY
    queue_ids: Ids = msgspec.field(default_factory=list)
    group_ids: Ids = msgspec.field(default_factory=list)
    user_ids: Ids = msgspec.field(default_factory=list)
    channels: Channels = msgspec.field(default_factory=list)
    inbox_ids: Ids = msgspec.field(default_factory=list)
    result_code_ids: Ids = msgspec.field(default_factory=list)
    label_ids: Ids = msgspec.field(default_factory=list)
    q: Annotated[str, msgspec.Meta(max_length=MAX_QUERY)] = ""
    min_duration: Annotated[int, msgspec.Meta(ge=0, le=MAX_DURATION)] | None = None
    max_duration: Annotated[int, msgspec.Meta(ge=0, le=MAX_DURATION)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    target_sl: Annotated[float, msgspec.Meta(ge=1, le=99.9)] | None = None
    """The staffing forecast's options (``REPORT_OPTIONS``); ``None`` = the report's default."""
    interval_minutes: Annotated[int, msgspec.Meta(ge=15, le=30)] | None = None
    weeks: Annotated[int, msgspec.Meta(ge=1, le=52)] | None = None
    max_occupancy: Annotated[float, msgspec.Meta(ge=1, le=100)] | None = None
    chat_concurrency: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None


class ScheduleUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    report_key: Key | UnsetType = UNSET
    filters: FiltersIn | UnsetType = UNSET
    format: Word | UnsetType = UNSET
    frequency: Word | UnsetType = UNSET
    weekday: Weekday | UnsetType | None = UNSET
    day_of_month: DayOfMonth | UnsetType | None = UNSET
    send_time: Word | UnsetType = UNSET
    recipients: Recipients | UnsetType = UNSET
    language: Word | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ScheduleCreate(ScheduleUpdate, forbid_unknown_fields=True, kw_only=True):
    report_key: Key
    recipients: Recipients
    send_time: Word = "08:00"


class ScheduleOut(msgspec.Struct):
    id: int
    owner_id: int
    report_key: str
    filters: dict[str, Any]
    format: str
    frequency: str
    weekday: int | None
    day_of_month: int | None
    send_time: str
    recipients: list[str]
    language: str
    active: bool
    next_run_at: str | None
    last_sent_at: str | None
    last_error: str | None
    failures: int


class SendOut(msgspec.Struct):
    sent: bool
    error: str | None
    schedule: ScheduleOut


def _out(row: Any) -> ScheduleOut:
    return msgspec.convert(sched.schedule_dict(row), ScheduleOut)


ReportKey = Annotated[str | None, Parameter(max_length=64, pattern=NO_NUL)]


class ReportScheduleController(Controller):
    path = "/api/v1/report-schedules"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_schedules(
        self, who: Principal, services: Services, report: ReportKey = None
    ) -> list[ScheduleOut]:
        async with services.db.transaction() as session:
            return [_out(r) for r in await sched.list_schedules(session, who, report_key=report)]

    @post("/", responses=WRITE)
    async def create_schedule(self, who: Principal, services: Services, data: ScheduleCreate) -> ScheduleOut:
        async with services.db.transaction() as session:
            row = await sched.check_create_schedule(session, who, given(data), datetime.now(UTC))
            return _out(row)

    @get("/{schedule_id:int}", responses=READ)
    async def get_schedule(self, who: Principal, services: Services, schedule_id: RowId) -> ScheduleOut:
        async with services.db.transaction() as session:
            return _out(await sched.access_schedule(session, who, schedule_id))

    @patch("/{schedule_id:int}", responses=WRITE)
    async def update_schedule(
        self, who: Principal, services: Services, schedule_id: RowId, data: ScheduleUpdate
    ) -> ScheduleOut:
        async with services.db.transaction() as session:
            row = await sched.check_update_schedule(session, who, schedule_id, given(data), datetime.now(UTC))
            return _out(row)

    @delete("/{schedule_id:int}", responses=REMOVE, status_code=200)
    async def delete_schedule(self, who: Principal, services: Services, schedule_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await sched.check_delete_schedule(session, who, schedule_id)
        return OkOut()

    @post("/{schedule_id:int}/send", responses=WRITE, status_code=200)
    async def send_now(self, who: Principal, services: Services, schedule_id: RowId) -> SendOut:
        settings = services.settings
        outcome = await mail.check_send_now(
            services.db, settings.smtp, settings.public_base_url, who, schedule_id
        )
        async with services.db.transaction() as session:
            row = await sched.access_schedule(session, who, schedule_id)
            return SendOut(sent=outcome.sent, error=outcome.error, schedule=_out(row))


CONTROLLERS = [ReportScheduleController]
