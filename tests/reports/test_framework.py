"""The reporting framework: periods in the install's zone, stored filters, scope, install settings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain import reports
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.reports import FilterParams, Grouping, Preset
from omni.domain.reports.config import check_update_config, get_config
from omni.domain.reports.period import days, floor_interval, group_start, preset
from omni.services import Services
from tests import factories as f

MSK = ZoneInfo("Europe/Moscow")


def test_today_in_moscow_starts_at_21_utc_the_day_before() -> None:
    now = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)  # 04:30 in Moscow
    p = preset(Preset.TODAY, now, MSK)
    assert p.start == datetime(2026, 3, 9, 21, 0, tzinfo=UTC)
    assert p.end == datetime(2026, 3, 10, 21, 0, tzinfo=UTC)
    assert p.first_day == p.last_day == date(2026, 3, 10)


def test_presets_count_weeks_from_monday_and_months_whole() -> None:
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)  # a Wednesday
    assert preset(Preset.THIS_WEEK, now, UTC).first_day == date(2026, 3, 9)
    last_week = preset(Preset.LAST_WEEK, now, UTC)
    assert (last_week.first_day, last_week.last_day) == (date(2026, 3, 2), date(2026, 3, 8))
    last_month = preset(Preset.LAST_MONTH, now, UTC)
    assert (last_month.first_day, last_month.last_day) == (date(2026, 2, 1), date(2026, 2, 28))
    assert len(list(preset(Preset.YESTERDAY, now, UTC).intervals())) == 96


def test_a_day_across_a_dst_change_has_23_hours_of_intervals() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = days(date(2026, 3, 29), date(2026, 3, 29), berlin)
    assert len(list(p.intervals())) == 92


def test_intervals_group_by_local_hour_day_week_and_month() -> None:
    bucket = floor_interval(datetime(2026, 3, 31, 21, 7, tzinfo=UTC))  # 00:07 on 1 April in Moscow
    assert bucket == datetime(2026, 3, 31, 21, 0, tzinfo=UTC)
    assert group_start(bucket, Grouping.DAY, MSK).date() == date(2026, 4, 1)
    assert group_start(bucket, Grouping.MONTH, MSK).date() == date(2026, 4, 1)
    assert group_start(bucket, Grouping.WEEK, MSK).date() == date(2026, 3, 30)
    assert group_start(bucket, Grouping.HOUR, MSK).hour == 0


def test_reversed_or_overlong_periods_are_refused_with_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        days(date(2026, 3, 2), date(2026, 3, 1), UTC)
    assert exc.value.field == "until"
    with pytest.raises(InvalidInput):
        days(date(2024, 1, 1), date(2026, 1, 1), UTC)


def test_a_stored_filter_resolves_yesterday_anew_each_day() -> None:
    params = FilterParams(preset=Preset.YESTERDAY, queue_ids=(3,), channels=("telegram",))
    again = FilterParams.from_json(params.to_json())
    assert again == params
    one = again.resolve(UTC, datetime(2026, 5, 2, 9, tzinfo=UTC))
    two = again.resolve(UTC, datetime(2026, 5, 3, 9, tzinfo=UTC))
    assert (one.period.first_day, two.period.first_day) == (date(2026, 5, 1), date(2026, 5, 2))
    with pytest.raises(InvalidInput):
        FilterParams.from_json({"preset": "fortnight"})


async def test_install_settings_are_admin_only_validated_and_audited(services: Services) -> None:
    async with services.db.transaction() as s:
        admin = await f.user(s, "adm", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        assert (await get_config(s)).timezone == "UTC"
        with pytest.raises(PermissionDenied):
            await check_update_config(s, f.who(sup), timezone="Europe/Moscow")
        with pytest.raises(InvalidInput) as exc:
            await check_update_config(s, f.who(admin), timezone="Mars/Olympus", short_abandon_seconds=-1)
        assert {e.field for e in exc.value.errors} == {"timezone", "short_abandon_seconds"}
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow", business_days=[0, 1, 2, 3, 4, 5])
    async with services.db.transaction() as s:
        config = await get_config(s)
        assert (config.timezone, config.business_days) == ("Europe/Moscow", (0, 1, 2, 3, 4, 5))
        actions = set(await s.scalars(select(m.AuditLog.action)))
        assert "install.update" in actions


async def test_operators_cannot_read_reports_and_unknown_reports_are_404(services: Services) -> None:
    now = datetime.now(UTC)
    async with services.db.transaction() as s:
        op = await f.user(s, "op1")
        admin = await f.user(s, "adm", m.Role.ADMIN)
        with pytest.raises(PermissionDenied):
            await reports.run_params(s, f.who(op), "queue_summary", FilterParams(), now)
        with pytest.raises(NotFound):
            await reports.run_params(s, f.who(admin), "no_such_report", FilterParams(), now)


async def test_a_supervisor_asking_for_another_groups_queue_gets_an_empty_scope(services: Services) -> None:
    now = datetime.now(UTC)
    async with services.db.transaction() as s:
        mine = m.Group(name="mine")
        theirs = m.Group(name="theirs")
        s.add_all([mine, theirs])
        await s.flush()
        q_mine = m.Queue(name="qm", group_id=mine.id)
        q_theirs = m.Queue(name="qt", group_id=theirs.id)
        s.add_all([q_mine, q_theirs])
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        await s.flush()
        s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=mine.id))
        await s.flush()
        config = await get_config(s)
        asked = FilterParams(queue_ids=(q_theirs.id,)).resolve(UTC, now)
        scope = await reports.resolve_scope(s, f.who(sup), asked, config, now)
        assert scope.queue_ids == frozenset()
        everything = await reports.resolve_scope(s, f.who(sup), FilterParams().resolve(UTC, now), config, now)
        assert everything.queue_ids == frozenset({q_mine.id})
        auditor = await f.user(s, "aud", m.Role.AUDITOR)
        assert (await reports.resolve_scope(s, f.who(auditor), asked, config, now)).queue_ids == {q_theirs.id}


def test_writers_put_titles_in_the_readers_language_and_local_times(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from omni.domain.reports.table import Column, Kind
    from omni.domain.reports.writers import Format, finish, open_writer

    columns = [Column("interval", Kind.DATETIME, "Interval"), Column("offered", Kind.COUNT, "Offered")]
    at = datetime(2026, 3, 9, 21, 0, tzinfo=UTC)
    for fmt in Format:
        path = tmp_path / f"r.{fmt.value}"
        writer, handle = open_writer(fmt, path, columns, "en", MSK, "Queue summary: March")
        writer.append([at, 7])
        finish(writer, handle)
        if fmt == Format.XLSX:
            sheet = load_workbook(path).active
            rows = list(sheet.iter_rows(values_only=True))
            assert rows[1] == (datetime(2026, 3, 10, 0, 0), 7)
        else:
            text = path.read_text(encoding="utf-8-sig")
            assert text.splitlines()[1] == "2026-03-10 00:00,7"
