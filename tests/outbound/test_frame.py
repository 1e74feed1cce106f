"""The outbound frame: numbers and zones, customer-local windows, retry rules, target lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.db.models.outbound import Outcome, ResultAction, TargetState
from omni.domain.errors import InvalidInput
from omni.domain.outbound.lifecycle import do_apply_result, do_close_attempt, do_open_attempt
from omni.domain.outbound.numbers import parse_number, zone_of
from omni.domain.outbound.policy import Load, policy_for
from omni.domain.outbound.retry import check_retry_rules, parse_intervals, retry_minutes
from omni.domain.outbound.windows import check_schedule, is_open, next_open, parse_windows
from omni.services import Services

EVERY_DAY_9_TO_21 = {str(d): [["09:00", "21:00"]] for d in range(1, 8)}


def test_a_vladivostok_number_is_placed_in_vladivostok_and_a_mobile_falls_back() -> None:
    vvo = parse_number("8 (423) 222-33-44")
    assert (vvo.e164, vvo.region, vvo.zone) == ("+74232223344", "RU", "Asia/Vladivostok")
    kgd = parse_number("+7 4012 55-66-77")
    assert kgd.zone == "Europe/Kaliningrad"
    mobile = parse_number("+7 916 123-45-67")
    assert zone_of(mobile, "", "Europe/Moscow") == "Europe/Moscow"
    assert zone_of(vvo, "Asia/Tokyo", "Europe/Moscow") == "Asia/Tokyo"


@pytest.mark.parametrize("raw", ["", "hello", "+7 123", "12345678901234567890"])
def test_bad_numbers_are_refused_with_the_reason(raw: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_number(raw)
    assert exc.value.field == "phone"


def test_a_vladivostok_number_is_not_called_at_0800_moscow_and_a_kaliningrad_one_not_at_2130_local() -> None:
    days = parse_windows(EVERY_DAY_9_TO_21)
    at_8_msk = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 08:00 Moscow = 15:00 Vladivostok
    assert is_open(days, [], at_8_msk.astimezone(parse_zone("Asia/Vladivostok")))
    late_vvo = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # 14:00 Moscow = 21:00 Vladivostok
    assert not is_open(days, [], late_vvo.astimezone(parse_zone("Asia/Vladivostok")))
    kgd_2130 = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)  # 21:30 Kaliningrad (UTC+2)
    assert not is_open(days, [], kgd_2130.astimezone(parse_zone("Europe/Kaliningrad")))
    assert next_open(days, [], "Europe/Kaliningrad", kgd_2130) == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    vvo_0800 = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # 08:00 in Vladivostok, 01:00 in Moscow
    assert not is_open(days, [], vvo_0800.astimezone(parse_zone("Asia/Vladivostok")))
    summer = datetime(2026, 7, 1, 19, 30, tzinfo=UTC)  # 21:30 in Kaliningrad in July too (no DST)
    kgd = parse_number("+7 4012 55-66-77").zone
    assert not is_open(days, [], summer.astimezone(parse_zone(kgd)))


def test_holidays_and_missing_days_have_no_window() -> None:
    days = parse_windows({"1": [["09:00", "18:00"]]})  # Mondays only
    sunday = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert next_open(days, ["2026-11-30"], "UTC", sunday) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert next_open({}, [], "UTC", sunday) is None


@pytest.mark.parametrize(
    ("schedule", "holidays"),
    [
        ({"8": []}, []),
        ({"1": [["18:00", "09:00"]]}, []),
        ({"1": [["9am", "18:00"]]}, []),
        ({}, ["31.12.2026"]),
    ],
)
def test_bad_schedules_are_refused(schedule: dict[str, object], holidays: list[str]) -> None:
    with pytest.raises(InvalidInput):
        check_schedule(schedule, holidays)


def test_retry_intervals_are_read_as_supervisors_write_them() -> None:
    assert parse_intervals("15;60;1440") == [15, 60, 1440]
    rules = check_retry_rules({"busy": "15;60;1440", "no_answer": [30]})
    assert [retry_minutes(rules, "busy", n) for n in (1, 2, 3, 4)] == [15, 60, 1440, 1440]
    assert retry_minutes(rules, "congestion", 1) is None
    with pytest.raises(InvalidInput):
        check_retry_rules({"answered": [5]})
    with pytest.raises(InvalidInput):
        parse_intervals("15;soon")


def test_preview_and_progressive_never_place_more_than_free_operators_or_the_trunk() -> None:
    for mode in ("preview", "progressive"):
        policy = policy_for(mode)
        assert policy is not None
        assert policy.wanted(Load(free_operators=5, open_attempts=2, max_concurrency=10)) == 3
        assert policy.wanted(Load(free_operators=5, open_attempts=0, max_concurrency=2)) == 2
        assert policy.wanted(Load(free_operators=0, open_attempts=3, max_concurrency=10)) == 0
    predictive = policy_for("predictive")  # registered by omni.domain.outbound.pacing (issue 14)
    assert predictive is not None and not predictive.reserves_operator


def parse_zone(name: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


async def _campaign(services: Services, **kw: object) -> tuple[int, int]:
    async with services.db.transaction() as s:
        queue = m.Queue(name="Outbound")
        s.add(queue)
        await s.flush()
        campaign = m.Campaign(
            name="Debts",
            queue_id=queue.id,
            retry_rules={"busy": [15, 60, 1440], "no_answer": [30]},
            max_attempts=4,
            **kw,
        )
        s.add(campaign)
        await s.flush()
        target = m.CampaignTarget(
            campaign_id=campaign.id, phone="+74232223344", phones=["+74232223344", "+79161234567"]
        )
        s.add(target)
        await s.flush()
        return campaign.id, target.id


async def test_busy_retries_15_60_1440_on_the_next_number_until_attempts_run_out(
    services: Services,
) -> None:
    _, target_id = await _campaign(services)
    t0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    dialed = []
    for n, minutes in enumerate([15, 60, 1440], start=1):
        async with services.db.transaction() as s:
            target = await s.get(m.CampaignTarget, target_id)
            assert target is not None
            attempt = await do_open_attempt(s, target, now=t0)
            dialed.append(attempt.phone)
            assert attempt.number == n
            target = await do_close_attempt(s, attempt, Outcome.BUSY, cause="17", now=t0)
            assert target.state == TargetState.PENDING
            assert target.next_due_at == t0 + timedelta(minutes=minutes)
    assert dialed == ["+74232223344", "+79161234567", "+74232223344"]
    async with services.db.transaction() as s:
        target = await s.get(m.CampaignTarget, target_id)
        assert target is not None
        attempt = await do_open_attempt(s, target, now=t0)
        target = await do_close_attempt(s, attempt, Outcome.BUSY, now=t0)
        assert (target.state, target.next_due_at, target.attempts) == (TargetState.FAILED, None, 4)
        ended = (await s.scalars(select(m.Event).where(m.Event.type == "campaign.attempt_ended"))).all()
        assert [e.payload["target_state"] for e in ended] == ["pending", "pending", "pending", "failed"]


async def test_an_outcome_without_a_rule_fails_and_a_skip_uses_no_attempt(
    services: Services,
) -> None:
    _, target_id = await _campaign(services)
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    async with services.db.transaction() as s:
        target = await s.get(m.CampaignTarget, target_id)
        assert target is not None
        attempt = await do_open_attempt(s, target, now=now)
        target = await do_close_attempt(s, attempt, Outcome.SKIPPED, now=now)
        assert (target.state, target.attempts) == (TargetState.FAILED, 0)  # no "skipped" rule here
    async with services.db.transaction() as s:
        target = await s.get(m.CampaignTarget, target_id)
        assert target is not None
        target.state = TargetState.PENDING
        attempt = await do_open_attempt(s, target, now=now)
        target = await do_close_attempt(s, attempt, Outcome.CONGESTION, now=now)
        assert target.state == TargetState.FAILED


async def test_result_codes_call_back_for_me_or_put_the_number_on_the_dnc(
    services: Services,
) -> None:
    campaign_id, target_id = await _campaign(services)
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    async with services.db.transaction() as s:
        later = m.ResultCode(code="later", name="Call back later")
        refuse = m.ResultCode(code="refuse", name="Do not call")
        operator = m.User(username="op", display_name="Op", role=m.Role.OPERATOR, password_hash="x")
        s.add_all([later, refuse, operator])
        await s.flush()
        s.add_all(
            [
                m.CampaignResultCode(
                    campaign_id=campaign_id, result_code_id=later.id, action=ResultAction.CALLBACK
                ),
                m.CampaignResultCode(
                    campaign_id=campaign_id, result_code_id=refuse.id, action=ResultAction.DNC
                ),
            ]
        )
        target = await s.get(m.CampaignTarget, target_id)
        assert target is not None
        attempt = await do_open_attempt(s, target, operator_id=operator.id, now=now)
        await do_close_attempt(s, attempt, Outcome.ANSWERED, now=now)
        assert target.state == TargetState.IN_PROGRESS
        with pytest.raises(InvalidInput):
            await do_apply_result(s, target, later.id, user_id=operator.id, now=now)
        at = now + timedelta(hours=3)
        await do_apply_result(s, target, later.id, user_id=operator.id, callback_at=at, for_me=True, now=now)
        assert (target.state, target.next_due_at, target.callback_user_id) == (
            TargetState.PENDING,
            at,
            operator.id,
        )
        attempt = await do_open_attempt(s, target, operator_id=operator.id, now=at)
        await do_close_attempt(s, attempt, Outcome.ANSWERED, now=at)
        await do_apply_result(s, target, refuse.id, user_id=operator.id, now=at)
        assert target.state == TargetState.DNC
        dnc = (await s.scalars(select(m.DncEntry))).all()
        assert [(d.campaign_id, d.number) for d in dnc] == [(campaign_id, "+74232223344")]
