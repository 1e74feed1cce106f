"""Scheduled report mailing, received by a real SMTP server on loopback (aiosmtpd).

The report mailed is the real ``queue_summary``, over queue rollups rebuilt
(``rollups.rebuild_range``) from conversations inserted with known times and waits; every figure
in the attached files is computed by hand here. A test-only report that crashes
(``mailing_broken``) checks that one report's bug doesn't stop the others' mail. Times are fixed
instants in a non-UTC zone (Moscow, or Berlin for DST), and the runner is called with ``now`` —
nothing waits for a clock.
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain import reports
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.reports import FilterParams, Preset, ReportSpec, ReportTable, Scope
from omni.domain.reports.config import check_update_config
from omni.domain.reports.mailing import check_send_now, send_due
from omni.domain.reports.registry import REPORTS, register
from omni.domain.reports.rollups import rebuild_range
from omni.domain.reports.schedules import (
    MAX_RECIPIENTS,
    Frequency,
    Timing,
    check_create_schedule,
    check_delete_schedule,
    check_update_schedule,
    list_schedules,
    next_slot,
)
from omni.services import Services
from omni.settings import Settings, SmtpSettings
from tests import factories as f
from tests.conftest import LiveServer, free_port, make_settings
from tests.helpers import HTTP_TIMEOUT

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
REPORT = "queue_summary"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


BROKEN = "mailing_broken"


async def _broken(session: AsyncSession, scope: Scope) -> ReportTable:
    raise RuntimeError("a bug in the report")


@pytest.fixture(autouse=True)
def probe_reports() -> Iterator[None]:
    """The test-only crashing report, registered only while these tests run (other tests may
    list every report)."""
    added = [s for s in (ReportSpec(BROKEN, _broken),) if s.key not in REPORTS]
    for spec in added:
        register(spec)
    try:
        yield
    finally:
        for spec in added:
            REPORTS.pop(spec.key, None)


# --- the SMTP server ------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the loopback SMTP server received; ``refuse`` makes it answer DATA with an error."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[list[str]] = field(default_factory=list)
    refuse: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        self.envelopes.append(list(envelope.rcpt_tos))
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"


@dataclass
class Smtp:
    box: Mailbox
    settings: SmtpSettings


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()  # returns once the server answers on the port
    try:
        yield Smtp(
            box,
            SmtpSettings(
                host="127.0.0.1",
                port=port,
                security="none",
                from_address="reports@omni.test",
                timeout_seconds=10,
                retry_seconds=600,
                max_attempts=3,
            ),
        )
    finally:
        controller.stop()


def attachment(msg: EmailMessage) -> tuple[str, bytes, str]:
    parts = list(msg.iter_attachments())
    assert len(parts) == 1
    part = parts[0]
    assert isinstance(part, EmailMessage)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return part.get_filename() or "", payload, part.get_content_type()


def sheet_rows(content: bytes) -> list[tuple[Any, ...]]:
    book = load_workbook(io.BytesIO(content), read_only=True)
    sheet = book.active
    assert sheet is not None
    return [tuple(r) for r in sheet.iter_rows(values_only=True)]


FIGURES = ("Queue", "Offered", "Answered", "Service level", "ASA", "Longest wait", "AHT")
"""The queue summary's columns the tests check (English titles, as the files head them)."""


def summary(rows: list[tuple[Any, ...]] | list[list[str]]) -> list[tuple[Any, ...]]:
    """The checked columns of a queue summary file (header first), totals row included."""
    header = list(rows[0])
    assert header[:4] == ["Period", "Queue", "Offered", "Answered"]
    at = [header.index(t) for t in FIGURES]
    return [tuple(r[i] for i in at) for r in rows[1:]]


# --- a world with two groups' queues and conversations at known times --------------------


@dataclass
class World:
    admin: m.User
    sup: m.User
    op: m.User
    qa: m.Queue
    qb: m.Queue


