"""List import: a messy XLSX and a cp1251 CSV with exact counts and reasons, de-duplication inside
the list and against the campaign, DNC marking, mapping errors, cancel mid-way, a dead node's job,
targets added over REST-shaped JSON."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from omni.db import Database
from omni.db import models as m
from omni.db.models.outbound import ImportState, TargetState
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, InvalidInput, NotFound
from omni.domain.files import save_upload_stream
from omni.domain.outbound import imports as im
from omni.services import Services
from tests import factories as f
from tests.conftest import copy_sqlite


async def _campaign(services: Services) -> tuple[Principal, int]:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        queue = m.Queue(name="Outbound")
        s.add(queue)
        await s.flush()
        campaign = m.Campaign(name="Debts", queue_id=queue.id, timezone="Europe/Moscow", default_region="RU")
        s.add(campaign)
        await s.flush()
        return f.who(admin), campaign.id


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


async def _upload(services: Services, who: Principal, campaign_id: int, name: str, data: bytes) -> int:
    stored = await save_upload_stream(
        data_dir=services.settings.data_dir,
        owner=f"user:{who.id}",
        name=name,
        content_type="application/octet-stream",
        chunks=_chunks(data),
        max_bytes=im.MAX_BYTES,
    )
    async with services.db.transaction() as s:
        job = await im.check_create_import(s, who, campaign_id, stored)
        return job.id


async def _run(services: Services, who: Principal, import_id: int, mapping: dict[str, Any]) -> m.ListImport:
    async with services.db.transaction() as s:
        await im.check_start_import(s, who, import_id, mapping)
    await im.run_import(services.db, import_id, services.settings.data_dir, None)
    async with services.db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
        s.expunge(job)
        return job


async def _rejects(services: Services, who: Principal, import_id: int) -> list[list[str]]:
    async with services.db.transaction() as s:
        stored = await im.access_rejects_file(s, who, import_id)
    text = await anyio.Path(stored.path).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text)))[1:]


def _messy_xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Телефон", "Доп. телефон", "ФИО", "Долг", "Теги"])
    sheet.append([79161234567, "+7 (916) 765-43-21", "Иванов", 1500, "vip, долг"])  # 2: ok, two numbers
    sheet.append(["8 423 222-33-44", None, "Петров", 200, ""])  # 3: ok, Vladivostok
    sheet.append(["not a phone", None, "Сидоров", 10, ""])  # 4: bad phone
    sheet.append([None, None, None, None, None])  # 5: blank row
    sheet.append(["+7 916 123-45-67", None, "Иванов again", 1, ""])  # 6: duplicate of row 2
    sheet.append(["+7 495 111-22-33", None, "Already there", 5, ""])  # 7: already in the campaign
    sheet.append(["+7 123", "8 (495) 987-65-43", "Second number works", 7, ""])  # 8: ok, 2nd number
    sheet.append([None, None, "No phone", 3, ""])  # 9: no number
    sheet.append(["+7 499 000-00-01", None, "Listed", 1, "", "extra", "cells"])  # 10: too many columns
    sheet.append(["+7 812 555-66-77", None, "On DNC", 1, ""])  # 11: DNC by prefix +7812
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


async def test_a_messy_xlsx_is_imported_with_bad_rows_reported_with_reasons_and_exact_counts(
    services: Services,
) -> None:
    who, campaign_id = await _campaign(services)
    async with services.db.transaction() as s:
        s.add(m.CampaignTarget(campaign_id=campaign_id, phone="+74951112233", phones=["+74951112233"]))
        s.add(m.DncEntry(campaign_id=None, number="+7812", prefix=True))
    import_id = await _upload(services, who, campaign_id, "messy.xlsx", _messy_xlsx())
    async with services.db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
        assert job.format == "xlsx" and job.sniffed["header"] is True
        assert [c["title"] for c in job.sniffed["columns"]] == [
            "Телефон",
            "Доп. телефон",
            "ФИО",
            "Долг",
            "Теги",
        ]
        guessed = job.mapping
    assert guessed["phones"] == [0, 1] and guessed["name"] == 2 and guessed["tags"] == 4
    assert guessed["fields"] == {"Долг": 3}
    job = await _run(services, who, import_id, guessed)
    assert job.state == ImportState.DONE, job.error
    assert (job.rows_read, job.rows_imported, job.rows_invalid, job.rows_duplicate, job.rows_dnc) == (
        10,
        4,
        4,
        2,
        1,
    )
    assert job.bytes_done == job.bytes_total
    async with services.db.transaction() as s:  # the upload is gone, the refused rows' file stays
        files = (await s.scalars(select(m.StoredFile))).all()
    assert job.file_id is None and [f.id for f in files] == [job.invalid_file_id]
    assert not any(p.name != job.invalid_file_id for p in (services.settings.data_dir / "uploads").iterdir())
    rejects = {int(r[0]): r[1] for r in await _rejects(services, who, import_id)}
    assert rejects == {
        4: "'not a phone' is not a phone number",
        5: "blank row",
        6: "duplicate: the number is already in this list",
        7: "duplicate: the number is already in the campaign",
        9: "no phone number",
        10: "the row has 7 columns, the file has 5",
    }
    async with services.db.transaction() as s:
        targets = {
            t.phone: t
            for t in await s.scalars(select(m.CampaignTarget).where(m.CampaignTarget.list_id == job.list_id))
        }
    assert set(targets) == {"+79161234567", "+74232223344", "+74959876543", "+78125556677"}
    ivanov = targets["+79161234567"]
    assert ivanov.phones == ["+79161234567", "+79167654321"] and ivanov.name == "Иванов"
    assert ivanov.fields == {"Долг": "1500"} and ivanov.tags == ["vip", "долг"]
    assert ivanov.state == TargetState.PENDING and ivanov.next_due_at is not None
    assert targets["+74232223344"].timezone == "Asia/Vladivostok"
    assert ivanov.timezone == "Europe/Moscow"  # a mobile range spans zones: the campaign's
    assert targets["+78125556677"].state == TargetState.DNC and targets["+78125556677"].next_due_at is None


async def test_a_cp1251_csv_with_semicolons_is_sniffed_and_imported_in_russian(services: Services) -> None:
    who, campaign_id = await _campaign(services)
    ru = Principal(id=who.id, username=who.username, role=who.role, language="ru")
    body = (
        "Имя;Телефон;Пояс\r\n"
        "Анна;+7 916 111-22-33;Asia/Yekaterinburg\r\n"
        "Борис;12;\r\n"
        "Вера;8 916 222 33 44;Mars/Olympus\r\n"
    )
    import_id = await _upload(services, ru, campaign_id, "list.csv", body.encode("cp1251"))
    async with services.db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
        assert (job.sniffed["encoding"], job.sniffed["delimiter"], job.sniffed["header"]) == (
            "cp1251",
            ";",
            True,
        )
        mapping = job.mapping
    assert mapping["phones"] == [1] and mapping["name"] == 0 and mapping["timezone"] == 2
    async with services.db.transaction() as s:
        shown = await im.preview(s, ru, import_id, mapping)
    assert [(r["ok"], r["phones"], r["name"]) for r in shown["rows"]] == [
        (True, ["+79161112233"], "Анна"),
        (False, [], ""),
        (False, [], ""),
    ]
    assert shown["rows"][0]["timezone"] == "Asia/Yekaterinburg"
    job = await _run(services, ru, import_id, mapping)
    assert (job.rows_read, job.rows_imported, job.rows_invalid) == (3, 1, 2)
    rejects = await _rejects(services, ru, import_id)
    assert [r[0] for r in rejects] == ["3", "4"]
    assert "не похоже на номер" in rejects[0][1] or "номер" in rejects[0][1]
    assert "Mars/Olympus" in rejects[1][1] and rejects[1][2:] == ["Вера", "8 916 222 33 44", "Mars/Olympus"]


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"phones": []}, "phones"),
        ({"phones": [7]}, "phones"),
        ({"phones": [0, 0]}, "phones"),
        ({"phones": [1], "name": 9}, "name"),
        ({"phones": [1], "fields": {"": 0}}, "fields"),
    ],
)
async def test_mapping_errors_are_refused_and_the_job_does_not_start(
    services: Services, mapping: dict[str, Any], field: str
) -> None:
    who, campaign_id = await _campaign(services)
    import_id = await _upload(services, who, campaign_id, "l.csv", b"name,phone\nA,+79161112233\n")
    with pytest.raises(InvalidInput) as exc:
        async with services.db.transaction() as s:
            await im.check_start_import(s, who, import_id, mapping)
    assert exc.value.field == field
    async with services.db.transaction() as s:
        assert (await s.get_one(m.ListImport, import_id)).state == ImportState.PENDING


async def test_a_file_that_is_not_a_list_is_refused(services: Services) -> None:
    who, campaign_id = await _campaign(services)
    with pytest.raises(InvalidInput):
        await _upload(services, who, campaign_id, "x.xlsx", b"this is text, not a zip\n")
    with pytest.raises(InvalidInput):
        await _upload(services, who, campaign_id, "empty.csv", b"\n\n ,, \n")


async def test_cancel_mid_way_keeps_the_rows_already_imported(services: Services, monkeypatch: Any) -> None:
    who, campaign_id = await _campaign(services)
    monkeypatch.setattr(im, "BATCH", 10)
    body = "phone\n" + "".join(f"+7916{n:07d}\n" for n in range(100))
    import_id = await _upload(services, who, campaign_id, "big.csv", body.encode())
    async with services.db.transaction() as s:
        await im.check_start_import(s, who, import_id, {"phones": [0]})
    seen: list[dict[str, Any]] = []

    async def notify(user_id: int, data: dict[str, Any]) -> None:
        seen.append(data)
        if len(seen) == 2:  # after the second batch: the user presses cancel
            async with services.db.transaction() as s:
                await im.check_cancel_import(s, who, import_id)

    await im.run_import(services.db, import_id, services.settings.data_dir, notify)
    async with services.db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
        count = await s.scalar(select(func.count()).where(m.CampaignTarget.list_id == job.list_id))
    # The flag is read when a batch is stored: the batch under way when it came finishes.
    assert job.state == ImportState.CANCELLED and job.rows_imported == 30 == count
    assert seen[-1]["state"] == "cancelled" and seen[-1]["rows_imported"] == 30
    assert job.rows_read == 30
    assert [d["rows_read"] for d in seen[:2]] == [10, 20]
    with pytest.raises(Conflict):
        async with services.db.transaction() as s:
            await im.check_cancel_import(s, who, import_id)


async def test_a_running_import_of_a_dead_node_is_failed_with_a_message_not_stuck(services: Services) -> None:
    who, campaign_id = await _campaign(services)
    import_id = await _upload(services, who, campaign_id, "l.csv", b"phone\n+79161112233\n")
    async with services.db.transaction() as s:
        job = await im.check_start_import(s, who, import_id, {"phones": [0]})
        job.updated_at = datetime.now(UTC) - im.STALE_AFTER - timedelta(seconds=1)
    async with services.db.transaction() as s:  # another node lists the campaign's lists
        lists = await im.campaign_lists(s, who, campaign_id)
    last = lists[0]["last_import"]
    assert last["state"] == "failed" and last["error"].startswith("interrupted")
    await im.run_import(services.db, import_id, services.settings.data_dir, None)  # does nothing
    async with services.db.transaction() as s:
        assert (await s.get_one(m.ListImport, import_id)).state == ImportState.FAILED


async def test_the_import_job_does_not_block_the_event_loop(services: Services, monkeypatch: Any) -> None:
    """Parsing and normalising run in a thread: a ticker keeps running between batches."""
    who, campaign_id = await _campaign(services)
    monkeypatch.setattr(im, "BATCH", 200)
    body = "phone\n" + "".join(f"+7916{n:07d}\n" for n in range(2000))
    import_id = await _upload(services, who, campaign_id, "l.csv", body.encode())
    async with services.db.transaction() as s:
        await im.check_start_import(s, who, import_id, {"phones": [0]})
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    batches: list[int] = []

    async def notify(user_id: int, data: dict[str, Any]) -> None:
        batches.append(ticks)

    await im.run_import(services.db, import_id, services.settings.data_dir, notify)
    done.set()
    await task
    assert len(batches) >= 10
    assert all(b > a for a, b in itertools.pairwise(batches))  # the loop ran in between


async def test_targets_added_as_json_are_normalised_deduplicated_and_dnc_marked(services: Services) -> None:
    who, campaign_id = await _campaign(services)
    async with services.db.transaction() as s:
        s.add(m.DncEntry(campaign_id=campaign_id, number="+79990001122", prefix=False))
    targets = [
        im.TargetIn(
            phones=["8 916 111 22 33", "+7 916 111 22 44"], name="A", fields={"debt": "5"}, tags=["x"]
        ),
        im.TargetIn(phones=["nope"], name="B"),
        im.TargetIn(phones=["+79161112233"], name="A twice"),
        im.TargetIn(phones=["+7 999 000 11 22"], name="DNC"),
        im.TargetIn(phones=["+79161112255"], timezone="Nowhere/City"),
    ]
    async with services.db.transaction() as s:
        out = await im.check_add_targets(s, services.db.is_sqlite, who, campaign_id, targets, "crm")
    assert (out["imported"], out["duplicate"], out["invalid"], out["dnc"]) == (2, 1, 2, 1)
    assert [r["index"] for r in out["refused"]] == [1, 2, 4]
    assert out["refused"][1]["reason"] == "duplicate: the number is already in this list"
    async with services.db.transaction() as s:
        total, rows = await im.campaign_targets(s, who, campaign_id, state="dnc")
    assert total == 1 and rows[0]["phone"] == "+79990001122"
    async with services.db.transaction() as s:
        total, rows = await im.campaign_targets(s, who, campaign_id)
    assert total == 2 and rows[0]["phones"] == ["+79161112233", "+79161112244"]
    assert rows[0]["fields"] == {"debt": "5"} and rows[0]["tags"] == ["x"]


async def test_a_supervisor_outside_the_campaigns_queue_finds_no_campaign(services: Services) -> None:
    _admin, campaign_id = await _campaign(services)
    async with services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
    for other in (f.who(sup), f.who(op)):
        with pytest.raises((NotFound, Exception)) as exc:
            async with services.db.transaction() as s:
                await im.campaign_lists(s, other, campaign_id)
        assert exc.value.__class__.__name__ in ("NotFound", "PermissionDenied")


async def test_the_embedded_sqlite_install_imports_deduplicates_and_marks_dnc(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """One process, SQLite: the reader runs in a thread, inserts go in chunks of multi-row VALUES."""
    url = copy_sqlite(sqlite_template, tmp_path, "lists.sqlite3")
    db = Database(url)
    try:
        async with db.transaction() as s:
            admin = await f.user(s, "admin", m.Role.ADMIN)
            queue = m.Queue(name="Out")
            s.add(queue)
            await s.flush()
            campaign = m.Campaign(name="C", queue_id=queue.id)
            s.add(campaign)
            await s.flush()
            s.add(m.CampaignTarget(campaign_id=campaign.id, phone="+79160000007", phones=["+79160000007"]))
            s.add(m.DncEntry(campaign_id=campaign.id, number="+7916000001", prefix=True))
            who, campaign_id = f.who(admin), campaign.id
        body = "phone\n" + "".join(f"+7916{n:07d}\n" for n in range(1000)) + "+79160000003\nbad\n"
        stored = await save_upload_stream(
            data_dir=tmp_path,
            owner=f"user:{who.id}",
            name="l.csv",
            content_type="text/csv",
            chunks=_chunks(body.encode()),
            max_bytes=im.MAX_BYTES,
        )
        async with db.transaction() as s:
            job = await im.check_create_import(s, who, campaign_id, stored)
            await im.check_start_import(s, who, job.id, {"phones": [0]})
            import_id = job.id
        await im.run_import(db, import_id, tmp_path, None)
        async with db.transaction() as s:
            done = await s.get_one(m.ListImport, import_id)
            dnc = await s.scalar(select(func.count()).where(m.CampaignTarget.state == TargetState.DNC))
        assert done.state == ImportState.DONE, done.error
        assert (done.rows_read, done.rows_imported, done.rows_duplicate, done.rows_invalid) == (
            1002,
            999,
            2,
            1,
        )
        assert done.rows_dnc == 10 == dnc  # +7916000001x: ten numbers of the prefix range
    finally:
        await db.dispose()


async def test_xlsx_progress_moves_before_the_end_not_0_until_done(
    services: Services, monkeypatch: Any
) -> None:
    """Regression: an XLSX's byte progress stayed 0 until the job ended (no row count)."""
    who, campaign_id = await _campaign(services)
    monkeypatch.setattr(im, "BATCH", 10)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["phone"])
    for n in range(30):
        sheet.append([f"+7916{n:07d}"])
    buf = io.BytesIO()
    book.save(buf)
    import_id = await _upload(services, who, campaign_id, "l.xlsx", buf.getvalue())
    async with services.db.transaction() as s:
        await im.check_start_import(s, who, import_id, {"phones": [0]})
    seen: list[dict[str, Any]] = []

    async def notify(user_id: int, data: dict[str, Any]) -> None:
        seen.append(data)

    await im.run_import(services.db, import_id, services.settings.data_dir, notify)
    assert 0 < seen[0]["bytes_done"] < seen[0]["bytes_total"]
    assert seen[-1]["state"] == "done" and seen[-1]["bytes_done"] == seen[-1]["bytes_total"]


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        ("\ufeffТелефон\tИмя\n+79161112233\tАнна\n".encode(), "utf-8-sig", "\t"),
        ("Телефон,Имя\n+79161112233,Анна\n".encode(), "utf-8", ","),
        ("Телефон|Имя\n+79161112233|Анна\n".encode("cp1251"), "cp1251", "|"),
    ],
)
def test_the_sniffer_reads_bom_utf8_and_cp1251_with_their_delimiters(
    tmp_path: Path, data: bytes, encoding: str, delimiter: str
) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(data)
    shape = im.sniff(path, "csv", "RU")
    assert (shape["encoding"], shape["delimiter"], shape["header"]) == (encoding, delimiter, True)
    assert [c["title"] for c in shape["columns"]] == ["Телефон", "Имя"]  # no BOM in the title
    assert shape["mapping"]["phones"] == [0] and shape["mapping"]["name"] == 1


