"""JSON columns and Socket.IO packets go through ``omni.wire`` (msgspec). Rows the standard
module wrote before that keep reading and saving: a lone surrogate escape, ``NaN``, a number
past a double's range (SQLite); and what msgspec refuses to write is written as before, not lost."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select, text

from omni.db import models as m
from omni.services import Services
from omni.wire import dumps, loads


async def test_a_row_the_standard_module_wrote_reads_and_saves_again(svc: Services) -> None:
    # PostgreSQL's json type never took NaN; SQLite's text did.
    weight = float("nan") if svc.db.is_sqlite else 2.5
    old = json.dumps([{"date": "2027-01-07", "name": "Рождество \ud800", "weight": weight}])
    assert "\\ud800" in old  # what a row written before msgspec may hold
    async with svc.db.transaction() as s:
        await s.execute(
            text("INSERT INTO holiday_calendars (name, dates, yearly, created_at, updated_at) "
                 "VALUES ('old', :dates, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"dates": old},
        )  # fmt: skip
    async with svc.db.transaction() as s:
        cal = await s.scalar(select(m.HolidayCalendar).where(m.HolidayCalendar.name == "old"))
        assert cal is not None
        day = cal.dates[0]
        assert day["name"] == "Рождество \ud800"
        assert math.isnan(day["weight"]) if svc.db.is_sqlite else day["weight"] == 2.5
        cal.dates = [{**day, "weight": 1}]  # saved again with the lone surrogate in it
    async with svc.db.transaction() as s:
        cal = await s.scalar(select(m.HolidayCalendar).where(m.HolidayCalendar.name == "old"))
        assert cal is not None
        assert cal.dates == [{"date": "2027-01-07", "name": "Рождество \ud800", "weight": 1}]


def test_the_wire_text_is_utf8_and_what_msgspec_refuses_still_goes_out() -> None:
    assert dumps({"body": "Привет"}) == '{"body":"Привет"}'  # not \\u escapes: shorter frames
    assert dumps({"x": float("nan")}) == '{"x":null}'  # a browser's JSON.parse refuses NaN
    assert loads(dumps({"body": "a\ud800"})) == {"body": "a\ud800"}
    assert loads(dumps({1.5: "x"})) == {"1.5": "x"}
    assert loads("1e400") == math.inf
    with pytest.raises(ValueError):
        loads('{"body": ')  # a malformed packet is refused as the standard module refused it
