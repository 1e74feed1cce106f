"""Live fan-out that survives Redis restarts: the one place that wraps python-socketio's
``AsyncRedisManager``.

Redis pub/sub keeps nothing: a publish while Redis is down is dropped, and so is everything
published while a node's listener is still backing off after Redis came back (up to 60 s in
python-socketio). The sockets themselves stay connected, so no client would ever resume.

So Redis is only the fast path. Every node remembers which event ``seq`` it has fanned out
to its own sockets (its own relay batches and what came through Redis), and compares that
with the outbox every ``CHECK_SECONDS``: a dispatched seq still missing at the next check
(or at once when the listener has just reconnected) is read from the database and emitted
to this node's sockets only. When the listener reconnects the node also sends its clients
``sync {seq}`` (locally): operator and supervisor pages ``resume``/refresh, the widget asks
for the messages after the last one it shows, which covers anything outside the event
stream (e.g. a reply's widget push lost on its way to Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import redis.asyncio as aioredis
import socketio
from sqlalchemy import func, select

from omni.aio import stop_tasks, wait_set
from omni.db import Database
from omni.db import models as m
from omni.domain.events import DomainEvent
from omni.realtime import pii
from omni.realtime.membership import follow_queue_members, leave
from omni.realtime.transport import InlineEmitManager, has_binary
from omni.wire import WIRE_JSON

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
"""How often a node compares what it fanned out with the outbox."""
RETRY_MIN_SECONDS = 0.2
RETRY_MAX_SECONDS = 1.0
"""The listener reconnects this fast (python-socketio's own backoff doubles up to 60 s)."""
CHECK_BATCH = 5000
LOOKBACK_IDS = 2000
"""How far under its watermark a node still looks for an event the relay dispatched late
(a transaction that committed more than the relay's gap grace after taking its id): at
100 events a second, a transaction 20 s slow."""
REPLAYED_KEEP = 50_000
"""How many of its latest replayed seqs a node remembers, to drop their Redis copies (and the
channels' pushes for them) when these come late after all. Not bounded by the lookback
window: under overload a copy comes seconds after the check replayed it, when thousands of
later ids have been dispatched (a push, sent after the relay's commit, later still)."""

ReplayHook = Callable[[Sequence[DomainEvent]], Awaitable[None]]


class GapTracker:
    """Which dispatched seqs this node has fanned out, and which it missed.

    Ids are not contiguous (a rolled-back transaction burns its id), so a gap is judged
    against the ids the outbox actually dispatched. A seq may be dispatched a moment before
    its Redis copy reaches this node, so a missing seq is only a *suspect* at the first check
    and replayed when still missing at the next one, or at once when the caller knows the
    Redis path was broken (``urgent``).

    Nor are ids dispatched in order: a transaction in flight longer than the relay's gap
    grace has its (lower) id dispatched after higher ones, below the watermark. So the
    tracker keeps comparing the ``lookback`` ids under the watermark too (never below where
    the node started: its sockets were not there before).
    """

    def __init__(
        self, watermark: int = 0, lookback: int = LOOKBACK_IDS, namespaces: Sequence[str] = ()
    ) -> None:
        self.namespaces = frozenset(namespaces)
        """Each event is published once per namespace, as separate Redis messages: a seq counts
        as seen only when every one of them arrived (the listener can resubscribe between the
        ``/operator`` and the ``/supervisor`` copy of one event)."""
        self._partly: dict[int, set[str]] = {}
        self.watermark = watermark
        """Every dispatched seq up to here is delivered (or replayed) on this node, except
        one dispatched late, which is still compared down to ``floor``."""
        self.base = watermark
        """Where this node started: nothing at or below it is ever replayed."""
        self.lookback = lookback
        self._seen: set[int] = set()
        self._suspects: set[int] = set()
        self._replayed: set[int] = set()
        """Seqs this node replayed from the outbox (the latest ``REPLAYED_KEEP``): every copy
        of them went out then, so a Redis copy that arrives after all (late, not lost) is not
        emitted a second time."""
        self._replay_order: deque[int] = deque()
        self._emitting: dict[int, int] = {}
        """Seqs with a Redis copy being emitted right now (the emit awaits its sockets' sends):
        a check meanwhile must not replay them too; it decides at the next one."""
        self.arrived: dict[int, frozenset[str]] = {}
        """For the seqs the last ``check`` returned: the namespaces whose Redis copy had come
        (and was emitted) — the replay skips them, or their sockets get the event twice."""

    def start_at(self, seq: int) -> None:
        """The last dispatched seq when the node starts: only later ones concern its sockets."""
        self.watermark = self.base = max(self.watermark, seq)

    @property
    def floor(self) -> int:
        """Dispatched seqs above this are compared (``check`` wants all of them up to the
        watermark, plus the next ones above it)."""
        return max(self.base, self.watermark - self.lookback)

    def seen(self, seq: int, namespace: str | None = None) -> None:
        if seq <= self.floor:
            return
        if namespace is not None and self.namespaces:
            arrived = self._partly.setdefault(seq, set())
            arrived.add(namespace)
            if not self.namespaces <= arrived:
                return
            del self._partly[seq]
        self._seen.add(seq)

    def was_replayed(self, seq: int) -> bool:
        return seq in self._replayed

    def emitting(self, seq: int) -> None:
        """A Redis copy of ``seq`` is going out to this node's sockets; ``seen`` follows when
        it went, ``emitted`` in any case (a copy whose emit failed is replayed later)."""
        self._emitting[seq] = self._emitting.get(seq, 0) + 1

    def emitted(self, seq: int) -> None:
        left = self._emitting.pop(seq, 1) - 1
        if left > 0:
            self._emitting[seq] = left

    def has_seen(self, seq: int) -> bool:
        """Every namespace's copy of ``seq`` reached this node (and no check has run past it)."""
        return seq in self._seen

    def check(self, dispatched: Sequence[int], *, urgent: bool = False) -> list[int]:
        """``dispatched``: ascending dispatched ids above ``floor``. Returns the seqs to
        replay now (and counts them as delivered)."""
        missing = [i for i in dispatched if i not in self._seen]
        ready = [i for i in missing if i not in self._emitting]  # the others are arriving now
        replay = ready if urgent else [i for i in ready if i in self._suspects]
        self._suspects = set(missing) - set(replay)
        self.arrived = {seq: frozenset(self._partly[seq]) for seq in replay if seq in self._partly}
        self._seen.update(replay)
        self._replayed.update(replay)
        self._replay_order.extend(replay)
        while len(self._replay_order) > REPLAYED_KEEP:
            self._replayed.discard(self._replay_order.popleft())
        if dispatched:
            ahead = [i for i in self._suspects if i > self.watermark]
            top = min(ahead) - 1 if ahead else dispatched[-1]
            self.watermark = max(self.watermark, top)
        floor = self.floor
        self._seen = {s for s in self._seen if s > floor}
        self._suspects = {s for s in self._suspects if s > floor}
        self._partly = {s: ns for s, ns in self._partly.items() if s > floor and s not in self._seen}
        return replay


BATCH_EVENT = "omni:batch"
"""The Redis message that carries several emits (``FanoutManager.batched``); never a client event."""
_batch: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "omni_fanout_batch", default=None
)
OUTBOX_SEQ = "omni_outbox_seq"
"""Key of a Redis message (never sent to clients): the event whose replay hooks re-deliver
what this emit delivers (``FanoutManager.delivering``)."""
_delivering: contextvars.ContextVar[int | None] = contextvars.ContextVar("omni_fanout_seq", default=None)


