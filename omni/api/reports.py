"""Reports over REST: the list of reports and one report by key with its filters.

Thin: query parameters become a ``FilterParams``; ``omni.domain.reports.run_params`` scopes it
to the caller and runs the report; the table comes back in the caller's language. Export,
mailing and the reports page take the same parameters (``report_params``, a dependency).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.params import Parameter

from omni.api.contracts import NO_NUL, IntId
from omni.api.core import DEPS
from omni.api.deps import request_language
from omni.domain import reports
from omni.domain.auth import Principal
from omni.domain.reports import FilterParams, Grouping, Preset
from omni.domain.reports.filters import (
    DEFAULT_LIMIT,
    MAX_DURATION,
    MAX_LIMIT,
    MAX_QUERY,
    report_reach,
    report_visible,
)
from omni.domain.reports.options import Option, report_options
from omni.i18n import keyed
from omni.services import Services

Value = str | float | bool | None
"""A cell. No ``int`` beside ``float``: the schema lists a union as ``oneOf``, and a whole number
matches both ``integer`` and ``number`` — a valid count would violate the schema. Whole numbers
still go out as JSON integers (``report_out``): an id of 7 must not become ``7.0``."""


class ColumnOut(msgspec.Struct):
    key: str
    kind: str
    title: str


class ChartOut(msgspec.Struct):
    kind: str
    x: str
    series: list[str]


class ReportOut(msgspec.Struct):
    key: str
    title: str
    columns: list[ColumnOut]
    rows: list[list[Value]]
    totals: list[Value] | None
    chart: ChartOut | None
    notes: list[str]
    total_rows: int | None


def report_out(body: dict[str, Any]) -> ReportOut:
    """``ReportTable.to_json`` as the response, built field by field: ``msgspec.convert`` would
    turn every whole number into a float (``Value`` has no ``int``), and ``/conversations/7.0``
    opens nothing."""
    chart = body["chart"]
    return ReportOut(
        key=body["key"],
        title=body["title"],
        columns=[ColumnOut(**c) for c in body["columns"]],
        rows=body["rows"],
        totals=body["totals"],
        chart=None if chart is None else ChartOut(**chart),
        notes=body["notes"],
        total_rows=body["total_rows"],
    )


class ReportInfoOut(msgspec.Struct):
    key: str
    title: str
    filters: list[str]
    paginated: bool


Ids = Annotated[list[IntId] | None, Parameter(max_items=200)]
Names = Annotated[list[Annotated[str, Parameter(max_length=32)]] | None, Parameter(max_items=50)]
Search = Annotated[
    str, Parameter(max_length=MAX_QUERY, pattern=NO_NUL, description="Contact name, phone or identity")
]
Seconds = Annotated[int | None, Parameter(ge=0, le=MAX_DURATION, description="Talk seconds")]
Offset = Annotated[int, Parameter(ge=0, le=10_000_000)]
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT)]
TargetSl = Annotated[
    float | None, Parameter(ge=1, le=99.9, description="Staffing: target service level, percent")
]
IntervalMinutes = Annotated[
    int | None, Parameter(ge=15, le=30, description="Staffing: interval length, 15 or 30 minutes")
]
Weeks = Annotated[int | None, Parameter(ge=1, le=52, description="Staffing: weeks of history for a forecast")]
MaxOccupancy = Annotated[float | None, Parameter(ge=1, le=100, description="Staffing: top occupancy, %")]
ChatConcurrency = Annotated[
    int | None, Parameter(ge=1, le=50, description="Staffing: chats an operator works at once")
]


def report_params(
    preset: Preset | None = None,
    since: date | None = None,
    until: date | None = None,
    grouping: Grouping = Grouping.DAY,
    queue: Ids = None,
    group: Ids = None,
    operator: Ids = None,
    channel: Names = None,
    inbox: Ids = None,
    result_code: Ids = None,
    label: Ids = None,
    q: Search = "",
    min_duration: Seconds = None,
    max_duration: Seconds = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    target_sl: TargetSl = None,
    interval_minutes: IntervalMinutes = None,
    weeks: Weeks = None,
    max_occupancy: MaxOccupancy = None,
    chat_concurrency: ChatConcurrency = None,
) -> FilterParams:
    """The filter from query parameters (the names the page and the docs use); the search,
    duration and page parameters only matter to the reports that offer them (contact history).

    A Litestar dependency (``REPORT_PARAMS``): every handler that takes a report's filters
    declares them once, here, and the OpenAPI schema still lists each query parameter."""
    return FilterParams(
        preset=preset,
        since=since,
        until=until,
        grouping=grouping,
        queue_ids=tuple(queue or ()),
        group_ids=tuple(group or ()),
        user_ids=tuple(operator or ()),
        channels=tuple(channel or ()),
        inbox_ids=tuple(inbox or ()),
        result_code_ids=tuple(result_code or ()),
        label_ids=tuple(label or ()),
        q=q,
        min_duration=min_duration,
        max_duration=max_duration,
        offset=offset,
        limit=limit,
        target_sl=target_sl,
        interval_minutes=interval_minutes,
        weeks=weeks,
        max_occupancy=max_occupancy,
        chat_concurrency=chat_concurrency,
    )


REPORT_PARAMS = {"params": Provide(report_params, sync_to_thread=False)}
"""``params: FilterParams`` for a handler, from the report filter query parameters."""


class ReportController(Controller):
    path = "/api/v1/reports"
    dependencies = DEPS

    @get("/")
    async def list_reports(
        self, request: Request[Any, Any, Any], who: Principal, services: Services
    ) -> list[ReportInfoOut]:
        """The reports the caller may run (at the ``own`` grant scope only ``OWN_REPORTS``)."""
        lang = request_language(request)
        async with services.db.transaction() as session:
            reach = await report_reach(session, who)
        return [
            ReportInfoOut(
                key=s.key,
                title=keyed(lang, f"rpt.{s.key}") or s.key,
                filters=list(s.filters),
                paginated=s.paginated,
            )
            for s in reports.ordered()
            if report_visible(s.key, s.roles, who, reach)
        ]

    @get("/{key:str}", dependencies=REPORT_PARAMS)
    async def run_report(
        self,
        request: Request[Any, Any, Any],
        who: Principal,
        services: Services,
        key: Annotated[str, Parameter(max_length=64)],
        params: FilterParams,
    ) -> ReportOut:
        async with services.db.transaction() as session:
            table = await reports.run_params(session, who, key, params, datetime.now(UTC))
        return report_out(table.to_json(request_language(request)))


class OptionOut(msgspec.Struct):
    id: int | str
    label: str
    channel: str | None = None
    """Inboxes: their channel."""
    code: str | None = None
    """Result codes: their code."""


class ReportOptionsOut(msgspec.Struct):
    queues: list[OptionOut]
    groups: list[OptionOut]
    operators: list[OptionOut]
    channels: list[OptionOut]
    inboxes: list[OptionOut]
    result_codes: list[OptionOut]


def _options_out(items: list[Option]) -> list[OptionOut]:
    return [
        OptionOut(id=o.id, label=o.label, channel=o.extra.get("channel"), code=o.extra.get("code"))
        for o in items
    ]


class ReportOptionsController(Controller):
    """The reports page's pickers, narrowed to what the caller may read."""

    path = "/api/v1/reports/options"
    dependencies = DEPS

    @get("/")
    async def report_options(
        self, request: Request[Any, Any, Any], who: Principal, services: Services
    ) -> ReportOptionsOut:
        lang = request_language(request)
        async with services.db.transaction() as session:
            found = await report_options(session, who, lang)
        return ReportOptionsOut(
            queues=_options_out(found.queues),
            groups=_options_out(found.groups),
            operators=_options_out(found.operators),
            channels=_options_out(found.channels),
            inboxes=_options_out(found.inboxes),
            result_codes=_options_out(found.result_codes),
        )


CONTROLLERS = [ReportController, ReportOptionsController]
