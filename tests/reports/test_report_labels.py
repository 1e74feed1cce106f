"""Codes in report cells (a channel, an outcome, a callback's state, the staffing basis) are
shown by their labels in the reader's language — on REST, the page and in exported files —
while the table itself keeps the codes.

Regression: ``missed_outcomes`` showed ``abandoned`` / ``none`` / ``telegram`` and ``staffing``
``actual`` / ``forecast`` to a Russian supervisor; ``operator_performance`` titled its per-channel
columns "Handled: telegram".
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from omni.domain import reports
from omni.domain.reports import FilterParams, Preset, ReportTable
from omni.domain.reports.writers import Format, finish, open_writer
from omni.services import Services
from tests import factories as f
from tests.reports.test_queue_reports import MSK, NOW, World, world  # noqa: F401 (the fixture)
from tests.reports.test_staffing import DAY, fixture


def json_rows(table: ReportTable, lang: str) -> list[dict[str, Any]]:
    body = table.to_json(lang)
    keys = [c["key"] for c in body["columns"]]
    return [dict(zip(keys, r, strict=True)) for r in body["rows"]]


async def run_in(services: Services, world: World, lang: str, key: str) -> ReportTable:  # noqa: F811
    who = dataclasses.replace(world.admin, language=lang)
    async with services.db.transaction() as s:
        return await reports.run_params(s, who, key, FilterParams(preset=Preset.TODAY), NOW)


async def test_missed_outcomes_show_outcome_callback_and_channel_in_russian(
    services: Services,
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    table = await run_in(services, world, "ru", "missed_outcomes")
    assert [r["outcome"] for r in table.as_dicts()][:2] == ["abandoned", "missed"]  # codes kept
    got = [(r["outcome"], r["callback"], r["channel"]) for r in json_rows(table, "ru")]
    assert [(o, cb) for o, cb, _ in got] == [
        ("Брошено", "Не заказан"),
        ("Пропущено", "Не заказан"),
        ("Брошено", "Не заказан"),
        ("Брошено", "Не заказан"),
        ("Пропущено", "Перезвонили"),
    ]
    assert {ch for _, _, ch in got} <= {"Telegram", "Веб-чат", "Телефон"}
    assert [r["outcome"] for r in json_rows(table, "en")][:2] == ["Abandoned", "Missed"]

    # The files say the same as the page.
    for fmt in (Format.CSV, Format.XLSX):
        path = tmp_path / f"missed.{fmt.value}"
        writer, handle = open_writer(fmt, path, table.columns, "ru", MSK, "Пропущенные")
        for row in table.rows:
            writer.append(row)
        finish(writer, handle)
        if fmt is Format.CSV:
            lines = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
        else:
            sheet = load_workbook(path, read_only=True).active
            assert sheet is not None
            lines = [[str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
        header = lines[0]
        outcome, callback = header.index("Итог"), header.index("Перезвон")
        assert [(r[outcome], r[callback]) for r in lines[1:]][-1] == ("Пропущено", "Перезвонили")


async def test_the_channels_report_names_channels_in_russian(
    services: Services,
    world: World,  # noqa: F811
) -> None:
    table = await run_in(services, world, "ru", "channels")
    rows = {(r["channel"], r["inbox"]) for r in json_rows(table, "ru")}
    assert ("Telegram", "T") in rows and ("Веб-чат", "W") in rows
    assert ("widget", "W") in {(r["channel"], r["inbox"]) for r in table.as_dicts()}


async def test_staffing_basis_is_actual_or_forecast_in_russian(services: Services) -> None:
    now = datetime(2026, 3, 10, 9, 20, tzinfo=MSK).astimezone(UTC)  # the day half over
    async with services.db.transaction() as s:
        fx = await fixture(s)
        who = dataclasses.replace(f.who(fx["admin"]), language="ru")
        table = await reports.run_params(s, who, "staffing", FilterParams(since=DAY, until=DAY), now)
    by_time = {r["interval"][11:16]: r["basis"] for r in json_rows(table, "ru")}
    assert (by_time["09:00"], by_time["12:00"]) == ("Факт", "Прогноз")
    assert {r["basis"] for r in table.as_dicts()} == {"actual", "forecast"}


def test_per_channel_handled_columns_are_titled_in_the_readers_language() -> None:
    from omni.domain.reports.table import Column, Kind

    column = Column("handled_telegram", Kind.COUNT, "Handled: telegram")
    assert column.title_in("ru") == "Обработано: Telegram"
    assert Column("handled_widget", Kind.COUNT, "Handled: widget").title_in("en") == "Handled: web chat"


def test_every_report_column_of_channels_or_outcomes_names_its_labels() -> None:
    """Any report's ``channel``, ``outcome``, ``callback`` or ``basis`` column shows labels (a new
    report copying a column of codes must say where their labels are)."""
    import importlib

    from omni.domain.reports.table import Column

    found: list[tuple[str, Column]] = []
    for name in ("bot_funnel", "surveys", "channels", "missed_outcomes", "staffing", "history"):
        module = importlib.import_module(f"omni.domain.reports.{name}")
        for value in vars(module).values():
            if isinstance(value, tuple | list):
                found += [(name, c) for c in value if isinstance(c, Column)]
    coded = [(name, c) for name, c in found if c.key in ("channel", "outcome", "callback", "basis")]
    assert {name for name, _ in coded} >= {"bot_funnel", "surveys", "channels", "missed_outcomes", "staffing"}
    # Contact history labels its cells itself (in the reader's language, ``_Labels``).
    assert [(name, c.key) for name, c in coded if not c.labels and name != "history"] == []
    assert Column("channel", labels="enum.channel").value_in("widget", "ru") == "Веб-чат"