async def _conv(s: AsyncSession, contact: m.Contact, queue: m.Queue, at: datetime, wait: int) -> None:
    """A contact answered after ``wait`` seconds and closed 3 minutes after it came in."""
    s.add(
        m.Conversation(
            contact_id=contact.id,
            queue_id=queue.id,
            channel="api",
            medium="chat",
            status="closed",
            created_at=at,
            enqueued_at=at,
            first_enqueued_at=at,
            accepted_at=at + timedelta(seconds=wait),
            closed_at=at + timedelta(minutes=3),
        )
    )


async def build_world(db: Database, zone: str = "Europe/Moscow") -> World:
    """Group A's queue QA and group B's QB (SL threshold 20 s); the supervisor sees group A only.
    On 10 March 2026 (Moscow; UTC [9 Mar 21:00, 10 Mar 21:00)) QA has 2 contacts answered after
    10 s and 40 s, QB 1 after 20 s; one more on each side of that day must not count (QA, 15 s
    on the 9th, 5 s on the 11th). The queue rollups are rebuilt over those days."""
    async with db.transaction() as s:
        admin = await f.user(s, "adm", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR, email="sup@example.com")
        op = await f.user(s, "op1")
        g_a, g_b = m.Group(name="A"), m.Group(name="B")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id))
        qa = await f.queue(s, "QA", [op], group_id=g_a.id)
        qb = await f.queue(s, "QB", [], group_id=g_b.id)
        contact = m.Contact(name="c")
        s.add(contact)
        await s.flush()
        await _conv(s, contact, qa, datetime(2026, 3, 9, 21, 10, tzinfo=UTC), 10)  # 00:10 on the 10th
        await _conv(s, contact, qa, datetime(2026, 3, 10, 20, 50, tzinfo=UTC), 40)  # 23:50 on the 10th
        await _conv(s, contact, qb, datetime(2026, 3, 10, 9, 0, tzinfo=UTC), 20)
        await _conv(s, contact, qa, datetime(2026, 3, 9, 20, 59, tzinfo=UTC), 15)  # 23:59 on the 9th
        await _conv(s, contact, qa, datetime(2026, 3, 10, 21, 0, tzinfo=UTC), 5)  # 00:00 on the 11th
        await check_update_config(s, f.who(admin), timezone=zone)
        await s.flush()
        await rebuild_range(s, datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 13, tzinfo=UTC))
    return World(admin, sup, op, qa, qb)


# By hand, 10 March: QA offered 2, answered 2, within 20 s 1 (50 %), ASA (10 + 40) / 2 = 25 s,
# longest wait 40 s, AHT ((180 − 10) + (180 − 40)) / 2 = 155 s; QB 1, 1, 100 %, 20, 20, 160.
QA_10 = ("QA", 2, 2, 50.0, 25.0, 40.0, 155.0)
QB_10 = ("QB", 1, 1, 100.0, 20.0, 20.0, 160.0)
TOTAL_10 = (None, 3, 3, 66.7, 23.3, 40.0, 156.7)  # (10 + 40 + 20) / 3; (170 + 140 + 160) / 3


DAILY = {
    "report_key": REPORT,
    "filters": FilterParams(preset=Preset.YESTERDAY).to_json(),
    "format": "xlsx",
    "frequency": "daily",
    "send_time": "08:00",
    "recipients": ["boss@example.com", "team@example.org"],
    "language": "en",
}
CREATED = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 09:00 in Moscow: the first slot is tomorrow 08:00
SLOT = datetime(2026, 3, 11, 5, 0, tzinfo=UTC)  # 08:00 on 11 March in Moscow


