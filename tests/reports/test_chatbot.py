"""Chat metrics, chat concurrency, bot funnel, bot drop-off, surveys, NPS and CSAT on a hand-built
fixture in Moscow (UTC+3), every figure computed by hand below.

The report day is 10 March 2026 in Moscow = [09 Mar 21:00, 10 Mar 21:00) UTC. Times below are
UTC; "00:05" in a comment is Moscow time. Some rows start before local midnight (09 Mar) and end
after it, some cross the 00:00/00:15 interval boundary.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.domain import reports
from omni.domain.reports import FilterParams, Grouping, ReportTable
from omni.domain.reports.bot_funnel import run_outcome
from omni.domain.reports.chats import chat_times, load_of
from omni.domain.reports.config import check_update_config
from omni.domain.reports.driver import rebuild_touched
from omni.domain.reports.rollups import ROLLUPS, Changes, rebuild_range
from omni.domain.reports.surveys import stream_survey_answers_raw
from omni.services import Services
from tests import factories as f
from tests.conftest import LiveServer, copy_sqlite, make_settings

MSK = ZoneInfo("Europe/Moscow")
DAY = date(2026, 3, 10)
EVE = date(2026, 3, 9)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
S = m.ConversationStatus


def at(hh: int, mm: int, ss: int = 0, day: int = 9) -> datetime:
    """A UTC instant on 9 March (10 March in Moscow from 21:00 on)."""
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=UTC)


SUPPORT_DOC: dict[str, Any] = {
    "schema_version": 2,
    "name": "Support bot",
    "start": "menu1",
    "nodes": [
        {"id": "menu1", "type": "menu", "content": {"text": "Hi"}, "options": [], "ports": {}},
        {"id": "ask_name", "type": "ask", "content": {"text": "Name?"}, "ports": {}},
        {"id": "handoff1", "type": "handoff", "ports": {}},
        {"id": "faq_msg", "type": "message", "content": {"text": "FAQ"}, "ports": {}},
        {"id": "close1", "type": "close", "ports": {}},
    ],
}
SURVEY_DOC: dict[str, Any] = {
    "schema_version": 2,
    "name": "After-chat survey",
    "start": "q_csat",
    "nodes": [
        {
            "id": "q_csat",
            "type": "survey",
            "kind": "single",
            "variable": "csat",
            "question": {"text": "How did we do?", "text_ru": "Как мы справились?"},
            "options": [
                {"id": str(i), "label": label}
                for i, label in enumerate(["Bad", "Poor", "OK", "Good", "Great"], start=1)
            ],
        },
        {
            "id": "q_nps",
            "type": "survey",
            "kind": "text",
            "variable": "nps",
            "question": {"text": "How likely are you to recommend us, 0 to 10?"},
        },
        {
            "id": "q_heard",
            "type": "survey",
            "kind": "multiple",
            "variable": "heard_from",
            "question": {"text": "Where did you hear of us?"},
            "options": [
                {"id": "web", "label": "Website"},
                {"id": "tg", "label": "Telegram"},
                {"id": "friend", "label": "A friend", "label_ru": "Друг"},
            ],
        },
    ],
}


async def _world(services: Services) -> dict[str, Any]:
    w: dict[str, Any] = {}
    async with services.db.transaction() as s:
        admin = await f.user(s, "adm", m.Role.ADMIN)
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow")
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op1, op2, op3 = [await f.user(s, n, display_name=n.upper()) for n in ("op1", "op2", "op3")]
        g1, g2 = m.Group(name="g1"), m.Group(name="g2")
        s.add_all([g1, g2])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g1.id, user_id=op1.id),
                m.GroupMember(group_id=g1.id, user_id=op2.id),
                m.GroupMember(group_id=g2.id, user_id=op3.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g1.id),
            ]
        )
        q1 = await f.queue(s, "q1", [op1, op2], group_id=g1.id)
        q2 = await f.queue(s, "q2", [op3], group_id=g2.id)
        web = await f.inbox(s, q1, "widget")
        tg = await f.inbox(s, q2, "telegram")
        contact = m.Contact(name="Ivan")
        s.add(contact)
        await s.flush()

        def conv(
            name: str,
            inbox: m.Inbox | None,
            queue: m.Queue,
            user: m.User | None,
            *,
            enq: datetime | None,
            acc: datetime | None = None,
            closed: datetime | None = None,
            by: str | None = None,
            status: str = S.CLOSED,
            csat: Any = None,
            medium: str = m.Medium.CHAT,
            channel: str | None = None,
            created: datetime | None = None,
        ) -> m.Conversation:
            row = m.Conversation(
                contact_id=contact.id,
                inbox_id=inbox.id if inbox else None,
                channel=channel or (inbox.channel if inbox else "voice"),
                medium=medium,
                status=status,
                queue_id=queue.id,
                assigned_user_id=user.id if user else None,
                created_at=created or enq or at(20, 0),
                enqueued_at=enq,
                first_enqueued_at=enq,
                accepted_at=acc,
                closed_at=closed,
                closed_by=by,
                extra_queue_ids=[],
                variables={} if csat is None else {"csat": csat},
            )
            s.add(row)
            w[name] = row
            return row

        # chats (FRT from the start of the wait; replies = first unanswered customer message → reply)
        conv("C0", web, q1, op1, enq=at(20, 58), acc=at(20, 58, 10), closed=at(21, 2), by="operator", csat=1)
        conv("C1", web, q1, op1, enq=at(21, 5), acc=at(21, 5, 10), closed=at(21, 10), by="operator", csat=5)
        conv("C2", web, q1, op2, enq=at(21, 12), acc=at(21, 12, 30), closed=at(21, 20), by="customer", csat=3)
        conv(
            "C3", web, q1, op1, enq=at(21, 20), acc=at(21, 21), closed=at(21, 40), by="timeout", csat="great"
        )
        conv("C4", web, q1, None, enq=at(21, 25), closed=at(21, 26), by="customer", status=S.ABANDONED)
        conv("C5", tg, q2, op3, enq=at(21, 7), acc=at(21, 7, 10), closed=at(21, 30), by="operator", csat=4)
        conv("C6", web, q1, op1, enq=at(21, 4), acc=at(21, 4, 30), closed=at(21, 9), by="operator", csat="4")
        conv(
            "V1",
            None,
            q1,
            op2,
            enq=at(21, 30),
            acc=at(21, 30, 10),
            closed=at(21, 35),
            by="operator",
            csat=2,
            medium=m.Medium.VOICE,
        )
        # conversations the bot kept (never queued)
        conv("B1", web, q1, None, enq=None, created=at(21, 10), closed=at(21, 10, 30), by="bot")
        conv("B2", web, q1, None, enq=None, created=at(21, 14, 50), closed=at(21, 16), by="timeout")
        conv("B3", web, q1, None, enq=None, created=at(21, 20), closed=at(21, 22), by="customer")
        conv("B4", web, q1, None, enq=None, created=at(21, 40), status=S.BOT)
        conv("B5", web, q1, None, enq=None, created=at(20, 55), closed=at(21, 1), by="bot")
        conv("B6", tg, q2, None, enq=None, created=at(21, 30), closed=at(21, 33), by="customer")
        await s.flush()

        def msg(name: str, direction: str, when: datetime, author: m.User | None = None) -> None:
            c = w[name]
            s.add(
                m.Message(
                    conversation_id=c.id,
                    inbox_id=c.inbox_id,
                    direction=direction,
                    author_user_id=author.id if author else None,
                    body="x",
                    created_at=when,
                )
            )

        msg("C0", "out", at(20, 58, 30), op1)  # FRT 30 (09 Mar)
        msg("C1", "in", at(21, 4, 50))  # before the wait began: the bot's
        msg("C1", "out", at(21, 5, 5))  # automated (no author): not a reply
        msg("C1", "out", at(21, 5, 20), op1)  # FRT 20
        msg("C1", "in", at(21, 6, 0))
        msg("C1", "in", at(21, 6, 10))
        msg("C1", "note", at(21, 6, 20), op1)
        msg("C1", "out", at(21, 6, 40), op1)  # reply 40
        msg("C1", "in", at(21, 7, 0))
        msg("C1", "out", at(21, 8, 30), op1)  # reply 90
        msg("C2", "out", at(21, 13, 20), op2)  # FRT 80
        msg("C2", "in", at(21, 14, 0))
        msg("C2", "out", at(21, 14, 30), op2)  # reply 30
        msg("C3", "out", at(21, 23, 20), op1)  # FRT 200
        msg("C5", "out", at(21, 7, 30), op3)  # FRT 30
        msg("C6", "out", at(21, 4, 40), op1)  # FRT 40
        msg("V1", "out", at(21, 30, 20), op2)  # a call: not in chat metrics

        support = m.Scenario(key="support", name="Support bot", draft=SUPPORT_DOC)
        survey = m.Scenario(key="survey", name="After-chat survey", draft=SURVEY_DOC)
        s.add_all([support, survey])
        await s.flush()
        r1 = m.ScenarioRevision(scenario_id=support.id, number=1, content_hash="a", document=SUPPORT_DOC)
        r2 = m.ScenarioRevision(scenario_id=support.id, number=2, content_hash="b", document=SUPPORT_DOC)
        rs = m.ScenarioRevision(scenario_id=survey.id, number=1, content_hash="c", document=SURVEY_DOC)
        s.add_all([r1, r2, rs])
        await s.flush()
        support.active_revision_id = r1.id
        w.update(r1=r1, r2=r2, rs=rs, q1=q1, q2=q2, op1=op1, op2=op2, op3=op3, sup=sup, admin=admin)

        def steps(name: str, rev: m.ScenarioRevision, when: datetime, *pairs: str) -> None:
            c = w[name]
            for i, pair in enumerate(pairs):
                node, outcome = pair.split(" ")
                s.add(
                    m.BotStep(
                        revision_id=rev.id,
                        conversation_id=c.id,
                        channel=c.channel,
                        node=node,
                        outcome=outcome,
                        created_at=when + timedelta(seconds=i),
                    )
                )

        steps(
            "C1",
            r1,
            at(21, 4),
            "menu1 entered",
            "menu1 left:opt:agent",
            "ask_name entered",
            "ask_name invalid",
            "ask_name left:next",
            "handoff1 entered",
            "handoff1 left:queued",
        )
        steps(
            "C5",
            r1,
            at(21, 6),
            "menu1 entered",
            "menu1 left:opt:agent",
            "ask_name entered",
            "ask_name left:next",
            "handoff1 entered",
            "handoff1 left:queued",
        )
        steps(
            "C2",
            r2,
            at(21, 11),
            "menu1 entered",
            "menu1 left:opt:agent",
            "handoff1 entered",
            "handoff1 left:queued",
        )
        steps(
            "B1",
            r1,
            at(21, 10),
            "menu1 entered",
            "menu1 left:opt:faq",
            "faq_msg entered",
            "faq_msg left:next",
            "close1 entered",
            "close1 left:close",
        )
        steps("B2", r1, at(21, 14, 50), "menu1 entered")  # 00:14:50: the 00:00 interval
        steps("B2", r1, at(21, 16), "menu1 no_input")  # then the customer went quiet
        steps("B3", r1, at(21, 20), "menu1 entered", "menu1 left:opt:agent", "ask_name entered")
        steps("B4", r1, at(21, 40), "menu1 entered")
        steps("B5", r1, at(20, 55), "menu1 entered")  # 23:55 on 09 Mar …
        steps(
            "B5",
            r1,
            at(21, 1),
            "menu1 left:opt:faq",
            "faq_msg entered",
            "faq_msg left:next",
            "close1 entered",
            "close1 left:close",
        )  # fmt: skip  … contained after midnight
        steps("B6", r1, at(21, 30), "menu1 entered")
        s.add(
            m.BotSession(
                conversation_id=w["B4"].id,
                scenario_id=support.id,
                revision_id=r1.id,
                state={"node": "menu1"},
                status="running",
            )
        )

        def answer(name: str, node: str, variable: str, value: Any, when: datetime) -> None:
            s.add(
                m.SurveyAnswer(
                    conversation_id=w[name].id,
                    revision_id=rs.id,
                    node=node,
                    variable=variable,
                    value=value,
                    created_at=when,
                )
            )

        answer("C1", "q_csat", "csat", "5", at(21, 11))
        answer("C1", "q_nps", "nps", "10", at(21, 11, 10))
        answer("C1", "q_heard", "heard_from", ["web", "friend"], at(21, 11, 20))
        answer("C2", "q_csat", "csat", "3", at(21, 21))
        answer("C2", "q_nps", "nps", "7", at(21, 21, 10))
        answer("C2", "q_heard", "heard_from", ["web"], at(21, 21, 20))
        answer("C5", "q_csat", "csat", "4", at(21, 31))
        answer("C5", "q_nps", "nps", "3", at(21, 31, 10))
        answer("C5", "q_heard", "heard_from", ["tg"], at(21, 31, 20))
        answer("C6", "q_nps", "nps", "9", at(21, 9, 30))
        answer("C0", "q_nps", "nps", "0", at(20, 59))  # 09 Mar
        await s.flush()
        await rebuild_range(s, at(20, 0), at(22, 0))
    return w


async def _run(
    services: Services,
    who: m.User,
    key: str,
    *,
    day: date = DAY,
    grouping: Grouping = Grouping.DAY,
    extra: dict[str, object] | None = None,
    **filters: Any,
) -> ReportTable:
    params = FilterParams(since=day, until=day, grouping=grouping, **filters)
    async with services.db.transaction() as s:
        if extra is None:
            return await reports.run_params(s, f.who(who), key, params, NOW)
        config = await reports.get_config(s)
        scope = await reports.resolve_scope(s, f.who(who), params.resolve(config.tz, NOW), config, NOW)
        return await reports.get(key).run(s, dataclasses.replace(scope, extra=extra))


def _row(table: ReportTable, index: int = 0) -> dict[str, Any]:
    return list(table.as_dicts())[index]


@pytest.fixture
async def world(services: Services) -> dict[str, Any]:
    return await _world(services)


# --- chat metrics ------------------------------------------------------------------------------


async def test_chat_metrics_of_a_moscow_day_computed_by_hand(
    services: Services, world: dict[str, Any]
) -> None:
    t = await _run(services, world["admin"], "chat_metrics")
    assert len(t.rows) == 1
    day = _row(t)
    assert day["period"] == datetime(2026, 3, 10, tzinfo=MSK)
    # C1..C6 (C0 waited from 23:58 on 09 Mar; V1 is a call): 6 chats, 5 accepted (C4 abandoned)
    assert (day["conversations"], day["accepted"]) == (6, 5)
    # FRT 20 (C1), 80 (C2), 200 (C3), 30 (C5), 40 (C6) → 370 / 5
    assert (day["frt_avg"], day["frt_max"]) == (74.0, 200.0)
    # from accepting: C1 10, C2 50, C3 140, C5 20, C6 10 → 230 / 5
    assert day["frt_accept_avg"] == 46.0
    assert [day[f"frt_{n}"] for n in (30, 60, 180, 300)] == [2, 3, 4, 5]
    assert [day[f"frt_{n}_pct"] for n in (30, 60, 180, 300)] == [40.0, 60.0, 80.0, 100.0]
    # C1: its 00:04:50 message counts from the wait (00:05:00) → 20, then 40 and 90; C2: 30 → 180 / 4
    assert (day["replies"], day["reply_avg"]) == (4, 45.0)
    # operator: C1, C5, C6; timeout: C3; customer: C2, C4
    assert (day["closed_operator"], day["closed_timeout"], day["closed_customer"]) == (3, 1, 2)
    assert t.totals is not None and t.totals[1:4] == [6, 5, 74.0]


async def test_chat_metrics_by_interval_split_at_the_quarter_hour(
    services: Services, world: dict[str, Any]
) -> None:
    t = await _run(services, world["admin"], "chat_metrics", grouping=Grouping.INTERVAL)
    first, second = list(t.as_dicts())
    assert first["period"] == datetime(2026, 3, 10, 0, 0, tzinfo=MSK)
    # 00:00–00:15: C1, C2, C5, C6 → FRT 20, 80, 30, 40 = 170 / 4
    assert (first["conversations"], first["frt_avg"], first["frt_max"]) == (4, 42.5, 80.0)
    # 00:15–00:30: C3 (FRT 200), C4 (abandoned)
    assert second["period"] == datetime(2026, 3, 10, 0, 15, tzinfo=MSK)
    assert (second["conversations"], second["accepted"], second["frt_avg"]) == (2, 1, 200.0)


async def test_the_chat_that_waited_before_midnight_is_the_previous_days(
    services: Services, world: dict[str, Any]
) -> None:
    t = await _run(services, world["admin"], "chat_metrics", day=EVE)
    eve = _row(t)
    # C0: waited from 23:58 on 09 Mar, closed after midnight; FRT exactly 30 s is "≤ 30"
    assert (eve["conversations"], eve["frt_avg"], eve["frt_30"], eve["closed_operator"]) == (1, 30.0, 1, 1)


async def test_chat_metrics_filters_and_supervisor_scope(services: Services, world: dict[str, Any]) -> None:
    mine = _row(await _run(services, world["sup"], "chat_metrics"))
    # q1 only: C1, C2, C3, C4, C6 → FRT 20, 80, 200, 40 = 340 / 4
    assert (mine["conversations"], mine["accepted"], mine["frt_avg"]) == (5, 4, 85.0)
    assert (mine["closed_operator"], mine["closed_timeout"], mine["closed_customer"]) == (2, 1, 2)
    theirs = await _run(services, world["sup"], "chat_metrics", queue_ids=(world["q2"].id,))
    assert theirs.rows == []
    op1 = _row(await _run(services, world["admin"], "chat_metrics", user_ids=(world["op1"].id,)))
    # C1, C3, C6 → 20 + 200 + 40 = 260 / 3
    assert (op1["conversations"], op1["frt_avg"]) == (3, 86.7)
    tg = _row(await _run(services, world["admin"], "chat_metrics", channels=("telegram",)))
    assert (tg["conversations"], tg["frt_avg"], tg["frt_30"]) == (1, 30.0, 1)
    web_inbox = await _run(services, world["admin"], "chat_metrics", inbox_ids=(world["C1"].inbox_id,))
    assert _row(web_inbox)["conversations"] == 5


# --- concurrency -------------------------------------------------------------------------------


async def test_concurrent_chats_per_operator(services: Services, world: dict[str, Any]) -> None:
    t = await _run(services, world["admin"], "chat_concurrency")
    rows = {r["operator"]: r for r in t.as_dicts()}
    # OP1 on 10 Mar: C0 21:00–21:02 (120 s), C6 21:04:30–21:09 (270 s), C1 21:05:10–21:10 (290 s),
    # C3 21:21–21:40 (1140 s). C6 and C1 overlap → peak 2. Chat-seconds 1820; busy seconds
    # 120 + 330 (21:04:30–21:10) + 1140 = 1590 → 1820 / 1590 = 1.14
    assert (rows["OP1"]["busy_seconds"], rows["OP1"]["concurrent_avg"], rows["OP1"]["concurrent_peak"]) == (
        1590.0,
        1.14,
        2,
    )
    # OP2: C2 21:12:30–21:20 (450 s; V1 is a call)
    assert (rows["OP2"]["busy_seconds"], rows["OP2"]["concurrent_avg"], rows["OP2"]["concurrent_peak"]) == (
        450.0,
        1.0,
        1,
    )
    assert rows["OP3"]["busy_seconds"] == 1370.0  # C5 21:07:10–21:30
    by_interval = await _run(services, world["sup"], "chat_concurrency", grouping=Grouping.INTERVAL)
    op1 = [r for r in by_interval.as_dicts() if r["operator"] == "OP1"]
    # 00:00: 680 chat-seconds over 450 busy; 00:15: C3 540 s; 00:30: C3 600 s
    assert [
        (r["period"].minute, r["busy_seconds"], r["concurrent_avg"], r["concurrent_peak"]) for r in op1
    ] == [
        (0, 450.0, 1.51, 2),
        (15, 540.0, 1.0, 1),
        (30, 600.0, 1.0, 1),
    ]
    assert {r["operator"] for r in by_interval.as_dicts()} == {"OP1", "OP2"}  # not the other group's OP3


# --- bot funnel --------------------------------------------------------------------------------


async def test_bot_funnel_per_revision_and_channel(services: Services, world: dict[str, Any]) -> None:
    t = await _run(services, world["admin"], "bot_funnel")
    rows = [
        (
            r["revision"],
            r["channel"],
            r["bot_started"],
            r["bot_handed_off"],
            r["bot_contained"],
            r["bot_dropped"],
            r["bot_running"],
        )
        for r in t.as_dicts()
    ]
    # r1 widget: C1 handed off, B1 contained, B2 + B3 dropped, B4 still in the bot
    # (B5 began at 23:55 on 09 Mar: the previous day's, though contained after midnight)
    # r1 telegram: C5 handed off, B6 dropped; r2 widget: C2 handed off
    assert rows == [
        (1, "telegram", 2, 1, 0, 1, 0),
        (1, "widget", 5, 1, 1, 2, 1),
        (2, "widget", 1, 1, 0, 0, 0),
    ]
    widget = _row(t, 1)
    assert (widget["bot_handed_off_pct"], widget["bot_contained_pct"], widget["bot_dropped_pct"]) == (
        20.0,
        20.0,
        40.0,
    )
    assert t.totals is not None and t.totals[3:] == [8, 3, 37.5, 1, 12.5, 3, 37.5, 0, 1]
    eve = await _run(services, world["admin"], "bot_funnel", day=EVE)
    assert [(r["bot_started"], r["bot_contained"]) for r in eve.as_dicts()] == [(1, 1)]
    mine = await _run(services, world["sup"], "bot_funnel")
    assert [(r["revision"], r["channel"], r["bot_started"]) for r in mine.as_dicts()] == [
        (1, "widget", 5),
        (2, "widget", 1),
    ]


async def test_bot_dropoff_per_node(services: Services, world: dict[str, Any]) -> None:
    t = await _run(services, world["admin"], "bot_dropoff", channels=("widget",))
    rows = {(r["revision"], r["node"]): r for r in t.as_dicts()}
    menu = rows[(1, "menu1")]
    # entered by C1, B1, B2, B3, B4; left by C1, B1, B3; B2 went quiet there and dropped
    assert (menu["node_entered"], menu["node_left"], menu["node_no_input"], menu["bot_dropped"]) == (
        5,
        3,
        1,
        1,
    )
    assert (menu["node_type"], menu["node_drop_pct"]) == ("menu", 20.0)
    ask = rows[(1, "ask_name")]
    # C1 (one invalid answer, then left), B3 (left the chat there)
    assert (
        ask["node_entered"],
        ask["node_left"],
        ask["node_invalid"],
        ask["bot_dropped"],
        ask["node_drop_pct"],
    ) == (
        2,
        1,
        1,
        1,
        50.0,
    )
    assert rows[(1, "close1")]["node_entered"] == 1  # B1 (B5 is 09 Mar's)
    assert next(iter(t.as_dicts()))["bot_dropped"] == 1  # most drops first
    assert sum(r["bot_dropped"] for r in t.as_dicts()) == 2


async def test_builder_node_stats_count_steps_like_the_report(
    services: Services, world: dict[str, Any]
) -> None:
    from bots import service

    async with services.db.transaction() as s:
        stats = await service.node_stats(s, f.who(world["admin"]), world["r1"].scenario_id, channel="widget")
    # every run of r1 on the widget, both days: B5 adds one pass through menu1 … close1
    assert (stats["menu1"]["entered"], stats["menu1"]["left"], stats["menu1"]["ports"]) == (
        6,
        4,
        {"opt:agent": 2, "opt:faq": 2},
    )
    assert stats["menu1"]["waiting"] == 1  # B4


def test_run_outcome_rules() -> None:
    t0 = at(21, 0)
    assert run_outcome(
        [("h", "entered"), ("h", "left:queued")], t0, enqueued_at=None, still_running=False
    ) == ("handed_off")
    # the scenario ran out and the runner queued the conversation
    assert run_outcome(
        [("m", "entered"), ("m", "left:next")], t0, enqueued_at=at(21, 1), still_running=False
    ) == ("handed_off")
    assert run_outcome([("m", "entered"), ("m", "left:next")], t0, enqueued_at=None, still_running=False) == (
        "contained"
    )
    # a CSAT survey after the talk: the earlier wait is not a hand-off
    assert run_outcome([("q", "entered")], t0, enqueued_at=at(20, 0), still_running=False) == "dropped"
    assert (
        run_outcome([("g", "entered"), ("g", "left:goto")], t0, enqueued_at=None, still_running=False)
        == "moved"
    )
    assert run_outcome([("q", "entered")], t0, enqueued_at=None, still_running=True) == "running"


# --- surveys, NPS, CSAT ------------------------------------------------------------------------


async def test_survey_results_per_question_and_option(services: Services, world: dict[str, Any]) -> None:
    t = await _run(services, world["admin"], "surveys")
    rows = [(r["question"], r["answer"], r["answers"], r["answers_pct"]) for r in t.as_dicts()]
    assert rows == [
        ("How did we do?", "OK", 1, 33.3),
        ("How did we do?", "Good", 1, 33.3),
        ("How did we do?", "Great", 1, 33.3),
        # 3 respondents, a multiple answer counts for every option picked
        ("Where did you hear of us?", "Website", 2, 66.7),
        ("Where did you hear of us?", "Telegram", 1, 33.3),
        ("Where did you hear of us?", "A friend", 1, 33.3),
        # 0..10 answers in score order (C0's "0" was on 09 Mar)
        ("How likely are you to recommend us, 0 to 10?", "3", 1, 25.0),
        ("How likely are you to recommend us, 0 to 10?", "7", 1, 25.0),
        ("How likely are you to recommend us, 0 to 10?", "9", 1, 25.0),
        ("How likely are you to recommend us, 0 to 10?", "10", 1, 25.0),
    ]
    assert t.chart is not None and t.chart.series == ("answers",)


async def test_nps_by_hand(services: Services, world: dict[str, Any]) -> None:
    (row,) = (await _run(services, world["admin"], "nps")).as_dicts()
    # 10 and 9 promoters, 7 passive, 3 detractor: (2 − 1) / 4 = 25
    assert (row["respondents"], row["promoters"], row["passives"], row["detractors"], row["nps"]) == (
        4,
        2,
        1,
        1,
        25.0,
    )
    (mine,) = (await _run(services, world["sup"], "nps")).as_dicts()
    assert (mine["respondents"], mine["nps"]) == (3, 66.7)  # q1: 10, 7, 9
    (eve,) = (await _run(services, world["admin"], "nps", day=EVE)).as_dicts()
    assert eve["nps"] == -100.0  # C0's 0


async def test_csat_by_operator_and_by_queue(services: Services, world: dict[str, Any]) -> None:
    ops = await _run(services, world["admin"], "csat_by_operator")
    # OP1: C1 5, C6 "4" → 2 of 2, mean 4.5 (C3's "great" is no rating); OP2: C2 3, V1 2 (a call);
    # OP3: C5 4. C0's 1 was on 09 Mar.
    assert [(r["name"], r["ratings"], r["satisfied"], r["csat"], r["csat_mean"]) for r in ops.as_dicts()] == [
        ("OP1", 2, 2, 100.0, 4.5),
        ("OP2", 2, 0, 0.0, 2.5),
        ("OP3", 1, 1, 100.0, 4.0),
    ]
    assert ops.totals == [None, 5, 3, 60.0, 3.6]
    queues = await _run(services, world["admin"], "csat_by_queue")
    assert [(r["name"], r["ratings"], r["csat"], r["csat_mean"]) for r in queues.as_dicts()] == [
        ("q1", 4, 50.0, 3.5),
        ("q2", 1, 100.0, 4.0),
    ]
    mine = await _run(services, world["sup"], "csat_by_queue")
    assert [r["name"] for r in mine.as_dicts()] == ["q1"]
    mine_ops = await _run(services, world["sup"], "csat_by_operator")
    assert [r["name"] for r in mine_ops.as_dicts()] == ["OP1", "OP2"]


async def test_raw_survey_answers_are_paginated_and_scoped(services: Services, world: dict[str, Any]) -> None:
    page = await _run(services, world["admin"], "survey_answers_raw", extra={"offset": 0, "limit": 4})
    assert page.total_rows == 10
    assert len(page.rows) == 4
    newest = _row(page)
    assert newest == {
        "answered_at": datetime(2026, 3, 10, 0, 31, 20, tzinfo=MSK),
        "conversation": world["C5"].id,
        "contact": "Ivan",
        "channel": "telegram",
        "queue": "q2",
        "operator": "OP3",
        "question": "Where did you hear of us?",
        "answer": "Telegram",
    }
    last = await _run(services, world["admin"], "survey_answers_raw", extra={"offset": 8, "limit": 4})
    assert [r["answer"] for r in last.as_dicts()] == ["Great", "9"]  # C1's first answer, then C6's
    head = await _run(services, world["admin"], "survey_answers_raw", extra={"limit": 0})
    assert (head.total_rows, head.rows) == (10, [])
    async with services.db.transaction() as s:
        config = await reports.get_config(s)
        params = FilterParams(since=DAY, until=DAY).resolve(config.tz, NOW)
        scope = await reports.resolve_scope(s, f.who(world["admin"]), params, config, NOW)
        streamed = [row async for row in stream_survey_answers_raw(s, scope)]
    everything = await _run(services, world["admin"], "survey_answers_raw", extra={"offset": 0, "limit": 100})
    assert streamed == everything.rows
    assert len(streamed) == 10
    mine = await _run(services, world["sup"], "survey_answers_raw")
    assert mine.total_rows == 7
    assert {r["queue"] for r in mine.as_dicts()} == {"q1"}


# --- the rollups ------------------------------------------------------------------------------


async def test_rollups_rebuild_idempotently_and_name_the_touched_intervals(
    services: Services, world: dict[str, Any]
) -> None:
    tables = (
        m.ReportChatInterval,
        m.ReportChatLoadInterval,
        m.ReportBotInterval,
        m.ReportBotNodeInterval,
        m.ReportSurveyInterval,
    )

    async def counts() -> list[int]:
        async with services.db.transaction() as s:
            return [int(await s.scalar(select(func.count()).select_from(t)) or 0) for t in tables]

    before = await counts()
    assert all(before)
    report = (await _run(services, world["admin"], "chat_metrics")).rows
    async with services.db.transaction() as s:
        await rebuild_range(s, at(20, 0), at(22, 0))
        await rebuild_range(s, at(21, 0), at(21, 15))
    assert await counts() == before
    assert (await _run(services, world["admin"], "chat_metrics")).rows == report
    async with services.db.transaction() as s:
        changes = Changes(conversation_ids={world["C3"].id, world["B5"].id})
        assert await ROLLUPS["chat"].touched(s, changes) == {at(21, 15)}
        # C3 was with OP1 from 21:21 to 21:40
        assert await ROLLUPS["chat_load"].touched(s, changes) == {at(21, 15), at(21, 30)}
        assert await ROLLUPS["bot_funnel"].touched(s, changes) == {at(20, 45)}  # B5's run began 23:55
        assert await ROLLUPS["surveys"].touched(s, Changes(conversation_ids={world["C1"].id})) == {at(21, 0)}


async def test_a_late_rating_lands_in_the_contacts_interval(
    services: Services, world: dict[str, Any]
) -> None:
    """A rating given after midnight for a chat that waited before it counts on the chat's day."""
    async with services.db.transaction() as s:
        c0 = await s.get(m.Conversation, world["C0"].id)
        assert c0 is not None
        c0.variables = {"csat": 5}
        changes = Changes(conversation_ids={c0.id})
        await rebuild_touched(s, changes)
    eve = await _run(services, world["admin"], "csat_by_queue", day=EVE)
    assert [(r["name"], r["ratings"], r["csat_mean"]) for r in eve.as_dicts()] == [("q1", 1, 5.0)]
    unit = chat_times(at(21, 0), [("in", None, at(21, 0, 5)), ("out", 7, at(21, 0, 35))])
    assert (unit.frt, unit.replies) == (35.0, [30.0])
    early = chat_times(
        at(21, 0), [("in", None, at(20, 59)), ("in", None, at(21, 0, 5)), ("out", 7, at(21, 0, 35))]
    )
    assert early.replies == [35.0]  # the message before the wait counts from its start
    assert load_of([(at(21, 0), at(21, 5)), (at(21, 5), at(21, 10))])[0] == 1  # back to back is not 2


