"""Call lists over REST: import a CSV/XLSX file into a campaign, add targets as JSON, read them.

* ``POST /api/v1/campaigns/{id}/imports?filename=list.csv`` with the raw file as the body (streamed
  to disk, never held in memory) → 201 and the pending import: sniffed columns, a sample and a
  guessed mapping;
* ``POST /api/v1/list-imports/{id}/preview`` {mapping} → the first rows as they would be imported;
* ``POST /api/v1/list-imports/{id}/start`` {mapping} → 202, the job runs on this node;
* ``GET /api/v1/list-imports/{id}``, ``POST …/cancel``, ``GET …/rejects`` (the refused rows CSV);
* ``GET /api/v1/campaigns/{id}/lists``, ``GET /api/v1/campaigns/{id}/targets?state=&list_id=``,
  ``POST /api/v1/campaigns/{id}/targets`` {targets: [...]}.

Admins, and supervisors for the campaigns of the queues in their scope (others get 404). The
job's progress is pushed to the importer's sockets as a ``list_import`` message in their
``exports:{user_id}`` room of ``/operator`` and ``/supervisor`` (as report exports do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Parameter, QueryParameter

from omni.api import files_http
from omni.api.contracts import NO_NUL, IntId, Name
from omni.api.core import DEPS
from omni.api.deps import request_language
from omni.api.edge import REFUSALS
from omni.db.models.outbound import TargetState
from omni.domain.auth import Principal
from omni.domain.files import save_upload_stream
from omni.domain.outbound import imports as im
from omni.realtime import NAMESPACES, rooms
from omni.services import Services

Column = Annotated[int, msgspec.Meta(ge=0, le=1000)]
FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL)]
Short = Annotated[str, msgspec.Meta(max_length=256, pattern=NO_NUL)]
Filename = Annotated[str, Parameter(min_length=1, max_length=256, pattern=NO_NUL)]
Offset = Annotated[int, Parameter(ge=0, le=10_000_000)]
Limit = Annotated[int, Parameter(ge=1, le=500)]


class MappingIn(msgspec.Struct, forbid_unknown_fields=True):
    """Columns by index (0-based): phone columns in the order they are tried, then the rest."""

    phones: Annotated[list[Column], msgspec.Meta(max_length=10)]
    name: Column | None = None
    timezone: Column | None = None
    tags: Column | None = None
    fields: Annotated[dict[FieldName, Column], msgspec.Meta(max_length=im.MAX_FIELDS)] = {}
    header: bool = True
    """The first row holds column titles (it is not imported)."""


class ColumnOut(msgspec.Struct):
    index: int
    title: str


class ImportOut(msgspec.Struct):
    id: int
    list_id: int
    campaign_id: int
    filename: str
    format: str
    state: str
    """pending (uploaded, waiting for the mapping) | running | done | failed | cancelled."""
    mapping: dict[str, Any]
    columns: list[ColumnOut]
    sample: list[list[str]]
    header: bool
    encoding: str
    delimiter: str
    bytes_total: int
    bytes_done: int
    rows_read: int
    rows_imported: int
    rows_invalid: int
    rows_duplicate: int
    rows_dnc: int
    has_rejects: bool
    cancel_requested: bool
    error: str
    created_at: str
    finished_at: str | None


class PreviewRowOut(msgspec.Struct):
    line: int
    cells: list[str]
    ok: bool
    reason: str
    phones: list[str]
    name: str
    timezone: str
    fields: dict[str, str]
    tags: list[str]


class PreviewOut(msgspec.Struct):
    mapping: dict[str, Any]
    rows: list[PreviewRowOut]


class ListOut(msgspec.Struct):
    id: int
    campaign_id: int
    name: str
    created_at: str
    targets: int
    by_state: dict[str, int]
    last_import: ImportOut | None


class TargetOut(msgspec.Struct):
    id: int
    campaign_id: int
    list_id: int | None
    name: str
    phone: str
    phones: list[str]
    phone_index: int
    timezone: str
    region: str
    fields: dict[str, Any]
    tags: list[Any]
    state: str
    attempts: int
    next_due_at: str | None
    last_outcome: str | None
    created_at: str


class TargetsPageOut(msgspec.Struct):
    total: int
    items: list[TargetOut]


class TargetItemIn(msgspec.Struct, forbid_unknown_fields=True):
    phones: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]], msgspec.Meta(max_length=10)
    ]
    name: Short = ""
    timezone: Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)] = ""
    fields: Annotated[
        dict[FieldName, Annotated[str, msgspec.Meta(max_length=im.MAX_CELL, pattern=NO_NUL)]],
        msgspec.Meta(max_length=im.MAX_FIELDS),
    ] = {}
    tags: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]],
        msgspec.Meta(max_length=im.MAX_TAGS),
    ] = []


class TargetsIn(msgspec.Struct, forbid_unknown_fields=True):
    targets: Annotated[list[TargetItemIn], msgspec.Meta(min_length=1, max_length=im.MAX_API_TARGETS)]
    list_name: Name = ""


class RefusedOut(msgspec.Struct):
    index: int
    reason: str


class TargetsAddedOut(msgspec.Struct):
    list_id: int
    imported: int
    duplicate: int
    invalid: int
    dnc: int
    refused: list[RefusedOut]


_FILE = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


@dataclass
class RawFileUpload(Operation):
    """The upload's body is the file itself (not JSON, not a form): documented here, since the
    handler streams ``request.stream()`` instead of declaring ``data``."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={media: OpenAPIMediaType(schema=_FILE) for media in ("text/csv", *_OTHER_TYPES)},
            description="The list file: CSV (UTF-8, UTF-8 with BOM or cp1251) or XLSX",
            required=True,
        )


