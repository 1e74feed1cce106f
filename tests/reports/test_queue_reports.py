"""Queue facts and reports on a hand-built fixture in Moscow: every figure computed by hand.

The install runs in Europe/Moscow (UTC+3), so "today" (10 March, local) starts at 21:00 UTC
on 9 March: the contacts of 00:05–00:18 local are today's although their UTC day is the 9th.
Contacts 6 and 7 sit either side of the 00:15 interval boundary; contact 14 waited just
before local midnight and was closed after it (its handling stays on 9 March).

Contacts (local times on 10 March unless noted; wait = from joining the line):

QA (SLA 20 s), telegram inbox "T" unless noted
 1  00:05:00 answered after 10 s; hold 60, talk 240, wrap-up 30; closed; result code "sale"
 2  00:05:30 answered after 30 s; talk 180, wrap-up 20; closed; result code "sale"
 3  00:07:00 abandoned after 3 s (short: < 5 s grace)
 4  00:08:00 abandoned after 40 s
 5  00:09:00 missed after 300 s (queue timeout)
 6  00:14:50 answered after 5 s, still talking
 7  00:15:05 answered after 15 s; talk 300, wrap-up 60; closed
 8  00:16:00 abandoned after 7 s
 9  00:17:00 still waiting (no outcome yet)
10  00:18:00 overflowed to a bot (status bot)
11  10:00:00 widget inbox "W": answered after 45 s; hold 30, talk 270, wrap-up 30; closed;
             transferred once
12  10:01:00 widget "W": missed after 300 s; called back by Olga at 10:20:00 (840 s later)
13  10:02:00 widget "W": abandoned after 2 s (short)
14  9 March 23:59:30: answered after 20 s; talk 300, wrap-up 60; closed 00:05:50 on the 10th
QB (SLA 30 s), telegram "T"
15  09:00:00 answered after 25 s; talk 120, wrap-up 30; closed
16  09:00:10 answered after 35 s, still talking
17  09:01:00 abandoned after 12 s
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select

from omni.db import Database
from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import monitoring, reports
from omni.domain.conversations import InboundMessage
from omni.domain.reports import FilterParams, Grouping, Preset, ReportTable
from omni.domain.reports.config import check_update_config
from omni.domain.reports.driver import backfill, catch_up, pass_once, pause_after, run_loop
from omni.domain.reports.rollups import rebuild_range
from omni.domain.routing import do_route_pending
from omni.domain.serialize import callback_dict, conversation_dict
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite
from tests.helpers import until

MSK = ZoneInfo("Europe/Moscow")
S = m.ConversationStatus
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=MSK).astimezone(UTC)


def local(h: int, mi: int, s: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 3, day, h, mi, s, tzinfo=MSK).astimezone(UTC)


def plus(at: datetime, seconds: float) -> datetime:
    return at + timedelta(seconds=seconds)


@dataclass
class World:
    admin: Any
    qa: int
    qb: int
    t: int
    w: int
    sale: int
    olga: int
    convs: dict[int, int]


async def _event(s: Any, type_: str, conv: m.Conversation, at: datetime, **extra: Any) -> None:
    s.add(
        m.Event(
            type=type_,
            payload=conversation_dict(conv) | extra,
            conversation_id=conv.id,
            queue_id=conv.queue_id,
            user_id=conv.assigned_user_id,
            created_at=at,
        )
    )


async def build(services: Services) -> World:
    """The fixture of the module docstring, with the events the real actions would have written."""
    async with services.db.transaction() as s:
        admin = await f.user(s, "adm", m.Role.ADMIN)
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow", short_abandon_seconds=5)
        olga = await f.user(s, "olga", display_name="Olga")
        qa = await f.queue(s, "QA", [olga], sla_seconds=20)
        qb = await f.queue(s, "QB", [olga], sla_seconds=30)
        t = await f.inbox(s, qa, "telegram", "T")
        w = await f.inbox(s, qa, "widget", "W")
        sale = await f.result_code(s, "sale")
        contact = m.Contact(name="Ivan", phone="+79990000001", custom_fields={}, tags=[])
        s.add(contact)
        await s.flush()
        convs: dict[int, int] = {}

        async def conv(
            n: int,
            queue: m.Queue,
            inbox: m.Inbox,
            status: str,
            enq: datetime,
            *,
            wait: float | None = None,
            talk: float | None = None,
            hold: int = 0,
            wrap: float | None = None,
            left: float | None = None,
            code: m.ResultCode | None = None,
        ) -> m.Conversation:
            accepted = plus(enq, wait) if wait is not None else None
            wrap_up = plus(accepted, talk + hold) if accepted is not None and talk is not None else None
            closed = plus(wrap_up, wrap) if wrap_up is not None and wrap is not None else None
            if left is not None:
                closed = plus(enq, left)
            c = m.Conversation(
                contact_id=contact.id,
                inbox_id=inbox.id,
                channel=inbox.channel,
                medium="chat",
                status=status,
                queue_id=queue.id,
                created_at=enq,
                enqueued_at=enq,
                first_enqueued_at=enq,
                accepted_at=accepted,
                wrap_up_at=wrap_up,
                closed_at=closed,
                hold_seconds=hold,
                assigned_user_id=olga.id if accepted else None,
                result_code_id=code.id if code else None,
                extra_queue_ids=[],
                variables={},
            )
            s.add(c)
            await s.flush()
            convs[n] = c.id
            await _event(s, "conversation.queued", c, enq)
            last = closed or accepted or enq
            await _event(s, f"conversation.{'closed' if status == S.CLOSED else status}", c, last)
            return c

        await conv(1, qa, t, S.CLOSED, local(0, 5), wait=10, hold=60, talk=240, wrap=30, code=sale)
        await conv(2, qa, t, S.CLOSED, local(0, 5, 30), wait=30, talk=180, wrap=20, code=sale)
        await conv(3, qa, t, S.ABANDONED, local(0, 7), left=3)
        await conv(4, qa, t, S.ABANDONED, local(0, 8), left=40)
        await conv(5, qa, t, S.MISSED, local(0, 9), left=300)
        await conv(6, qa, t, S.ACTIVE, local(0, 14, 50), wait=5)
        await conv(7, qa, t, S.CLOSED, local(0, 15, 5), wait=15, talk=300, wrap=60)
        await conv(8, qa, t, S.ABANDONED, local(0, 16), left=7)
        await conv(9, qa, t, S.QUEUED, local(0, 17))
        await conv(10, qa, t, S.BOT, local(0, 18))
        c11 = await conv(11, qa, w, S.CLOSED, local(10, 0), wait=45, hold=30, talk=270, wrap=30)
        await _event(s, "conversation.transferred", c11, local(10, 2), to_queue_id=qa.id)
        c12 = await conv(12, qa, w, S.MISSED, local(10, 1), left=300)
        await conv(13, qa, w, S.ABANDONED, local(10, 2), left=2)
        await conv(14, qa, t, S.CLOSED, local(23, 59, 30, day=9), wait=20, talk=300, wrap=60)
        await conv(15, qb, t, S.CLOSED, local(9, 0), wait=25, talk=120, wrap=30)
        await conv(16, qb, t, S.ACTIVE, local(9, 0, 10), wait=35)
        await conv(17, qb, t, S.ABANDONED, local(9, 1), left=12)
        cb = m.Callback(
            conversation_id=c12.id,
            contact_id=contact.id,
            queue_id=qa.id,
            reason="missed",
            state="done",
            claimed_by_id=olga.id,
            claimed_at=local(10, 15),
            created_at=local(10, 6),
            note="",
        )
        s.add(cb)
        await s.flush()
        s.add(
            m.Event(
                type="callback.done",
                payload=callback_dict(cb),
                conversation_id=c12.id,
                queue_id=qa.id,
                created_at=local(10, 20),
            )
        )
        return World(f.who(admin), qa.id, qb.id, t.id, w.id, sale.id, olga.id, convs)


async def report(services: Services, world: World, key: str, **params: Any) -> ReportTable:
    async with services.db.transaction() as s:
        return await reports.run_params(s, world.admin, key, FilterParams(**params), NOW)


def by_queue(table: ReportTable) -> dict[str, dict[str, Any]]:
    return {str(row["queue"]): row for row in table.as_dicts()}


@pytest.fixture
async def world(services: Services) -> World:
    w = await build(services)
    assert await catch_up(services.db, now=NOW) is not None
    return w


async def test_queue_summary_today_in_moscow_matches_hand_computed_figures(
    services: Services, world: World
) -> None:
    table = await report(services, world, "queue_summary", preset=Preset.TODAY, grouping=Grouping.TOTAL)
    rows = by_queue(table)
    assert set(rows) == {"QA", "QB"}
    qa, qb = rows["QA"], rows["QB"]
    # QA: answered 1, 2, 6, 7, 11 (waits 10, 30, 5, 15, 45); abandoned 4, 8 (+ short 3, 13);
    # missed 5, 12; overflowed 10; 9 is still waiting; 14 is yesterday's.
    assert {
        k: qa[k] for k in ("offered", "answered", "abandoned", "abandoned_short", "missed", "overflowed")
    } == {
        "offered": 10,  # 5 + 2 + 2 + 1
        "answered": 5,
        "abandoned": 2,
        "abandoned_short": 2,
        "missed": 2,
        "overflowed": 1,
    }
    assert qa["lost"] == 5
    assert qa["callbacks_made"] == 1  # 12, by Olga
    assert qa["sl_pct"] == 30.0  # 1, 6, 7 within 20 s: 3 / 10
    assert qa["abandon_pct"] == 20.0  # 2 / 10
    assert qa["asa"] == 21.0  # (10 + 30 + 5 + 15 + 45) / 5
    assert qa["wait_max"] == 300.0  # the missed ones
    assert qa["handled"] == 4  # 1, 2, 7, 11 (6 is still talking)
    assert qa["talk"] == 247.5  # (240 + 180 + 300 + 270) / 4
    assert qa["hold"] == 22.5  # (60 + 0 + 0 + 30) / 4
    assert qa["wrap"] == 35.0  # (30 + 20 + 60 + 30) / 4
    assert qa["aht"] == 305.0  # (990 + 90 + 140) / 4
    assert qa["transfers"] == 1
    # QB: answered 15 (25 s, within 30), 16 (35 s); abandoned 17 (12 s)
    assert (qb["offered"], qb["answered"], qb["abandoned"], qb["abandoned_short"], qb["missed"]) == (
        3,
        2,
        1,
        0,
        0,
    )
    assert (qb["sl_pct"], qb["abandon_pct"], qb["asa"], qb["wait_max"]) == (33.3, 33.3, 30.0, 35.0)
    assert (qb["handled"], qb["aht"], qb["talk"], qb["hold"], qb["wrap"]) == (1, 150.0, 120.0, 0.0, 30.0)
    totals = dict(zip([c.key for c in table.columns], table.totals or [], strict=True))
    assert (totals["offered"], totals["answered"], totals["lost"]) == (13, 7, 6)
    assert totals["sl_pct"] == 30.8  # (3 + 1) / 13
    assert totals["asa"] == 23.6  # (105 + 60) / 7 = 23.57
    assert totals["aht"] == 274.0  # (1220 + 150) / 5
    assert (totals["talk"], totals["hold"], totals["wrap"]) == (222.0, 18.0, 34.0)
    assert table.chart is not None and table.chart.series == ("answered", "lost")


async def test_queue_summary_by_interval_splits_at_the_quarter_hour(services: Services, world: World) -> None:
    table = await report(
        services,
        world,
        "queue_summary",
        preset=Preset.TODAY,
        grouping=Grouping.INTERVAL,
        queue_ids=(world.qa,),
    )
    got = [
        (row["period"], row["offered"], row["answered"], row["abandoned_short"]) for row in table.as_dicts()
    ]
    assert got == [
        # 00:00–00:15: 1, 2, 6 answered; 3 short; 4 abandoned; 5 missed
        (datetime(2026, 3, 10, 0, 0, tzinfo=MSK), 5, 3, 1),
        # 00:15–00:30: 7 answered; 8 abandoned; 10 overflowed (9 still waiting)
        (datetime(2026, 3, 10, 0, 15, tzinfo=MSK), 3, 1, 0),
        # 10:00–10:15: 11 answered; 12 missed; 13 short
        (datetime(2026, 3, 10, 10, 0, tzinfo=MSK), 2, 1, 1),
    ]


async def test_yesterdays_contact_closed_after_midnight_stays_yesterday(
    services: Services, world: World
) -> None:
    table = await report(services, world, "queue_summary", preset=Preset.YESTERDAY, grouping=Grouping.DAY)
    [row] = list(table.as_dicts())
    assert row["period"] == datetime(2026, 3, 9, tzinfo=MSK)
    assert (row["queue"], row["offered"], row["answered"], row["sl_pct"]) == ("QA", 1, 1, 100.0)
    assert (row["handled"], row["talk"], row["wrap"], row["aht"]) == (1, 300.0, 60.0, 360.0)


async def test_filters_by_channel_inbox_and_result_code(services: Services, world: World) -> None:
    widget = await report(
        services, world, "queue_summary", preset=Preset.TODAY, grouping=Grouping.TOTAL, channels=("widget",)
    )
    assert [(r["queue"], r["offered"], r["answered"], r["missed"]) for r in widget.as_dicts()] == [
        ("QA", 2, 1, 1)
    ]
    inbox_t = await report(
        services, world, "queue_summary", preset=Preset.TODAY, grouping=Grouping.TOTAL, inbox_ids=(world.t,)
    )
    assert {r["queue"]: r["offered"] for r in inbox_t.as_dicts()} == {"QA": 8, "QB": 3}
    sale = await report(
        services,
        world,
        "queue_summary",
        preset=Preset.TODAY,
        grouping=Grouping.TOTAL,
        result_code_ids=(world.sale,),
    )
    assert [(r["queue"], r["offered"], r["answered"], r["aht"]) for r in sale.as_dicts()] == [
        ("QA", 2, 2, 265.0)
    ]


async def test_sl_buckets_count_and_cumulate_by_hand(services: Services, world: World) -> None:
    table = await report(services, world, "sl_buckets", preset=Preset.TODAY)
    rows = {r["within"]: r for r in table.as_dicts()}
    # answered waits 10, 30, 5, 15, 45, 25, 35; abandoned waits 3, 40, 7, 2, 12
    answered = [(rows[k]["answered"], rows[k]["answered_pct"], rows[k]["answered_cum_pct"]) for k in rows]
    assert answered == [
        (1, 14.3, 14.3),  # <= 5: 5
        (1, 14.3, 28.6),  # <= 10: 10
        (1, 14.3, 42.9),  # <= 15: 15
        (0, 0.0, 42.9),  # <= 20
        (2, 28.6, 71.4),  # <= 30: 25, 30
        (2, 28.6, 100.0),  # <= 45: 35, 45
        (0, 0.0, 100.0),
        (0, 0.0, 100.0),
        (0, 0.0, 100.0),
        (0, 0.0, 100.0),
        (0, 0.0, 100.0),
        (0, 0.0, 100.0),  # > 300
    ]
    abandoned = [(rows[k]["abandoned_in"], rows[k]["abandoned_cum_pct"]) for k in rows]
    assert abandoned[:6] == [(2, 40.0), (1, 60.0), (1, 80.0), (0, 80.0), (0, 80.0), (1, 100.0)]
    assert [rows["5"]["abandoned_pct"], rows["45"]["abandoned_pct"]] == [40.0, 20.0]
    assert list(rows)[-1] == "> 300"
    assert (table.totals or [])[1] == 7 and (table.totals or [])[4] == 5


async def test_channels_and_inboxes_side_by_side(services: Services, world: World) -> None:
    table = await report(services, world, "channels", preset=Preset.TODAY)
    rows = {(r["channel"], r["inbox"]): r for r in table.as_dicts()}
    t = rows[("telegram", "T")]
    # 1–10 of QA and 15–17 of QB: answered 1, 2, 6, 7, 15, 16; abandoned 4, 8, 17; short 3;
    # missed 5; overflowed 10
    outcomes = ("offered", "answered", "abandoned", "abandoned_short", "missed", "overflowed")
    assert [t[k] for k in outcomes] == [11, 6, 3, 1, 1, 1]
    assert t["sl_pct"] == 36.4  # 1, 6, 7 (<= 20 s) and 15 (<= 30 s): 4 / 11
    assert t["asa"] == 20.0  # (10 + 30 + 5 + 15 + 25 + 35) / 6
    assert t["aht"] == 260.0  # (330 + 200 + 360 + 150) / 4
    w = rows[("widget", "W")]
    assert (w["offered"], w["answered"], w["abandoned_short"], w["missed"], w["callbacks_made"]) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert (w["sl_pct"], w["asa"], w["aht"]) == (0.0, 45.0, 330.0)


async def test_missed_outcomes_list_who_called_back_and_after_how_long(
    services: Services, world: World
) -> None:
    table = await report(services, world, "missed_outcomes", preset=Preset.TODAY)
    assert table.total_rows == 5
    got = [
        (r["at"], r["outcome"], r["wait"], r["callback"], r["called_back_by"], r["called_back_after"])
        for r in table.as_dicts()
    ]
    assert got == [
        (datetime(2026, 3, 10, 0, 8, tzinfo=MSK), "abandoned", 40.0, "none", "", None),
        (datetime(2026, 3, 10, 0, 9, tzinfo=MSK), "missed", 300.0, "none", "", None),
        (datetime(2026, 3, 10, 0, 16, tzinfo=MSK), "abandoned", 7.0, "none", "", None),
        (datetime(2026, 3, 10, 9, 1, tzinfo=MSK), "abandoned", 12.0, "none", "", None),
        # left the line at 10:06, called back by Olga at 10:20
        (datetime(2026, 3, 10, 10, 1, tzinfo=MSK), "missed", 300.0, "done", "Olga", 840.0),
    ]


async def test_a_supervisor_sees_only_their_queues_in_every_queue_report(
    services: Services, world: World
) -> None:
    async with services.db.transaction() as s:
        group = m.Group(name="B only")
        s.add(group)
        await s.flush()
        (await s.get(m.Queue, world.qb)).group_id = group.id  # type: ignore[union-attr]
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=group.id))
        await s.flush()
        who = f.who(sup)
        summary = await reports.run_params(s, who, "queue_summary", FilterParams(preset=Preset.TODAY), NOW)
        assert {r["queue"] for r in summary.as_dicts()} == {"QB"}
        asked = FilterParams(preset=Preset.TODAY, queue_ids=(world.qa,))
        for key in ("queue_summary", "channels", "missed_outcomes"):
            assert (await reports.run_params(s, who, key, asked, NOW)).rows == [], key
        buckets = await reports.run_params(s, who, "sl_buckets", asked, NOW)
        assert buckets.totals is not None and (buckets.totals[1], buckets.totals[4]) == (0, 0)


async def test_the_monitor_today_equals_the_queue_summary_today_in_moscow(
    services: Services, world: World
) -> None:
    table = await report(services, world, "queue_summary", preset=Preset.TODAY, grouping=Grouping.TOTAL)
    summary = by_queue(table)
    async with services.db.transaction() as s:
        stats = {q["name"]: q for q in await monitoring.queue_stats(s, world.admin, NOW)}
        snap = await monitoring.snapshot(s, world.admin, NOW)
    assert snap["timezone"] == "Europe/Moscow" and snap["short_abandon_seconds"] == 5.0
    assert snap["day_start"] == datetime(2026, 3, 9, 21, 0, tzinfo=UTC).isoformat()
    for name in ("QA", "QB"):
        mon, rep = stats[name], summary[name]
        assert mon["offered_today"] == rep["offered"]
        assert mon["answered_today"] == rep["answered"]
        assert mon["abandoned_today"] - mon["abandoned_short_today"] == rep["abandoned"]
        assert mon["abandoned_short_today"] == rep["abandoned_short"]
        assert mon["missed_today"] == rep["missed"]
        assert mon["service_level_pct"] == rep["sl_pct"]
        assert mon["asa_seconds"] == rep["asa"]
        assert mon["aht_seconds"] == rep["aht"]
        assert mon["closed_today"] == rep["handled"]
        assert (mon["avg_talk_seconds"], mon["avg_hold_seconds"], mon["avg_wrap_up_seconds"]) == (
            rep["talk"], rep["hold"], rep["wrap"],
        )  # fmt: skip
    assert stats["QA"]["offered_today"] == 10  # a UTC day would have lost the 00:05–00:18 contacts


# --- the driver ------------------------------------------------------------------------------


async def rows_of(db: Database) -> list[tuple[Any, ...]]:
    async with db.transaction() as s:
        q = m.ReportQueueInterval
        keys = [c.key for c in q.__table__.columns]
        result = await s.scalars(
            select(q).order_by(q.bucket, q.queue_id, q.channel, q.inbox_id, q.result_code_id)
        )
        return [tuple(getattr(r, k) for k in keys) for r in result]


async def test_running_the_driver_twice_gives_identical_rows_and_a_full_rebuild_agrees(
    services: Services, world: World
) -> None:
    first = await rows_of(services.db)
    assert first
    async with services.db.transaction() as s:
        cursor = await s.get(m.ReportCursor, "rollups")
        assert cursor is not None
        cursor.last_event_id = 0  # read the whole log again
    assert await catch_up(services.db, now=NOW)
    assert await rows_of(services.db) == first
    async with services.db.transaction() as s:
        await s.execute(delete(m.ReportQueueInterval))
        await rebuild_range(s, local(0, 0, day=9), local(0, 0, day=11))
    assert await rows_of(services.db) == first


async def test_a_wrap_up_closed_after_local_midnight_rebuilds_yesterdays_interval(services: Services) -> None:
    world = await build(services)
    async with services.db.transaction() as s:
        c14 = await s.get(m.Conversation, world.convs[14])
        assert c14 is not None
        closed = c14.closed_at
        c14.status, c14.closed_at = S.WRAP_UP, None  # still wrapping up at the first pass
    await catch_up(services.db, now=NOW)
    yesterday = await report(
        services, world, "queue_summary", preset=Preset.YESTERDAY, grouping=Grouping.TOTAL
    )
    assert [(r["answered"], r["handled"]) for r in yesterday.as_dicts()] == [(1, 0)]
    async with services.db.transaction() as s:
        c14 = await s.get(m.Conversation, world.convs[14])
        assert c14 is not None
        c14.status, c14.closed_at = S.CLOSED, closed  # 00:05:50 on the 10th
        await _event(s, "conversation.closed", c14, closed)  # type: ignore[arg-type]
    assert await catch_up(services.db, now=NOW) == 1
    yesterday = await report(
        services, world, "queue_summary", preset=Preset.YESTERDAY, grouping=Grouping.INTERVAL
    )
    [row] = list(yesterday.as_dicts())
    assert row["period"] == datetime(2026, 3, 9, 23, 45, tzinfo=MSK)
    assert (row["handled"], row["talk"], row["wrap"]) == (1, 300.0, 60.0)


async def test_an_event_committed_late_with_a_lower_id_is_not_lost(services: Services, world: World) -> None:
    """Ids are taken at insert, commits land in any order: a hole below the cursor is watched."""
    async with services.db.transaction() as s:
        top = await s.scalar(select(func.max(m.Event.id)))
        cursor = await s.get(m.ReportCursor, "rollups")
        assert cursor is not None and cursor.last_event_id == top
        # id top+1 is "in flight"; top+2 commits first
        s.add(m.Event(id=(top or 0) + 2, type="message.delivery", payload={}, created_at=NOW))
    assert await pass_once(services.db, now=NOW) == 1
    async with services.db.transaction() as s:
        cursor = await s.get(m.ReportCursor, "rollups")
        assert cursor is not None and list(cursor.gaps) == [str((top or 0) + 1)]
        c4 = await s.get(m.Conversation, world.convs[4])
        assert c4 is not None
        c4.status = S.CLOSED
        c4.accepted_at = plus(c4.first_enqueued_at, 40)  # type: ignore[arg-type]
        s.add(  # the late commit
            m.Event(
                id=(top or 0) + 1,
                type="conversation.accepted",
                payload=conversation_dict(c4),
                conversation_id=c4.id,
                created_at=NOW,
            )
        )
    assert await pass_once(services.db, now=NOW) == 1
    table = await report(services, world, "queue_summary", preset=Preset.TODAY, grouping=Grouping.TOTAL)
    assert by_queue(table)["QA"]["answered"] == 6  # 4 now answered after 40 s
    async with services.db.transaction() as s:
        cursor = await s.get(m.ReportCursor, "rollups")
        assert cursor is not None and cursor.gaps == {}


async def test_events_arriving_while_the_loop_is_down_are_caught_up_on_restart(services: Services) -> None:
    world = await build(services)

    async def qa_offered() -> int:
        async with services.db.transaction() as s:
            return int(
                await s.scalar(
                    select(func.coalesce(func.sum(m.ReportQueueInterval.offered), 0)).where(
                        m.ReportQueueInterval.queue_id == world.qa
                    )
                )
                or 0
            )

    loop = asyncio.create_task(run_loop(services.db, poll_seconds=0.05))
    await until(qa_offered, what="the loop to build the rollup")
    assert await qa_offered() == 11  # today's 10 and yesterday's contact 14
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    async with services.db.transaction() as s:
        c9 = await s.get(m.Conversation, world.convs[9])
        assert c9 is not None
        c9.status, c9.closed_at = S.ABANDONED, plus(c9.first_enqueued_at, 60)  # type: ignore[arg-type]
        await _event(s, "conversation.abandoned", c9, c9.closed_at)  # type: ignore[arg-type]
    assert await qa_offered() == 11, "nothing runs while the loop is down"
    loop = asyncio.create_task(run_loop(services.db, poll_seconds=0.05))
    try:
        await until(lambda: _is(qa_offered, 12), what="the restarted loop to catch up")
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def _is(read: Any, expected: int) -> bool:
    return bool(await read() == expected)


async def test_two_nodes_running_the_driver_at_once_never_run_a_pass_together(
    services: Services, world: World
) -> None:
    """The second node finds the cursor row locked and skips (PostgreSQL: SKIP LOCKED)."""
    async with services.db.transaction() as s:
        held = await s.scalar(
            select(m.ReportCursor).where(m.ReportCursor.name == "rollups").with_for_update()
        )
        assert held is not None
        assert await pass_once(services.db, now=NOW) is None
    assert await pass_once(services.db, now=NOW) == 0


async def test_one_pass_reads_what_a_busy_node_wrote_between_two_passes(
    services: Services, world: World
) -> None:
    """2,500 events (about what 200 messages a second write in a poll interval): one pass reads
    them all, so the current interval is rebuilt once, not once per thousand events."""
    async with services.db.transaction() as s:
        conv = await s.get(m.Conversation, world.convs[4])
        assert conv is not None
        await s.execute(
            insert(m.Event),
            [
                {"type": "message.delivery", "payload": {}, "conversation_id": conv.id, "created_at": NOW}
                for _ in range(2500)
            ],
        )
        top = await s.scalar(select(func.max(m.Event.id)))
    assert await pass_once(services.db, now=NOW) == 2500
    async with services.db.transaction() as s:
        cursor = await s.get(m.ReportCursor, "rollups")
        assert cursor is not None and cursor.last_event_id == top


def test_a_long_catch_up_spaces_out_the_next_one() -> None:
    """The loop keeps rollups to a tenth of the node's time: a 2 s catch-up waits 18 s."""
    assert pause_after(0.01, 5.0) == 5.0
    assert pause_after(2.0, 5.0) == pytest.approx(18.0)
    assert pause_after(2.0, 30.0) == 30.0


