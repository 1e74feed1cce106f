"""Contact history: the search filters, the scope and the pages, on a hand-built fixture.

The install runs in Moscow (UTC+3). Times below are UTC; the day asked for is 10 March 2026 in
Moscow, i.e. [9 March 21:00 UTC, 10 March 21:00 UTC): a contact at 20:50 UTC on the 9th (23:50
in Moscow) and one at 21:05 UTC on the 10th (00:05 on the 11th) are outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from omni.db import Database
from omni.db import models as m
from omni.domain import reports
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput
from omni.domain.reports import FilterParams
from omni.domain.reports.config import check_update_config
from omni.domain.reports.table import ReportTable
from omni.services import Services
from tests import factories as f

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
DAY = date(2026, 3, 10)


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=UTC)


@dataclass
class World:
    admin: Principal
    sup: Principal
    ids: dict[str, int]


async def _contact(
    s: Any, name: str, phone: str | None = None, identity: tuple[str, str] | None = None
) -> int:
    c = m.Contact(name=name, phone=phone)
    s.add(c)
    await s.flush()
    if identity:
        s.add(m.ContactIdentity(contact_id=c.id, kind=identity[0], value=identity[1]))
    return c.id


async def _conv(s: Any, **kw: Any) -> int:
    call = kw.pop("call", None)
    kw.setdefault("medium", "voice" if kw["channel"] == "voice" else "chat")
    conv = m.Conversation(**kw)
    s.add(conv)
    await s.flush()
    if call is not None:
        s.add(m.Call(conversation_id=conv.id, linkedid=f"l{conv.id}", **call))
        await s.flush()
    return conv.id


@pytest.fixture
async def world(services: Services) -> World:
    return await build_world(services.db)


async def build_world(db: Database) -> World:
    """Moscow time; group A (queue QA, op_a, supervisor ``sup``) and group B (QB, op_b)."""
    async with db.transaction() as s:
        admin = await f.user(s, "adm", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        sup2 = await f.user(s, "sup2", m.Role.SUPERVISOR)
        op_a = await f.user(s, "op_a", display_name="Olga A")
        op_b = await f.user(s, "op_b", display_name="Oleg B")
        g_a, g_b = m.Group(name="A"), m.Group(name="B")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=op_a.id),
                m.GroupMember(group_id=g_b.id, user_id=op_b.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
                m.SupervisorScope(supervisor_id=sup2.id, group_id=g_a.id),
            ]
        )
        q_a = await f.queue(s, "QA", [op_a], group_id=g_a.id)
        q_b = await f.queue(s, "QB", [op_b], group_id=g_b.id)
        voice_a = await f.inbox(s, q_a, "voice", name="Line A")
        tg_a = await f.inbox(s, q_a, "telegram", name="Bot A")
        web_a = await f.inbox(s, q_a, "widget", name="Site A")
        voice_b = await f.inbox(s, q_b, "voice", name="Line B")
        sale = await f.result_code(s, "sale", name="Sale", name_ru="Продажа")
        support = await f.result_code(s, "support", name="Support")
        await check_update_config(s, f.who(admin), timezone="Europe/Moscow")
        ivan = await _contact(s, "Иван Петров", "+79161234567")
        anna = await _contact(s, "Anna Smith", None, ("telegram", "anna_tg"))
        petr = await _contact(s, "Петр Иванов", "+79165550011")
        boris = await _contact(s, "Boris", "+79160000000")
        closed = m.ConversationStatus.CLOSED
        ids = {
            "sup": sup.id,
            "sup2": sup2.id,
            "op_a": op_a.id,
            "op_b": op_b.id,
            "q_a": q_a.id,
            "q_b": q_b.id,
            "sale": sale.id,
            "g_a": g_a.id,
            # 00:10 on the 10th in Moscow: answered after 20 s, 95.5 s of talk, closed 130 s after the answer.
            "c1": await _conv(
                s,
                contact_id=ivan,
                inbox_id=voice_a.id,
                channel="voice",
                status=closed,
                queue_id=q_a.id,
                assigned_user_id=op_a.id,
                result_code_id=sale.id,
                created_at=at(9, 21, 10),
                first_enqueued_at=at(9, 21, 10, 5),
                accepted_at=at(9, 21, 10, 25),
                wrap_up_at=at(9, 21, 12, 5),
                closed_at=at(9, 21, 12, 35),
                call={"talk_seconds": 95.5, "recording_path": "c1.wav", "caller_number": "+79161234567"},
            ),
            # A chat: 10 s wait, 300 s accept→wrap-up less 30 s hold = 270 s talk, 360 s handling.
            "c2": await _conv(
                s,
                contact_id=anna,
                inbox_id=tg_a.id,
                channel="telegram",
                status=closed,
                queue_id=q_a.id,
                assigned_user_id=op_a.id,
                result_code_id=support.id,
                created_at=at(10, 8, 0),
                first_enqueued_at=at(10, 8, 0),
                accepted_at=at(10, 8, 0, 10),
                wrap_up_at=at(10, 8, 5, 10),
                closed_at=at(10, 8, 6, 10),
                hold_seconds=30,
            ),
            # 23:59 in Moscow: abandoned after 40 s of waiting.
            "c3": await _conv(
                s,
                contact_id=petr,
                inbox_id=web_a.id,
                channel="widget",
                status=m.ConversationStatus.ABANDONED,
                queue_id=q_a.id,
                created_at=at(10, 20, 59),
                first_enqueued_at=at(10, 20, 59),
                closed_at=at(10, 20, 59, 40),
            ),
            # Another group's call.
            "c4": await _conv(
                s,
                contact_id=boris,
                inbox_id=voice_b.id,
                channel="voice",
                status=closed,
                queue_id=q_b.id,
                assigned_user_id=op_b.id,
                created_at=at(10, 9, 0),
                first_enqueued_at=at(10, 9, 0),
                accepted_at=at(10, 9, 0, 5),
                closed_at=at(10, 9, 4, 0),
                call={"talk_seconds": 200.0},
            ),
            # Outside the local day on both sides.
            "c5": await _conv(
                s, contact_id=ivan, channel="voice", queue_id=q_a.id, status=closed, created_at=at(9, 20, 50)
            ),
            "c6": await _conv(
                s, contact_id=ivan, channel="voice", queue_id=q_a.id, status=closed, created_at=at(10, 21, 5)
            ),
        }
        return World(f.who(admin), f.who(sup), ids)


async def history(services: Services, who: Principal, **kw: Any) -> ReportTable:
    params = FilterParams(since=DAY, until=DAY, **kw)
    async with services.db.transaction() as s:
        return await reports.run_params(s, who, "contact_history", params, NOW)


def ids_of(table: ReportTable) -> list[Any]:
    return table.column("conversation_id")


async def test_the_local_day_newest_first_with_every_column(services: Services, world: World) -> None:
    w = world.ids
    table = await history(services, world.admin)
    assert ids_of(table) == [w["c3"], w["c4"], w["c2"], w["c1"]]
    assert table.total_rows == 4
    rows = {r["conversation_id"]: r for r in table.as_dicts()}
    c1 = rows[w["c1"]]
    assert c1["started"] == datetime(2026, 3, 10, 0, 10, tzinfo=MSK)
    assert c1["started"].utcoffset() == timedelta(hours=3)  # type: ignore[union-attr]
    assert (c1["channel"], c1["inbox"], c1["queue"], c1["operator"]) == ("Phone", "Line A", "QA", "Olga A")
    assert (c1["contact"], c1["phone"], c1["result_code"]) == ("Иван Петров", "+79161234567", "Sale")
    assert (c1["wait"], c1["talk"], c1["handle"], c1["recording"]) == (20.0, 95.5, 130.0, True)
    c2 = rows[w["c2"]]
    assert (c2["phone"], c2["wait"], c2["talk"], c2["handle"], c2["recording"]) == (
        "anna_tg",
        10.0,
        270.0,
        360.0,
        False,
    )
    c3 = rows[w["c3"]]
    assert (c3["operator"], c3["wait"], c3["talk"], c3["handle"], c3["result_code"]) == (
        None,
        40.0,
        None,
        None,
        None,
    )
    assert c3["status"] == "Abandoned"


async def test_result_codes_statuses_and_channels_in_the_readers_language(
    services: Services, world: World
) -> None:
    from dataclasses import replace

    table = await history(services, replace(world.admin, language="ru"))
    c1 = next(r for r in table.as_dicts() if r["conversation_id"] == world.ids["c1"])
    assert c1["result_code"] == "Продажа"
    assert c1["status"] != "closed" and c1["status"]


async def test_search_by_name_identity_and_phone_digits(services: Services, world: World) -> None:
    w = world.ids
    assert set(ids_of(await history(services, world.admin, q="Иван"))) == {w["c1"], w["c3"]}
    assert ids_of(await history(services, world.admin, q="anna")) == [w["c2"]]
    assert ids_of(await history(services, world.admin, q="ANNA_TG")) == [w["c2"]]
    # Digits match whatever the punctuation typed.
    assert ids_of(await history(services, world.admin, q="916 123-45")) == [w["c1"]]
    assert set(ids_of(await history(services, world.admin, q="+7 916"))) == {w["c1"], w["c3"], w["c4"]}
    # LIKE wildcards are literal characters, not patterns.
    assert ids_of(await history(services, world.admin, q="%")) == []


async def test_duration_operator_result_code_and_channel_filters(services: Services, world: World) -> None:
    w = world.ids
    assert ids_of(await history(services, world.admin, min_duration=100)) == [w["c4"], w["c2"]]
    assert ids_of(await history(services, world.admin, min_duration=100, max_duration=250)) == [w["c4"]]
    # Unanswered contacts count as 0 s of talk.
    assert ids_of(await history(services, world.admin, max_duration=100)) == [w["c3"], w["c1"]]
    assert ids_of(await history(services, world.admin, user_ids=(w["op_a"],))) == [w["c2"], w["c1"]]
    assert ids_of(await history(services, world.admin, result_code_ids=(w["sale"],))) == [w["c1"]]
    assert ids_of(await history(services, world.admin, channels=("telegram",))) == [w["c2"]]
    assert ids_of(await history(services, world.admin, group_ids=(w["g_a"],))) == [w["c3"], w["c2"], w["c1"]]


async def test_a_supervisor_does_not_see_another_groups_contacts(services: Services, world: World) -> None:
    w = world.ids
    table = await history(services, world.sup)
    assert ids_of(table) == [w["c3"], w["c2"], w["c1"]]
    assert table.total_rows == 3
    assert ids_of(await history(services, world.sup, queue_ids=(w["q_b"],))) == []
    assert ids_of(await history(services, world.sup, q="Boris")) == []
    assert ids_of(await history(services, world.sup, user_ids=(w["op_b"],))) == []


async def test_pages_keep_the_total_and_the_order(services: Services, world: World) -> None:
    w = world.ids
    first = await history(services, world.admin, limit=2)
    second = await history(services, world.admin, limit=2, offset=2)
    beyond = await history(services, world.admin, limit=2, offset=4)
    assert (ids_of(first), first.total_rows) == ([w["c3"], w["c4"]], 4)
    assert (ids_of(second), second.total_rows) == ([w["c2"], w["c1"]], 4)
    assert (ids_of(beyond), beyond.total_rows) == ([], 4)


def test_search_filters_round_trip_through_json_and_old_filters_still_parse() -> None:
    params = FilterParams(since=DAY, q="иван", min_duration=5, max_duration=60, offset=50, limit=25)
    assert FilterParams.from_json(params.to_json()) == params
    old = {"preset": "yesterday", "queue_ids": [3]}
    assert FilterParams.from_json(old) == FilterParams(preset=reports.Preset.YESTERDAY, queue_ids=(3,))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"min_duration": 60, "max_duration": 10}, "max_duration"),
        ({"min_duration": -1}, "min_duration"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"q": "x" * 101}, "q"),
    ],
)
def test_bad_search_filters_are_refused_with_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        FilterParams(**kw).resolve(UTC, NOW)
    assert exc.value.field == field
