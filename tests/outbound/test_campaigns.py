"""Campaigns: validation per field, the state machine with audit and events, scope, end dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.db.models.outbound import CampaignState
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.outbound import campaigns as c
from omni.domain.outbound.retry import DEFAULT_RETRY_RULES
from omni.services import Services
from tests import factories as f

WEEKDAYS_9_TO_21 = {str(d): [["09:00", "21:00"]] for d in range(1, 6)}


@dataclass
class World:
    admin: Principal
    sup: Principal
    op: Principal
    op_b: Principal
    q_a: int
    q_b: int
    empty_q: int
    voice_inbox: int
    tg_inbox: int
    code: int


@pytest.fixture
async def world(services: Services) -> World:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
        op_b = await f.user(s, "op_b")
        q_a = await f.queue(s, "QA", [op])
        q_b = await f.queue(s, "QB", [op_b])
        empty = await f.queue(s, "Empty")
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=q_a.id))
        voice = await f.inbox(s, q_a, "voice", "Trunk")
        tg = await f.inbox(s, q_a, "telegram", "Bot")
        code = await f.result_code(s, "later")
        return World(
            f.who(admin),
            f.who(sup),
            f.who(op),
            f.who(op_b),
            q_a.id,
            q_b.id,
            empty.id,
            voice.id,
            tg.id,
            code.id,
        )


def body(w: World, **kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Debts",
        "queue_id": w.q_a,
        "channel": "voice",
        "dial_mode": "preview",
        "inbox_id": w.voice_inbox,
        "schedule": WEEKDAYS_9_TO_21,
    }
    data.update(kw)
    return data


async def create(services: Services, w: World, **kw: Any) -> int:
    async with services.db.transaction() as s:
        return (await c.check_create_campaign(s, w.admin, body(w, **kw))).id


async def test_a_campaign_is_created_as_a_draft_with_default_retry_rules_pool_and_result_codes(
    services: Services, world: World
) -> None:
    cid = await create(
        services,
        world,
        retry_rules={"busy": "15;60;1440", "no_answer": [30]},
        caller_ids=[{"number": "8 495 123-45-67", "region": "ru-mow"}, {"number": "+74232223344"}],
        result_codes=[{"result_code_id": world.code, "action": "retry", "retry_minutes": 120}],
        holidays=["2026-12-31", "2026-12-31", "2027-01-01"],
        starts_on="2026-12-01",
        ends_on="2026-12-31",
    )
    async with services.db.transaction() as s:
        detail = await c.campaign_detail(s, await c.access_campaign(s, world.admin, cid))
    assert detail["state"] == "draft"
    assert detail["retry_rules"] == {"busy": [15, 60, 1440], "no_answer": [30]}
    assert [(p["number"], p["region"]) for p in detail["caller_ids"]] == [
        ("+74951234567", "RU-MOW"),
        ("+74232223344", ""),
    ]
    assert (
        detail["result_codes"][0]["action"] == "retry" and detail["result_codes"][0]["retry_minutes"] == 120
    )
    assert detail["holidays"] == ["2026-12-31", "2027-01-01"]
    assert (detail["starts_on"], detail["ends_on"]) == ("2026-12-01", "2026-12-31")
    cid2 = await create(services, world, name="Defaults")
    async with services.db.transaction() as s:
        plain = await s.get_one(m.Campaign, cid2)
        assert plain.retry_rules == {k: list(v) for k, v in DEFAULT_RETRY_RULES.items()}
        audit = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "campaign.create"))
        assert audit is not None and audit.user_id == world.admin.id


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": " "}, "name"),
        ({"channel": "fax"}, "channel"),
        ({"dial_mode": "robocall"}, "dial_mode"),
        ({"target_abandon_pct": 75}, "target_abandon_pct"),
        ({"target_abandon_pct": "3%"}, "target_abandon_pct"),
        ({"max_lines_per_operator": 0.5}, "max_lines_per_operator"),
        ({"drop_seconds": 0}, "drop_seconds"),
        ({"drop_prompt_id": 999}, "drop_prompt_id"),
        ({"machine_action": "hang up"}, "machine_action"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"default_region": "XX"}, "default_region"),
        ({"schedule": {"8": []}}, "schedule"),
        ({"schedule": {"1": [["21:00", "09:00"]]}}, "schedule"),
        ({"holidays": ["31.12.2026"]}, "holidays"),
        ({"starts_on": "tomorrow"}, "starts_on"),
        ({"starts_on": "2026-12-10", "ends_on": "2026-12-01"}, "ends_on"),
        ({"retry_rules": {"busy": "15;soon"}}, "retry_rules"),
        ({"retry_rules": {"answered": [5]}}, "retry_rules"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"ring_seconds": 1}, "ring_seconds"),
        ({"predial_url": "ftp://x.example/check"}, "predial_url"),
        ({"predial_timeout_ms": 50}, "predial_timeout_ms"),
        ({"predial_timeout_ms": 10001}, "predial_timeout_ms"),
        ({"predial_on_timeout": "maybe"}, "predial_on_timeout"),
        ({"escalation": {"unread_minutes": 30}}, "escalation.campaign_id"),
        ({"escalation": {"campaign_id": 1}}, "escalation"),
        ({"caller_ids": [{"number": "12"}]}, "caller_ids[0].number"),
        ({"caller_ids": [{"number": "+74951234567"}, {"number": "84951234567"}]}, "caller_ids[1].number"),
        ({"caller_ids": [{"number": "+74951234567", "region": "Moscow"}]}, "caller_ids[0].region"),
        ({"result_codes": [{"result_code_id": 1, "action": "retry"}]}, "result_codes[0].retry_minutes"),
        ({"result_codes": [{"result_code_id": 1, "action": "explode"}]}, "result_codes[0].action"),
        ({"result_codes": [{"result_code_id": 999, "action": "finish"}]}, "result_codes[0].result_code_id"),
        ({"inbox_id": 999}, "inbox_id"),
        ({"queue_id": 999}, "queue_id"),
        ({"operator_ids": [999]}, "operator_ids[0]"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_each_bad_field_is_refused_naming_it_and_nothing_is_stored(
    services: Services, world: World, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        await create(services, world, **changes)
    assert exc.value.field == field, exc.value.message
    async with services.db.transaction() as s:
        assert (await s.scalars(select(m.Campaign))).all() == []


async def test_predictive_and_agentless_campaigns_keep_their_pacing_amd_and_scenario_settings(
    services: Services, world: World
) -> None:
    cid = await create(
        services,
        world,
        dial_mode="predictive",
        target_abandon_pct=2.5,
        max_lines_per_operator=2,
        drop_seconds=3,
        drop_text="Sorry, all our operators are busy",
        amd_enabled=True,
        machine_action="message",
        machine_text="Please call us back",
    )
    aid = await create(services, world, name="Reminders", dial_mode="agentless", scenario="debt_reminder")
    async with services.db.transaction() as s:
        c = await s.get(m.Campaign, cid)
        a = await s.get(m.Campaign, aid)
    assert c is not None and a is not None
    assert (c.dial_mode, c.target_abandon_pct, c.max_lines_per_operator, c.drop_seconds) == (
        "predictive",
        2.5,
        2.0,
        3,
    )
    assert (c.amd_enabled, c.machine_action, c.machine_text) == (True, "message", "Please call us back")
    assert (a.dial_mode, a.scenario, a.target_abandon_pct) == ("agentless", "debt_reminder", 3.0)


async def test_the_inbox_must_match_the_channel_and_a_named_operator_must_be_an_operator(
    services: Services, world: World
) -> None:
    with pytest.raises(InvalidInput) as exc:
        await create(services, world, channel="telegram", inbox_id=world.voice_inbox)
    assert exc.value.field == "inbox_id" and "Trunk" in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        await create(services, world, operator_ids=[world.sup.id])
    assert exc.value.field == "operator_ids[0]"
    cid = await create(
        services, world, channel="telegram", inbox_id=world.tg_inbox, message_template="Hi {name}"
    )
    assert cid


async def test_several_problems_are_reported_at_once(services: Services, world: World) -> None:
    with pytest.raises(InvalidInput) as exc:
        await create(services, world, max_attempts=0, ring_seconds=1, predial_on_timeout="maybe")
    assert {e.field for e in exc.value.errors} == {"max_attempts", "ring_seconds", "predial_on_timeout"}


async def test_state_machine_draft_running_paused_finished_with_audit_and_events(
    services: Services, world: World
) -> None:
    cid = await create(services, world)
    for state in ("running", "paused", "running", "paused", "finished"):
        async with services.db.transaction() as s:
            camp = await c.check_set_state(s, world.sup, cid, CampaignState(state))
            assert camp.state == state
    async with services.db.transaction() as s:
        camp = await s.get_one(m.Campaign, cid)
        assert camp.started_at is not None and camp.finished_at is not None
        events = (
            await s.scalars(
                select(m.Event).where(m.Event.type == "campaign.state_changed").order_by(m.Event.id)
            )
        ).all()
        assert [(e.payload["previous_state"], e.payload["state"]) for e in events] == [
            ("draft", "running"),
            ("running", "paused"),
            ("paused", "running"),
            ("running", "paused"),
            ("paused", "finished"),
        ]
        assert {e.queue_id for e in events} == {world.q_a}
        assert {e.payload["user_id"] for e in events} == {world.sup.id}
        audits = (
            await s.scalars(
                select(m.AuditLog).where(m.AuditLog.action == "campaign.state").order_by(m.AuditLog.id)
            )
        ).all()
        assert [a.input for a in audits][-1] == {"from": "paused", "to": "finished"}
        assert {a.user_id for a in audits} == {world.sup.id} and len(audits) == 5


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "paused"),
        ([], "finished"),
        ([], "draft"),
        (["running"], "running"),
        (["running"], "draft"),
        (["running", "paused"], "draft"),
        (["running", "finished"], "running"),
        (["running", "finished"], "paused"),
    ],
)
async def test_illegal_transitions_are_a_conflict_and_change_nothing(
    services: Services, world: World, path: list[str], illegal: str
) -> None:
    cid = await create(services, world)
    for state in path:
        async with services.db.transaction() as s:
            await c.check_set_state(s, world.admin, cid, CampaignState(state))
    with pytest.raises(Conflict):
        async with services.db.transaction() as s:
            await c.check_set_state(s, world.admin, cid, CampaignState(illegal))
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Campaign, cid)).state == (path[-1] if path else "draft")
        events = (await s.scalars(select(m.Event).where(m.Event.type == "campaign.state_changed"))).all()
        assert len(events) == len(path)


async def test_a_campaign_nobody_works_or_a_voice_one_without_an_inbox_does_not_start(
    services: Services, world: World
) -> None:
    nobody = await create(services, world, name="Nobody", queue_id=world.empty_q)
    no_inbox = await create(services, world, name="No inbox", inbox_id=None)
    tg = await create(services, world, name="Tg", channel="telegram", inbox_id=None)
    for cid, field in ((nobody, "operator_ids"), (no_inbox, "inbox_id"), (tg, "message_template")):
        with pytest.raises(Conflict) as exc:
            async with services.db.transaction() as s:
                await c.check_set_state(s, world.admin, cid, CampaignState.RUNNING)
        assert exc.value.field == field
    async with services.db.transaction() as s:  # named operators are enough
        await c.check_update_campaign(s, world.admin, nobody, {"operator_ids": [world.op_b.id]})
        assert (await c.check_set_state(s, world.admin, nobody, CampaignState.RUNNING)).state == "running"
    with pytest.raises(InvalidInput) as bad:  # and a running voice campaign keeps its inbox
        async with services.db.transaction() as s:
            await c.check_update_campaign(s, world.admin, nobody, {"inbox_id": None})
    assert bad.value.field == "inbox_id"


async def test_editing_a_running_campaign_is_audited_with_the_difference(
    services: Services, world: World
) -> None:
    cid = await create(services, world, caller_ids=[{"number": "+74951234567"}])
    async with services.db.transaction() as s:
        await c.check_set_state(s, world.admin, cid, CampaignState.RUNNING)
        s.add(m.CampaignCallerId(campaign_id=cid, number="+74232223344"))
    async with services.db.transaction() as s:
        kept = await s.scalar(select(m.CampaignCallerId).where(m.CampaignCallerId.number == "+74951234567"))
        assert kept is not None
        kept.last_used_at = datetime(2026, 12, 1, tzinfo=UTC)
    async with services.db.transaction() as s:
        await c.check_update_campaign(
            s,
            world.admin,
            cid,
            {
                "schedule": {"1": [["10:00", "18:00"]]},
                "retry_rules": {"busy": "5;10"},
                "caller_ids": [{"number": "+74951234567", "region": "RU-MOW"}],
                "name": "Debts",
            },
        )
    async with services.db.transaction() as s:
        row = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "campaign.update"))
        assert row is not None
        changes = row.input["changes"]
        assert set(changes) == {"schedule", "retry_rules", "caller_ids"}
        assert changes["retry_rules"]["to"] == {"busy": [5, 10]}
        assert changes["schedule"]["from"] == WEEKDAYS_9_TO_21
        pool = (
            await s.scalars(select(m.CampaignCallerId).where(m.CampaignCallerId.campaign_id == cid))
        ).all()
        assert [(p.number, p.region, p.last_used_at is not None) for p in pool] == [
            ("+74951234567", "RU-MOW", True)
        ]
    with pytest.raises(InvalidInput) as exc:
        async with services.db.transaction() as s:
            await c.check_update_campaign(s, world.admin, cid, {"channel": "telegram"})
    assert exc.value.field == "channel"
    async with services.db.transaction() as s:
        await c.check_set_state(s, world.admin, cid, CampaignState.FINISHED)
    with pytest.raises(Conflict):
        async with services.db.transaction() as s:
            await c.check_update_campaign(s, world.admin, cid, {"priority": 5})


async def test_only_drafts_are_deleted(services: Services, world: World) -> None:
    draft = await create(services, world, name="Draft")
    ran = await create(services, world, name="Ran")
    async with services.db.transaction() as s:
        await c.check_set_state(s, world.admin, ran, CampaignState.RUNNING)
    with pytest.raises(Conflict):
        async with services.db.transaction() as s:
            await c.check_delete_campaign(s, world.admin, ran)
    async with services.db.transaction() as s:
        await c.check_delete_campaign(s, world.admin, draft)
    async with services.db.transaction() as s:
        assert await s.get(m.Campaign, draft) is None and await s.get(m.Campaign, ran) is not None
        assert await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "campaign.delete")) is not None


async def test_roles_and_scope(services: Services, world: World) -> None:
    mine = await create(services, world, name="Mine")
    theirs = await create(services, world, name="Theirs", queue_id=world.q_b)
    named = await create(services, world, name="Named", queue_id=world.q_b, operator_ids=[world.op.id])
    async with services.db.transaction() as s:
        with pytest.raises(PermissionDenied):
            await c.check_create_campaign(s, world.sup, body(world, name="X"))
        with pytest.raises(PermissionDenied):
            await c.check_update_campaign(s, world.sup, mine, {"priority": 1})
        with pytest.raises(PermissionDenied):
            await c.check_set_state(s, world.op, mine, CampaignState.RUNNING)
        with pytest.raises(NotFound):
            await c.check_set_state(s, world.sup, theirs, CampaignState.RUNNING)
        assert {x.id for x in await c.list_campaigns(s, world.sup)} == {mine}
        assert {x.id for x in await c.list_campaigns(s, world.op)} == {mine, named}
        assert {x.id for x in await c.list_campaigns(s, world.op_b)} == {theirs, named}
        assert {x.id for x in await c.list_campaigns(s, world.admin, state="draft", channel="voice")} == {
            mine,
            theirs,
            named,
        }
        assert await c.list_campaigns(s, world.admin, state="running") == []
        with pytest.raises(NotFound):
            await c.access_campaign(s, world.op, theirs)


async def test_a_campaign_past_its_end_date_finishes_on_the_tick_in_its_own_zone(
    services: Services, world: World
) -> None:
    # A far end date: starting a campaign refuses one already past on the wall clock.
    vvo = await create(services, world, name="Vladivostok", timezone="Asia/Vladivostok", ends_on="2099-12-01")
    msk = await create(services, world, name="Moscow", ends_on="2099-12-01")
    draft = await create(services, world, name="Draft", ends_on="2099-11-01")
    for cid in (vvo, msk):
        async with services.db.transaction() as s:
            await c.check_set_state(s, world.admin, cid, CampaignState.RUNNING)
    async with services.db.transaction() as s:
        await c.check_set_state(s, world.admin, msk, CampaignState.PAUSED)
    # 12:00 UTC on the end date: still the 1st everywhere, and the end date is a calling day.
    async with services.db.transaction() as s:
        assert await c.do_finish_expired(s, datetime(2099, 12, 1, 12, 0, tzinfo=UTC)) == 0
    # 16:00 UTC: already the 2nd in Vladivostok (UTC+10), still the 1st in Moscow.
    async with services.db.transaction() as s:
        assert await c.do_finish_expired(s, datetime(2099, 12, 1, 16, 0, tzinfo=UTC)) == 1
    async with services.db.transaction() as s:
        assert await c.do_finish_expired(s, datetime(2099, 12, 1, 21, 30, tzinfo=UTC)) == 1
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Campaign, vvo)).state == "finished"
        assert (await s.get_one(m.Campaign, msk)).state == "finished"
        assert (await s.get_one(m.Campaign, draft)).state == "draft"
        events = (await s.scalars(select(m.Event).where(m.Event.type == "campaign.state_changed"))).all()
        system = [e.payload for e in events if e.payload["state"] == "finished"]
        assert [(p["name"], p["user_id"]) for p in system] == [("Vladivostok", None), ("Moscow", None)]
        audit = (
            await s.scalars(
                select(m.AuditLog).where(m.AuditLog.action == "campaign.state", m.AuditLog.user_id.is_(None))
            )
        ).all()
        assert len(audit) == 2


async def test_a_campaign_whose_end_date_passed_does_not_start(services: Services, world: World) -> None:
    cid = await create(services, world, ends_on="2020-01-01")
    with pytest.raises(Conflict) as exc:
        async with services.db.transaction() as s:
            await c.check_set_state(s, world.admin, cid, CampaignState.RUNNING)
    assert exc.value.field == "ends_on"


async def test_result_codes_are_replaced_with_their_actions(services: Services, world: World) -> None:
    cid = await create(services, world)
    async with services.db.transaction() as s:
        refuse = await f.result_code(s, "refuse")
        await c.check_set_result_codes(
            s,
            world.admin,
            cid,
            {
                "result_codes": [
                    {"result_code_id": world.code, "action": "callback"},
                    {"result_code_id": refuse.id, "action": "dnc", "global_dnc": True},
                ]
            },
        )
        codes = await c.result_code_dicts(s, cid)
    assert [(x["code"], x["action"], x["global_dnc"]) for x in codes] == [
        ("later", "callback", False),
        ("refuse", "dnc", True),
    ]
    with pytest.raises(InvalidInput) as exc:
        async with services.db.transaction() as s:
            await c.check_set_result_codes(
                s,
                world.admin,
                cid,
                {"result_codes": [{"result_code_id": world.code, "action": "finish", "global_dnc": True}]},
            )
    assert exc.value.field == "result_codes[0].global_dnc"


async def test_a_queue_or_inbox_a_campaign_uses_is_not_deleted_from_under_it(
    services: Services, world: World
) -> None:
    """The queue's row is RESTRICTed (deleting it was a misleading "concurrent change" 409) and
    the inbox's SET NULL would silently leave a running voice campaign with nothing to call from."""
    from omni.domain import admin

    await create(services, world, name="Uses both", queue_id=world.q_b)
    with pytest.raises(Conflict) as exc:
        async with services.db.transaction() as s:
            await admin.check_delete_queue(s, world.admin, world.q_b)
    assert "Uses both" in exc.value.message
    with pytest.raises(Conflict) as exc:
        async with services.db.transaction() as s:
            await admin.check_delete_inbox(s, world.admin, world.voice_inbox)
    assert "Uses both" in exc.value.message
    async with services.db.transaction() as s:
        assert (
            await s.get(m.Queue, world.q_a) is not None
            and await s.get(m.Inbox, world.voice_inbox) is not None
        )
