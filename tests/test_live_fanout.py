"""Gap detection of the live fan-out (omni.realtime.live) and the widget's ``resume``.

The two-node Redis restart itself is tests/test_redis_restart.py; here the pieces: which
seqs a node counts as missed, that an event the Redis path never brought reaches the node's
operator and widget sockets from the outbox, and that a visitor's resume is scoped to them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.widget import WidgetChannel, visitor_room
from omni.channels import AdapterRegistry, DeliveryReceipt, OutboundDispatcher, OutboundMessage
from omni.db import Database
from omni.db import models as m
from omni.domain.events import DomainEvent, emit
from omni.domain.serialize import message_dict
from omni.realtime import NAMESPACES, event_rooms, pii, rooms
from omni.realtime.live import BATCH_EVENT, FanoutManager, GapTracker, LiveFanout, live_fanout
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import REDIS_URL, LiveServer
from tests.helpers import until
from tests.test_realtime import OperatorClient, token_for


def test_a_seq_missing_at_two_checks_is_replayed_once() -> None:
    gaps = GapTracker(watermark=10)
    for seq in (11, 13):
        gaps.seen(seq)
    assert gaps.check([11, 12, 13]) == [], "12 may still be on its way through Redis"
    assert gaps.check([12, 13, 14]) == [12], "still missing a check later: lost"
    gaps.seen(14)
    assert gaps.check([14]) == []
    assert gaps.watermark == 14


def test_a_seq_that_arrives_late_through_redis_is_not_replayed() -> None:
    gaps = GapTracker(watermark=0)
    assert gaps.check([1, 2]) == []
    gaps.seen(1)
    gaps.seen(2)
    assert gaps.check([1, 2]) == []
    assert gaps.watermark == 2


def test_after_a_listener_reconnect_every_missing_seq_is_replayed_at_once() -> None:
    gaps = GapTracker(watermark=100)
    gaps.seen(101)
    assert gaps.check([101, 102, 103], urgent=True) == [102, 103]
    assert gaps.check([104], urgent=True) == [104]
    assert gaps.check([]) == []
    assert gaps.watermark == 104


def test_a_seq_whose_operator_copy_was_lost_is_replayed() -> None:
    """Each event goes through Redis once per namespace. When the listener resubscribed between
    the ``/operator`` and the ``/supervisor`` copy, only the second arrived; counting the seq as
    seen lost the message for the operator for good (CI: "operator missed [68]")."""
    gaps = GapTracker(watermark=10, namespaces=["/operator", "/supervisor"])
    gaps.seen(11, "/operator")
    gaps.seen(11, "/supervisor")
    gaps.seen(12, "/supervisor")  # its /operator copy was published before the resubscribe
    assert gaps.check([11, 12], urgent=True) == [12]
    assert gaps.arrived == {12: frozenset({"/supervisor"})}, "the replay skips the copy that came"
    gaps.seen(13, "/supervisor")
    gaps.seen(13, "/operator")  # the copies may arrive in any order
    assert gaps.check([13]) == []
    assert gaps.watermark == 13


def test_rolled_back_ids_are_not_gaps() -> None:
    gaps = GapTracker(watermark=5)
    gaps.seen(6)
    gaps.seen(9)  # 7 and 8 were rolled back: the outbox never dispatches them
    assert gaps.check([6, 9]) == []
    assert gaps.check([6, 9]) == []
    assert gaps.watermark == 9


def test_the_watermark_waits_for_a_suspect_and_old_seqs_are_forgotten() -> None:
    gaps = GapTracker(watermark=0)
    gaps.seen(1)
    gaps.seen(3)
    assert gaps.check([1, 2, 3]) == []
    assert gaps.watermark == 1, "2 is still a suspect"
    assert gaps.check([2, 3]) == [2]
    assert gaps.watermark == 3
    gaps.seen(2)  # a duplicate from Redis after the replay
    assert gaps.check([]) == []


def test_a_seq_dispatched_late_below_the_watermark_is_still_replayed() -> None:
    gaps = GapTracker(watermark=10)
    gaps.seen(12)
    assert gaps.check([12]) == [], "11 is a transaction still in flight: not dispatched"
    assert gaps.watermark == 12
    # The relay gave up waiting for 11 and dispatches it now, after 12; Redis dropped it.
    assert gaps.check([11, 12]) == [], "11 may still be on its way through Redis"
    assert gaps.check([11, 12]) == [11]
    assert gaps.check([11, 12]) == [], "replayed once"
    assert gaps.check([11, 12], urgent=True) == []
    gaps.seen(13)
    assert gaps.check([11, 12, 13]) == []
    assert gaps.watermark == 13


def test_the_late_lookback_stops_at_the_window_and_where_the_node_started() -> None:
    gaps = GapTracker(lookback=5)
    gaps.start_at(100)
    assert gaps.floor == 100, "ids dispatched before this node started are none of its business"
    for seq in range(101, 111):
        gaps.seen(seq)
    assert gaps.check(list(range(101, 111))) == []
    assert (gaps.watermark, gaps.floor) == (110, 105)
    assert gaps.check([106, 107, 108, 109, 110], urgent=True) == []


async def _stored_reply(s: AsyncSession, conv_id: int, body: str) -> tuple[int, int]:
    """An operator reply and its event in the caller's transaction: (message id, event seq)."""
    conv = await s.get(m.Conversation, conv_id)
    assert conv is not None
    msg = m.Message(conversation_id=conv_id, direction="out", body=body, author_user_id=conv.assigned_user_id)
    s.add(msg)
    await s.flush()
    row = emit(
        s,
        "message.created",
        {**message_dict(msg), "channel": "widget"},
        conversation_id=conv_id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )
    await s.flush()
    return int(msg.id), int(row.id)


