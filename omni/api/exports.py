"""Report exports over REST: start one, follow it, download the file.

* ``POST /api/v1/reports/{key}/exports?format=xlsx&<the report's filters>`` → 202 and the job;
* ``GET /api/v1/exports`` (the caller's own), ``GET /api/v1/exports/{id}``;
* ``GET /api/v1/exports/{id}/file`` → the file as an attachment (owner only, once done).

The job runs as a task of this process (``omni.domain.reports.exports.ExportRunner``, kept on the
app's state); its progress is pushed to the owner's sockets as an ``export`` message in the
``exports:{user_id}`` room of ``/operator`` and ``/supervisor``, and is readable with GET.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.response import Stream

from omni.api.contracts import Id
from omni.api.core import DEPS
from omni.api.deps import request_language
from omni.api.edge import REFUSALS
from omni.api.reports import REPORT_PARAMS
from omni.domain.auth import Principal
from omni.domain.reports import FilterParams
from omni.domain.reports import exports as ex
from omni.domain.reports.filters import report_reach
from omni.domain.reports.writers import CONTENT_TYPES, Format
from omni.realtime import NAMESPACES, rooms
from omni.services import Services

CHUNK = 64 * 1024


class ExportOut(msgspec.Struct):
    id: int
    report: str
    format: str
    state: str
    """queued | running | done | failed | expired."""
    rows_done: int
    rows_total: int | None
    file_name: str
    size: int
    error: str
    created_at: str
    finished_at: str | None
    expires_at: str | None


def runner(request: Request[Any, Any, Any], services: Services) -> ex.ExportRunner:
    """This app's export runner, made on first use; progress goes to the owner's sockets."""
    state = request.app.state
    found = state.get("export_runner")
    if isinstance(found, ex.ExportRunner):
        return found
    sio = state.get("sio")

    async def notify(user_id: int, data: dict[str, Any]) -> None:
        if sio is None:
            return
        for namespace in NAMESPACES:
            await sio.emit("export", data, to=rooms.exports(user_id), namespace=namespace)

    made = ex.ExportRunner(services.db, services.settings.data_dir / "exports", notify)
    state["export_runner"] = made
    return made


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as fh:
        while data := await fh.read(CHUNK):
            yield data


def _out(job: Any) -> ExportOut:
    return msgspec.convert(ex.export_dict(job), ExportOut)


class ExportController(Controller):
    dependencies = DEPS

    @post("/api/v1/reports/{key:str}/exports", status_code=202, dependencies=REPORT_PARAMS)
    async def start_export(
        self,
        request: Request[Any, Any, Any],
        who: Principal,
        services: Services,
        key: Annotated[str, Parameter(max_length=64)],
        format: Format = Format.XLSX,
        *,
        params: FilterParams,
    ) -> ExportOut:
        """Start exporting a report with these filters; the rows are the caller's, as on the page
        (every row: ``offset``/``limit`` are kept in the audit but not applied to a streamed export)."""
        who = dataclasses.replace(who, language=request_language(request))
        now = datetime.now(UTC)
        async with services.db.transaction() as session:
            await ex.purge_expired(session, now)
            job = await ex.check_start_export(session, who, key, params, format, now)
            out = _out(job)
        runner(request, services).start(job.id, who)
        return out

    @get("/api/v1/exports")
    async def list_exports(self, who: Principal, services: Services) -> list[ExportOut]:
        """The caller's own exports, newest first (others' are never listed)."""
        async with services.db.transaction() as session:
            await report_reach(session, who)
            return [_out(j) for j in await ex.own_exports(session, who)]

    @get("/api/v1/exports/{export_id:int}")
    async def get_export(self, who: Principal, services: Services, export_id: Id) -> ExportOut:
        async with services.db.transaction() as session:
            return _out(await ex.access_export(session, who, export_id))

    @get(
        "/api/v1/exports/{export_id:int}/file",
        responses={
            200: ResponseSpec(None, media_type="*/*", description="The CSV or XLSX file (attachment)"),
            404: REFUSALS[404],
        },
    )
    async def export_file(self, who: Principal, services: Services, export_id: Id) -> Response[Any]:
        async with services.db.transaction() as session:
            job, path = await ex.access_export_file(session, who, export_id)
        name = job.file_name
        ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
        headers = {
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
            "Content-Length": str(path.stat().st_size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        }
        return Stream(_chunks(path), media_type=CONTENT_TYPES[Format(job.format)], headers=headers)


CONTROLLERS = [ExportController]