async def test_a_due_schedule_mails_one_xlsx_whose_figures_match_the_report(
    services: Services, smtp: Smtp
) -> None:
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        row = await check_create_schedule(s, f.who(w.admin), DAILY, CREATED)
        assert row.next_run_at == SLOT
        expected = await reports.run_params(
            s, f.who(w.admin), REPORT, FilterParams(preset=Preset.YESTERDAY), SLOT
        )
    assert await send_due(services.db, smtp.settings, "http://omni.test", SLOT - timedelta(minutes=1)) == []
    assert smtp.box.messages == []

    outcomes = await send_due(services.db, smtp.settings, "http://omni.test", SLOT + timedelta(minutes=1))
    assert [(o.sent, o.error) for o in outcomes] == [(True, None)]
    assert len(smtp.box.messages) == 1
    msg = smtp.box.messages[0]
    assert smtp.box.envelopes[0] == ["boss@example.com", "team@example.org"]
    assert msg["From"] == "reports@omni.test"
    assert "2026-03-10" in msg["Subject"]
    body = msg.get_body(("plain",))
    assert body is not None and "2026-03-10" in body.get_content() and "Europe/Moscow" in body.get_content()
    name, content, content_type = attachment(msg)
    assert content_type == XLSX_TYPE
    assert name == "Queue summary 2026-03-10.xlsx"
    rows = sheet_rows(content)
    assert summary(rows) == [QA_10, QB_10, TOTAL_10]
    assert [r[0] for r in rows[1:]] == [datetime(2026, 3, 10), datetime(2026, 3, 10), None]  # the Moscow day
    keys = ("queue", "offered", "answered", "sl_pct", "asa", "wait_max", "aht")
    assert [tuple(r[k] for k in keys) for r in expected.as_dicts()] == [QA_10, QB_10]

    # Sent once: the runner again, at the same or a later minute, sends nothing more today.
    assert await send_due(services.db, smtp.settings, "http://omni.test", SLOT + timedelta(minutes=2)) == []
    assert len(smtp.box.messages) == 1
    async with services.db.transaction() as s:
        again = await s.get_one(m.ReportSchedule, row.id)
        assert again.next_run_at == SLOT + timedelta(days=1)
        assert again.last_sent_at == SLOT + timedelta(minutes=1)
        assert again.last_error is None
        assert "report_schedule.sent" in set(await s.scalars(select(m.AuditLog.action)))


async def test_a_failing_smtp_is_recorded_and_retried_without_duplicates(
    services: Services, smtp: Smtp
) -> None:
    """The retry after midnight still mails the slot's "yesterday", once."""
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        row = await check_create_schedule(
            s,
            f.who(w.admin),
            {**DAILY, "send_time": "23:55", "format": "csv"},
            datetime(2026, 3, 10, 6, tzinfo=UTC),
        )
        slot = row.next_run_at
        assert slot == datetime(2026, 3, 10, 20, 55, tzinfo=UTC)  # 23:55 on the 10th in Moscow
    smtp.box.refuse = "451 4.3.0 mailbox busy, try later"
    first_try = slot + timedelta(minutes=1)
    [outcome] = await send_due(services.db, smtp.settings, "http://omni.test", first_try)
    assert not outcome.sent and outcome.error is not None and "451" in outcome.error
    async with services.db.transaction() as s:
        failed = await s.get_one(m.ReportSchedule, row.id)
        assert failed.last_error is not None and "mailbox busy" in failed.last_error
        assert (failed.failures, failed.retry_at, failed.next_run_at) == (
            1,
            first_try + timedelta(minutes=10),
            slot,
        )
        assert failed.last_sent_at is None
    # Not yet time for the retry: nothing happens.
    assert (
        await send_due(services.db, smtp.settings, "http://omni.test", first_try + timedelta(minutes=5)) == []
    )

    smtp.box.refuse = None
    retry = first_try + timedelta(minutes=11)  # 00:07 on the 11th in Moscow
    [outcome] = await send_due(services.db, smtp.settings, "http://omni.test", retry)
    assert outcome.sent
    assert await send_due(services.db, smtp.settings, "http://omni.test", retry + timedelta(minutes=20)) == []
    assert len(smtp.box.messages) == 1
    name, content, content_type = attachment(smtp.box.messages[0])
    assert content_type == "text/csv"
    assert name == "Queue summary 2026-03-09.csv"  # the slot's yesterday, not the retry's
    lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    # 9 March: QA's 23:59 contact only, answered after 15 s, closed 180 s after it came in.
    assert summary(lines) == [
        ("QA", "1", "1", "100.0", "15.0", "15.0", "165.0"),
        ("", "1", "1", "100.0", "15.0", "15.0", "165.0"),
    ]
    assert lines[1][0] == "2026-03-09 00:00"
    async with services.db.transaction() as s:
        done = await s.get_one(m.ReportSchedule, row.id)
        assert (done.failures, done.retry_at, done.last_error) == (0, None, None)
        assert done.next_run_at == slot + timedelta(days=1)
        actions = list(
            await s.scalars(select(m.AuditLog.action).where(m.AuditLog.object_type == "report_schedule"))
        )
        assert actions.count("report_schedule.failed") == 1 and actions.count("report_schedule.sent") == 1