async def test_a_node_stopping_mid_import_fails_the_job_with_a_message_and_keeps_its_rows(
    services: Services, monkeypatch: Any
) -> None:
    """Regression: the end of a failed job was never stored (its long error went into the audit
    row's 16-character ``result``), so a stopped node's import stayed "running"."""
    who, campaign_id = await _campaign(services)
    monkeypatch.setattr(im, "BATCH", 10)
    body = "phone\n" + "".join(f"+7916{n:07d}\n" for n in range(300))
    import_id = await _upload(services, who, campaign_id, "l.csv", body.encode())
    async with services.db.transaction() as s:
        await im.check_start_import(s, who, import_id, {"phones": [0]})
    first = asyncio.Event()

    async def notify(user_id: int, data: dict[str, Any]) -> None:
        first.set()

    runner = im.ImportRunner(services.db, services.settings.data_dir, notify)
    runner.start(import_id)
    await first.wait()  # a batch is in: the node stops now (the app's lifespan calls stop())
    await runner.stop()
    async with services.db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
        count = await s.scalar(select(func.count()).where(m.CampaignTarget.list_id == job.list_id))
    assert job.state == ImportState.FAILED and job.error.startswith("interrupted")
    assert 10 <= job.rows_imported == count < 300 and job.finished_at is not None
    async with services.db.transaction() as s:
        entry = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "campaign.list.import.failed"))
    assert entry is not None and entry.result == "failed" and entry.input["error"].startswith("interrupted")


async def test_an_import_whose_file_is_gone_fails_at_once_with_the_reason(services: Services) -> None:
    """Regression: the job raised before its try block and stayed "running" until it went stale."""
    who, campaign_id = await _campaign(services)
    import_id = await _upload(services, who, campaign_id, "l.csv", b"phone\n+79161112233\n")
    async with services.db.transaction() as s:
        job = await im.check_start_import(s, who, import_id, {"phones": [0]})
        stored = await s.get_one(m.StoredFile, job.file_id)
        await anyio.Path(stored.path).unlink()
    await im.run_import(services.db, import_id, services.settings.data_dir, None)
    async with services.db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
    assert job.state == ImportState.FAILED and "is gone: upload it again" in job.error
