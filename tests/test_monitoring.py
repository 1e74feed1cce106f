"""Supervisor monitoring: KPI numbers on hand-computed data, scope, and the supervisor actions
(status with a reason, message, whisper, take over) over real Socket.IO."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import socketio
from sqlalchemy import select

from omni.db import models as m
from omni.domain import labels, monitoring
from omni.domain.auth import Principal
from omni.services import Services
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import LiveServer
from tests.helpers import until
from tests.test_realtime import OperatorClient, token_for

S = m.ConversationStatus
# A fixed "now" at midday, so every seeded timestamp below falls on the same UTC day.
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


async def _conv(
    s: Any,
    contact: m.Contact,
    queue: m.Queue,
    status: str,
    *,
    enqueued: float,
    accepted: float | None = None,
    wrap_up: float | None = None,
    closed: float | None = None,
    hold: int = 0,
    user: m.User | None = None,
) -> m.Conversation:
    conv = m.Conversation(
        contact_id=contact.id,
        queue_id=queue.id,
        channel="api",
        medium="chat",
        status=status,
        created_at=ago(enqueued),
        enqueued_at=ago(enqueued),
        first_enqueued_at=ago(enqueued),
        accepted_at=ago(accepted) if accepted is not None else None,
        wrap_up_at=ago(wrap_up) if wrap_up is not None else None,
        closed_at=ago(closed) if closed is not None else None,
        hold_seconds=hold,
        assigned_user_id=user.id if user else None,
        extra_queue_ids=[],
        variables={},
    )
    s.add(conv)
    await s.flush()
    return conv


@pytest.fixture
async def kpi_world(services: Services) -> dict[str, Any]:
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
        q_a = await f.queue(s, "QA", [op_a], group_id=g_a.id, sla_seconds=20)
        q_b = await f.queue(s, "QB", [op_b], group_id=g_b.id)
        who = m.Contact(name="c", custom_fields={}, tags=[])
        s.add(who)
        await s.flush()
        # 1: answered after 10 s; talk 240 + hold 60 + wrap-up 30 = 330 s handle
        await _conv(
            s, who, q_a, S.CLOSED, enqueued=3600, accepted=3590, wrap_up=3290, closed=3260, hold=60, user=op_a
        )
        # 2: answered after 30 s (outside the SLA); talk 180 + wrap-up 30 = 210 s handle
        await _conv(s, who, q_a, S.CLOSED, enqueued=1800, accepted=1770, wrap_up=1590, closed=1560, user=op_a)
        # 3: answered after exactly 20 s (within: "answered within T"), still active
        await _conv(s, who, q_a, S.ACTIVE, enqueued=600, accepted=580, user=op_a)
        # 4: answered after 6 s, in wrap-up
        await _conv(s, who, q_a, S.WRAP_UP, enqueued=300, accepted=294, wrap_up=100, user=op_a)
        # 5: left after 3 s: a short abandon, not offered
        await _conv(s, who, q_a, S.ABANDONED, enqueued=500, closed=497)
        # 6: left after 40 s
        await _conv(s, who, q_a, S.ABANDONED, enqueued=400, closed=360)
        # 7: nobody answered (queue timeout)
        await _conv(s, who, q_a, S.MISSED, enqueued=1000, closed=700)
        # 8, 9: waiting now for 50 s and 10 s
        await _conv(s, who, q_a, S.QUEUED, enqueued=50)
        await _conv(s, who, q_a, S.OFFERED, enqueued=10)
        # 10: yesterday: in no number of today
        await _conv(
            s,
            who,
            q_a,
            S.CLOSED,
            enqueued=13 * 3600,
            accepted=13 * 3600 - 1,
            wrap_up=13 * 3590,
            closed=13 * 3580,
            user=op_a,
        )
        # queue B: out of the supervisor's scope
        await _conv(s, who, q_b, S.QUEUED, enqueued=900)
        lunch = m.OperatorStatus(
            code="lunch",
            name="Lunch",
            name_ru="Обед",
            colour="#795548",
            kind="pause",
            selectable=True,
            max_duration_seconds=3600,
        )
        s.add(lunch)
        await s.flush()
        s.add(
            m.OperatorPresence(
                user_id=op_a.id,
                status_id=lunch.id,
                since=ago(4000),
                reason="lunch",
                effective_code="talking",
                effective_since=ago(600),
                idle_since=ago(4000),
                connections=1,
                over_limit_flagged=False,
            )
        )
        return {
            "sup": Principal.of(sup),
            "admin": Principal(id=0, username="root", role=m.Role.ADMIN),
            "q_a": q_a.id,
            "q_b": q_b.id,
            "op_a": op_a.id,
            "op_b": op_b.id,
        }


async def test_queue_kpis_match_hand_computed_values(services: Services, kpi_world: dict[str, Any]) -> None:
    async with services.db.transaction() as s:
        stats = await monitoring.queue_stats(s, kpi_world["sup"], NOW)
    assert [q["id"] for q in stats] == [kpi_world["q_a"]], "the supervisor of group A sees queue A only"
    q = stats[0]
    assert q["waiting"] == 2
    assert q["longest_wait_seconds"] == 50.0
    assert q["longest_wait_since"] == ago(50).isoformat()
    assert q["thresholds"] == {"amber": 20, "red": 40}
    assert q["longest_wait_level"] == "red"  # 50 s >= 2 x 20 s
    assert q["in_service"] == 2  # active + wrap-up
    assert q["answered_today"] == 4  # waits 10, 30, 20, 6
    assert q["answered_in_sla_today"] == 3  # 10, 20, 6 (<= 20 s)
    assert q["abandoned_today"] == 2 and q["abandoned_short_today"] == 1
    assert q["missed_today"] == 1
    assert q["offered_today"] == 6  # 4 answered + 1 abandoned (not short) + 1 missed
    assert q["service_level_pct"] == 50.0  # 3 / 6
    assert q["asa_seconds"] == 16.5  # (10 + 30 + 20 + 6) / 4
    assert q["closed_today"] == 2
    assert q["aht_seconds"] == 270.0  # (330 + 210) / 2
    assert (q["avg_talk_seconds"], q["avg_hold_seconds"], q["avg_wrap_up_seconds"]) == (210.0, 30.0, 30.0)


async def test_wait_colour_thresholds() -> None:
    assert [monitoring.wait_level(s, 20) for s in (0, 19.9, 20, 39.9, 40, 600)] == [
        "green",
        "green",
        "amber",
        "amber",
        "red",
        "red",
    ]
    assert monitoring.day_start(NOW) == NOW.replace(hour=0)


async def test_admin_sees_every_queue_and_empty_ones_have_no_kpis(
    services: Services, kpi_world: dict[str, Any]
) -> None:
    async with services.db.transaction() as s:
        stats = await monitoring.queue_stats(s, kpi_world["admin"], NOW)
    by_id = {q["id"]: q for q in stats}
    assert set(by_id) == {kpi_world["q_a"], kpi_world["q_b"]}
    b = by_id[kpi_world["q_b"]]
    assert (b["waiting"], b["longest_wait_level"], b["service_level_pct"], b["asa_seconds"]) == (
        1,
        "red",
        None,
        None,
    )


async def test_operator_rows(services: Services, kpi_world: dict[str, Any]) -> None:
    async with services.db.transaction() as s:
        rows = await monitoring.operator_rows(s, kpi_world["sup"], NOW)
    assert [r["id"] for r in rows] == [kpi_world["op_a"]], "operators of group B stay hidden"
    row = rows[0]
    assert (row["status"], row["status_name"], row["colour"], row["reason"]) == (
        "lunch",
        "Lunch",
        "#795548",
        "lunch",
    )
    assert row["time_in_status_seconds"] == 4000.0 and row["max_duration_seconds"] == 3600
    assert row["over_limit"] is True, "lunch is limited to 60 min"
    assert row["activity"] == "talking" and row["connected"] is True
    assert row["conversation_count"] == 2
    assert {c["status"] for c in row["conversations"]} == {"active", "wrap_up"}
    assert row["handled_today"] == 2, "yesterday's conversation does not count"


async def test_operator_rows_carry_each_conversations_labels(
    services: Services, kpi_world: dict[str, Any]
) -> None:
    """The monitoring page's label chips and filter read ``label_ids`` (docs/organise.md)."""
    async with services.db.transaction() as s:
        conv = await s.scalar(
            select(m.Conversation).where(
                m.Conversation.assigned_user_id == kpi_world["op_a"], m.Conversation.status == "active"
            )
        )
        assert conv is not None
        vip = m.Label(name="VIP", color="#e53935")
        s.add(vip)
        await s.flush()
        assert await labels.do_set_labels(s, conv, add=[vip.id])
        conv_id, vip_id = conv.id, vip.id
    async with services.db.transaction() as s:
        rows = await monitoring.operator_rows(s, kpi_world["sup"], NOW)
    found = {c["id"]: c["label_ids"] for c in rows[0]["conversations"]}
    assert found[conv_id] == [vip_id]
    assert [ids for cid, ids in found.items() if cid != conv_id] == [[]]