MINE = (
    "chat_metrics",
    "chat_concurrency",
    "bot_funnel",
    "bot_dropoff",
    "surveys",
    "nps",
    "csat_by_operator",
    "csat_by_queue",
    "survey_answers_raw",
)


async def test_report_and_column_titles_are_in_russian(services: Services, world: dict[str, Any]) -> None:
    from omni.i18n import keyed

    for key in MINE:
        assert keyed("ru", f"rpt.{key}"), key
        table = await _run(services, world["admin"], key)
        for column in table.columns:
            assert keyed("ru", f"rpt.col.{column.key}"), column.key
        for note in table.notes:
            assert keyed("ru", note) != note
    assert (await _run(services, world["admin"], "chat_metrics")).to_json("ru")["columns"][3]["title"] == (
        "Средний первый ответ"
    )


async def test_a_real_chat_flow_reaches_the_chat_metrics(services: Services) -> None:
    """Messages, acceptance, closing and the rating as the product writes them (not hand-made rows)."""
    from omni.domain import conversations as conversations_
    from omni.domain import presence
    from omni.domain.conversations import InboundMessage
    from omni.domain.routing import do_route_pending

    async with services.db.transaction() as s:
        admin = await f.user(s, "adm", m.Role.ADMIN)
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow")
        alice = await f.user(s, "alice", display_name="Alice")
        code = await f.result_code(s, "resolved")
        q = await f.queue(s, "support", [alice], default_result_code_id=code.id)
        ib = await f.inbox(s, q)
        await presence.do_set_status(s, alice.id, await presence.status_by_code(s, "available"))

    async def inbound(body: str) -> int:
        async with services.db.transaction() as s:
            msg = InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value="cust", body=body)
            return (await conversations_.do_ingest_inbound(s, msg)).conversation.id

    cid = await inbound("hello")
    await do_route_pending(services.db)
    async with services.db.transaction() as s:
        offer = await s.scalar(
            select(m.Offer).where(m.Offer.conversation_id == cid, m.Offer.state == "pending")
        )
        assert offer is not None
        await conversations_.check_accept_offer(s, f.who(alice), offer.id)
        await conversations_.check_send_message(s, f.who(alice), cid, "Hi, how can I help?")
    assert await inbound("my order is late") == cid
    async with services.db.transaction() as s:
        await conversations_.check_send_message(s, f.who(alice), cid, "Let me check")
        await conversations_.check_end(s, f.who(alice), cid)
        await conversations_.check_close(s, f.who(alice), cid, code.id)
        assert await conversations_.do_record_rating(s, cid, 5)
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, cid)
        sent = list(
            await s.scalars(select(m.Message).where(m.Message.conversation_id == cid).order_by(m.Message.id))
        )
        changes = Changes(conversation_ids={cid})
        await rebuild_touched(s, changes)  # what the rollup driver does for the changed conversation
    assert conv.first_enqueued_at is not None and conv.accepted_at is not None
    replies = [x for x in sent if x.direction == "out" and x.author_user_id == alice.id]
    asked = next(x for x in sent if x.direction == "in" and x.body == "my order is late")
    frt = (replies[0].created_at - conv.first_enqueued_at).total_seconds()
    reply = (replies[1].created_at - asked.created_at).total_seconds()
    hello = next(x for x in sent if x.direction == "in" and x.body == "hello")
    first_pair = (replies[0].created_at - max(hello.created_at, conv.first_enqueued_at)).total_seconds()
    now = datetime.now(UTC)
    async with services.db.transaction() as s:
        day = next(
            iter((await reports.run_params(s, f.who(admin), "chat_metrics", FilterParams(), now)).as_dicts())
        )
        ops = await reports.run_params(s, f.who(admin), "csat_by_operator", FilterParams(), now)
        load = await reports.run_params(s, f.who(admin), "chat_concurrency", FilterParams(), now)
    # "hello" opened the chat: it counts from the start of the wait, so the first reply answers it
    assert (day["conversations"], day["accepted"], day["closed_operator"], day["replies"]) == (1, 1, 1, 2)
    assert day["frt_avg"] == round(frt, 1)
    assert day["reply_avg"] == round((first_pair + reply) / 2, 1)
    assert [(r["name"], r["ratings"], r["csat"]) for r in ops.as_dicts()] == [("Alice", 1, 100.0)]
    assert [(r["operator"], r["concurrent_peak"]) for r in load.as_dicts()] == [("Alice", 1)]