async def test_on_sqlite_real_actions_arriving_become_rollup_rows(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Embedded mode: the contact of a chat that was routed, accepted and closed, and one whose
    customer left while waiting, appear in the rollup after a pass (SQLite, no row locks)."""
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        async with services.db.transaction() as s:
            op = await f.user(s, "op")
            q = await f.queue(s, "q", [op])
            ib = await f.inbox(s, q, channel="api")
            code = await f.result_code(s, "done")
            await f.set_status(s, op)
            one = await c.do_ingest_inbound(
                s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value="a", body="hi")
            )
        await do_route_pending(services.db)
        async with services.db.transaction() as s:
            offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == one.conversation.id))
            assert offer is not None
            await c.check_accept_offer(s, f.who(op), offer.id)
            await c.check_close(s, f.who(op), one.conversation.id, code.id)
            two = await c.do_ingest_inbound(
                s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value="b", body="hi")
            )
        async with services.db.transaction() as s:
            await c.do_customer_left(s, two.conversation.id)
        assert await catch_up(services.db)
        async with services.db.transaction() as s:
            rows = (await s.scalars(select(m.ReportQueueInterval))).all()
        assert sum(r.answered for r in rows) == 1 and sum(r.handled for r in rows) == 1
        assert sum(r.abandoned for r in rows) == 1
        assert {r.result_code_id for r in rows if r.answered} == {code.id}
        assert await catch_up(services.db) == 0
    finally:
        await services.stop()


async def test_the_celery_beat_task_catches_up_after_downtime(services: Services, settings: Settings) -> None:
    """A deployment with a worker: ``omni.reports.catch_up`` is on the beat schedule and brings
    the rollup up to the event log written while nothing was running."""
    from omni import worker

    world = await build(services)
    worker.configure(settings)
    schedule = worker.celery_app.conf.beat_schedule["omni.reports.catch_up"]
    assert schedule["task"] == "omni.reports.catch_up"
    outcome: list[Any] = []

    def in_a_worker_thread() -> None:
        # The task's own loop and engine live in this thread and are disposed with it.
        try:
            outcome.append(worker.celery_app.tasks["omni.reports.catch_up"].apply().get())
        finally:
            loop, db, _ = worker._Runtime.get()
            loop.run_until_complete(db.dispose())
            loop.close()

    thread = threading.Thread(target=in_a_worker_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert outcome and outcome[0] > 0
    table = await report(services, world, "queue_summary", preset=Preset.TODAY, grouping=Grouping.TOTAL)
    assert by_queue(table)["QA"]["offered"] == 10


async def test_a_backfill_builds_history_and_moves_the_cursor_past_it(services: Services) -> None:
    """An install upgrading with history: ``omni rollups --days N`` rebuilds the range; the
    driver then has nothing old left to read, and reading the whole log gives the same rows."""
    await build(services)
    assert await backfill(services.db, local(0, 0, day=9), local(0, 0, day=11), now=NOW) == 2
    built = await rows_of(services.db)
    assert sum(r[5] for r in built) == 1 + 10 + 3  # offered: yesterday's 14, QA's 10, QB's 3
    assert await catch_up(services.db, now=NOW) == 0
    async with services.db.transaction() as s:
        cursor = await s.get(m.ReportCursor, "rollups")
        assert cursor is not None
        cursor.last_event_id = 0
    assert await catch_up(services.db, now=NOW)
    assert await rows_of(services.db) == built


async def test_two_nodes_first_passes_at_once_build_the_rollup_once(services: Services) -> None:
    """No cursor row yet and two nodes start together: one creates it and runs, the other skips;
    the rows are the ones a single pass builds."""
    await build(services)
    results = await asyncio.gather(catch_up(services.db, now=NOW), catch_up(services.db, now=NOW))
    assert sorted(results, key=lambda r: r or 0)[0] in (None, 0) and max(r or 0 for r in results) > 0
    async with services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.ReportCursor)) == 1
    once = await rows_of(services.db)
    async with services.db.transaction() as s:
        cursor = await s.get(m.ReportCursor, "rollups")
        assert cursor is not None
        cursor.last_event_id = 0
    await catch_up(services.db, now=NOW)
    assert await rows_of(services.db) == once


async def test_a_reopened_conversation_leaves_its_first_interval(services: Services, world: World) -> None:
    """Reopening starts a new wait: the contact moves to the new interval, as a full rebuild has it."""
    async with services.db.transaction() as s:
        c2 = await s.get(m.Conversation, world.convs[2])
        assert c2 is not None
        # as do_reopen has it: the reopened event no longer shows the first wait
        c2.accepted_at = c2.wrap_up_at = c2.closed_at = c2.first_enqueued_at = None
        await _event(s, "conversation.reopened", c2, local(11, 0))
        c2.first_enqueued_at = c2.enqueued_at = local(11, 0)
        c2.status, c2.accepted_at, c2.wrap_up_at, c2.closed_at = (
            S.CLOSED,
            local(11, 0, 8),
            local(11, 3),
            local(11, 4),
        )
        await _event(s, "conversation.closed", c2, local(11, 4))
    assert await catch_up(services.db, now=NOW) == 2
    qa = (world.qa,)
    table = await report(
        services, world, "queue_summary", preset=Preset.TODAY, grouping=Grouping.INTERVAL, queue_ids=qa
    )
    got = {row["period"]: (row["offered"], row["answered"]) for row in table.as_dicts()}
    assert got[datetime(2026, 3, 10, 0, 0, tzinfo=MSK)] == (4, 2)  # 2 has left 00:00–00:15
    assert got[datetime(2026, 3, 10, 11, 0, tzinfo=MSK)] == (1, 1)
    incremental = await rows_of(services.db)
    async with services.db.transaction() as s:
        await s.execute(delete(m.ReportQueueInterval))
        await rebuild_range(s, local(0, 0, day=9), local(0, 0, day=11))
    assert await rows_of(services.db) == incremental


async def test_days_weeks_and_months_are_local_and_summed_per_group(services: Services, world: World) -> None:
    two_days = {"since": date(2026, 3, 9), "until": date(2026, 3, 10), "queue_ids": (world.qa,)}
    by_day = await report(services, world, "queue_summary", grouping=Grouping.DAY, **two_days)
    assert [(r["period"], r["offered"], r["handled"]) for r in by_day.as_dicts()] == [
        (datetime(2026, 3, 9, tzinfo=MSK), 1, 1),  # 14, handled although closed on the 10th
        (datetime(2026, 3, 10, tzinfo=MSK), 10, 4),
    ]
    by_week = await report(services, world, "queue_summary", grouping=Grouping.WEEK, preset=Preset.TODAY)
    assert {(r["period"], r["queue"], r["offered"]) for r in by_week.as_dicts()} == {
        (datetime(2026, 3, 9, tzinfo=MSK), "QA", 10),  # the week began on Monday the 9th
        (datetime(2026, 3, 9, tzinfo=MSK), "QB", 3),
    }
    by_month = await report(services, world, "queue_summary", grouping=Grouping.MONTH, **two_days)
    assert [(r["period"], r["offered"], r["answered"]) for r in by_month.as_dicts()] == [
        (datetime(2026, 3, 1, tzinfo=MSK), 11, 6)
    ]
    by_hour = await report(services, world, "queue_summary", grouping=Grouping.HOUR, preset=Preset.TODAY)
    hours = [(r["period"], r["queue"], r["offered"]) for r in by_hour.as_dicts()]
    assert hours == [
        (datetime(2026, 3, 10, 0, tzinfo=MSK), "QA", 8),  # 00:00 and 00:15 intervals together
        (datetime(2026, 3, 10, 9, tzinfo=MSK), "QB", 3),
        (datetime(2026, 3, 10, 10, tzinfo=MSK), "QA", 2),
    ]


async def test_missed_outcomes_page_and_stream(services: Services, world: World) -> None:
    from omni.domain.reports import missed_outcomes
    from omni.domain.reports.config import get_config

    async with services.db.transaction() as s:
        config = await get_config(s)
        asked = FilterParams(preset=Preset.TODAY).resolve(config.tz, NOW)
        scope = await reports.resolve_scope(s, world.admin, asked, config, NOW)
        paged = FilterParams(preset=Preset.TODAY, offset=1, limit=2).resolve(config.tz, NOW)
        page = await missed_outcomes.run(s, await reports.resolve_scope(s, world.admin, paged, config, NOW))
        assert page.total_rows == 5
        assert [r[1] for r in page.rows] == ["QA", "QA"] and [r[5] for r in page.rows] == [300.0, 7.0]
        every = [row async for row in missed_outcomes.stream(s, scope)]
        assert [r[5] for r in every] == [40.0, 300.0, 7.0, 12.0, 300.0]