# --- over Socket.IO ---------------------------------------------------------------------------


class Supervisor(OperatorClient):
    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token, namespace="/supervisor")


@pytest.fixture
async def scoped(live_server: LiveServer) -> AsyncIterator[dict[str, Any]]:
    async with live_server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op_a = await f.user(s, "op_a")
        op_a2 = await f.user(s, "op_a2")
        op_b = await f.user(s, "op_b")
        g_a, g_b = m.Group(name="A"), m.Group(name="B")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=op_a.id),
                m.GroupMember(group_id=g_a.id, user_id=op_a2.id),
                m.GroupMember(group_id=g_b.id, user_id=op_b.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
            ]
        )
        q_a = await f.queue(s, "QA", [op_a], group_id=g_a.id, operator_timeout_seconds=60)
        q_b = await f.queue(s, "QB", [op_b], group_id=g_b.id, operator_timeout_seconds=60)
        ib_a = await f.inbox(s, q_a, channel="widget")
        ib_b = await f.inbox(s, q_b, channel="widget")
        ids: dict[str, Any] = {
            "sup": sup.id,
            "op_a": op_a.id,
            "op_a2": op_a2.id,
            "op_b": op_b.id,
            "q_a": q_a.id,
            "q_b": q_b.id,
            "widget_a": ib_a.public_token,
            "widget_b": ib_b.public_token,
        }
    for name in ("sup", "op_a", "op_a2", "op_b"):
        ids[f"{name}_token"] = await token_for(live_server, name)
    yield ids


