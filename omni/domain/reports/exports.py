"""Report exports: any registered report to a CSV or XLSX file, in the background, with progress.

``check_start_export`` stores a job (``report_exports``) and audits the request; the transport
then runs ``run_export`` as a task of the same process (``ExportRunner``). Jobs survive nothing:
a restart ends the running ones, which are then shown as failed ("interrupted") once their
heartbeat (``updated_at``, touched every batch) is older than ``STALE_AFTER``; the user asks again.

The rows are the report's own over the caller's scope (``resolve_scope``, exactly as the page
reads it), written as they come (``writers``): reports with a ``stream`` runner (contact history)
are read from a server-side cursor, so 100,000 rows are never in memory at once. Writing a batch
is CPU work (openpyxl) and runs in a worker thread, so the event loop keeps serving. The file
lives under ``<data_dir>/exports`` until ``EXPIRES_AFTER`` (``purge_expired``); only its owner
reads the job or downloads the file (anyone else gets 404, as if there were none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, NotFound
from omni.domain.reports.config import get_config
from omni.domain.reports.filters import (
    FilterParams,
    Scope,
    check_report_in_reach,
    report_reach,
    resolve_scope,
)
from omni.domain.reports.registry import ReportSpec, get
from omni.domain.reports.table import Cell, ReportTable
from omni.domain.reports.writers import Format, finish, open_writer
from omni.i18n import keyed

log = logging.getLogger(__name__)

BATCH = 1000
"""Rows written (in a thread) between two progress reports."""
PAGE = 2000
"""On SQLite (one transaction at a time for the whole app) a streamed report is read page by
page in short transactions instead of one long cursor."""
MAX_RUNNING = 2
"""Exports one user may have queued or running at once."""
STALE_AFTER = timedelta(minutes=5)
EXPIRES_AFTER = timedelta(hours=24)
ACTIVE = ("queued", "running")

Notify = Callable[[int, dict[str, Any]], Awaitable[None]]
"""``notify(user_id, progress)``: the transport pushes the progress to that user's sockets."""


def export_dict(job: m.ReportExport, now: datetime | None = None) -> dict[str, Any]:
    """A job as the owner sees it (REST and the ``export`` socket message)."""
    state = _state(job, now or datetime.now(UTC))
    return {
        "id": job.id,
        "report": job.report,
        "format": job.format,
        "state": state,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "file_name": job.file_name,
        "size": job.size,
        "error": job.error if state != "failed" or job.error else "interrupted",
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "expires_at": job.expires_at.isoformat() if job.expires_at else None,
    }


def _state(job: m.ReportExport, now: datetime) -> str:
    if job.state in ACTIVE and job.updated_at < now - STALE_AFTER:
        return "failed"  # its process is gone (restart, crash): it will never finish
    return job.state


def file_name(key: str, params: FilterParams, fmt: Format, tz: Any, now: datetime) -> str:
    """``contact_history_2026-03-01_2026-03-31.xlsx``: ASCII, so every browser keeps it."""
    period = params.resolve(tz, now).period
    days = f"{period.first_day.isoformat()}_{period.last_day.isoformat()}"
    if period.first_day == period.last_day:
        days = period.first_day.isoformat()
    return f"{key}_{days}.{fmt.value}"