async def test_a_real_bot_run_reaches_the_funnel_and_the_drop_off(live_server: LiveServer) -> None:
    """Runs as the bot runner records them: one visitor reaches an operator, one leaves at the menu."""
    from omni.domain import conversations as conversations_
    from tests.bots.test_runner import _setup
    from tests.channels.widget.test_widget_channel import Visitor
    from tests.helpers import until

    services = live_server.services
    ctx = await _setup(live_server)
    handed, left = Visitor(live_server.url), Visitor(live_server.url)
    try:
        await handed.connect(inbox=ctx["token"])
        first = await handed.send("hello", "a-1")
        await until(lambda: len(handed.messages) >= 1, 10)
        await handed.send("Technical", "a-2")
        await until(lambda: len(handed.messages) >= 2, 10)
        await handed.send("42", "a-3")
        await left.connect(inbox=ctx["token"])
        gone = await left.send("hello", "b-1")
        await until(lambda: len(left.messages) >= 1, 10)
    finally:
        await handed.sio.disconnect()
        await left.sio.disconnect()
    async with services.db.transaction() as s:
        assert (await s.get_one(m.BotSession, first["conversation_id"])).status == "handed_off"
        await conversations_.do_customer_left(s, gone["conversation_id"])
    async with services.db.transaction() as s:
        changes = Changes(conversation_ids={first["conversation_id"], gone["conversation_id"]})
        await rebuild_touched(s, changes)
        admin = await s.scalar(select(m.User).where(m.User.username == "boss"))
        assert admin is not None
        now = datetime.now(UTC)
        funnel = await reports.run_params(s, f.who(admin), "bot_funnel", FilterParams(), now)
        nodes = await reports.run_params(s, f.who(admin), "bot_dropoff", FilterParams(), now)
    (row,) = funnel.as_dicts()
    assert (row["scenario"], row["revision"], row["channel"]) == ("Front desk", 1, "widget")
    assert (row["bot_started"], row["bot_handed_off"], row["bot_dropped"], row["bot_contained"]) == (
        2,
        1,
        1,
        0,
    )
    by_node = {r["node"]: r for r in nodes.as_dicts()}
    assert (by_node["hello"]["node_entered"], by_node["hello"]["bot_dropped"]) == (2, 1)
    assert (by_node["order"]["node_entered"], by_node["order"]["bot_dropped"]) == (1, 0)
    assert by_node["handoff"]["node_left"] == 1