async def _accepted_chat(
    server: LiveServer, op: OperatorClient, widget: str, text: str
) -> tuple[Visitor, int]:
    """A widget visitor writes; the operator accepts the offer."""
    visitor = Visitor(server.url)
    await visitor.connect(inbox=widget)
    ack = await visitor.send(text, "c-1")
    assert ack["ok"], ack
    offer = await op.wait_for("conversation.offered", id=ack["conversation_id"])
    accepted = await op.call("accept", {"offer_id": offer["data"]["offer_id"]})
    assert accepted["ok"], accepted
    conv_id: int = ack["conversation_id"]
    return visitor, conv_id


async def test_operator_cannot_open_the_supervisor_namespace(
    live_server: LiveServer, scoped: dict[str, Any]
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            live_server.url,
            wait_timeout=10,
            namespaces=["/supervisor"],
            auth={"token": scoped["op_a_token"]},
            transports=["websocket"],
        )


async def test_supervisor_is_scoped_to_their_groups(live_server: LiveServer, scoped: dict[str, Any]) -> None:
    op_b = OperatorClient(live_server.url, scoped["op_b_token"])
    await op_b.connect()
    sup = Supervisor(live_server.url, scoped["sup_token"])
    await sup.connect()
    try:
        _, conv_b = await _accepted_chat(live_server, op_b, scoped["widget_b"], "hello B")
        snap = await sup.call("monitor", {})
        assert snap["ok"], snap
        assert [q["id"] for q in snap["queues"]] == [scoped["q_a"]]
        assert {o["id"] for o in snap["operators"]} == {scoped["op_a"], scoped["op_a2"]}
        assert snap["last_seq"] > 0
        refused = [
            await sup.call(
                "set_operator_status", {"user_id": scoped["op_b"], "status": "pause", "reason": "x"}
            ),
            await sup.call("message_operator", {"user_id": scoped["op_b"], "text": "hi"}),
            await sup.call("whisper", {"conversation_id": conv_b, "text": "psst"}),
            await sup.call("take_over", {"conversation_id": conv_b}),
            await sup.call("take_over", {"conversation_id": 987654}),  # no such id: same answer
        ]
        assert [r.get("error") for r in refused] == ["forbidden"] * 5, refused
        async with live_server.services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_b)
            assert conv.assigned_user_id == scoped["op_b"]
            notes = await s.scalars(select(m.Message).where(m.Message.direction == "note"))
            assert notes.all() == []
        # A sentinel for op_b after the refusals: had any of them emitted, it would come first.
        sent = await op_b.call("send", {"conversation_id": conv_b, "body": "sentinel"})
        assert sent["ok"], sent
        await op_b.wait_for("message.created", body="sentinel")
        assert not any(e["type"] == "supervisor.message" for e in op_b.events)
        # In scope: a status change needs a reason, then lands with it.
        no_reason = await sup.call("set_operator_status", {"user_id": scoped["op_a"], "status": "pause"})
        assert no_reason["error"] == "invalid" and no_reason["field"] == "reason"
        ok = await sup.call(
            "set_operator_status", {"user_id": scoped["op_a"], "status": "pause", "reason": "coaching"}
        )
        assert ok["ok"] and ok["presence"]["status"] == "pause" and ok["presence"]["reason"] == "coaching"
        await sup.wait_for("presence.changed", user_id=scoped["op_a"], status="pause")
        async with live_server.services.db.transaction() as s:
            audit = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "supervisor.set_status"))
            assert audit is not None and audit.user_id == scoped["sup"]
    finally:
        await sup.sio.disconnect()
        await op_b.sio.disconnect()