async def _mark_dispatched(s: AsyncSession, seq: int) -> None:
    """As the relay does, except that no sink (so no Redis publish) ever sees the event."""
    await s.execute(update(m.Event).where(m.Event.id == seq).values(dispatched=True))


async def _lost_event(server: LiveServer, conv_id: int, body: str) -> int:
    """An operator reply whose event the relay dispatched but no Redis publish carried:
    stored and marked dispatched in one transaction, so no sink ever saw it."""
    async with server.services.db.transaction() as s:
        msg_id, seq = await _stored_reply(s, conv_id, body)
        await _mark_dispatched(s, seq)
        return msg_id


async def test_an_event_redis_never_delivered_reaches_this_nodes_operator_and_visitor(
    live_server: LiveServer,
) -> None:
    async with live_server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        token = (await f.inbox(s, q, channel="widget")).public_token
    assert live_fanout(live_server.app.engineio_server) is not None, "Redis mode wraps the manager"
    op_client = OperatorClient(live_server.url, await token_for(live_server, "op"))
    await op_client.connect()
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=token)
    ack = await visitor.send("hi", "c-1")
    offer = await op_client.wait_for("conversation.offered", id=ack["conversation_id"])
    assert (await op_client.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
    lost_id = await _lost_event(live_server, ack["conversation_id"], "did you get this?")
    event = await op_client.wait_for("message.created", id=lost_id)
    assert event["data"]["body"] == "did you get this?"
    await until(lambda: any(x["id"] == lost_id for x in visitor.messages), 10)
    assert [x["body"] for x in visitor.messages if x["id"] == lost_id] == ["did you get this?"]
    await op_client.sio.disconnect()
    await visitor.sio.disconnect()


async def test_an_event_the_relay_dispatched_late_below_the_checkpoint_still_reaches_this_nodes_sockets(
    live_server: LiveServer,
) -> None:
    """The redis-restart flake ("operator missed [51]"): a transaction in flight longer than
    the relay's gap grace gets its lower id dispatched after higher ones, when the node's
    checkpoint has already passed it; with the Redis copy lost, the node must still replay it
    (the client's ``resume`` after its last seq can't return it either)."""
    async with live_server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        token = (await f.inbox(s, q, channel="widget")).public_token
    live = live_fanout(live_server.app.engineio_server)
    assert live is not None
    op_client = OperatorClient(live_server.url, await token_for(live_server, "op"))
    await op_client.connect()
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=token)
    ack = await visitor.send("hi", "c-1")
    conv_id = ack["conversation_id"]
    offer = await op_client.wait_for("conversation.offered", id=conv_id)
    assert (await op_client.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
    async with live_server.services.db.transaction() as slow:
        late_msg, late_seq = await _stored_reply(slow, conv_id, "typed before the later one")
        # Meanwhile a later event is dispatched, lost on the Redis path, replayed by the node,
        # and the node's checkpoint moves past the slow transaction's id.
        async with live_server.services.db.transaction() as s:
            later_msg, later_seq = await _stored_reply(s, conv_id, "the later one")
            await _mark_dispatched(s, later_seq)
        assert late_seq < later_seq
        await op_client.wait_for("message.created", id=later_msg)
        await until(lambda: live.tracker.watermark >= later_seq, 20)
        assert live.tracker.watermark >= later_seq
        # The relay dispatches the slow transaction's event only now, and Redis drops it too.
        await _mark_dispatched(slow, late_seq)
    event = await op_client.wait_for("message.created", id=late_msg)
    assert event["seq"] == late_seq and event["data"]["body"] == "typed before the later one"
    await until(lambda: any(x["id"] == late_msg for x in visitor.messages), 10)
    assert [x["body"] for x in visitor.messages if x["id"] == late_msg] == ["typed before the later one"]
    await op_client.sio.disconnect()
    await visitor.sio.disconnect()


async def test_widget_resume_returns_only_the_visitors_own_messages(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        token = (await f.inbox(s, q, channel="widget")).public_token
    ann, bob = Visitor(live_server.url), Visitor(live_server.url)
    await ann.connect(inbox=token)
    await bob.connect(inbox=token)
    first = await ann.send("ann 1", "a-1")
    await bob.send("bob 1", "b-1")
    await ann.send("ann 2", "a-2")

    async def resume(v: Visitor, data: Any) -> dict[str, Any]:
        result: dict[str, Any] = await v.sio.call("resume", data, namespace="/widget", timeout=10)
        return result

    everything = await resume(ann, {"after": 0})
    assert everything["ok"] and not everything["more"]
    assert [x["body"] for x in everything["messages"]] == ["ann 1", "ann 2"]
    assert "author_user_id" not in everything["messages"][0]
    later = await resume(ann, {"after": first["message"]["id"]})
    assert [x["body"] for x in later["messages"]] == ["ann 2"]
    for bad in ({"after": "x"}, {}, {"after": -1}, "nonsense"):
        refused = await resume(ann, bad)
        assert refused["ok"] is False and refused["field"] == "after", refused
    await ann.sio.disconnect()
    await bob.sio.disconnect()


async def test_a_relay_batch_reaches_the_other_nodes_as_one_redis_message_in_order(pg_url: str) -> None:
    """Issue 15: the relay's socket sink publishes a batch of events as one Redis message
    (``FanoutManager.batched``) instead of two awaited publishes per event. The other node
    still handles every copy, in order, and counts each seq as delivered."""
    channel = f"omni-test-{uuid.uuid4().hex[:8]}:socketio"
    a, b = FanoutManager(REDIS_URL, channel), FanoutManager(REDIS_URL, channel)
    sio_a = socketio.AsyncServer(async_mode="asgi", client_manager=a)
    sio_b = socketio.AsyncServer(async_mode="asgi", client_manager=b)
    db = Database(pg_url)
    b.live = LiveFanout(sio_b, db, NAMESPACES, event_rooms)
    probe = aioredis.Redis.from_url(REDIS_URL)
    watch = probe.pubsub(ignore_subscribe_messages=True)
    await watch.subscribe(channel)
    b.initialize()
    try:

        async def subscribers() -> bool:
            counts = dict(await probe.pubsub_numsub(channel))
            return int(counts.get(channel.encode(), 0)) >= 2

        await until(subscribers, what="node b's listener subscribed")
        seqs = [5, 6, 7]
        async with a.batched():
            for seq in seqs:
                wire = {"seq": seq, "type": "message.created", "data": {}}
                for namespace in NAMESPACES:
                    await sio_a.emit("event", wire, to=rooms.ALL, namespace=namespace)
        await sio_a.emit(
            "event", {"seq": 8, "type": "message.created", "data": {}}, to=rooms.ALL, namespace="/x"
        )

        async def next_message() -> dict[str, Any] | None:
            got = await watch.get_message(timeout=1)
            return json.loads(got["data"]) if got else None

        batch = await until(next_message, what="the batch on Redis")
        assert batch["event"] == BATCH_EVENT
        assert [(x["data"][0]["seq"], x["namespace"]) for x in batch["data"]] == [
            (seq, ns) for seq in seqs for ns in NAMESPACES
        ]
        single = await until(next_message, what="the emit after the batch")
        assert single["data"][0]["seq"] == 8, "nothing else was published for the batch"
        live = b.live
        await until(lambda: all(live.tracker.has_seen(s) for s in seqs), what="node b handled every copy")
    finally:
        if b.thread is not None:
            b.thread.cancel()
        await watch.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        await probe.aclose()
        await db.dispose()


async def test_an_event_replayed_from_the_outbox_is_not_emitted_again_when_its_redis_copy_comes_late(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under overload the Redis copy of an event can arrive after the node's check gave up
    waiting and replayed it from the outbox: its sockets then got every message twice (4,011
    duplicates in bench/widget.py at 1,000 visitors × 200 msg/s on two workers). A copy of a
    replayed seq is dropped; the copies of other seqs still go out."""
    manager = FanoutManager(REDIS_URL, f"omni-test-{uuid.uuid4().hex[:8]}:socketio")
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    db = Database(pg_url)
    manager.live = LiveFanout(sio, db, NAMESPACES, event_rooms)
    emitted: list[tuple[int, str]] = []

    async def delivered(_self: Any, message: dict[str, Any]) -> None:
        emitted.append((message["data"][0]["seq"], message["namespace"]))

    monkeypatch.setattr(socketio.AsyncRedisManager, "_handle_emit", delivered)
    tracker = manager.live.tracker
    assert tracker.check([11]) == [], "a suspect at the first check"
    assert tracker.check([11]) == [11], "replayed at the second"
    try:
        for seq in (11, 12):
            for namespace in NAMESPACES:
                wire = {"seq": seq, "type": "message.created", "data": {}}
                await manager._handle_emit(
                    {
                        "method": "emit",
                        "event": "event",
                        "data": [wire],
                        "namespace": namespace,
                        "room": rooms.ALL,
                    }
                )
        assert emitted == [(12, ns) for ns in NAMESPACES]
        assert tracker.has_seen(12)
    finally:
        await db.dispose()


async def test_a_replay_sends_an_event_only_where_its_redis_copy_did_not_come(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event whose ``/supervisor`` copy came through Redis (and went out) but whose
    ``/operator`` copy did not is replayed to ``/operator`` only: replaying it everywhere gave
    the supervisors' sockets every such event twice (bench/widget.py under overload)."""
    sio = socketio.AsyncServer(async_mode="asgi")
    db = Database(pg_url)
    live = LiveFanout(sio, db, NAMESPACES, event_rooms)
    sent: list[tuple[int, str]] = []
    real_emit = pii.emit_event

    async def recorded(server: Any, namespace: str, wire: dict[str, Any], *args: Any, **kw: Any) -> None:
        sent.append((wire["seq"], namespace))
        await real_emit(server, namespace, wire, *args, **kw)

    monkeypatch.setattr(pii, "emit_event", recorded)
    tracker = live.tracker
    tracker.start_at(10)
    tracker.seen(11, "/supervisor")  # its /operator copy never came
    assert tracker.check([11, 12], urgent=True) == [11, 12]
    events = [
        DomainEvent(id=seq, type="message.created", payload={"id": seq}, created_at=datetime.now(UTC))
        for seq in (11, 12)
    ]
    try:
        await live._replay(events)
    finally:
        await db.dispose()
    assert sorted(sent) == sorted([(11, "/operator")] + [(12, ns) for ns in NAMESPACES])


def _copy(seq: int, namespace: str) -> dict[str, Any]:
    """One namespace's copy of an event as the listener hands it to ``_handle_emit``."""
    wire = {"seq": seq, "type": "message.created", "data": {}}
    return {"method": "emit", "event": "event", "data": [wire], "namespace": namespace, "room": rooms.ALL}


async def test_a_check_while_a_redis_copy_is_going_out_does_not_replay_it_too(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 (bench/widget.py, two workers): the listener emitted an event's ``/operator``
    copy, the emit awaited its sockets' sends, a check ran meanwhile, found the seq not yet
    counted and replayed it to ``/operator`` as well: the operator got the message twice (its
    ``/supervisor`` copy, arriving after, was dropped as replayed). A check during the emit now
    leaves the seq to the next one; one whose emit failed is still replayed then."""
    manager = FanoutManager(REDIS_URL, f"omni-test-{uuid.uuid4().hex[:8]}:socketio")
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    db = Database(pg_url)
    manager.live = LiveFanout(sio, db, NAMESPACES, event_rooms)
    tracker = manager.live.tracker
    tracker.start_at(10)
    emitted: list[tuple[int, str]] = []
    sending, release = asyncio.Event(), asyncio.Event()

    async def to_sockets(_self: Any, message: dict[str, Any]) -> None:
        seq, namespace = message["data"][0]["seq"], message["namespace"]
        if (seq, namespace) == (13, "/operator"):
            raise RuntimeError("this copy's emit fails")
        emitted.append((seq, namespace))
        if (seq, namespace) == (11, "/operator"):
            sending.set()  # the packets are on their way; the emit awaits them
            await release.wait()

    monkeypatch.setattr(socketio.AsyncRedisManager, "_handle_emit", to_sockets)
    try:
        assert tracker.check([11, 12, 13]) == [], "all three still on their way through Redis"
        going = asyncio.create_task(manager._handle_emit(_copy(11, "/operator")))
        await sending.wait()
        for namespace in NAMESPACES:
            await manager._handle_emit(_copy(12, namespace))
        with pytest.raises(RuntimeError):
            await manager._handle_emit(_copy(13, "/operator"))
        await manager._handle_emit(_copy(13, "/supervisor"))
        assert tracker.check([11, 12, 13]) == [13], "11 is going out now; 13's /operator copy failed"
        assert tracker.arrived == {13: frozenset({"/supervisor"})}
        release.set()
        await going
        await manager._handle_emit(_copy(11, "/supervisor"))
        assert tracker.check([11, 12, 13]) == []
        assert tracker.watermark == 13
        went = [(11, ns) for ns in NAMESPACES] + [(12, ns) for ns in NAMESPACES] + [(13, "/supervisor")]
        assert sorted(emitted) == sorted(went)
        assert emitted.count((11, "/operator")) == 1
    finally:
        release.set()
        await db.dispose()


async def test_a_late_redis_copy_of_a_replayed_seq_is_dropped_after_the_window_passed_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replayed seqs were forgotten with the lookback window (2,000 ids, about two seconds
    of a loaded node's events), while a starved node's Redis copies came later than that: each
    was emitted again. A node now remembers its latest ``REPLAYED_KEEP`` replays."""
    manager = FanoutManager(REDIS_URL, f"omni-test-{uuid.uuid4().hex[:8]}:socketio")
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    db = Database(pg_url)
    manager.live = LiveFanout(sio, db, NAMESPACES, event_rooms)
    tracker = manager.live.tracker = GapTracker(lookback=5, namespaces=NAMESPACES)
    tracker.start_at(10)
    emitted: list[tuple[int, str]] = []

    async def to_sockets(_self: Any, message: dict[str, Any]) -> None:
        emitted.append((message["data"][0]["seq"], message["namespace"]))

    monkeypatch.setattr(socketio.AsyncRedisManager, "_handle_emit", to_sockets)
    try:
        assert tracker.check([11]) == []
        assert tracker.check([11]) == [11], "replayed at the second check"
        later = list(range(12, 31))
        for seq in later:
            for namespace in NAMESPACES:
                await manager._handle_emit(_copy(seq, namespace))
        assert tracker.check([11, *later]) == []
        assert tracker.floor > 11, "the window has moved past the replayed seq"
        for namespace in NAMESPACES:
            await manager._handle_emit(_copy(11, namespace))  # its copy, very late
        assert [seq for seq, _ in emitted if seq == 11] == []
        assert len(emitted) == 2 * len(later)
    finally:
        await db.dispose()


async def test_a_widget_reply_push_coming_late_through_redis_is_dropped_where_the_replay_sent_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 98 % of the duplicates in bench/widget.py with two workers: a starved node's check
    replayed an operator reply's event and its replay hook pushed the message to the visitor,
    then the reply's own push (``WidgetChannel.send`` on the relay's node) came through Redis
    and went out again. The push carries its event's seq to the other nodes; one that replayed
    that seq drops it, the others deliver it."""
    channel_name = f"omni-test-{uuid.uuid4().hex[:8]}:socketio"
    a, b = FanoutManager(REDIS_URL, channel_name), FanoutManager(REDIS_URL, channel_name)
    sio_a = socketio.AsyncServer(async_mode="asgi", client_manager=a)
    sio_b = socketio.AsyncServer(async_mode="asgi", client_manager=b)
    db = Database(pg_url)
    b.live = LiveFanout(sio_b, db, NAMESPACES, event_rooms)
    b.live.tracker.start_at(10)
    widget = WidgetChannel(sio_a, None)  # type: ignore[arg-type]  # no database: rooms cached
    room = visitor_room("visitor-1")
    widget._room_cache[7] = (time.monotonic() + 3600, [room])
    pushed_at_b: list[Any] = []

    async def to_sockets(self: Any, message: dict[str, Any]) -> None:
        if self is b:
            pushed_at_b.append(message["data"][0]["id"] if message["event"] == "message" else message)

    monkeypatch.setattr(socketio.AsyncRedisManager, "_handle_emit", to_sockets)
    probe = aioredis.Redis.from_url(REDIS_URL)
    b.initialize()
    try:

        async def subscribed() -> bool:
            counts = dict(await probe.pubsub_numsub(channel_name))
            return int(counts.get(channel_name.encode(), 0)) >= 1

        await until(subscribed, what="node b's listener subscribed")
        assert b.live.tracker.check([11, 12]) == []
        assert b.live.tracker.check([11, 12]) == [11, 12], "replayed: the hooks pushed both again"
        replies = [(101, 11), (102, 12), (103, 13)]  # (message id, event seq); 13: b never replayed it
        for message_id, seq in replies:
            reply = OutboundMessage(
                message_id=message_id,
                conversation_id=7,
                inbox_id=None,
                channel="widget",
                body=f"reply {message_id}",
                client_id=f"r{message_id}",
                created_at=datetime.now(UTC).isoformat(),
                event_seq=seq,
            )
            assert (await widget.send(reply)).state == "sent"
        await sio_a.emit("message", {"id": 104}, to=room, namespace="/widget")  # untagged
        await until(lambda: 104 in pushed_at_b, what="b handled every push")
        assert pushed_at_b == [103, 104], "the pushes of replayed seqs 11 and 12 are dropped at b"
    finally:
        if b.thread is not None:
            b.thread.cancel()
        await probe.aclose()
        await db.dispose()


async def test_the_outbound_dispatcher_tells_the_channel_which_event_it_delivers() -> None:
    sent: list[OutboundMessage] = []

    class Recorder:
        kind = "widget"

        async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
            sent.append(msg)
            return DeliveryReceipt("pending")  # nothing to record: no database needed

    registry = AdapterRegistry()
    registry.register(Recorder())  # type: ignore[arg-type]  # only what the dispatcher calls
    payload = {"id": 5, "conversation_id": 7, "direction": "out", "channel": "widget", "body": "hi"}
    event = DomainEvent(id=42, type="message.created", payload=payload, created_at=datetime.now(UTC))
    await OutboundDispatcher(None, registry)([event])  # type: ignore[arg-type]
    assert [(x.message_id, x.event_seq) for x in sent] == [(5, 42)]


async def test_a_failed_replay_hook_makes_the_nodes_clients_resume(pg_url: str) -> None:
    """A node drops the late pushes of the events it replayed, counting on its replay hooks; when
    a hook fails, its clients get ``sync`` and ask for what they miss (nothing is lost)."""
    sio = socketio.AsyncServer(async_mode="asgi")
    db = Database(pg_url)
    live = LiveFanout(sio, db, NAMESPACES, event_rooms)
    synced: list[str] = []

    async def emit(event: str, data: Any, namespace: str = "/", **_kw: Any) -> None:
        if event == "sync":
            synced.append(namespace)

    sio.emit = emit  # type: ignore[method-assign]  # only the node's local emits are looked at

    async def fine(events: Any) -> None:
        return None

    async def broken(events: Any) -> None:
        raise RuntimeError("the visitor rooms could not be read")

    event = DomainEvent(id=11, type="message.created", payload={"id": 1}, created_at=datetime.now(UTC))
    try:
        live.replay_hooks[:] = [fine]
        await live._replay([event])
        assert synced == [], "every hook re-delivered: no resume needed"
        live.replay_hooks[:] = [broken, fine]
        await live._replay([event])
        assert synced == list(NAMESPACES)
    finally:
        await db.dispose()