async def check_start_export(
    session: AsyncSession, who: Principal, key: str, params: FilterParams, fmt: Format, now: datetime
) -> m.ReportExport:
    """Validate the request (reader, report, filters), store the job and audit it."""
    reach = await report_reach(session, who, export=True)
    spec = get(key)
    check_report_in_reach(spec.key, reach, who, spec.roles)
    config = await get_config(session)
    name = file_name(spec.key, params, fmt, config.tz, now)  # validates the filters
    running = await session.scalar(
        select(func.count(m.ReportExport.id)).where(
            m.ReportExport.user_id == who.id,
            m.ReportExport.state.in_(ACTIVE),
            m.ReportExport.updated_at >= now - STALE_AFTER,
        )
    )
    if (running or 0) >= MAX_RUNNING:
        raise Conflict("{count} exports are still running: wait until one is done", count=running)
    filters = params.to_json()
    job = m.ReportExport(
        user_id=who.id,
        report=spec.key,
        format=fmt.value,
        filters=filters,
        language=who.language,
        state="queued",
        rows_done=0,
        file_name=name,
        path="",
        size=0,
        error="",
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    audit.record(
        session,
        who,
        "report.export",
        object_type="report_export",
        object_id=job.id,
        data={"report": spec.key, "format": fmt.value, "filters": filters},
    )
    return job


async def access_export(session: AsyncSession, who: Principal, export_id: int) -> m.ReportExport:
    """The caller's own export, or 404 (someone else's is not revealed)."""
    await report_reach(session, who)
    job = await session.get(m.ReportExport, export_id)
    if job is None or job.user_id != who.id:
        raise NotFound("export {export_id} not found", export_id=export_id)
    return job


async def own_exports(session: AsyncSession, who: Principal, limit: int = 50) -> list[m.ReportExport]:
    rows = await session.scalars(
        select(m.ReportExport)
        .where(m.ReportExport.user_id == who.id)
        .order_by(m.ReportExport.id.desc())
        .limit(limit)
    )
    return list(rows)


async def access_export_file(
    session: AsyncSession, who: Principal, export_id: int
) -> tuple[m.ReportExport, Path]:
    """The finished file of the caller's own export; 404 while it runs, after it failed or expired."""
    job = await access_export(session, who, export_id)
    path = Path(job.path) if job.path else None
    if _state(job, datetime.now(UTC)) != "done" or path is None or not await anyio.Path(path).is_file():
        raise NotFound("export {export_id} has no file yet, or no more", export_id=export_id)
    return job, path


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    """Delete the files of expired exports (the rows stay, as ``expired``, for the audit trail)."""
    jobs = (
        await session.scalars(
            select(m.ReportExport).where(m.ReportExport.state == "done", m.ReportExport.expires_at < now)
        )
    ).all()
    for job in jobs:
        if job.path:
            await anyio.Path(job.path).unlink(missing_ok=True)
        job.state = "expired"
        job.path = ""
    return len(jobs)


async def _progress(db: Database, job_id: int, notify: Notify | None, **values: Any) -> None:
    async with db.transaction() as session:
        job = await session.get(m.ReportExport, job_id)
        if job is None:  # its user was deleted meanwhile
            return
        for name, value in values.items():
            setattr(job, name, value)
        job.updated_at = datetime.now(UTC)
        data = export_dict(job)
        user_id = job.user_id
    if notify is not None:
        try:
            await notify(user_id, data)
        except Exception:  # a socket problem must not fail the export: GET still shows it
            log.exception("export %s: progress push failed", job_id)


async def _rows(
    db: Database, spec: ReportSpec, scope: Scope, table: ReportTable
) -> AsyncIterator[list[Cell]]:
    if spec.stream is None:
        for row in table.rows:
            yield row
        if table.totals is not None:
            yield table.totals
        return
    if not db.is_sqlite:
        async with db.transaction() as session:
            async for row in spec.stream(session, scope):
                yield row
        return
    offset = 0
    while True:
        async with db.transaction() as session:
            paged = replace(scope, filter=replace(scope.filter, offset=offset, limit=PAGE))
            page = await spec.run(session, paged)
        for row in page.rows:
            yield row
        if len(page.rows) < PAGE:
            return
        offset += PAGE


@dataclass
class _Job:
    spec: ReportSpec
    fmt: Format
    lang: str
    scope: Scope
    table: ReportTable
    total: int | None
    title: str


async def _prepare(db: Database, export_id: int, reader: Principal) -> _Job | None:
    """The job's report over the owner's scope: its columns, and its rows unless it streams."""
    async with db.transaction() as session:
        job = await session.get(m.ReportExport, export_id)
        if job is None:
            return None
        spec = get(job.report)
        params = FilterParams.from_json(job.filters)
        now = datetime.now(UTC)
        config = await get_config(session)
        scope = await resolve_scope(session, reader, params.resolve(config.tz, now), config, now, export=True)
        check_report_in_reach(spec.key, scope.reach, reader, spec.roles)
        if spec.stream is not None:  # the columns and the count; the rows come from the stream
            head = replace(scope, filter=replace(scope.filter, offset=0, limit=0))
            table = await spec.run(session, head)
            total = table.total_rows
        else:
            table = await spec.run(session, scope)
            total = len(table.rows) + (table.totals is not None)
        title = keyed(reader.language, f"rpt.{spec.key}") or spec.key
        return _Job(spec, Format(job.format), reader.language, scope, table, total, title)


async def run_export(
    db: Database, export_id: int, who: Principal, directory: Path, notify: Notify | None
) -> None:
    """Run one stored job to its end: done (file written) or failed (error kept, no file left).

    ``who`` is the owner as they asked (their scope); the job's stored language names the columns.
    """
    async with db.transaction() as session:
        stored = await session.get(m.ReportExport, export_id)
        if stored is None:
            return
        reader = replace(who, language=stored.language)
    done = 0
    final = part = None
    try:
        job = await _prepare(db, export_id, reader)
        if job is None:
            return
        await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
        final = directory / f"{export_id}-{secrets.token_hex(8)}.{job.fmt.value}"
        part = final.with_name(final.name + ".part")
        await _progress(db, export_id, notify, state="running", rows_total=job.total)
        writer, handle = await asyncio.to_thread(
            open_writer, job.fmt, part, job.table.columns, job.lang, job.scope.config.tz, job.title
        )
        try:
            batch: list[list[Cell]] = []
            async for row in _rows(db, job.spec, job.scope, job.table):
                batch.append(row)
                if len(batch) >= BATCH:
                    await asyncio.to_thread(_append, writer, batch)
                    done += len(batch)
                    batch = []
                    await _progress(db, export_id, notify, rows_done=done)
            if batch:
                await asyncio.to_thread(_append, writer, batch)
                done += len(batch)
        finally:
            await asyncio.to_thread(finish, writer, handle)
        await anyio.Path(part).replace(final)
    except BaseException as exc:
        for path in (part, final):
            if path is not None:
                await anyio.Path(path).unlink(missing_ok=True)
        cancelled = isinstance(exc, asyncio.CancelledError)
        if not cancelled:
            log.exception("export %s failed", export_id)
        with contextlib.suppress(Exception):
            await asyncio.shield(
                _finish_job(
                    db,
                    export_id,
                    notify,
                    reader,
                    state="failed",
                    rows=done,
                    error="interrupted" if cancelled else "failed",
                )
            )
        raise
    await _finish_job(db, export_id, notify, reader, state="done", rows=done, path=final)


def _append(writer: Any, rows: list[list[Cell]]) -> None:
    for row in rows:
        writer.append(row)


async def _finish_job(
    db: Database,
    export_id: int,
    notify: Notify | None,
    who: Principal,
    *,
    state: str,
    rows: int,
    error: str = "",
    path: Path | None = None,
) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"state": state, "rows_done": rows, "error": error, "finished_at": now}
    if path is not None:
        size = (await anyio.Path(path).stat()).st_size
        values.update(path=str(path), size=size, expires_at=now + EXPIRES_AFTER)
    async with db.transaction() as session:
        job = await session.get(m.ReportExport, export_id)
        if job is not None:
            audit.record(
                session,
                who,
                "report.export.done" if state == "done" else "report.export.failed",
                object_type="report_export",
                object_id=export_id,
                data={"report": job.report, "format": job.format, "filters": job.filters, "rows": rows},
                result="ok" if state == "done" else error,
            )
    await _progress(db, export_id, notify, **values)


class ExportRunner:
    """The in-process tasks of this node's exports (held here so they aren't garbage-collected)."""

    def __init__(self, db: Database, directory: Path, notify: Notify | None = None) -> None:
        self.db = db
        self.directory = directory
        self.notify = notify
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def start(self, export_id: int, who: Principal) -> None:
        task = asyncio.create_task(self._run(export_id, who), name=f"export-{export_id}")
        self._tasks[export_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(export_id, None))

    async def _run(self, export_id: int, who: Principal) -> None:
        with contextlib.suppress(Exception):  # logged and stored as failed by run_export
            await run_export(self.db, export_id, who, self.directory, self.notify)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