async def test_message_reaches_only_that_operator(live_server: LiveServer, scoped: dict[str, Any]) -> None:
    op_a = OperatorClient(live_server.url, scoped["op_a_token"])
    op_a2 = OperatorClient(live_server.url, scoped["op_a2_token"])
    sup = Supervisor(live_server.url, scoped["sup_token"])
    for client in (op_a, op_a2, sup):
        await client.connect()
    try:
        empty = await sup.call("message_operator", {"user_id": scoped["op_a"], "text": "  "})
        assert empty["error"] == "invalid"
        ack = await sup.call("message_operator", {"user_id": scoped["op_a"], "text": "<b>call me</b>"})
        assert ack["ok"], ack
        got = await op_a.wait_for("supervisor.message", text="<b>call me</b>")
        assert got["user_id"] == scoped["op_a"]
        assert got["data"]["from_name"] == "sup" and got["data"]["from_user_id"] == scoped["sup"]
        # A sentinel for op_a2, after the message: had it gone to op_a2 too, it would come first.
        paused = await sup.call(
            "set_operator_status", {"user_id": scoped["op_a2"], "status": "pause", "reason": "sentinel"}
        )
        assert paused["ok"], paused
        await op_a2.wait_for("presence.changed", user_id=scoped["op_a2"], status="pause")
        assert not any(e["type"] == "supervisor.message" for e in op_a2.events)
        replay = await op_a2.call("resume", {"after": 0})
        assert not any(e["type"] == "supervisor.message" for e in replay["events"])
    finally:
        for client in (op_a, op_a2, sup):
            await client.sio.disconnect()


