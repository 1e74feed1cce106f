"""Report exports end to end: REST start → background job → progress on the socket → download.

The files are opened as a user would (openpyxl, the csv module); the rows are the caller's own
scope (a supervisor's export has no other group's contacts); only the owner reads the job or
downloads the file; every export leaves audit rows (who, report, filters, rows).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import socketio
from openpyxl import load_workbook
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain.errors import NotFound
from omni.domain.reports import REPORTS, Column, FilterParams, Kind, ReportSpec, ReportTable, Scope, register
from omni.domain.reports import exports as ex
from omni.domain.reports.writers import Format
from omni.services import Services
from tests import factories as f
from tests.conftest import LiveServer, copy_sqlite
from tests.helpers import HTTP_TIMEOUT, until
from tests.reports.test_history import World, at, build_world

DAY = "2026-03-10"


async def login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


class Progress:
    """A supervisor's ``/supervisor`` socket, collecting the ``export`` messages it is pushed."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.seen: list[dict[str, Any]] = []
        self.sio.on("export", self._on, namespace="/supervisor")

    async def _on(self, data: dict[str, Any]) -> None:
        self.seen.append(data)

    async def connect(self, server: LiveServer, client: httpx.AsyncClient) -> None:
        token = (await client.post("/api/v1/me/tokens", json={"name": "socket"})).json()["token"]
        await self.sio.connect(
            server.url,
            namespaces=["/supervisor"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,
        )

    def of(self, export_id: int) -> list[dict[str, Any]]:
        return [e for e in self.seen if e["id"] == export_id]


@pytest.fixture
async def world(live_server: LiveServer) -> World:
    return await build_world(live_server.services.db)


@pytest.fixture
async def sup(live_server: LiveServer, world: World) -> AsyncIterator[httpx.AsyncClient]:
    client = await login(live_server, "sup")
    yield client
    await client.aclose()


@pytest.fixture
async def progress(live_server: LiveServer, sup: httpx.AsyncClient) -> AsyncIterator[Progress]:
    p = Progress()
    await p.connect(live_server, sup)
    yield p
    await p.sio.disconnect()


async def finished(client: httpx.AsyncClient, export_id: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job: dict[str, Any] = (await client.get(f"/api/v1/exports/{export_id}")).json()
        assert job["state"] in ("queued", "running", "done"), job
        return job if job["state"] == "done" else None

    result: dict[str, Any] = await until(done, 120, what=f"export {export_id} to finish")
    return result


async def test_a_supervisors_xlsx_export_has_their_rows_progress_and_an_audit_trail(
    live_server: LiveServer, world: World, sup: httpx.AsyncClient, progress: Progress
) -> None:
    w = world.ids
    resp = await sup.post(
        "/api/v1/reports/contact_history/exports",
        params={"format": "xlsx", "since": DAY, "until": DAY, "limit": 1},
    )
    assert resp.status_code == 202, resp.text
    export_id = resp.json()["id"]
    job = await finished(sup, export_id)
    assert (job["rows_done"], job["rows_total"]) == (3, 3)
    assert job["file_name"] == "contact_history_2026-03-10.xlsx"

    file = await sup.get(f"/api/v1/exports/{export_id}/file")
    assert file.status_code == 200
    assert 'filename="contact_history_2026-03-10.xlsx"' in file.headers["content-disposition"]
    assert file.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(file.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header[0] == "Started" and header[-1] == "Conversation"
    # Every row, not the page's ``limit``; group B's call (c4) is not there; local times.
    assert [r[-1] for r in body] == [w["c3"], w["c2"], w["c1"]]
    c1 = body[-1]
    assert c1[0] == datetime(2026, 3, 10, 0, 10)
    assert c1[3:5] == ("Иван Петров", "+79161234567")
    assert c1[9:12] == (20, 95.5, 130)

    events = await until(
        lambda: [e for e in progress.of(export_id) if e["state"] == "done"], what="done pushed"
    )
    assert events[-1]["rows_done"] == 3
    assert "running" in {e["state"] for e in progress.of(export_id)}

    async with live_server.services.db.transaction() as s:
        audits = (
            await s.scalars(
                select(m.AuditLog).where(m.AuditLog.object_type == "report_export").order_by(m.AuditLog.id)
            )
        ).all()
    assert [a.action for a in audits] == ["report.export", "report.export.done"]
    assert {a.user_id for a in audits} == {w["sup"]}
    assert audits[1].input["report"] == "contact_history"
    assert audits[1].input["rows"] == 3
    assert audits[1].input["filters"]["since"] == DAY


async def test_another_user_cannot_read_or_download_an_export(
    live_server: LiveServer, world: World, sup: httpx.AsyncClient
) -> None:
    resp = await sup.post("/api/v1/reports/contact_history/exports", params={"format": "csv", "since": DAY})
    export_id = resp.json()["id"]
    await finished(sup, export_id)
    for name in ("sup2", "adm"):
        other = await login(live_server, name)
        try:
            assert (await other.get(f"/api/v1/exports/{export_id}/file")).status_code == 404
            assert (await other.get(f"/api/v1/exports/{export_id}")).status_code == 404
            assert export_id not in {e["id"] for e in (await other.get("/api/v1/exports")).json()}
        finally:
            await other.aclose()
    assert export_id in {e["id"] for e in (await sup.get("/api/v1/exports")).json()}
    operator = await login(live_server, "op_a")
    try:
        refused = await operator.post("/api/v1/reports/contact_history/exports", params={"format": "csv"})
        assert refused.status_code == 403
    finally:
        await operator.aclose()


@pytest.fixture
def tiny_report() -> AsyncIterator[str]:
    """A report without a streaming runner (rows and totals in one table), for this test only."""

    async def run(session: AsyncSession, scope: Scope) -> ReportTable:
        return ReportTable(
            "test_tiny",
            [
                Column("queue", Kind.LABEL, "Queue"),
                Column("offered", Kind.COUNT, "Offered"),
                Column("sl", Kind.PERCENT),
            ],
            rows=[["QA", 3, 66.7], ["QB", 1, None]],
            totals=["Total", 4, 50.0],
        )

    register(ReportSpec("test_tiny", run))
    yield "test_tiny"
    REPORTS.pop("test_tiny")


async def test_any_report_exports_to_csv_and_xlsx_with_its_totals(
    live_server: LiveServer, world: World, sup: httpx.AsyncClient, tiny_report: str
) -> None:
    for fmt in ("csv", "xlsx"):
        resp = await sup.post(
            f"/api/v1/reports/{tiny_report}/exports", params={"format": fmt, "preset": "today"}
        )
        assert resp.status_code == 202, resp.text
        job = await finished(sup, resp.json()["id"])
        assert job["rows_done"] == 3
        content = (await sup.get(f"/api/v1/exports/{job['id']}/file")).content
        if fmt == "csv":
            text = content.decode("utf-8-sig")
            assert list(csv.reader(io.StringIO(text))) == [
                ["Queue", "Offered", "SL"],
                ["QA", "3", "66.7"],
                ["QB", "1", ""],
                ["Total", "4", "50.0"],
            ]
        else:
            sheet = load_workbook(io.BytesIO(content)).active
            assert sheet is not None
            assert list(sheet.iter_rows(values_only=True))[1:] == [
                ("QA", 3, 66.7),
                ("QB", 1, None),
                ("Total", 4, 50.0),
            ]


async def test_a_long_export_reports_progress_batch_by_batch(
    live_server: LiveServer, world: World, sup: httpx.AsyncClient, progress: Progress
) -> None:
    async with live_server.services.db.transaction() as s:
        contact = m.Contact(name="Bulk")
        s.add(contact)
        await s.flush()
        start = at(10, 10, 0)
        await s.execute(
            insert(m.Conversation),
            [
                {
                    "contact_id": contact.id,
                    "channel": "widget",
                    "medium": "chat",
                    "status": "closed",
                    "queue_id": world.ids["q_a"],
                    "created_at": start + timedelta(seconds=i),
                }
                for i in range(2100)
            ],
        )
    resp = await sup.post(
        "/api/v1/reports/contact_history/exports", params={"format": "csv", "since": DAY, "until": DAY}
    )
    export_id = resp.json()["id"]
    job = await finished(sup, export_id)
    assert (job["rows_done"], job["rows_total"]) == (2103, 2103)
    pushed = await until(
        lambda: (seen := progress.of(export_id)) and seen[-1]["state"] == "done" and seen,
        what="the last push",
    )
    assert [e["rows_done"] for e in pushed if e["state"] == "running"][1:] == [1000, 2000]
    lines = (await sup.get(f"/api/v1/exports/{export_id}/file")).content.decode("utf-8-sig").splitlines()
    assert len(lines) == 2104


async def test_bad_export_requests_are_refused_and_store_nothing(
    live_server: LiveServer, world: World, sup: httpx.AsyncClient
) -> None:
    bad = [
        ("/api/v1/reports/contact_history/exports", {"format": "pdf"}, 400),
        ("/api/v1/reports/no_such_report/exports", {"format": "csv"}, 404),
        ("/api/v1/reports/contact_history/exports", {"since": "2026-03-10", "until": "2026-03-01"}, 422),
        ("/api/v1/reports/contact_history/exports", {"min_duration": 60, "max_duration": 10}, 422),
    ]
    for path, params, status in bad:
        resp = await sup.post(path, params=params)
        assert resp.status_code == status, (params, resp.text)
        assert resp.json()["detail"]
    async with live_server.services.db.transaction() as s:
        assert (await s.scalars(select(m.ReportExport))).all() == []


async def test_on_sqlite_a_streamed_export_reads_page_by_page(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite serves one transaction at a time for the whole app: the export must not hold one
    open while it writes (it reads short pages instead), and the duration filter works there too."""
    url = copy_sqlite(sqlite_template, tmp_path, "e.sqlite3")
    db = Database(url)
    try:
        world = await build_world(db)
        monkeypatch.setattr(ex, "PAGE", 2)
        now = datetime(2026, 3, 12, 9, tzinfo=UTC)
        for params, expected in (
            (FilterParams(since=date(2026, 3, 10), until=date(2026, 3, 10)), ["c3", "c2", "c1"]),
            (FilterParams(since=date(2026, 3, 10), until=date(2026, 3, 10), min_duration=100), ["c2"]),
        ):
            async with db.transaction() as s:
                job = await ex.check_start_export(s, world.sup, "contact_history", params, Format.CSV, now)
            pushed: list[dict[str, Any]] = []

            async def notify(_user: int, data: dict[str, Any], into: list[dict[str, Any]] = pushed) -> None:
                into.append(data)

            await ex.run_export(db, job.id, world.sup, tmp_path / "exports", notify)
            async with db.transaction() as s:
                done = await s.get_one(m.ReportExport, job.id)
            assert (done.state, done.rows_done) == ("done", len(expected))
            text = await anyio.Path(done.path).read_text(encoding="utf-8-sig")
            rows = list(csv.reader(io.StringIO(text)))
            assert [int(r[-1]) for r in rows[1:]] == [world.ids[c] for c in expected]
            assert pushed[-1]["state"] == "done"
    finally:
        await db.dispose()


async def test_a_failing_report_leaves_a_failed_job_no_file_and_an_audit_row(
    services: Services, tmp_path: Path
) -> None:
    async def broken(session: AsyncSession, scope: Scope) -> ReportTable:
        raise RuntimeError("the report broke")

    register(ReportSpec("test_broken", broken))
    try:
        async with services.db.transaction() as s:
            admin = f.who(await f.user(s, "adm", m.Role.ADMIN))
            job = await ex.check_start_export(
                s, admin, "test_broken", FilterParams(), Format.XLSX, datetime.now(UTC)
            )
        with pytest.raises(RuntimeError):
            await ex.run_export(services.db, job.id, admin, tmp_path, None)
        async with services.db.transaction() as s:
            failed = await s.get_one(m.ReportExport, job.id)
            actions = list(await s.scalars(select(m.AuditLog.action).order_by(m.AuditLog.id)))
            out = ex.export_dict(failed)
        assert (out["state"], out["error"], failed.path) == ("failed", "failed", "")
        assert actions[-2:] == ["report.export", "report.export.failed"]
        assert [p async for p in anyio.Path(tmp_path).iterdir()] == []
    finally:
        REPORTS.pop("test_broken")


async def test_expired_files_are_deleted_and_a_dead_jobs_export_shows_as_interrupted(
    services: Services, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old_file = tmp_path / "old.xlsx"
    await anyio.Path(old_file).write_bytes(b"x")
    async with services.db.transaction() as s:
        owner = f.who(await f.user(s, "sup", m.Role.SUPERVISOR))
        common = {"user_id": owner.id, "report": "contact_history", "format": "xlsx", "filters": {}}
        expired = m.ReportExport(
            **common, state="done", path=str(old_file), expires_at=now - timedelta(minutes=1), updated_at=now
        )
        dead = m.ReportExport(
            **common, state="running", updated_at=now - ex.STALE_AFTER - timedelta(seconds=1)
        )
        s.add_all([expired, dead])
        await s.flush()
        assert await ex.purge_expired(s, now) == 1
        assert ex.export_dict(dead)["state"] == "failed"
        assert ex.export_dict(dead)["error"] == "interrupted"
        with pytest.raises(NotFound):
            await ex.access_export_file(s, owner, expired.id)
    assert not await anyio.Path(old_file).exists()
    async with services.db.transaction() as s:
        assert (await s.get_one(m.ReportExport, expired.id)).state == "expired"


async def test_the_history_page_over_rest_and_its_rows_open(
    live_server: LiveServer, world: World, sup: httpx.AsyncClient
) -> None:
    w = world.ids
    resp = await sup.get(
        "/api/v1/reports/contact_history",
        params={"since": DAY, "until": DAY, "q": "Иван", "limit": 1, "offset": 1},
    )
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert page["total_rows"] == 2
    keys = [c["key"] for c in page["columns"]]
    row = dict(zip(keys, page["rows"][0], strict=True))
    assert (row["conversation_id"], row["recording"]) == (w["c1"], True)
    assert row["started"] == "2026-03-10T00:10:00+03:00"
    opened = await sup.get(f"/api/v1/conversations/{row['conversation_id']}")
    assert opened.status_code == 200
    # Another group's conversation neither lists nor opens.
    assert (await sup.get(f"/api/v1/conversations/{w['c4']}")).status_code == 404
    bad = await sup.get("/api/v1/reports/contact_history", params={"limit": 0})
    assert bad.status_code == 400
