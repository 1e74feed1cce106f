"""The staffing forecast's own options over REST, exports and mailings.

``GET /api/v1/reports/staffing`` takes ``target_sl``, ``interval_minutes``, ``weeks``,
``max_occupancy`` and ``chat_concurrency`` as typed query parameters with bounds; they travel in
``FilterParams`` (and its JSON, which exports and mailings store) to ``Scope.extra``. The figures
are the hand-built staffing fixture's (``tests/reports/test_staffing.py``), computed there by the
exact Erlang C closed form.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain.errors import InvalidInput
from omni.domain.reports import FilterParams
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.reports.test_staffing import DAY, exact_needed, fixture


@pytest.fixture
async def admin(live_server: LiveServer) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    async with live_server.services.db.transaction() as s:
        fx = await fixture(s)
    client = httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": "adm", "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    try:
        yield client, fx
    finally:
        await client.aclose()


def at_nine(body: dict[str, Any]) -> dict[str, Any]:
    keys = [c["key"] for c in body["columns"]]
    rows = [dict(zip(keys, r, strict=True)) for r in body["rows"]]
    [row] = [r for r in rows if str(r["interval"]).startswith("2026-03-10T09:00")]
    return row


async def test_staffing_options_over_rest_change_the_figures(
    admin: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, fx = admin
    day = {"since": DAY.isoformat(), "until": DAY.isoformat(), "queue": fx["voice"].id}
    listed = {r["key"]: r["filters"] for r in (await client.get("/api/v1/reports")).json()}
    assert {"target_sl", "interval_minutes", "weeks", "max_occupancy", "chat_concurrency"} <= set(
        listed["staffing"]
    )

    plain = await client.get("/api/v1/reports/staffing", params=day)
    assert plain.status_code == 200, plain.text
    assert len(plain.json()["rows"]) == 96
    assert at_nine(plain.json())["needed"] == exact_needed(50, 180, 900, 20) == 14

    stricter = await client.get("/api/v1/reports/staffing", params={**day, "target_sl": 90})
    assert stricter.status_code == 200, stricter.text
    assert at_nine(stricter.json())["needed"] == exact_needed(50, 180, 900, 20, Fraction(9, 10)) == 15

    halves = await client.get("/api/v1/reports/staffing", params={**day, "interval_minutes": 30})
    assert halves.status_code == 200, halves.text
    assert len(halves.json()["rows"]) == 48
    assert at_nine(halves.json())["needed"] == exact_needed(75, 180, 1800, 20)

    # 10 erlangs at most 60 % busy: 17 operators (10 / 17 ≤ 0.6 < 10 / 16).
    capped = await client.get("/api/v1/reports/staffing", params={**day, "max_occupancy": 60})
    assert capped.status_code == 200, capped.text
    assert at_nine(capped.json())["needed"] == 17


@pytest.mark.parametrize(
    ("name", "value"),
    [("target_sl", 100), ("target_sl", 0), ("interval_minutes", 45), ("weeks", 53), ("chat_concurrency", 0)],
)
async def test_staffing_options_out_of_bounds_are_refused_over_rest(
    admin: tuple[httpx.AsyncClient, dict[str, Any]], name: str, value: float
) -> None:
    client, _ = admin
    resp = await client.get("/api/v1/reports/staffing", params={"preset": "yesterday", name: value})
    assert resp.status_code == 400, resp.text
    assert name in resp.text


async def test_an_interval_of_twenty_minutes_is_refused_with_the_field_named(
    admin: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = admin
    params = {"preset": "yesterday", "interval_minutes": 20}
    resp = await client.get("/api/v1/reports/staffing", params=params)
    assert resp.status_code in (400, 422), resp.text
    assert "interval_minutes" in resp.text


async def test_staffing_options_travel_in_exports_and_mailings_json(
    admin: tuple[httpx.AsyncClient, dict[str, Any]], live_server: LiveServer
) -> None:
    client, _ = admin
    params = FilterParams(since=DAY, until=DAY, target_sl=90.0, interval_minutes=30, weeks=6)
    again = FilterParams.from_json(params.to_json())
    assert again == params
    assert dict(again.resolve(UTC, datetime(2026, 3, 12, tzinfo=UTC)).options) == {
        "target_sl": 90.0,
        "interval_minutes": 30,
        "weeks": 6,
    }
    with pytest.raises(InvalidInput) as exc:
        FilterParams.from_json({**params.to_json(), "interval_minutes": 20}).check()
    assert exc.value.field == "interval_minutes"

    created = await client.post(
        "/api/v1/report-schedules",
        json={
            "report_key": "staffing",
            "filters": {"preset": "yesterday", "target_sl": 90, "interval_minutes": 30},
            "format": "xlsx",
            "frequency": "daily",
            "send_time": "08:00",
            "recipients": ["boss@example.com"],
            "language": "en",
        },
    )
    assert created.status_code == 201, created.text
    filters = created.json()["filters"]
    assert (filters["target_sl"], filters["interval_minutes"], filters["weeks"]) == (90, 30, None)
    refused = await client.post(
        "/api/v1/report-schedules",
        json={
            "report_key": "staffing",
            "filters": {"preset": "yesterday", "target_sl": 150},
            "format": "xlsx",
            "frequency": "daily",
            "send_time": "08:00",
            "recipients": ["boss@example.com"],
            "language": "en",
        },
    )
    assert refused.status_code in (400, 422), refused.text
    assert "filters" in refused.text or "target_sl" in refused.text

    export = await client.post(
        "/api/v1/reports/staffing/exports",
        params={"format": "csv", "since": DAY.isoformat(), "until": DAY.isoformat(), "interval_minutes": 30},
    )
    assert export.status_code == 202, export.text
    async with live_server.services.db.transaction() as s:
        job = await s.get_one(m.ReportExport, export.json()["id"])
    assert FilterParams.from_json(job.filters).interval_minutes == 30


async def test_the_schedules_page_keeps_the_staffing_options_of_the_reports_link(
    admin: tuple[httpx.AsyncClient, dict[str, Any]], live_server: LiveServer
) -> None:
    """The reports page's "schedule mailing" link carries ``target_sl`` and ``interval_minutes``;
    the form keeps them (hidden) and the schedule stores them as numbers."""
    client, _ = admin
    page = await client.get(
        "/reports/schedules",
        params={"report": "staffing", "preset": "yesterday", "target_sl": "90", "interval_minutes": "30"},
    )
    assert page.status_code == 200, page.text
    html = page.text
    assert '<input type="hidden" name="target_sl" value="90">' in html
    assert '<input type="hidden" name="interval_minutes" value="30">' in html
    csrf = html.split('name="_csrf" value="')[1].split('"')[0]
    form = {
        "_csrf": csrf,
        "report_key": "staffing",
        "preset": "yesterday",
        "grouping": "day",
        "target_sl": "90",
        "interval_minutes": "30",
        "format": "xlsx",
        "frequency": "daily",
        "weekday": "",
        "send_time": "08:00",
        "recipients": "boss@example.com",
        "language": "en",
        "active": "1",
    }
    ok = await client.post("/reports/schedules", data=form)
    assert ok.status_code in (302, 303), ok.text
    async with live_server.services.db.transaction() as s:
        [row] = (await s.scalars(select(m.ReportSchedule))).all()
    assert (row.filters["target_sl"], row.filters["interval_minutes"], row.filters["weeks"]) == (
        90.0,
        30,
        None,
    )
    edit = await client.get(f"/reports/schedules/{row.id}")
    assert '<input type="hidden" name="target_sl" value="90.0">' in edit.text
