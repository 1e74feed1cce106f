"""Skills, business hours, escalation and voice lines: the admin forms and their REST twins
check, store and audit alike; roles see only what they may."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from omni.db import models as m
from omni.domain.hours import is_open
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import token_for
from tests.web.test_admin_pages import World, client_for, field_error, post_form, world  # noqa: F401


def saved(resp: httpx.Response) -> bool:
    return resp.status_code in (302, 303) and "saved=1" in resp.headers.get("location", "")


NEW_SECTIONS = ("skills", "hours", "escalation", "telegram-bots", "voice-lines")


def test_a_holiday_closes_the_queue_for_the_whole_local_day() -> None:
    hours = {
        "timezone": "Europe/Moscow",
        "days": {str(d): [["00:00", "24:00"]] for d in range(7)},
        "holidays": [{"date": "2026-12-31", "name": "New Year's Eve"}],
    }
    queue = m.Queue(name="q", business_hours=hours)
    # 2026-12-30 21:30 UTC is already the 31st in Moscow (UTC+3): closed.
    assert not is_open(queue, datetime(2026, 12, 30, 21, 30, tzinfo=UTC))
    assert is_open(queue, datetime(2026, 12, 30, 20, 30, tzinfo=UTC))
    assert is_open(queue, datetime(2026, 12, 31, 21, 30, tzinfo=UTC))  # Jan 1st in Moscow


async def test_new_sections_refuse_operators_and_auditors_and_only_admins_connect_bots(
    world: World,  # noqa: F811
) -> None:
    async with client_for(world, "op_a") as c:
        for slug in NEW_SECTIONS:
            assert (await c.get(f"/admin/{slug}")).status_code == 403, slug
    async with client_for(world, "aud") as c:
        for slug in NEW_SECTIONS:
            assert (await c.get(f"/admin/{slug}")).status_code == 403, slug
    async with client_for(world, "sup") as c:
        hours = await c.get("/admin/hours")
        assert hours.status_code == 200 and "QA" in hours.text and "QB" not in hours.text
        assert (await c.get(f"/admin/hours/{world.ids['q_b']}")).status_code == 404
        assert (await c.get("/admin/hours/new")).status_code == 403  # queues are made elsewhere
        assert (await c.get("/admin/skills/new")).status_code == 403
        assert (await c.get("/admin/telegram-bots")).status_code == 403
        assert (await c.get("/admin/voice-lines/new")).status_code == 403
        # A supervisor edits the escalation of their own queue.
        esc = await post_form(
            c, f"/admin/escalation/{world.ids['q_a']}", f"/admin/escalation/{world.ids['q_a']}", after_0="45"
        )
        assert saved(esc), esc.text
    async with world.server.services.db.transaction() as s:
        queue = await s.get_one(m.Queue, world.ids["q_a"])
        assert queue.escalation == [{"after_seconds": 45, "relax_levels": 0}]


async def test_skill_form_sets_operator_and_queue_levels_with_errors_next_to_the_row(
    world: World,  # noqa: F811
) -> None:
    op_a, q_a = world.ids["op_a"], world.ids["q_a"]
    async with client_for(world, "root") as c:
        bad = await post_form(
            c, "/admin/skills/new", "/admin/skills/new", name="English", **{f"user_{op_a}": "11"}
        )
        assert bad.status_code == 400
        assert field_error(bad.text, f"user_{op_a}") == "op_a: level must be at most 10"
        created = await post_form(
            c,
            "/admin/skills/new",
            "/admin/skills/new",
            name="English",
            **{f"user_{op_a}": "7", f"queue_{q_a}": "5"},
        )
        assert saved(created), created.text
        skill_id = int(created.headers["location"].split("?")[0].rsplit("/", 1)[1])
        # REST shows what the form stored, on the user and on the queue.
        user = (await c.get(f"/api/v1/users/{op_a}")).json()
        assert user["skills"] == [{"skill_id": skill_id, "level": 7}]
        queue = (await c.get(f"/api/v1/queues/{q_a}")).json()
        assert queue["skills"] == [{"skill_id": skill_id, "min_level": 5}]
        cleared = await post_form(
            c, f"/admin/skills/{skill_id}", f"/admin/skills/{skill_id}", **{f"user_{op_a}": ""}
        )
        assert saved(cleared), cleared.text
        assert (await c.get(f"/api/v1/users/{op_a}")).json()["skills"] == []
    async with world.server.services.db.transaction() as s:
        actions = list(await s.scalars(select(m.AuditLog.action).order_by(m.AuditLog.id)))
    # The refused first try stored and audited nothing; each change is audited where REST audits it.
    assert actions[-5:] == ["skill.create", "user.skills", "queue.skills", "skill.update", "user.skills"]


async def test_business_hours_with_holidays_over_rest_and_in_the_form(world: World) -> None:  # noqa: F811
    q_a = world.ids["q_a"]
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as api:
        api.headers["Authorization"] = f"Bearer {await token_for(world.server, 'root')}"
        bad = await api.patch(
            f"/api/v1/queues/{q_a}",
            json={
                "business_hours": {
                    "timezone": "Europe/Moscow",
                    "days": {"0": [["09:00", "18:00"]]},
                    "holidays": [{"date": "2026-13-01"}],
                }
            },
        )
        assert bad.status_code == 422 and bad.json()["field"] == "business_hours.holidays[0].date", bad.text
        good = await api.patch(
            f"/api/v1/queues/{q_a}",
            json={
                "business_hours": {
                    "timezone": "Europe/Moscow",
                    "days": {"0": [["09:00", "18:00"]]},
                    "holidays": [{"date": "2027-01-07", "name": "Christmas"}, {"date": "2026-12-31"}],
                }
            },
        )
        assert good.status_code == 200, good.text
        assert good.json()["business_hours"]["holidays"] == [
            {"date": "2026-12-31", "name": ""},
            {"date": "2027-01-07", "name": "Christmas"},
        ]
    async with client_for(world, "root") as c:
        page = await c.get(f"/admin/hours/{q_a}")
        assert "2027-01-07 Christmas" in page.text
        bad_form = await post_form(
            c, f"/admin/hours/{q_a}", f"/admin/hours/{q_a}", day_1="10:00-09:00", day_2="9-18"
        )
        assert bad_form.status_code == 400
        assert field_error(bad_form.text, "day_1") == "10:00-09:00: the start must come before the end"
        assert (field_error(bad_form.text, "day_2") or "").startswith("write the hours as 09:00-18:00")
        ok = await post_form(c, f"/admin/hours/{q_a}", f"/admin/hours/{q_a}", day_1="14:00-18:00, 9:00-13:00")
        assert saved(ok), ok.text
    async with world.server.services.db.transaction() as s:
        queue = await s.get_one(m.Queue, q_a)
        assert queue.business_hours is not None
        assert queue.business_hours["days"] == {
            "0": [["09:00", "18:00"]],
            "1": [["09:00", "13:00"], ["14:00", "18:00"]],
        }
        assert [h["date"] for h in queue.business_hours["holidays"]] == ["2026-12-31", "2027-01-07"]


async def test_voice_numbers_are_checked_alike_in_rest_and_in_the_form(world: World) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as api:
        api.headers["Authorization"] = f"Bearer {await token_for(world.server, 'root')}"
        first = await api.post(
            "/api/v1/inboxes",
            json={
                "name": "Main line",
                "channel": "voice",
                "queue_id": world.ids["q_a"],
                "config": {"did": "+7 495 100-00-01"},
            },
        )
        assert first.status_code == 201, first.text
        assert first.json()["config"]["did"] == "+74951000001"
        bad = await api.post(
            "/api/v1/inboxes",
            json={"name": "Other", "channel": "voice", "config": {"caller_id": "call me"}},
        )
        assert bad.status_code == 422 and bad.json()["field"] == "config.caller_id", bad.text
    async with client_for(world, "root") as c:
        clash = await post_form(
            c, "/admin/voice-lines/new", "/admin/voice-lines/new", name="Sales line", did="+74951000001"
        )
        assert clash.status_code == 400
        assert field_error(clash.text, "did") == "number +74951000001 already reaches voice inbox 'Main line'"
        listing = await c.get("/admin/voice-lines")
        assert "Main line" in listing.text and "+74951000001" in listing.text