async def test_the_same_figures_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    """Embedded installs run on SQLite: the rollups and reports give the hand-computed figures there too."""
    from omni.services import build_services

    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}", redis=False, data_dir=tmp_path)
    copy_sqlite(sqlite_template, tmp_path, "r.sqlite3")
    svc = build_services(settings, run_background=False)
    await svc.start()
    try:
        w = await _world(svc)
        day = _row(await _run(svc, w["admin"], "chat_metrics"))
        assert (day["conversations"], day["frt_avg"], day["replies"], day["reply_avg"]) == (6, 74.0, 4, 45.0)
        op1 = {r["operator"]: r for r in (await _run(svc, w["admin"], "chat_concurrency")).as_dicts()}["OP1"]
        assert (op1["busy_seconds"], op1["concurrent_avg"], op1["concurrent_peak"]) == (1590.0, 1.14, 2)
        funnel = (await _run(svc, w["admin"], "bot_funnel")).totals
        assert funnel is not None and funnel[3:7] == [8, 3, 37.5, 1]
        async with svc.db.transaction() as s:
            two = FilterParams(since=EVE, until=DAY, grouping=Grouping.DAY)
            days = await reports.run_params(s, f.who(w["admin"]), "chat_metrics", two, NOW)
        assert [(r["period"].day, r["conversations"]) for r in days.as_dicts()] == [(9, 1), (10, 6)]
        (nps_row,) = (await _run(svc, w["sup"], "nps")).as_dicts()
        assert nps_row["nps"] == 66.7
        raw = await _run(svc, w["admin"], "survey_answers_raw", extra={"offset": 8, "limit": 4})
        assert (raw.total_rows, [r["answer"] for r in raw.as_dicts()]) == (10, ["Great", "9"])
    finally:
        await svc.stop()