class FanoutManager(socketio.AsyncRedisManager, InlineEmitManager):  # type: ignore[misc]  # untyped base class
    """``AsyncRedisManager`` whose listener reconnects within a second and says so, and which
    reports every event seq it fans out to local sockets."""

    def __init__(self, url: str, channel: str) -> None:
        # A connect must fail fast, not hold the relay while a host is unreachable.
        super().__init__(url, channel=channel, redis_options={"socket_connect_timeout": 2}, json=WIRE_JSON)
        self.live: LiveFanout | None = None
        self._publish_failing = False

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        """``AsyncPubSubManager.emit`` for a plain emit (no ack, no bytes), with the quicker
        binary check (``omni.realtime.transport.has_binary``): the same message, handled here
        and published. Anything else goes the library's way."""
        if kwargs.get("ignore_queue") or callback is not None or has_binary(data):
            await super().emit(
                event,
                data,
                namespace=namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        message = {
            "method": "emit",
            "event": event,
            "data": list(data) if isinstance(data, tuple) else [data],
            "binary": False,
            "namespace": namespace or "/",
            "room": to or room,
            "skip_sid": skip_sid,
            "callback": None,
            "host_id": self.host_id,
        }
        await self._handle_emit(message)  # this node's sockets
        await self._publish(message)  # the other nodes

    @contextlib.asynccontextmanager
    async def batched(self) -> AsyncIterator[None]:
        """Emits inside (in this task only) reach this node's sockets at once, as always, and
        the other nodes as one Redis message when the block ends, in the order they were made:
        a relay batch of N events was 2N publishes (one per namespace), each awaited in turn
        while the relay held its transaction. Nested blocks join the outer one."""
        if _batch.get() is not None:
            yield
            return
        held: list[dict[str, Any]] = []
        token = _batch.set(held)
        try:
            yield
        finally:
            _batch.reset(token)
            if held:
                await self._publish(
                    {
                        "method": "emit",
                        "event": BATCH_EVENT,
                        "data": held,
                        "namespace": "/",
                        "room": None,
                        "skip_sid": None,
                        "callback": None,
                        "host_id": self.host_id,
                    }
                )

    @contextlib.contextmanager
    def delivering(self, seq: int | None) -> Iterator[None]:
        """Emits inside (in this task) deliver, outside the ``event`` stream, what the replay
        hooks (``LiveFanout.replay_hooks``) re-deliver for event ``seq`` (the widget's copy of
        an operator reply): a node whose check replayed ``seq`` drops them when they arrive,
        late, through Redis; its sockets have them already."""
        token = _delivering.set(seq)
        try:
            yield
        finally:
            _delivering.reset(token)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") == BATCH_EVENT:
            for one in message.get("data") or []:
                await self._handle_emit(one)
            return
        tracker = self.live.tracker if self.live is not None else None
        if message.get("event") != "event":
            pushed = message.get(OUTBOX_SEQ)
            if tracker is not None and isinstance(pushed, int) and tracker.was_replayed(pushed):
                return  # late, not lost: the replay hooks re-delivered it from the outbox
            await super()._handle_emit(message)
            return
        data = message.get("data")
        wire = data[0] if isinstance(data, list) and data else data
        namespace = message.get("namespace") or "/"
        seq = wire.get("seq") if isinstance(wire, dict) else None
        if tracker is None or not isinstance(seq, int):
            await self._emit_event(message, namespace, wire)
            return
        if tracker.was_replayed(seq):
            return  # late, not lost: the check already replayed it to this node's sockets
        # No await between the test above and this: a check either replayed the seq before
        # (the copy is dropped) or leaves it alone while its copy goes out (issue 15: a check
        # that ran while a copy's emit awaited its sockets replayed it as well).
        tracker.emitting(seq)
        try:
            await self._emit_event(message, namespace, wire)
            tracker.seen(seq, namespace)
        finally:
            tracker.emitted(seq)

    async def _emit_event(self, message: dict[str, Any], namespace: str, wire: Any) -> None:
        leaving = await follow_queue_members(self.server, namespace, wire)
        await super()._handle_emit(message)
        await leave(self.server, namespace, leaving)

    async def _publish(self, data: Any) -> Any:
        held = _batch.get()
        plain_emit = isinstance(data, dict) and data.get("method") == "emit" and not data.get("callback")
        seq = _delivering.get()
        if plain_emit and seq is not None:
            data = {**data, OUTBOX_SEQ: seq}
        if held is not None and plain_emit:
            held.append(data)  # published with the rest when ``batched`` ends
            return None
        for attempt in (1, 2):  # a connection left over from before a restart fails once
            try:
                if self.redis is None:  # one client: its pool reconnects after an error
                    self._redis_connect()
                result = await self.redis.publish(self.channel, self.json.dumps(data))
            except Exception:
                if attempt == 2:
                    if not self._publish_failing:
                        log.warning(
                            "redis fan-out publish failed; other nodes replay from the outbox",
                            exc_info=True,
                        )
                    self._publish_failing = True
                continue
            if self._publish_failing:
                log.info("redis fan-out publish works again")
                self._publish_failing = False
            return result
        return None

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        """python-socketio's loop, with a short capped backoff and a reconnect signal; its own
        client, so a publish reconnecting never swaps the pub/sub object under it."""
        delay = RETRY_MIN_SECONDS
        lost = False
        while True:
            client = aioredis.Redis.from_url(self.redis_url, **self.redis_options)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                delay = RETRY_MIN_SECONDS
                if lost:
                    lost = False
                    log.info("redis fan-out listener is back; catching up from the outbox")
                    if self.live is not None:
                        self.live.listener_reconnected()
                async for message in pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not lost:
                    log.warning("redis fan-out listener lost (%s); reconnecting", exc)
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
                with contextlib.suppress(Exception):
                    await client.aclose()


class LiveFanout:
    """Per node: replays to local sockets the dispatched events the Redis path did not bring.

    ``replay_hooks`` re-deliver what channels push outside the ``event`` stream (the widget's
    ``message``); the channel sends those pushes inside ``FanoutManager.delivering(seq)``, so
    a node that replayed ``seq`` drops its late Redis copy. ``sync_namespaces`` get a local
    ``sync`` when the listener reconnects.
    """

    def __init__(
        self,
        sio: socketio.AsyncServer,
        db: Database,
        namespaces: Sequence[str],
        event_rooms: Callable[[DomainEvent, str], list[str]],
    ) -> None:
        self.sio = sio
        self.db = db
        self.namespaces = list(namespaces)
        self.event_rooms = event_rooms
        self.tracker = GapTracker(namespaces=self.namespaces)
        self.replay_hooks: list[ReplayHook] = []
        self.sync_namespaces: list[str] = list(namespaces)
        self.replayed = 0
        """Events this node had to replay from the outbox (a metric for tests and benches)."""
        self._urgent = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def listener_reconnected(self) -> None:
        self._urgent = True
        self._wake.set()

    async def start(self) -> None:
        async with self.db.transaction() as session:
            last = await session.scalar(select(func.max(m.Event.id)).where(m.Event.dispatched.is_(True)))
        self.tracker.start_at(int(last or 0))
        self._task = asyncio.create_task(self._run(), name="live-fanout")

    async def stop(self) -> None:
        if self._task:
            await stop_tasks(self._task)
            self._task = None

    async def _run(self) -> None:
        while True:
            await wait_set(self._wake, CHECK_SECONDS)
            self._wake.clear()
            urgent, self._urgent = self._urgent, False
            try:
                while await self.check(urgent=urgent) >= CHECK_BATCH:
                    pass
                if urgent:
                    await self._sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._urgent = self._urgent or urgent
                log.warning("live fan-out check failed; retrying", exc_info=True)

    async def check(self, *, urgent: bool = False) -> int:
        """One comparison with the outbox; returns how many dispatched ids it looked at."""
        tracker = self.tracker
        async with self.db.transaction() as session:
            # Under the watermark: only what the relay dispatched late is missing there.
            late_window = (m.Event.id > tracker.floor, m.Event.id <= tracker.watermark)
            below = list(
                await session.scalars(
                    select(m.Event.id).where(m.Event.dispatched.is_(True), *late_window).order_by(m.Event.id)
                )
            )
            ids = list(
                await session.scalars(
                    select(m.Event.id)
                    .where(m.Event.dispatched.is_(True), m.Event.id > tracker.watermark)
                    .order_by(m.Event.id)
                    .limit(CHECK_BATCH)
                )
            )
            # No socket has connected yet (python-socketio starts the manager then): nothing to
            # deliver, only the checkpoint to move.
            idle = not getattr(self.sio, "manager_initialized", True)
            checkpoint = tracker.watermark
            replay = tracker.check(below + ids, urgent=urgent or idle)
            events: list[DomainEvent] = []
            if replay and not idle:
                query = select(m.Event).where(m.Event.id.in_(replay)).order_by(m.Event.id)
                rows = await session.scalars(query)
                events = [DomainEvent.from_row(r) for r in rows]
        if events:
            late = [e.id for e in events if e.id <= checkpoint]
            log.info(
                "replaying %d event(s) the redis fan-out did not bring (%d dispatched late: %s)",
                len(events),
                len(late),
                late[:20],
            )
            self.replayed += len(events)
            await self._replay(events)
        return len(ids)

    async def _replay(self, events: Sequence[DomainEvent]) -> None:
        arrived = self.tracker.arrived
        for event in events:
            wire = event.to_wire()
            masked = pii.masked_wire(wire)
            done = arrived.get(event.id, frozenset())
            for namespace in self.namespaces:
                if namespace in done:
                    continue  # its Redis copy came and went out; only the others are missing
                leaving = await follow_queue_members(self.sio, namespace, wire)
                targets = self.event_rooms(event, namespace)
                await pii.emit_event(self.sio, namespace, wire, masked, targets, ignore_queue=True)
                await leave(self.sio, namespace, leaving)
        failed = False
        for hook in self.replay_hooks:
            try:
                await hook(events)
            except Exception:
                failed = True
                log.exception("live fan-out replay hook failed")
        if failed:
            # The channels' own pushes of these events are dropped here as replayed
            # (``FanoutManager.delivering``): the clients ask for what they miss instead.
            await self._sync()

    async def _sync(self) -> None:
        """Tell this node's clients the Redis path had a hole: they ask for what follows."""
        data = {"seq": self.tracker.watermark}
        for namespace in self.sync_namespaces:
            await self.sio.emit("sync", data, namespace=namespace, ignore_queue=True)


def live_fanout(sio: socketio.AsyncServer) -> LiveFanout | None:
    """The node's ``LiveFanout`` (None in the embedded mode: one process, nothing to miss)."""
    manager = sio.manager
    return manager.live if isinstance(manager, FanoutManager) else None