async def test_an_unreachable_server_gives_up_the_slot_after_max_attempts(
    services: Services, smtp: Smtp
) -> None:
    w = await build_world(services.db)
    nobody = SmtpSettings(**{**smtp.settings.model_dump(), "port": free_port()})  # nothing listens
    async with services.db.transaction() as s:
        row = await check_create_schedule(s, f.who(w.admin), DAILY, CREATED)
    now = SLOT
    for attempt in range(1, 4):
        [outcome] = await send_due(services.db, nobody, "http://omni.test", now)
        assert not outcome.sent and outcome.error is not None and "Connection" in outcome.error, attempt
        async with services.db.transaction() as s:
            current = await s.get_one(m.ReportSchedule, row.id)
        if attempt < 3:
            assert current.retry_at is not None and current.next_run_at == SLOT
            now = current.retry_at
    assert current.next_run_at == SLOT + timedelta(days=1)  # given up: the next slot as usual
    assert current.retry_at is None and current.last_error is not None


async def test_two_runners_at_once_send_a_slot_once(
    services: Services, smtp: Smtp, settings: Settings
) -> None:
    """Two nodes' beat tasks fire together: the claim (FOR UPDATE SKIP LOCKED) lets one send."""
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        for _ in range(3):
            await check_create_schedule(s, f.who(w.admin), DAILY, CREATED)
    other = Database(settings.effective_database_url, pool_size=2)
    try:
        now = SLOT + timedelta(minutes=1)
        one, two = await asyncio.gather(
            send_due(services.db, smtp.settings, "http://omni.test", now),
            send_due(other, smtp.settings, "http://omni.test", now),
        )
    finally:
        await other.dispose()
    assert sorted(o.schedule_id for o in one + two) == sorted({o.schedule_id for o in one + two})
    assert len(one + two) == 3
    assert len(smtp.box.messages) == 3


