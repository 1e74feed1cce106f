"""The console piece: preview call / skip / reschedule / expiry, the operator's result code on a
campaign conversation, the live figures and the campaign report, computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from omni.channels import AttemptOrder, PlacesAttempts
from omni.db import models as m
from omni.db.models.outbound import CampaignState, Outcome, TargetState
from omni.domain import conversations, reports, workspace
from omni.domain.auth import Principal
from omni.domain.conversations.handling import do_wrap_up_expired
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.outbound import campaigns, preview, stats
from omni.domain.outbound.lifecycle import do_apply_result, do_close_attempt, do_open_attempt
from omni.domain.reports.period import days
from omni.services import Services
from tests import factories as f
from tests.outbound import console_world
from tests.outbound.console_world import CampaignWorld

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


async def _world(services: Services, **kw: object) -> CampaignWorld:
    async with services.db.transaction() as s:
        return await console_world.build(s, **kw)  # type: ignore[arg-type]


async def _who(services: Services, user_id: int) -> Principal:
    async with services.db.transaction() as s:
        return f.who(await s.get_one(m.User, user_id))


async def _open_preview(services: Services, w: CampaignWorld, n: int = 0, *, at: datetime = T0) -> int:
    """What the engine does for a preview: an open attempt reserved for the operator."""
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, w.targets[n])
        attempt = await do_open_attempt(
            s, target, caller_id="+74950000000", operator_id=w.operator_id, now=at
        )
        return attempt.id


async def test_only_the_reserved_operator_calls_a_preview_and_the_call_starts_the_attempt(
    services: Services,
) -> None:
    w = await _world(services)
    attempt_id = await _open_preview(services, w)
    other, op = await _who(services, w.other_operator_id), await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        with pytest.raises(PermissionDenied):
            await preview.do_preview_call(s, other, attempt_id)
        with pytest.raises(NotFound):
            await preview.do_preview_call(s, op, attempt_id + 1000)
    at = T0 + timedelta(seconds=12)
    async with services.db.transaction() as s:
        order = await preview.do_preview_call(s, op, attempt_id, now=at)
    assert isinstance(order, AttemptOrder)
    assert (order.phone, order.caller_id, order.operator_id, order.dial_mode) == (
        "+74232223340",
        "+74950000000",
        w.operator_id,
        "preview",
    )
    assert order.variables["campaign_id"] == w.campaign_id
    assert order.variables["target_id"] == w.targets[0]
    assert order.variables["attempt_id"] == attempt_id
    assert order.variables["debt"] == "12 500 RUB"
    async with services.db.transaction() as s:
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        assert attempt.started_at is not None
        assert attempt.started_at.replace(tzinfo=UTC) == at
        with pytest.raises(Conflict):
            await preview.do_preview_call(s, op, attempt_id)


async def test_a_paused_campaign_places_no_preview_call_but_the_card_can_be_skipped(
    services: Services,
) -> None:
    w = await _world(services)
    attempt_id = await _open_preview(services, w)
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        (await s.get_one(m.Campaign, w.campaign_id)).state = CampaignState.PAUSED
    async with services.db.transaction() as s:
        with pytest.raises(Conflict):
            await preview.do_preview_call(s, op, attempt_id)
    async with services.db.transaction() as s:
        target = await preview.do_preview_skip(s, op, attempt_id, now=T0)
        assert target.state == TargetState.PENDING


async def test_skip_uses_no_attempt_and_comes_back_after_the_skip_rule(services: Services) -> None:
    w = await _world(services)
    attempt_id = await _open_preview(services, w)
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        target = await preview.do_preview_skip(s, op, attempt_id, now=T0 + timedelta(seconds=5))
        assert (target.state, target.attempts) == (TargetState.PENDING, 0)
        assert target.next_due_at == T0 + timedelta(seconds=5, minutes=60)
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        assert attempt.outcome == Outcome.SKIPPED


async def test_reschedule_puts_the_card_off_until_the_chosen_time(services: Services) -> None:
    w = await _world(services)
    attempt_id = await _open_preview(services, w)
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        with pytest.raises(InvalidInput) as exc:
            await preview.do_preview_reschedule(s, op, attempt_id, T0 - timedelta(minutes=1), now=T0)
        assert exc.value.field == "at"
    tomorrow = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    async with services.db.transaction() as s:
        target = await preview.do_preview_reschedule(s, op, attempt_id, tomorrow, now=T0)
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        assert (target.state, target.attempts, target.callback_user_id) == (TargetState.PENDING, 0, None)
        assert target.next_due_at is not None and target.next_due_at.replace(tzinfo=UTC) == tomorrow
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        assert (attempt.outcome, attempt.cause) == (Outcome.REFUSED, "rescheduled")


async def test_an_expired_preview_is_dialed_when_the_campaign_auto_dials(services: Services) -> None:
    w = await _world(services, auto_dial=True, preview_seconds=30)
    attempt_id = await _open_preview(services, w)
    async with services.db.transaction() as s:
        assert await preview.do_expire_previews(s, T0 + timedelta(seconds=29)) == []
    async with services.db.transaction() as s:
        orders = await preview.do_expire_previews(s, T0 + timedelta(seconds=30))
    assert [(o.attempt_id, o.operator_id) for o in orders] == [(attempt_id, w.operator_id)]
    async with services.db.transaction() as s:
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        assert attempt.started_at is not None and attempt.ended_at is None
        assert await preview.do_expire_previews(s, T0 + timedelta(minutes=5)) == []


async def test_an_expired_preview_is_put_back_for_the_next_operator_without_auto_dial(
    services: Services,
) -> None:
    w = await _world(services, auto_dial=False, preview_seconds=30)
    attempt_id = await _open_preview(services, w)
    at = T0 + timedelta(seconds=31)
    async with services.db.transaction() as s:
        assert await preview.do_expire_previews(s, at) == []
    async with services.db.transaction() as s:
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        assert (attempt.outcome, attempt.cause) == (Outcome.REFUSED, "preview timeout")
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        assert (target.state, target.attempts) == (TargetState.PENDING, 0)
        assert target.next_due_at is not None and target.next_due_at.replace(tzinfo=UTC) == at
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        with pytest.raises(Conflict):
            await preview.do_preview_call(s, op, attempt_id)


class RecordingChannel:
    """A ``PlacesAttempts`` that records the orders it was handed."""

    kind = "voice"

    def __init__(self) -> None:
        self.orders: list[AttemptOrder] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, msg: object) -> object:
        raise NotImplementedError

    async def place(self, order: AttemptOrder) -> None:
        self.orders.append(order)


async def test_a_call_with_no_channel_to_place_it_puts_the_target_back(services: Services) -> None:
    w = await _world(services)
    attempt_id = await _open_preview(services, w)
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        order = await preview.do_preview_call(s, op, attempt_id)
    unplaced = await preview.place_orders(services.db, services.adapters, [order])  # no voice adapter here
    assert unplaced == {attempt_id: "no channel places attempts"}
    async with services.db.transaction() as s:
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        assert attempt.outcome == Outcome.REFUSED
        assert (await s.get_one(m.CampaignTarget, w.targets[0])).state == TargetState.PENDING
    channel = RecordingChannel()
    assert isinstance(channel, PlacesAttempts)
    services.adapters.register(channel)  # type: ignore[arg-type]
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        again = await do_open_attempt(s, target, operator_id=w.operator_id)
    async with services.db.transaction() as s:
        order = await preview.do_preview_call(s, op, again.id)
    assert await preview.place_orders(services.db, services.adapters, [order]) == {}
    assert [o.attempt_id for o in channel.orders] == [again.id]


async def _answered(services: Services, w: CampaignWorld, n: int = 0) -> tuple[int, int]:
    """A preview called and answered: (conversation id, attempt id)."""
    attempt_id = await _open_preview(services, w, n, at=datetime.now(UTC))
    async with services.db.transaction() as s:
        await f.set_status(s, await s.get_one(m.User, w.operator_id))
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        order = await preview.do_preview_call(s, op, attempt_id)
    async with services.db.transaction() as s:
        conv = await console_world.answer(s, order, w.inbox_id)
        return conv.id, attempt_id


async def test_a_callback_result_for_me_brings_the_customer_back_to_me_at_the_picked_time(
    services: Services,
) -> None:
    w = await _world(services)
    conv_id, attempt_id = await _answered(services, w)
    op = await _who(services, w.operator_id)
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    async with services.db.transaction() as s:
        with pytest.raises(InvalidInput) as exc:  # a callback code needs its time
            await conversations.check_close(s, op, conv_id, w.codes["callback"])
        assert exc.value.field == "callback_at"
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Conversation, conv_id)).status == m.ConversationStatus.ACTIVE
        with pytest.raises(InvalidInput):  # not one of the campaign's codes
            await conversations.check_close(s, op, conv_id, w.codes["other"])
    async with services.db.transaction() as s:
        await conversations.check_close(s, op, conv_id, w.codes["callback"], callback_at=when, for_me=True)
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        assert (target.state, target.callback_user_id, target.result_code_id) == (
            TargetState.PENDING,
            w.operator_id,
            w.codes["callback"],
        )
        assert target.next_due_at is not None and target.next_due_at.replace(tzinfo=UTC) == when
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        assert (attempt.outcome, attempt.conversation_id) == (Outcome.ANSWERED, conv_id)
        mine = await preview.my_callbacks(s, op)
        assert [(c["target_id"], c["due_at"], c["name"]) for c in mine] == [
            (w.targets[0], when.isoformat(), "Ivan Petrov")
        ]
        assert await preview.my_callbacks(s, await _who(services, w.other_operator_id)) == []
        result = await s.scalar(select(m.Event).where(m.Event.type == "campaign.target_result"))
        assert result is not None and result.payload["callback_user_id"] == w.operator_id


async def test_a_callback_for_anyone_has_no_owner(services: Services) -> None:
    w = await _world(services)
    conv_id, _ = await _answered(services, w)
    op = await _who(services, w.operator_id)
    when = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    async with services.db.transaction() as s:
        await conversations.check_close(s, op, conv_id, w.codes["callback"], callback_at=when, for_me=False)
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        assert (target.state, target.callback_user_id) == (TargetState.PENDING, None)
        assert target.next_due_at is not None and target.next_due_at.replace(tzinfo=UTC) == when
        assert await preview.my_callbacks(s, op) == []


async def test_a_dnc_result_puts_the_number_on_the_campaigns_do_not_call_list(services: Services) -> None:
    w = await _world(services)
    conv_id, _ = await _answered(services, w)
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        await conversations.check_close(s, op, conv_id, w.codes["dnc"])
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        assert (target.state, target.next_due_at) == (TargetState.DNC, None)
        entries = (await s.scalars(select(m.DncEntry))).all()
        assert [(e.campaign_id, e.number, e.created_by) for e in entries] == [
            (w.campaign_id, "+74232223340", w.operator_id)
        ]


async def test_the_console_offers_only_the_campaigns_codes_and_its_card(services: Services) -> None:
    w = await _world(services)
    conv_id, attempt_id = await _answered(services, w)
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        view = await workspace.conversation_view(s, op, conv_id)
    assert {c["id"]: c["action"] for c in view["result_codes"]} == {
        w.codes["callback"]: "callback",
        w.codes["dnc"]: "dnc",
        w.codes["finish"]: "finish",
        w.codes["retry"]: "retry",
    }
    card = view["campaign"]
    assert card["attempt_id"] == attempt_id and card["name"] == "Ivan Petrov"
    assert card["timezone"] == "Asia/Vladivostok" and card["utc_offset"] == 10 * 3600
    assert card["fields"]["contract"] == "<img src=x onerror=alert(0)>"  # data; the page shows it as text
    assert "<b>Omni Bank</b>" in card["script"]


async def test_a_wrap_up_that_runs_out_on_a_callback_code_calls_back_anyone_an_hour_later(
    services: Services,
) -> None:
    w = await _world(services)
    conv_id, _ = await _answered(services, w)
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        queue = await s.get_one(m.Queue, conv.queue_id)
        queue.default_result_code_id = w.codes["callback"]
        conv.status = m.ConversationStatus.WRAP_UP
    before = datetime.now(UTC)
    async with services.db.transaction() as s:
        await do_wrap_up_expired(s, conv_id)
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, w.targets[0])
        assert (target.state, target.callback_user_id) == (TargetState.PENDING, None)
        assert target.next_due_at is not None
        due = target.next_due_at.replace(tzinfo=UTC)
        assert before + timedelta(minutes=60) <= due <= datetime.now(UTC) + timedelta(minutes=60)


async def test_start_and_pause_are_audited_and_illegal_moves_refused(services: Services) -> None:
    w = await _world(services, state=CampaignState.DRAFT)
    sup, op = await _who(services, w.supervisor_id), await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        with pytest.raises(PermissionDenied):
            await campaigns.check_set_state(s, op, w.campaign_id, CampaignState.RUNNING)
        with pytest.raises(Conflict):
            await campaigns.check_set_state(s, sup, w.campaign_id, CampaignState.PAUSED)
    for state in (CampaignState.RUNNING, CampaignState.PAUSED):
        async with services.db.transaction() as s:
            await campaigns.check_set_state(s, sup, w.campaign_id, state)
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Campaign, w.campaign_id)).state == CampaignState.PAUSED
        logged = (await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "campaign.state"))).all()
        assert [x.input["to"] for x in logged] == ["running", "paused"]
        changed = (await s.scalars(select(m.Event).where(m.Event.type == "campaign.state_changed"))).all()
        assert [e.payload["state"] for e in changed] == ["running", "paused"]


async def _fixture_for_figures(services: Services) -> CampaignWorld:
    """Five targets and these attempts (by hand):

    target 0: busy, then answered (operator Olga, code callback) → pending, retried once
    target 1: no answer → pending (a retry)
    target 2: answered (Olga, code finish) → done
    target 3: skipped (operator) → pending, never tried (a skip uses no attempt)
    target 4: an open preview (in progress)
    Attempts that reached the network: busy, answered, no answer, answered = 4; answered 2;
    contact rate 50 %; finished 1 of 5 = 20 %; remaining 4; scheduled retries 2 (targets 0, 1).
    """
    w = await _world(services, names=("A", "B", "C", "D", "E"))
    async with services.db.transaction() as s:
        t = [await s.get_one(m.CampaignTarget, tid) for tid in w.targets]
        a = await do_open_attempt(s, t[0], now=T0)
        await do_close_attempt(s, a, Outcome.BUSY, now=T0)
        t[0].state = TargetState.PENDING
        a = await do_open_attempt(s, t[0], operator_id=w.operator_id, now=T0)
        await do_close_attempt(s, a, Outcome.ANSWERED, now=T0)
        await do_apply_result(
            s, t[0], w.codes["callback"], user_id=w.operator_id, callback_at=T0 + timedelta(days=1), now=T0
        )
        a = await do_open_attempt(s, t[1], now=T0)
        await do_close_attempt(s, a, Outcome.NO_ANSWER, now=T0)
        a = await do_open_attempt(s, t[2], operator_id=w.operator_id, now=T0)
        await do_close_attempt(s, a, Outcome.ANSWERED, now=T0)
        await do_apply_result(s, t[2], w.codes["finish"], user_id=w.operator_id, now=T0)
        a = await do_open_attempt(s, t[3], operator_id=w.other_operator_id, now=T0)
        await do_close_attempt(s, a, Outcome.SKIPPED, now=T0)
        await do_open_attempt(s, t[4], operator_id=w.operator_id, now=T0)
    return w


async def test_live_figures_match_the_hand_count(services: Services) -> None:
    w = await _fixture_for_figures(services)
    sup = await _who(services, w.supervisor_id)
    async with services.db.transaction() as s:
        live = await stats.live_campaigns(s, sup)
    assert len(live) == 1
    row = live[0]
    assert {k: row[k] for k in ("targets", "finished", "remaining", "scheduled_retries", "in_progress")} == {
        "targets": 5,
        "finished": 1,
        "remaining": 4,
        "scheduled_retries": 2,
        "in_progress": 1,
    }
    assert (row["progress"], row["attempts"], row["answered"], row["contact_rate"]) == (20.0, 4, 2, 50.0)
    assert row["outcomes"] == {"busy": 1, "answered": 2, "no_answer": 1, "skipped": 1}
    op = await _who(services, w.operator_id)
    async with services.db.transaction() as s:
        with pytest.raises(PermissionDenied):
            await stats.live_campaigns(s, op)


async def test_the_campaign_report_counts_outcomes_codes_and_operators_by_hand(services: Services) -> None:
    await _fixture_for_figures(services)
    async with services.db.transaction() as s:
        admin = f.who(await f.user(s, "admin_rpt", m.Role.ADMIN))
    period = days(T0.date(), T0.date(), UTC)
    async with services.db.transaction() as s:
        table = await reports.run(s, admin, "campaign_outcomes", reports.ReportFilter(period=period), T0)
    rows = list(table.as_dicts())
    assert len(rows) == 1
    r = rows[0]
    assert (r["campaign"], r["attempts"], r["answered"], r["busy"], r["no_answer"], r["skipped"]) == (
        "Debts",
        4,
        2,
        1,
        1,
        1,
    )
    assert (r["in_progress"], r["contact_rate"]) == (1, 50.0)
    assert table.totals is not None and table.totals[:4] == [None, 4, 2, 50.0]
    today = datetime.now(UTC).date()  # result events are stamped when they are written
    around_now = days(today - timedelta(days=1), today + timedelta(days=1), UTC)
    async with services.db.transaction() as s:
        table = await reports.run(s, admin, "campaign_results", reports.ReportFilter(period=around_now), T0)
    assert sorted((r["result_code"], r["targets"]) for r in table.as_dicts()) == [
        ("Campaign callback", 1),
        ("Campaign finish", 1),
    ]
    async with services.db.transaction() as s:
        table = await reports.run(s, admin, "campaign_operators", reports.ReportFilter(period=period), T0)
    got = sorted(
        (r["operator"], r["attempts"], r["answered_total"], r["contact_rate"], r["skipped"])
        for r in table.as_dicts()
    )
    assert got == [("Olga", 2, 2, 100.0, 0), ("op_other", 0, 0, None, 1)]
