"""Operator reports on a hand-built day in Moscow: every figure below is worked out by hand.

The fixture straddles local midnight (2026-03-11 00:00 MSK = 2026-03-10 21:00 UTC) and several
15-minute intervals. All times in the fixture are UTC; "day 10" / "day 11" are Moscow dates.

Operators: ``op_a`` (group A, the supervisor's) and ``op_b`` (group B).

Conversations (first_enqueued → interval → Moscow day):
  c1 telegram QA, 20:40 → day 10. Offered to op_b 20:40:00 (timeout), to op_a 20:40:20 (accepted);
     accepted 20:40:30, op_a replies 20:41:00 (first response 30 s), ended by the customer
     20:50:30 (talk 600 − hold 60 = 540), closed 20:51:30 (wrap 60), code "sold", rating 5.
  c2 voice QA, 20:55 → day 10. Offered to op_a 20:55:05 (declined), 20:55:30 (accepted);
     accepted 20:55:40, ended by the operator 21:05:40 — after midnight — (talk 600), closed
     21:07:10 (wrap 90), code "info", rating 3. Its handling stays on day 10.
  c3 widget QA, 21:10 → day 11. op_a accepts 21:10:10 and writes 21:10:55, transfers to op_b
     21:15:00; op_b's offer 21:15:05 accepted 21:15:10, writes 21:15:30 (first response 20 s),
     ends 21:25:10 (talk 600), closes 21:25:40 (wrap 30), code "sold", rating 4.
  c4 voice QB, 20:35 → day 10, op_b: accepted 20:35:05, hold 30, ended by the system 20:40:05
     (talk 270), closed 20:41:05 (wrap 60), no code, no rating.
  c5 telegram QA, 21:20 → day 11, op_a accepted 21:20:10, replies 21:21:10 (60 s), still active.
  c6 QA abandoned 21:29:50; op_a's offer 21:30:00 cancelled (an offer, neither accepted,
     declined nor timed out).
  c9 api QA, 21:31 → day 11: op_b accepts 21:31:10, transfers to queue QA 21:33:00; op_a's offer
     21:33:05 accepted (op_a received the transfer), accepted 21:33:10, active, no reply yet.
  c7 voice QA, 2026-03-09 20:50 (23:50 on 9 March, outside the period): op_a handled it
     (talk 120, wrap 30), rating 5. Only op_a's week counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import reports
from omni.domain.auth import Principal
from omni.domain.reports import FilterParams, Grouping, ReportTable
from omni.domain.reports.config import check_update_config
from omni.domain.reports.operators import OPERATORS, STATUS_TIMES
from omni.domain.reports.own import own_stats
from omni.domain.reports.rollups import Changes, rebuild_range
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite

S = m.ConversationStatus
DAY10 = datetime(2026, 3, 10, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)  # 01:30 on 11 March in Moscow
DAY_10 = datetime.fromisoformat("2026-03-10T00:00:00+03:00")
DAY_11 = datetime.fromisoformat("2026-03-11T00:00:00+03:00")


def at(hms: str, day: datetime = DAY10) -> datetime:
    h, mi, *sec = (int(x) for x in hms.split(":"))
    return day + timedelta(hours=h, minutes=mi, seconds=sec[0] if sec else 0)


@dataclass
class World:
    admin: Principal
    sup: Principal
    op_a: m.User
    op_b: m.User
    conv: dict[str, int]
    q_a: int
    q_b: int


async def _conv(
    s: AsyncSession,
    contact: m.Contact,
    queue: m.Queue,
    channel: str,
    status: str,
    enqueued: str,
    *,
    user: m.User | None = None,
    accepted: str | None = None,
    wrap_up: str | None = None,
    closed: str | None = None,
    hold: int = 0,
    closed_by: str | None = None,
    code: m.ResultCode | None = None,
    csat: int | None = None,
    day: datetime = DAY10,
) -> m.Conversation:
    conv = m.Conversation(
        contact_id=contact.id,
        queue_id=queue.id,
        channel=channel,
        medium=m.Medium.VOICE if channel == "voice" else m.Medium.CHAT,
        status=status,
        created_at=at(enqueued, day),
        enqueued_at=at(enqueued, day),
        first_enqueued_at=at(enqueued, day),
        accepted_at=at(accepted, day) if accepted else None,
        wrap_up_at=at(wrap_up, day) if wrap_up else None,
        closed_at=at(closed, day) if closed else None,
        hold_seconds=hold,
        assigned_user_id=user.id if user else None,
        closed_by=closed_by,
        result_code_id=code.id if code else None,
        extra_queue_ids=[],
        variables={"csat": csat} if csat is not None else {},
    )
    s.add(conv)
    await s.flush()
    return conv


def _offer(
    conv: m.Conversation, user: m.User, made: str, state: str, responded: str | None = None
) -> m.Offer:
    return m.Offer(
        conversation_id=conv.id,
        user_id=user.id,
        queue_id=conv.queue_id,
        state=state,
        created_at=at(made),
        expires_at=at(made) + timedelta(seconds=20),
        responded_at=at(responded) if responded else None,
    )


def _out(conv: m.Conversation, user: m.User, when: str) -> m.Message:
    return m.Message(
        conversation_id=conv.id, direction="out", author_user_id=user.id, body="hi", created_at=at(when)
    )


def _transfer(conv: m.Conversation, when: str, from_user: m.User, to_user: m.User | None) -> m.Event:
    return m.Event(
        type="conversation.transferred",
        payload={
            "id": conv.id,
            "from_user_id": from_user.id,
            "to_user_id": to_user.id if to_user else None,
            "to_queue_id": None if to_user else conv.queue_id,
            "note": "",
        },
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        created_at=at(when),
        dispatched=True,
    )


async def _spans(
    s: AsyncSession, user: m.User, spans: list[tuple[str, str, str | None]], day: datetime = DAY10
) -> None:
    ids = {st.code: st.id for st in await s.scalars(select(m.OperatorStatus))}
    for code, began, ended in spans:
        s.add(
            m.StatusHistory(
                user_id=user.id,
                status_id=ids[code],
                status_code=code,
                started_at=at(began, day),
                ended_at=at(ended, day) if ended else None,
            )
        )


@pytest.fixture
async def world(services: Services) -> World:
    return await build_world(services)


async def build_world(services: Services) -> World:
    async with services.db.transaction() as s:
        admin = await f.user(s, "adm", m.Role.ADMIN)
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow")
    async with services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op_a = await f.user(s, "op_a")
        op_b = await f.user(s, "op_b")
        g_a, g_b = m.Group(name="A"), m.Group(name="B")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=op_a.id),
                m.GroupMember(group_id=g_b.id, user_id=op_b.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
            ]
        )
        q_a = await f.queue(s, "QA", [op_a], group_id=g_a.id)
        q_b = await f.queue(s, "QB", [op_b], group_id=g_b.id)
        sold = await f.result_code(s, "sold", name="Sold", name_ru="Продано")
        info = await f.result_code(s, "info", name="Info", name_ru="Справка")
        s.add(m.OperatorStatus(code="lunch", name="Lunch", name_ru="Обед", kind="pause", selectable=True))
        who = m.Contact(name="c", custom_fields={}, tags=[])
        s.add(who)
        await s.flush()
        c1 = await _conv(
            s,
            who,
            q_a,
            "telegram",
            S.CLOSED,
            "20:40",
            user=op_a,
            accepted="20:40:30",
            wrap_up="20:50:30",
            closed="20:51:30",
            hold=60,
            closed_by="customer",
            code=sold,
            csat=5,
        )
        c2 = await _conv(
            s,
            who,
            q_a,
            "voice",
            S.CLOSED,
            "20:55",
            user=op_a,
            accepted="20:55:40",
            wrap_up="21:05:40",
            closed="21:07:10",
            closed_by="operator",
            code=info,
            csat=3,
        )
        c3 = await _conv(
            s,
            who,
            q_a,
            "widget",
            S.CLOSED,
            "21:10",
            user=op_b,
            accepted="21:15:10",
            wrap_up="21:25:10",
            closed="21:25:40",
            closed_by="operator",
            code=sold,
            csat=4,
        )
        c4 = await _conv(
            s,
            who,
            q_b,
            "voice",
            S.CLOSED,
            "20:35",
            user=op_b,
            accepted="20:35:05",
            wrap_up="20:40:05",
            closed="20:41:05",
            hold=30,
            closed_by="system",
        )
        c5 = await _conv(s, who, q_a, "telegram", S.ACTIVE, "21:20", user=op_a, accepted="21:20:10")
        c6 = await _conv(
            s, who, q_a, "telegram", S.ABANDONED, "21:29:50", closed="21:30:30", closed_by="customer"
        )
        c9 = await _conv(s, who, q_a, "api", S.ACTIVE, "21:31", user=op_a, accepted="21:33:10")
        c7 = await _conv(s, who, q_a, "voice", S.CLOSED, "20:50", user=op_a, accepted="20:50:10",
                         wrap_up="20:52:10", closed="20:52:40", closed_by="customer", code=sold, csat=5,
                         day=DAY10 - timedelta(days=1))  # fmt: skip
        s.add_all(
            [
                _offer(c1, op_b, "20:40:00", "timeout"),
                _offer(c1, op_a, "20:40:20", "accepted", "20:40:30"),
                _offer(c2, op_a, "20:55:05", "declined", "20:55:15"),
                _offer(c2, op_a, "20:55:30", "accepted", "20:55:40"),
                _offer(c3, op_a, "21:10:00", "accepted", "21:10:10"),
                _offer(c3, op_b, "21:15:05", "accepted", "21:15:10"),
                _offer(c4, op_b, "20:35:00", "accepted", "20:35:05"),
                _offer(c5, op_a, "21:20:00", "accepted", "21:20:10"),
                _offer(c6, op_a, "21:30:00", "cancelled", "21:30:30"),
                _offer(c9, op_b, "21:31:00", "accepted", "21:31:10"),
                _offer(c9, op_a, "21:33:05", "accepted", "21:33:10"),
                _out(c1, op_a, "20:41:00"),
                _out(c1, op_a, "20:42:00"),
                _out(c3, op_a, "21:10:55"),
                _out(c3, op_b, "21:15:30"),
                _out(c5, op_a, "21:21:10"),
                _transfer(c3, "21:15:00", op_a, op_b),
                _transfer(c9, "21:33:00", op_b, None),
            ]
        )
        # op_a: an available span across the start of day 10 (only 21:00–21:05 on the 9th counts)
        await _spans(s, op_a, [("available", "20:50", "21:05")], day=DAY10 - timedelta(days=1))
        await _spans(
            s,
            op_a,
            [
                ("offline", "18:00", "20:30"),
                ("available", "20:30", "20:40:20"),
                ("ringing", "20:40:20", "20:40:30"),
                ("talking", "20:40:30", "20:50:30"),
                ("wrap_up", "20:50:30", "20:51:30"),
                ("available", "20:51:30", "20:55:05"),
                ("ringing", "20:55:05", "20:55:15"),
                ("available", "20:55:15", "20:55:30"),
                ("ringing", "20:55:30", "20:55:40"),
                ("talking", "20:55:40", "21:05:40"),
                ("wrap_up", "21:05:40", "21:07:10"),
                ("available", "21:07:10", "21:10:00"),
                ("ringing", "21:10:00", "21:10:10"),
                ("talking", "21:10:10", "21:15:00"),
                ("available", "21:15:00", "21:20:00"),
                ("ringing", "21:20:00", "21:20:10"),
                ("talking", "21:20:10", "21:40:00"),
                ("lunch", "21:40:00", "22:10:00"),
                ("offline", "22:10:00", "22:20:00"),
                ("available", "22:20:00", None),  # open: counts up to NOW (22:30)
            ],
        )
        await _spans(
            s,
            op_b,
            [
                ("available", "20:30", "20:35"),
                ("ringing", "20:35", "20:35:05"),
                ("talking", "20:35:05", "20:40:05"),
                ("wrap_up", "20:40:05", "20:41:05"),
                ("dnd", "20:41:05", "21:15:05"),
                ("ringing", "21:15:05", "21:15:10"),
                ("talking", "21:15:10", "21:25:10"),
                ("wrap_up", "21:25:10", "21:25:40"),
                ("available", "21:25:40", "21:31:00"),
                ("ringing", "21:31:00", "21:31:10"),
                ("talking", "21:31:10", "21:33:00"),
                ("available", "21:33:00", "21:40:00"),
                ("offline", "21:40:00", "22:00:00"),
            ],
        )
        await s.flush()
        await rebuild_range(s, at("18:00", DAY10 - timedelta(days=1)), at("23:00"))
        conv = {"c1": c1.id, "c2": c2.id, "c3": c3.id, "c7": c7.id}
        return World(f.who(admin), f.who(sup), op_a, op_b, conv, q_a.id, q_b.id)


async def _run(services: Services, who: Principal, key: str, **kw: Any) -> ReportTable:
    params = FilterParams(since=date(2026, 3, 10), until=date(2026, 3, 11), **kw)
    async with services.db.transaction() as s:
        return await reports.run_params(s, who, key, params, NOW)


def _rows(table: ReportTable) -> list[dict[str, Any]]:
    return list(table.as_dicts())


async def test_operator_performance_by_moscow_day_matches_the_hand_count(
    services: Services, world: World
) -> None:
    await check_performance(services, world)


async def check_performance(services: Services, world: World) -> None:
    table = await _run(services, world.admin, "operator_performance")
    keys = [c.key for c in table.columns]
    assert [k for k in keys if k.startswith("handled_")] == [
        "handled_telegram",
        "handled_voice",
        "handled_widget",
    ]
    rows = {(r["period"], r["operator"]): r for r in _rows(table)}
    assert list(rows) == [(DAY_10, "op_a"), (DAY_10, "op_b"), (DAY_11, "op_a"), (DAY_11, "op_b")]
    a10, b10, a11, b11 = rows.values()
    # op_a, day 10: c1 and c2 (c2's wrap-up after midnight stays on day 10)
    assert (a10["offers"], a10["accepted"], a10["declined"], a10["timed_out"], a10["handled"]) == (
        3,
        2,
        1,
        0,
        2,
    )
    assert (a10["handled_telegram"], a10["handled_voice"], a10["handled_widget"]) == (1, 1, 0)
    assert (a10["aht"], a10["avg_talk"], a10["avg_hold"], a10["avg_wrap_up"]) == (675.0, 570.0, 30.0, 75.0)
    ended = ("ended_operator", "ended_customer", "ended_timeout", "ended_system")
    assert tuple(a10[k] for k in ended) == (1, 1, 0, 0)
    assert (a10["transfers_made"], a10["transfers_received"]) == (0, 0)
    # logged in: 300 (9th, after midnight) + 620 + 10 + 600 + 60 + 215 + 10 + 15 + 10 + 260
    assert a10["logged_in_time"] == 2100.0
    assert a10["contacts_per_hour"] == round(2 * 3600 / 2100, 2) == 3.43
    assert a10["first_response"] == 30.0
    assert (a10["csat"], a10["csat_mean"], a10["ratings"]) == (50.0, 4.0, 2)
    # op_a, day 11: offers c3, c5, c6 (cancelled), c9; made c3's transfer, received c9's
    assert (a11["offers"], a11["accepted"], a11["declined"], a11["timed_out"], a11["handled"]) == (
        4,
        3,
        0,
        0,
        0,
    )
    assert a11["aht"] is None
    assert (a11["transfers_made"], a11["transfers_received"]) == (1, 1)
    # 340 + 90 + 170 + 10 + 290 + 300 + 10 + 1190 + lunch 1800 + open available 600 (offline not)
    assert a11["logged_in_time"] == 4800.0
    assert a11["contacts_per_hour"] == 0.0
    assert a11["first_response"] == 60.0  # c5; c3's reply was before op_b accepted, c9 none yet
    assert (a11["csat"], a11["ratings"]) == (None, 0)
    # op_b, day 10: c1's offer timed out, c4 handled (ended by the system)
    assert (b10["offers"], b10["accepted"], b10["timed_out"], b10["handled"], b10["handled_voice"]) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert (b10["aht"], b10["avg_talk"], b10["avg_hold"], b10["avg_wrap_up"]) == (360.0, 270.0, 30.0, 60.0)
    assert tuple(b10[k] for k in ended) == (0, 0, 0, 1)
    assert (b10["logged_in_time"], b10["contacts_per_hour"]) == (1800.0, 2.0)
    # op_b, day 11: c3 received by transfer and handled, c9 accepted then passed to the queue
    assert (b11["offers"], b11["accepted"], b11["handled"], b11["handled_widget"]) == (2, 2, 1, 1)
    assert (b11["aht"], b11["avg_talk"], b11["avg_wrap_up"]) == (630.0, 600.0, 30.0)
    assert (b11["transfers_made"], b11["transfers_received"]) == (1, 1)
    assert (b11["first_response"], b11["csat"], b11["csat_mean"]) == (20.0, 100.0, 4.0)
    assert (b11["logged_in_time"], b11["contacts_per_hour"]) == (2400.0, 1.5)
    total = dict(zip(keys, table.totals or [], strict=True))
    assert (total["offers"], total["accepted"], total["declined"], total["timed_out"]) == (11, 8, 1, 1)
    assert (total["handled"], total["handled_telegram"], total["handled_voice"], total["handled_widget"]) == (
        4,
        1,
        2,
        1,
    )
    # (540+60+60) + (600+90) + (270+30+60) + (600+30) = 2340 over 4
    assert (total["aht"], total["avg_talk"], total["avg_hold"], total["avg_wrap_up"]) == (
        585.0,
        502.5,
        22.5,
        60.0,
    )
    assert tuple(total[k] for k in ended) == (2, 1, 0, 1)
    assert (total["transfers_made"], total["transfers_received"]) == (2, 2)
    assert (total["logged_in_time"], total["contacts_per_hour"]) == (11100.0, 1.3)
    assert total["first_response"] == 36.7  # (30 + 60 + 20) / 3
    assert (total["csat"], total["csat_mean"], total["ratings"]) == (66.7, 4.0, 3)


async def test_a_supervisor_sees_only_their_operators_and_an_operator_filter_narrows(
    services: Services, world: World
) -> None:
    mine = await _run(services, world.sup, "operator_performance")
    assert {r["operator"] for r in _rows(mine)} == {"op_a"}
    asked_other = await _run(services, world.sup, "operator_status", user_ids=(world.op_b.id,))
    assert asked_other.rows == []
    only_b = await _run(services, world.admin, "operator_performance", user_ids=(world.op_b.id,))
    assert {r["operator"] for r in _rows(only_b)} == {"op_b"}
    voice = await _run(services, world.admin, "operator_performance", channels=("voice",))
    assert [(r["operator"], r["handled"]) for r in _rows(voice) if r["handled"]] == [("op_a", 1), ("op_b", 1)]


async def test_operator_status_times_split_at_intervals_and_midnight(
    services: Services, world: World
) -> None:
    await check_status(services, world)


async def check_status(services: Services, world: World) -> None:
    table = await _run(services, world.admin, "operator_status")
    keys = [c.key for c in table.columns]
    assert [k for k in keys if k.startswith("status_")] == [
        "status_available",
        "status_pause",
        "status_dnd",
        "status_lunch",
    ]
    rows = {(r["period"], r["operator"]): r for r in _rows(table)}
    a10, b10, a11, b11 = (
        rows[k] for k in [(DAY_10, "op_a"), (DAY_10, "op_b"), (DAY_11, "op_a"), (DAY_11, "op_b")]
    )
    cols = (
        "logged_in_time",
        "status_available",
        "status_dnd",
        "status_lunch",
        "ringing",
        "talking",
        "hold",
        "wrap_up",
        "idle",
    )
    assert tuple(a10[k] for k in cols) == (2100.0, 1150.0, 0.0, 0.0, 30.0, 860.0, 60.0, 60.0, 1150.0)
    assert (a10["occupancy"], a10["utilization"]) == (45.2, 100.0)  # 950 / 2100; 2100 / 2100
    assert tuple(a11[k] for k in cols) == (4800.0, 1070.0, 0.0, 1800.0, 20.0, 1820.0, 0.0, 90.0, 1070.0)
    assert (a11["occupancy"], a11["utilization"]) == (64.3, 62.5)  # 1930 / 3000; 3000 / 4800
    assert tuple(b10[k] for k in cols) == (1800.0, 300.0, 1135.0, 0.0, 5.0, 300.0, 30.0, 60.0, 300.0)
    assert (b10["occupancy"], b10["utilization"]) == (54.9, 36.9)  # 365 / 665; 665 / 1800
    assert tuple(b11[k] for k in cols) == (2400.0, 740.0, 905.0, 0.0, 15.0, 710.0, 0.0, 30.0, 740.0)
    assert (b11["occupancy"], b11["utilization"]) == (50.5, 62.3)  # 755 / 1495; 1495 / 2400
    total = dict(zip(keys, table.totals or [], strict=True))
    assert tuple(total[k] for k in cols) == (
        11100.0,
        3260.0,
        2040.0,
        1800.0,
        70.0,
        3690.0,
        90.0,
        240.0,
        3260.0,
    )
    assert (total["occupancy"], total["utilization"]) == (55.1, 65.4)  # 4000 / 7260; 7260 / 11100
    # by interval: op_a's talk 20:40:30–20:50:30 puts 270 s in 23:30 and 330 s in 23:45 (Moscow)
    by_interval = await _run(
        services, world.admin, "operator_status", grouping=Grouping.INTERVAL, user_ids=(world.op_a.id,)
    )
    talk = {r["period"]: r["talking"] for r in _rows(by_interval)}
    assert talk[datetime.fromisoformat("2026-03-10T23:30:00+03:00")] == 270.0
    # 20:45–21:00 UTC: 330 (c1) + 260 (c2 until midnight)
    assert talk[datetime.fromisoformat("2026-03-10T23:45:00+03:00")] == 590.0
    assert talk[datetime.fromisoformat("2026-03-11T00:00:00+03:00")] == 340.0 + 290.0


async def test_status_columns_are_named_in_the_readers_language(services: Services, world: World) -> None:
    ru = Principal(id=world.admin.id, username="adm", role=m.Role.ADMIN, language="ru")
    table = await _run(services, ru, "operator_status")
    titles = {c.key: c.title for c in table.columns}
    assert (titles["status_lunch"], titles["status_available"]) == ("Обед", "Доступен")
    assert table.to_json("ru")["columns"][2]["title"] == "В линии"


async def test_result_codes_per_queue_and_operator(services: Services, world: World) -> None:
    table = await _run(services, world.admin, "result_codes", grouping=Grouping.TOTAL)
    got = [(r["queue"], r["operator"], r["result_code"], r["count"], r["share"]) for r in _rows(table)]
    assert got == [
        ("QA", "", "Sold", 2, 66.7),
        ("QA", "", "Info", 1, 33.3),
        ("", "op_a", "Info", 1, 50.0),
        ("", "op_a", "Sold", 1, 50.0),
        ("", "op_b", "Sold", 1, 100.0),
    ]
    assert table.totals is not None and table.totals[4] == 3
    assert {r["period"] for r in _rows(table)} == {DAY_10}
    ru = Principal(id=world.admin.id, username="adm", role=m.Role.ADMIN, language="ru")
    in_ru = await _run(services, ru, "result_codes", grouping=Grouping.TOTAL)
    assert {r["result_code"] for r in _rows(in_ru)} == {"Продано", "Справка"}
    sup = await _run(services, world.sup, "result_codes", grouping=Grouping.TOTAL)
    assert [(r["queue"], r["operator"], r["count"]) for r in _rows(sup)] == [
        ("QA", "", 2),
        ("QA", "", 1),
        ("", "op_a", 1),
        ("", "op_a", 1),
    ]


async def test_rebuilding_twice_gives_the_same_rows_and_touched_names_the_intervals(
    services: Services, world: World
) -> None:
    async def snapshot(s: AsyncSession) -> list[list[Any]]:
        out = []
        for table in (
            m.ReportOperatorInterval,
            m.ReportOperatorHour,
            m.ReportStatusInterval,
            m.ReportStatusHour,
        ):
            rows = (await s.execute(select(table).order_by(*table.__table__.primary_key))).scalars()
            out.append([_plain(r) for r in rows])
        return out

    async with services.db.transaction() as s:
        before = await snapshot(s)
        await rebuild_range(s, at("18:00", DAY10 - timedelta(days=1)), at("23:00"))
        assert await snapshot(s) == before
        # one interval alone: its hour is re-summed whole from the other intervals' rows
        await rebuild_range(s, at("20:45"), at("21:00"))
        assert await snapshot(s) == before
        hour_20 = await s.scalar(
            select(func.sum(m.ReportStatusHour.seconds)).where(
                m.ReportStatusHour.hour == at("20:00"), m.ReportStatusHour.user_id == world.op_a.id
            )
        )
        assert hour_20 == 3600  # 20:00–20:30 offline, 20:30–21:00 working: the whole hour
        assert await s.scalar(select(func.count()).select_from(m.ReportStatusInterval)) == len(before[2])
        c2 = await OPERATORS.touched(s, Changes(conversation_ids={world.conv["c2"]}))
        assert c2 == {at("20:45")}
        c3 = await OPERATORS.touched(s, Changes(conversation_ids={world.conv["c3"]}))
        assert c3 == {at("21:00"), at("21:15")}
        # op_a's talk span that ended at 21:05:40 began at 20:55:40: rebuild from 20:45 to the last close
        spans = await STATUS_TIMES.touched(s, Changes(user_ids={world.op_a.id}, earliest=at("21:05:40")))
        assert min(spans) == at("20:45") and max(spans) == at("22:15") and len(spans) == 7


def _plain(row: Any) -> tuple[Any, ...]:
    return tuple(getattr(row, c.key) for c in row.__table__.columns)


async def test_own_stats_count_today_and_this_week_in_moscow(services: Services, world: World) -> None:
    late_on_10th = at("20:59")  # 23:59 in Moscow, Tuesday 10 March
    async with services.db.transaction() as s:
        mine = await own_stats(s, f.who(world.op_a), late_on_10th)
        after_midnight = await own_stats(s, f.who(world.op_a), NOW)
    assert mine.timezone == "Europe/Moscow"
    assert (mine.today.handled, mine.today.aht, mine.today.csat, mine.today.csat_mean) == (
        2,
        675.0,
        50.0,
        4.0,
    )
    # the week from Monday 9 March adds c7: (660 + 690 + 150) / 3; ratings 5, 3, 5
    assert (mine.week.handled, mine.week.aht, mine.week.csat, mine.week.csat_mean, mine.week.ratings) == (
        3,
        500.0,
        66.7,
        4.33,
        3,
    )
    assert (after_midnight.today.handled, after_midnight.today.aht) == (0, None)


async def test_the_operator_reports_read_the_same_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    """Embedded installs run on SQLite: the rollups and the grouped sums must give the same figures."""
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        world = await build_world(services)
        await check_performance(services, world)
        await check_status(services, world)
    finally:
        await services.stop()


async def test_a_zone_off_the_hour_reads_the_intervals_and_splits_days_at_its_midnight(
    services: Services, world: World
) -> None:
    """Kolkata is UTC+5:30: its days start at hh:30 UTC, so the hourly rows can't be used."""
    async with services.db.transaction() as s:
        admin = await s.get_one(m.User, world.admin.id)
        await check_update_config(s, f.who(admin), timezone="Asia/Kolkata")
    table = await _run(services, world.admin, "operator_status", user_ids=(world.op_a.id,))
    logged = {r["period"].date(): r["logged_in_time"] for r in _rows(table)}
    # 10 March in Kolkata = 9 March 18:30 … 10 March 18:30 UTC: the whole 20:50–21:05 span of the
    # 9th (900 s); 11 March: everything from 20:30 UTC on the 10th (2100 − 300 + 4800).
    assert logged == {date(2026, 3, 10): 900.0, date(2026, 3, 11): 6600.0}
    perf = await _run(services, world.admin, "operator_performance", user_ids=(world.op_a.id,))
    handled = {r["period"].date(): (r["offers"], r["handled"]) for r in _rows(perf)}
    # c7 (20:50 UTC on the 9th) is 02:20 on 10 March in Kolkata: handled that day
    assert handled == {date(2026, 3, 10): (0, 1), date(2026, 3, 11): (7, 2)}