def test_next_run_keeps_the_local_time_across_dst_changes() -> None:
    daily = Timing(Frequency.DAILY, 8, 0)
    # 08:00 in Berlin is 07:00 UTC in winter and 06:00 UTC from 29 March 2026 (summer time).
    assert next_slot(daily, BERLIN, datetime(2026, 3, 28, 7, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    assert next_slot(daily, BERLIN, datetime(2026, 10, 24, 6, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 7, 0, tzinfo=UTC
    )
    # 02:30 doesn't exist on 29 March: it fires at the instant that wall time would have been.
    skipped = Timing(Frequency.DAILY, 2, 30)
    assert next_slot(skipped, BERLIN, datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    # 02:30 happens twice on 25 October: one mail, at the first one; the next is a day later.
    first = next_slot(skipped, BERLIN, datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_slot(skipped, BERLIN, first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    weekly = Timing(Frequency.WEEKLY, 9, 15, weekday=0)
    assert next_slot(weekly, BERLIN, datetime(2026, 3, 25, tzinfo=UTC)) == datetime(
        2026, 3, 30, 7, 15, tzinfo=UTC
    )
    monthly = Timing(Frequency.MONTHLY, 6, 0, day_of_month=31)
    assert next_slot(monthly, BERLIN, datetime(2026, 2, 1, tzinfo=UTC)).date() == date(2026, 2, 28)
    assert next_slot(monthly, BERLIN, datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2026, 3, 31, 4, 0, tzinfo=UTC
    )


async def test_a_sent_slot_plans_the_next_across_the_dst_change(services: Services, smtp: Smtp) -> None:
    w = await build_world(services.db, zone="Europe/Berlin")
    async with services.db.transaction() as s:
        row = await check_create_schedule(s, f.who(w.admin), DAILY, datetime(2026, 3, 27, 12, tzinfo=UTC))
        assert row.next_run_at == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 08:00 CET
    [outcome] = await send_due(
        services.db, smtp.settings, "http://omni.test", datetime(2026, 3, 28, 7, 1, tzinfo=UTC)
    )
    assert outcome.sent
    async with services.db.transaction() as s:
        assert (await s.get_one(m.ReportSchedule, row.id)).next_run_at == datetime(
            2026, 3, 29, 6, 0, tzinfo=UTC
        )


async def test_after_an_outage_only_the_latest_missed_slot_is_mailed(services: Services, smtp: Smtp) -> None:
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        row = await check_create_schedule(s, f.who(w.admin), DAILY, CREATED)
    back = SLOT + timedelta(days=3, hours=2)
    assert [o.sent for o in await send_due(services.db, smtp.settings, "http://omni.test", back)] == [True]
    assert len(smtp.box.messages) == 1
    assert "2026-03-13" in smtp.box.messages[0]["Subject"]  # yesterday of the 14th's slot
    async with services.db.transaction() as s:
        assert (await s.get_one(m.ReportSchedule, row.id)).next_run_at == SLOT + timedelta(days=4)


async def test_a_supervisors_mail_holds_only_their_groups_queues(services: Services, smtp: Smtp) -> None:
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        mine = await check_create_schedule(s, f.who(w.sup), DAILY, CREATED)
        theirs = FilterParams(preset=Preset.YESTERDAY, queue_ids=(w.qb.id,)).to_json()
        asked_for_b = await check_create_schedule(s, f.who(w.sup), {**DAILY, "filters": theirs}, CREATED)
    await send_due(services.db, smtp.settings, "http://omni.test", SLOT + timedelta(minutes=1))
    by_subject = {attachment(msg)[1]: msg for msg in smtp.box.messages}
    assert len(by_subject) == 2
    tables = sorted(sheet_rows(content) for content in by_subject)
    # Theirs: QA only (QB's contact is in no figure); asking for group B's queue: nothing.
    qa_total = (None, *QA_10[1:])
    assert sorted(len(t) for t in tables) == [1, 3]
    assert [summary(t) for t in sorted(tables, key=len)] == [[], [QA_10, qa_total]]
    # An admin pressing "send now" on the supervisor's schedule mails what the supervisor sees.
    smtp.box.messages.clear()
    outcome = await check_send_now(
        services.db, smtp.settings, "http://omni.test", f.who(w.admin), mine.id, SLOT + timedelta(hours=1)
    )
    assert outcome.sent
    [msg] = smtp.box.messages
    assert summary(sheet_rows(attachment(msg)[1])) == [QA_10, qa_total]
    async with services.db.transaction() as s:
        assert (await s.get_one(m.ReportSchedule, mine.id)).next_run_at == SLOT + timedelta(days=1)
        assert asked_for_b.id in {r.id for r in await list_schedules(s, f.who(w.sup))}


async def test_schedules_are_validated_owned_and_audited(services: Services) -> None:
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        with pytest.raises(InvalidInput) as exc:
            await check_create_schedule(
                s,
                f.who(w.sup),
                {
                    **DAILY,
                    "report_key": "no_such_report",
                    "recipients": ["boss@example.com", "not an address", "x@y"],
                    "frequency": "weekly",
                    "send_time": "25:00",
                    "filters": {"since": "2026-03-10", "until": "2026-03-01"},
                },
                CREATED,
            )
        assert {e.field for e in exc.value.errors} == {
            "report_key",
            "recipients",
            "weekday",
            "send_time",
            "filters",
        }
        with pytest.raises(InvalidInput) as exc:
            many = [f"p{i}@example.com" for i in range(MAX_RECIPIENTS + 1)]
            await check_create_schedule(s, f.who(w.sup), {**DAILY, "recipients": many}, CREATED)
        assert exc.value.field == "recipients"
        with pytest.raises(InvalidInput):  # a header smuggled into an address
            await check_create_schedule(
                s, f.who(w.sup), {**DAILY, "recipients": ["a@example.com\r\nBcc: x@evil.test"]}, CREATED
            )
        with pytest.raises(PermissionDenied):
            await check_create_schedule(s, f.who(w.op), DAILY, CREATED)
        monthly = await check_create_schedule(
            s,
            f.who(w.sup),
            {**DAILY, "frequency": "monthly", "day_of_month": 31, "send_time": "07:30"},
            CREATED,
        )
        assert monthly.next_run_at == datetime(2026, 3, 31, 4, 30, tzinfo=UTC)
        admins = await check_create_schedule(s, f.who(w.admin), DAILY, CREATED)
    async with services.db.transaction() as s:
        other_sup = await f.user(s, "sup2", m.Role.SUPERVISOR)
        with pytest.raises(NotFound):
            await check_update_schedule(s, f.who(other_sup), monthly.id, {"active": False}, CREATED)
        with pytest.raises(NotFound):
            await check_delete_schedule(s, f.who(w.sup), admins.id)
        assert {r.id for r in await list_schedules(s, f.who(w.sup))} == {monthly.id}
        assert {r.id for r in await list_schedules(s, f.who(w.admin))} == {monthly.id, admins.id}
        paused = await check_update_schedule(s, f.who(w.admin), monthly.id, {"active": False}, CREATED)
        assert paused.next_run_at is None
        weekly = await check_update_schedule(
            s, f.who(w.sup), monthly.id, {"active": True, "frequency": "weekly", "weekday": 4}, CREATED
        )
        assert weekly.next_run_at == datetime(2026, 3, 13, 4, 30, tzinfo=UTC)  # Friday 07:30 in Moscow
        assert weekly.day_of_month is None
        await check_delete_schedule(s, f.who(w.sup), monthly.id)
    async with services.db.transaction() as s:
        actions = set(await s.scalars(select(m.AuditLog.action)))
        assert {"report_schedule.create", "report_schedule.update", "report_schedule.delete"} <= actions


# --- REST, the page and the embedded loop ------------------------------------------------------


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, smtp: Smtp) -> Settings:
    """The live server of these tests mails through the loopback SMTP server."""
    return make_settings(pg_url, data_dir=tmp_path, smtp=smtp.settings)


async def login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


@pytest.fixture
async def world_server(live_server: LiveServer) -> AsyncIterator[tuple[LiveServer, World]]:
    yield live_server, await build_world(live_server.services.db)


async def test_rest_creates_lists_updates_sends_and_deletes(
    world_server: tuple[LiveServer, World], smtp: Smtp
) -> None:
    server, w = world_server
    sup, admin, op = await login(server, "sup"), await login(server, "adm"), await login(server, "op1")
    try:
        body = {**DAILY, "filters": {"preset": "yesterday", "queue_ids": [w.qa.id]}}
        resp = await sup.post("/api/v1/report-schedules", json=body)
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert created["owner_id"] == w.sup.id and created["filters"]["queue_ids"] == [w.qa.id]
        assert created["next_run_at"] is not None
        bad = await sup.post(
            "/api/v1/report-schedules", json={**DAILY, "recipients": ["nope"], "send_time": "8"}
        )
        assert bad.status_code == 422, bad.text
        assert {e["field"] for e in bad.json()["errors"]} == {"recipients", "send_time"}
        assert (await op.get("/api/v1/report-schedules")).status_code == 403
        assert (await op.post("/api/v1/report-schedules", json=DAILY)).status_code == 403
        listed = (await admin.get("/api/v1/report-schedules", params={"report": REPORT})).json()
        assert [s["id"] for s in listed] == [created["id"]]
        path = f"/api/v1/report-schedules/{created['id']}"
        patched = await sup.patch(
            path, json={"recipients": ["new@example.com"], "frequency": "weekly", "weekday": 2}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["recipients"] == ["new@example.com"] and patched.json()["weekday"] == 2
        sent = await admin.post(f"{path}/send")
        assert sent.status_code == 200, sent.text
        assert sent.json()["sent"] is True and sent.json()["schedule"]["last_sent_at"] is not None
        assert [env for env in smtp.box.envelopes] == [["new@example.com"]]
        other = await admin.post("/api/v1/report-schedules", json=DAILY)
        assert (await sup.get(f"/api/v1/report-schedules/{other.json()['id']}")).status_code == 404
        assert (await sup.delete(path)).status_code == 200
        assert (await sup.get(path)).status_code == 404
    finally:
        for client in (sup, admin, op):
            await client.aclose()


async def test_the_schedules_page_prefills_from_the_report_filters_and_shows_errors_by_field(
    world_server: tuple[LiveServer, World], smtp: Smtp
) -> None:
    server, w = world_server
    sup = await login(server, "sup")
    try:
        page = await sup.get(
            "/reports/schedules",
            params={"report": REPORT, "preset": "last_week", "grouping": "hour", "queue": [w.qa.id]},
        )
        assert page.status_code == 200, page.text
        html = page.text
        assert f'<option value="{REPORT}" selected' in html
        assert '<option value="last_week" selected' in html
        assert '<option value="hour" selected' in html
        queues = html.split('id="f-queue"')[1].split("</select>")[0]
        assert f'<option value="{w.qa.id}" selected>QA' in queues
        assert "QB" not in queues  # another group's queue isn't offered
        csrf = html.split('name="_csrf" value="')[1].split('"')[0]
        form = {
            "_csrf": csrf,
            "report_key": REPORT,
            "preset": "yesterday",
            "grouping": "day",
            "queue": str(w.qa.id),
            "format": "xlsx",
            "frequency": "weekly",
            "weekday": "",
            "send_time": "08:00",
            "recipients": "boss@example.com\nnot-an-address",
            "language": "ru",
            "active": "1",
        }
        bad = await sup.post("/reports/schedules", data=form)
        assert bad.status_code == 400
        assert 'data-field="recipients"' in bad.text and "not-an-address" in bad.text
        assert 'data-field="weekday"' in bad.text
        assert "boss@example.com" in bad.text  # what was typed is kept
        ok = await sup.post(
            "/reports/schedules", data={**form, "recipients": "boss@example.com", "weekday": "0"}
        )
        assert ok.status_code in (302, 303), ok.text
        async with server.services.db.transaction() as s:
            [row] = await list_schedules(s, f.who(w.sup))
        assert row.filters["queue_ids"] == [w.qa.id] and row.filters["preset"] == "yesterday"
        assert (row.language, row.weekday) == ("ru", 0)
        listing = await sup.get("/reports/schedules")
        assert f'data-schedule="{row.id}"' in listing.text
        sent = await sup.post(f"/reports/schedules/{row.id}/send", data={"_csrf": csrf})
        assert sent.status_code in (302, 303)
        [msg] = smtp.box.messages
        body = msg.get_body(("plain",))
        assert body is not None and "Отчёт" in body.get_content()
        deleted = await sup.post(f"/reports/schedules/{row.id}/delete", data={"_csrf": csrf})
        assert deleted.status_code in (302, 303)
        async with server.services.db.transaction() as s:
            assert await list_schedules(s, f.who(w.sup)) == []
    finally:
        await sup.aclose()


async def test_embedded_mode_mails_due_schedules_in_process(tmp_path: Path, smtp: Smtp) -> None:
    """No Redis, SQLite: the app's own loop sends what is due (no Celery beat to run)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'omni.sqlite3'}"
    quick = SmtpSettings(**{**smtp.settings.model_dump(), "check_seconds": 0.05})
    server = LiveServer(make_settings(url, redis=False, data_dir=tmp_path, smtp=quick))
    await server.start()
    try:
        w = await build_world(server.services.db)
        async with server.services.db.transaction() as s:
            row = await check_create_schedule(s, f.who(w.admin), DAILY, datetime.now(UTC) - timedelta(days=2))
        sent: m.ReportSchedule | None = None
        for _ in range(400):  # the condition, not a duration: the send recorded on the schedule
            async with server.services.db.transaction() as s:
                sent = await s.get_one(m.ReportSchedule, row.id)
            if sent.last_sent_at is not None:
                break
            await asyncio.sleep(0.05)
        assert sent is not None and sent.last_sent_at is not None
        assert len(smtp.box.messages) == 1
        assert sent.next_run_at is not None and sent.next_run_at > datetime.now(UTC)
    finally:
        await server.stop()


async def test_an_owner_who_can_no_longer_read_reports_gets_no_mail(services: Services, smtp: Smtp) -> None:
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        row = await check_create_schedule(s, f.who(w.sup), DAILY, CREATED)
        (await s.get_one(m.User, w.sup.id)).role = m.Role.OPERATOR
    [outcome] = await send_due(services.db, smtp.settings, "http://omni.test", SLOT + timedelta(minutes=1))
    assert not outcome.sent and outcome.error == "the owner may no longer read reports"
    assert smtp.box.messages == []
    async with services.db.transaction() as s:
        current = await s.get_one(m.ReportSchedule, row.id)
        assert current.last_error == outcome.error and current.next_run_at == SLOT + timedelta(days=1)


async def test_the_celery_beat_task_sends_due_schedules(
    services: Services, smtp: Smtp, settings: Settings
) -> None:
    """``omni.reports.send_due`` as a worker runs it (its own thread, loop and engine)."""
    from omni.worker import celery_app, configure, send_due_reports

    configure(settings)
    entry = celery_app.conf.beat_schedule["omni.reports.send_due"]
    assert (entry["task"], entry["schedule"]) == ("omni.reports.send_due", smtp.settings.check_seconds)
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        row = await check_create_schedule(s, f.who(w.admin), DAILY, datetime.now(UTC) - timedelta(days=2))
    failure: list[BaseException] = []

    def work() -> None:
        try:
            send_due_reports.apply().get(disable_sync_subtasks=False)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=work)  # a fresh thread: the worker's per-thread engine dies with it
    thread.start()
    await asyncio.to_thread(thread.join)
    assert failure == []
    assert len(smtp.box.messages) == 1
    async with services.db.transaction() as s:
        assert (await s.get_one(m.ReportSchedule, row.id)).last_sent_at is not None


async def test_a_report_that_crashes_is_recorded_and_the_others_still_go_out(
    services: Services, smtp: Smtp
) -> None:
    w = await build_world(services.db)
    async with services.db.transaction() as s:
        broken = await check_create_schedule(s, f.who(w.admin), {**DAILY, "report_key": BROKEN}, CREATED)
        fine = await check_create_schedule(s, f.who(w.admin), DAILY, CREATED)
    outcomes = await send_due(services.db, smtp.settings, "http://omni.test", SLOT + timedelta(minutes=1))
    assert {o.schedule_id: o.sent for o in outcomes} == {broken.id: False, fine.id: True}
    assert len(smtp.box.messages) == 1
    async with services.db.transaction() as s:
        failed = await s.get_one(m.ReportSchedule, broken.id)
        assert failed.last_error == "RuntimeError: a bug in the report"
        assert failed.claimed_until is None and failed.retry_at is not None and failed.failures == 1
