"""The status report's per-kind sums (one conditional sum a column, in SQL) on every tier.

On the hand-built Moscow day of ``test_operators``, ``op_b`` also spends 22:00–22:20 UTC (01:00–01:20
on 11 March in Moscow) in "Back office", an admin-defined status of the *available* kind: its
own column shows it, and idle time (every available-kind status) adds it to plain "available".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omni.db import models as m
from omni.domain.reports import Grouping
from omni.domain.reports.rollups import rebuild_range
from omni.services import Services
from tests.reports.test_operators import DAY_11, World, _rows, _run, _spans, at, world

__all__ = ["world"]

COLS = ("logged_in_time", "status_available", "status_backoffice", "talking", "idle")


async def _add_back_office(services: Services, w: World) -> None:
    async with services.db.transaction() as s:
        s.add(
            m.OperatorStatus(
                code="backoffice", name="Back office", name_ru="Бэк-офис", kind="available", selectable=True
            )
        )
        await s.flush()
        await _spans(s, w.op_b, [("backoffice", "22:00", "22:20")])
        await s.flush()
        await rebuild_range(s, at("22:00"), at("22:30"))


def _b11(rows: list[dict[str, Any]], w: World, period: datetime) -> dict[str, Any]:
    (row,) = [r for r in rows if r["period"] == period and r["operator"] == "op_b"]
    return row


async def test_idle_adds_up_every_available_kind_status_on_each_tier(
    services: Services, world: World
) -> None:
    await _add_back_office(services, world)
    # by day (the daily tier): op_b's 11 March was 2400 s logged in, 740 s available, 710 s talking
    by_day = await _run(services, world.admin, "operator_status")
    keys = [c.key for c in by_day.columns]
    assert [k for k in keys if k.startswith("status_")][-1] == "status_backoffice"
    b11 = _b11(_rows(by_day), world, DAY_11)
    assert tuple(b11[k] for k in COLS) == (3600.0, 740.0, 1200.0, 710.0, 1940.0)
    # handling 15 + 710 + 30 = 755: 755 / (755 + 1940); (755 + 1940) / 3600
    assert (b11["occupancy"], b11["utilization"]) == (28.0, 74.9)
    total = dict(zip(keys, by_day.totals or [], strict=True))
    assert (total["logged_in_time"], total["status_backoffice"], total["idle"]) == (12300.0, 1200.0, 4460.0)
    # by hour (the hourly tier) and by interval (the 15-minute one): 01:00 Moscow is all back office
    one_am = datetime.fromisoformat("2026-03-11T01:00:00+03:00")
    for grouping, seconds in ((Grouping.HOUR, 1200.0), (Grouping.INTERVAL, 900.0)):
        table = await _run(services, world.admin, "operator_status", grouping=grouping)
        row = _b11(_rows(table), world, one_am)
        assert tuple(row[k] for k in COLS) == (seconds, 0.0, seconds, 0.0, seconds), grouping
        assert (row["occupancy"], row["utilization"]) == (0.0, 100.0), grouping