_OTHER_TYPES = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
)


def runner(request: Request[Any, Any, Any], services: Services) -> im.ImportRunner:
    """This app's import runner, made on first use; progress goes to the importer's sockets."""
    state = request.app.state
    found = state.get("import_runner")
    if isinstance(found, im.ImportRunner):
        return found
    sio = state.get("sio")

    async def notify(user_id: int, data: dict[str, Any]) -> None:
        if sio is None:
            return
        for namespace in NAMESPACES:
            await sio.emit("list_import", data, to=rooms.exports(user_id), namespace=namespace)

    made = im.ImportRunner(services.db, services.settings.data_dir, notify)
    state["import_runner"] = made
    return made


def _mapping(data: MappingIn) -> dict[str, Any]:
    return msgspec.to_builtins(data)  # type: ignore[no-any-return]  # a Struct → a dict


def _import_out(job: Any, campaign_id: int, lang: str) -> ImportOut:
    return msgspec.convert(im.import_dict(job, campaign_id, lang), ImportOut)


class ListController(Controller):
    dependencies = DEPS

    @post(
        "/api/v1/campaigns/{campaign_id:int}/imports",
        status_code=201,
        request_max_body_size=im.MAX_BYTES + 64 * 1024,
        operation_class=RawFileUpload,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        who: Principal,
        services: Services,
        campaign_id: IntId,
        filename: Filename = "list.csv",
    ) -> ImportOut:
        """Upload a list file (CSV in UTF-8, UTF-8 with BOM or cp1251; or XLSX) as the raw request
        body; the answer carries its sniffed columns, a sample and a guessed mapping."""
        async with services.db.transaction() as session:
            await im.access_campaign(session, who, campaign_id)  # before reading a byte of it

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in request.stream():
                if chunk:
                    yield chunk

        stored = await save_upload_stream(
            data_dir=services.settings.data_dir,
            owner=f"user:{who.id}",
            name=filename,
            content_type=request.headers.get("content-type", "application/octet-stream")[:128],
            chunks=chunks(),
            max_bytes=im.MAX_BYTES,
        )
        async with services.db.transaction() as session:
            job = await im.check_create_import(session, who, campaign_id, stored)
            return _import_out(job, campaign_id, request_language(request))

    @get("/api/v1/list-imports/{import_id:int}")
    async def get_import(
        self, request: Request[Any, Any, Any], who: Principal, services: Services, import_id: IntId
    ) -> ImportOut:
        async with services.db.transaction() as session:
            job, call_list, _campaign = await im.access_import(session, who, import_id)
            await im.fail_stale_imports(session, datetime.now(UTC), job_id=job.id)
            await session.refresh(job)
            return _import_out(job, call_list.campaign_id, request_language(request))

    @post("/api/v1/list-imports/{import_id:int}/preview", status_code=200)
    async def preview(
        self, who: Principal, services: Services, import_id: IntId, data: MappingIn
    ) -> PreviewOut:
        """The first rows of the file as the import would store them with this mapping."""
        async with services.db.transaction() as session:
            return msgspec.convert(await im.preview(session, who, import_id, _mapping(data)), PreviewOut)

    @post("/api/v1/list-imports/{import_id:int}/start", status_code=202)
    async def start(
        self,
        request: Request[Any, Any, Any],
        who: Principal,
        services: Services,
        import_id: IntId,
        data: MappingIn,
    ) -> ImportOut:
        """Start importing with this mapping; follow it with GET or the ``list_import`` socket message."""
        async with services.db.transaction() as session:
            job = await im.check_start_import(session, who, import_id, _mapping(data))
            call_list_campaign = (await im.access_import(session, who, import_id))[1].campaign_id
            out = _import_out(job, call_list_campaign, request_language(request))
        runner(request, services).start(import_id)
        return out

    @post("/api/v1/list-imports/{import_id:int}/cancel", status_code=200)
    async def cancel(
        self, request: Request[Any, Any, Any], who: Principal, services: Services, import_id: IntId
    ) -> ImportOut:
        """Stop after the current batch; the rows imported so far stay."""
        async with services.db.transaction() as session:
            job = await im.check_cancel_import(session, who, import_id)
            campaign_id = (await im.access_import(session, who, import_id))[1].campaign_id
            return _import_out(job, campaign_id, request_language(request))

    @get(
        "/api/v1/list-imports/{import_id:int}/rejects",
        responses={
            200: ResponseSpec(None, media_type="text/csv", description="The refused rows with the reason"),
            404: REFUSALS[404],
        },
    )
    async def rejects(self, who: Principal, services: Services, import_id: IntId) -> Response[Any]:
        async with services.db.transaction() as session:
            stored = await im.access_rejects_file(session, who, import_id)
        return files_http.serve(stored)

    @get("/api/v1/campaigns/{campaign_id:int}/lists")
    async def lists(
        self, request: Request[Any, Any, Any], who: Principal, services: Services, campaign_id: IntId
    ) -> list[ListOut]:
        """The campaign's lists, newest first, with their targets by state and their last import."""
        async with services.db.transaction() as session:
            rows = await im.campaign_lists(session, who, campaign_id, request_language(request))
        return msgspec.convert(rows, list[ListOut])

    @get("/api/v1/campaigns/{campaign_id:int}/targets")
    async def targets(
        self,
        who: Principal,
        services: Services,
        campaign_id: IntId,
        target_state: Annotated[TargetState | None, QueryParameter(name="state")] = None,
        list_id: Annotated[int | None, Parameter(ge=1, le=2**31 - 1)] = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> TargetsPageOut:
        """A page of the campaign's targets in the order they were added."""
        async with services.db.transaction() as session:
            total, rows = await im.campaign_targets(
                session,
                who,
                campaign_id,
                state=target_state.value if target_state else None,
                list_id=list_id,
                offset=offset,
                limit=limit,
            )
        return TargetsPageOut(total=total, items=msgspec.convert(rows, list[TargetOut]))

    @post("/api/v1/campaigns/{campaign_id:int}/targets", status_code=201)
    async def add_targets(
        self, who: Principal, services: Services, campaign_id: IntId, data: TargetsIn
    ) -> TargetsAddedOut:
        """Add targets as JSON (a new list): normalised to E.164, de-duplicated inside the request
        and against the campaign, DNC-marked; refused items come back with their index and reason."""
        items = [
            im.TargetIn(phones=t.phones, name=t.name, timezone=t.timezone, fields=t.fields, tags=t.tags)
            for t in data.targets
        ]
        async with services.db.transaction() as session:
            out = await im.check_add_targets(
                session, services.db.is_sqlite, who, campaign_id, items, data.list_name
            )
        return msgspec.convert(out, TargetsAddedOut)


CONTROLLERS = [ListController]