async def test_rest_gives_a_supervisor_their_queues_chat_metrics(live_server: LiveServer) -> None:
    import httpx

    from tests.helpers import HTTP_TIMEOUT

    w = await _world(live_server.services)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": "sup", "password": f.PASSWORD})
        assert resp.status_code == 200, resp.text
        resp = await client.get(
            "/api/v1/reports/chat_metrics", params={"since": "2026-03-10", "until": "2026-03-10"}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        row = dict(zip([c["key"] for c in body["columns"]], body["rows"][0], strict=True))
        assert (row["period"], row["conversations"], row["frt_avg"]) == ("2026-03-10T00:00:00+03:00", 5, 85.0)
        other = await client.get(
            "/api/v1/reports/csat_by_queue",
            params={"since": "2026-03-10", "until": "2026-03-10", "queue": w["q2"].id},
        )
        assert (other.status_code, other.json()["rows"]) == (200, [])
        page = await client.get(
            "/api/v1/reports/survey_answers_raw",
            params={"since": "2026-03-10", "until": "2026-03-10", "offset": 5, "limit": 4},
        )
        assert page.status_code == 200, page.text
        # the supervisor's 7 answers (q1), newest first: 6th and 7th are C1's first and C6's
        assert (page.json()["total_rows"], [r[-1] for r in page.json()["rows"]]) == (7, ["Great", "9"])
        # regression: cells went out as floats ("conversation": 7.0) once the schema had no int
        assert [r[1] for r in page.json()["rows"]] == [w["C1"].id, w["C6"].id]
        assert all(type(r[1]) is int for r in page.json()["rows"])
        assert type(row["conversations"]) is int
    assert reports.get("survey_answers_raw").stream is not None  # exports stream every answer


async def test_two_days_are_summed_per_local_day_in_the_database(
    services: Services, world: dict[str, Any]
) -> None:
    params = FilterParams(since=EVE, until=DAY, grouping=Grouping.DAY)
    async with services.db.transaction() as s:
        metrics = await reports.run_params(s, f.who(world["admin"]), "chat_metrics", params, NOW)
        load = await reports.run_params(s, f.who(world["admin"]), "chat_concurrency", params, NOW)
        weekly = await reports.run_params(
            s, f.who(world["admin"]), "chat_metrics", dataclasses.replace(params, grouping=Grouping.WEEK), NOW
        )
    assert [(r["period"].day, r["conversations"], r["frt_avg"]) for r in metrics.as_dicts()] == [
        (9, 1, 30.0),
        (10, 6, 74.0),
    ]
    assert metrics.totals is not None and metrics.totals[1] == 7
    op1 = [
        (r["period"].day, r["busy_seconds"], r["concurrent_peak"])
        for r in load.as_dicts()
        if r["operator"] == "OP1"
    ]
    assert op1 == [(9, 110.0, 1), (10, 1590.0, 2)]  # C0 from 23:58:10 to midnight on the 9th
    # 9 and 10 March 2026 are a Monday and a Tuesday: one week
    assert [(r["period"].date(), r["conversations"]) for r in weekly.as_dicts()] == [(date(2026, 3, 9), 7)]