async def test_whisper_reaches_the_operator_never_the_customer(
    live_server: LiveServer, scoped: dict[str, Any]
) -> None:
    op_a = OperatorClient(live_server.url, scoped["op_a_token"])
    await op_a.connect()
    sup = Supervisor(live_server.url, scoped["sup_token"])
    await sup.connect()
    visitor, conv_id = await _accepted_chat(live_server, op_a, scoped["widget_a"], "I need help")
    try:
        ack = await sup.call("whisper", {"conversation_id": conv_id, "text": "offer the discount"})
        assert ack["ok"], ack
        assert ack["message"]["direction"] == "note" and ack["message"]["author_user_id"] == scoped["sup"]
        note = await op_a.wait_for("message.created", direction="note")
        assert note["data"]["body"] == "offer the discount" and note["conversation_id"] == conv_id
        assert note["data"]["author_user_id"] == scoped["sup"]
        # The channel works (the operator's reply arrives), and the note never did.
        # The reply is the sentinel: the note was written first, so it would have arrived first.
        assert (await op_a.call("send", {"conversation_id": conv_id, "body": "Here is 10% off"}))["ok"]
        await until(lambda: visitor.messages, what="the reply at the visitor")
        assert [x["body"] for x in visitor.messages] == ["Here is 10% off"]
        async with live_server.services.db.transaction() as s:
            stored = await s.scalar(select(m.Message).where(m.Message.id == ack["message"]["id"]))
            assert stored is not None and stored.delivery == "stored"
        await visitor.sio.disconnect()
        again = Visitor(live_server.url)
        welcome = await again.connect(inbox=scoped["widget_a"], visitor=visitor.welcome.result()["visitor"])
        assert "offer the discount" not in [x["body"] for x in welcome["messages"]]
        await again.sio.disconnect()
    finally:
        await sup.sio.disconnect()
        await op_a.sio.disconnect()


async def test_take_over_moves_the_chat_to_the_supervisor(
    live_server: LiveServer, scoped: dict[str, Any]
) -> None:
    op_a = OperatorClient(live_server.url, scoped["op_a_token"])
    await op_a.connect()
    sup = Supervisor(live_server.url, scoped["sup_token"])
    await sup.connect()
    visitor, conv_id = await _accepted_chat(live_server, op_a, scoped["widget_a"], "angry customer")
    try:
        await op_a.wait_for("presence.changed", activity="talking")
        ack = await sup.call("take_over", {"conversation_id": conv_id})
        assert ack["ok"], ack
        assert ack["conversation"]["assigned_user_id"] == scoped["sup"]
        for client in (op_a, sup):
            evt = await client.wait_for("conversation.taken_over", id=conv_id)
            assert evt["data"]["from_user_id"] == scoped["op_a"]
            assert evt["data"]["to_user_id"] == scoped["sup"]
        # The operator is free again: activity back to their chosen status.
        await op_a.wait_for("presence.changed", activity="available")
        again = await sup.call("take_over", {"conversation_id": conv_id})
        assert again["error"] == "conflict"
        async with live_server.services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            assert conv.assigned_user_id == scoped["sup"] and conv.status == S.ACTIVE
            p = await s.get_one(m.OperatorPresence, scoped["op_a"])
            assert p.effective_code == "available"
        snap = await sup.call("monitor", {})
        row = next(o for o in snap["operators"] if o["id"] == scoped["op_a"])
        assert row["conversation_count"] == 0
        assert snap["queues"][0]["in_service"] == 1
    finally:
        await visitor.sio.disconnect()
        await sup.sio.disconnect()
        await op_a.sio.disconnect()
