"""The Engine.IO layer under Omni's Socket.IO server: a leaner WebSocket session, and
long-polling refused when several worker processes share the port.

Why a subclass of the library's server at all:

- **Memory per idle socket** (bench/README.md, serve15). python-engineio keeps, for every
  WebSocket session, a writer task, a fresh reader task per received frame, a third task
  inside ``asyncio.wait_for`` around the send queue, and one more task per ping interval
  that only sleeps. Each task is a Task object, a coroutine frame and its futures. Here the
  reader loop runs in the connection's own ASGI task with ``asyncio.timeout`` (no extra
  task), the writer waits on the queue directly (the reader's timeout ends the session, and
  it wakes the writer), and the ping is a timer handle. Ping/pong, the ping timeout, the
  ``max_http_buffer_size`` limit and the close sequence behave as in the library; sessions
  upgraded from long-polling keep the library's path.
- **Several workers** (``omni serve --workers N``). A long-polling session is a series of
  HTTP requests that must all reach the process holding the session; the kernel spreads
  connections over the workers without looking at the ``sid``. With more than one worker the
  server speaks WebSocket only (one connection, one process for the session's life) and
  answers a long-polling request with a 400 that says why, instead of the library's bare
  "Invalid transport" or a session lost on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from typing import Any

import engineio
import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet
from engineio.async_socket import AsyncSocket

log = logging.getLogger(__name__)

POLLING_REFUSED = (
    "long-polling is off: this server runs {workers} worker processes and a polling session "
    "must reach the same process on every request; connect with the WebSocket transport "
    "(docs/deployment.md)"
)


class LeanSocket(AsyncSocket):  # type: ignore[misc]  # untyped library class
    """An Engine.IO session with fewer asyncio objects per WebSocket (module docstring)."""

    last_ping: float | None
    connected: bool
    upgraded: bool

    def schedule_ping(self) -> None:
        # Same rule as the library (a new ping only once the previous one was answered),
        # but a timer handle instead of a task that sleeps for the ping interval.
        if self.last_ping:
            self.last_ping = None
            asyncio.get_running_loop().call_later(self.server.ping_interval, self._ping_due)

    def _ping_due(self) -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.queue.put_nowait(packet.Packet(packet.PING))  # the queue is unbounded

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected:  # an upgrade from long-polling: the library's handshake
            await super()._websocket_handler(ws)
            return
        self.connected = True
        self.upgraded = True
        writer = asyncio.ensure_future(self._write(ws))
        timeout = self.server.ping_interval + self.server.ping_timeout
        limit = self.server.max_http_buffer_size
        while True:
            try:
                async with asyncio.timeout(timeout):
                    data = await ws.wait()
            except asyncio.CancelledError:
                break
            except Exception:  # closed by the peer (OSError), silent past the ping timeout
                break
            if data is None:
                break
            if len(data) > limit:
                log.info("engine.io %s: packet of %d exceeds %d, closing", self.sid, len(data), limit)
                break
            try:
                await self.receive(packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:
                log.exception("engine.io %s: receive error", self.sid)
        await self.queue.put(None)  # wakes the writer, which then closes the WebSocket
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _write(self, ws: Any) -> None:
        while True:
            packets = await self._next_packets()
            if not packets:
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except Exception:
                break
        await ws.close()

    async def _next_packets(self) -> list[packet.Packet]:
        """``poll()`` without its timeout task: the reader's timeout ends a silent session."""
        first = await self.queue.get()
        self.queue.task_done()
        if first is None:
            return []
        packets = [first]
        while True:
            try:
                pkt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets


class PacketQueue:
    """The session's send queue with ``asyncio.Queue``'s semantics as Engine.IO uses them
    (``get``/``get_nowait``/``put``/``put_nowait``/``task_done``/``join``, unbounded) in a
    fraction of its memory: ``asyncio.Queue`` allocates three deques and an ``Event`` (a
    fourth deque) per session, each with a 64-slot block, though the queue is nearly always
    empty. Waiters are created only while someone waits."""

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._getters: list[asyncio.Future[None]] | None = None
        self._joiners: list[asyncio.Future[None]] | None = None
        self._unfinished = 0

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._unfinished += 1
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_next()  # the item this getter was woken for goes to another
                raise
        return self._items.pop(0)

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            for joiner in self._joiners:
                if not joiner.done():
                    joiner.set_result(None)
            self._joiners = None

    async def join(self) -> None:
        if self._unfinished:
            joiner = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner


class _NoBody:
    """``wsgi.input`` of a WebSocket request, which has no body. The ASGI driver's own is an
    instance of a class it defines on every request (several KiB per socket, kept with the
    environ for the session's life)."""

    async def read(self, length: int | None = None) -> bytes:
        return b""


NO_BODY = _NoBody()


class _LeanSockets(dict[str, Any]):
    """The server's session table: a new WebSocket-capable session becomes a ``LeanSocket``
    as the library stores it (before its first packet), so the library's connect sequence
    stays the library's."""

    def __setitem__(self, sid: str, sock: Any) -> None:
        if type(sock) is AsyncSocket:
            sock.__class__ = LeanSocket
        super().__setitem__(sid, sock)


class OmniEngineServer(engineio.AsyncServer):  # type: ignore[misc]  # untyped library class
    _async: dict[str, Any]

    def __init__(self, *args: Any, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets = _LeanSockets()
        self.workers = workers
        translate = self._async["translate_request"]

        async def translate_request(*call: Any, **named: Any) -> Any:
            environ = await translate(*call, **named)
            if environ.get("asgi.scope", {}).get("type") == "websocket":
                environ["wsgi.input"] = NO_BODY
            return environ

        self._async = {**self._async, "translate_request": translate_request}

    def create_queue(self, *args: Any, **kwargs: Any) -> PacketQueue:
        return PacketQueue()

    async def handle_request(self, scope: Any, receive: Any, send: Any) -> Any:
        if "polling" not in self.transports and _transport(scope) == "polling":
            message = POLLING_REFUSED.format(workers=self.workers)
            log.info("refused a long-polling request: %s", message)
            environ = await self._async["translate_request"](scope, receive, send)
            return await self._make_response(self._bad_request(message), environ)
        return await super().handle_request(scope, receive, send)


def _transport(scope: Any) -> str:
    """The Engine.IO transport an ASGI request asks for (the library's default: polling)."""
    raw = scope.get("query_string") or b""
    query = urllib.parse.parse_qs(raw.decode("latin-1"))
    return str(query.get("transport", ["polling"])[0])


def has_binary(data: Any) -> bool:
    """``socketio.packet.Packet.data_is_binary`` (bytes anywhere in nested lists and dicts),
    walked with a stack instead of a recursive call, a list and a ``reduce`` per level: the
    library runs it on every packet it builds and every emit its Redis manager publishes, and
    an event's wire (a dozen values, a nested payload) made it the largest single Python cost
    of a relayed event (bench/README.md, widget5)."""
    stack = [data]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind in _PLAIN:
            continue
        elif isinstance(item, (bytes, bytearray)):
            return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_PLAIN = frozenset({str, int, float, bool, type(None)})


class OmniPacket(socketio.packet.Packet):  # type: ignore[misc]  # untyped library class
    """The library's packet with the quicker binary check (``has_binary``)."""

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        return has_binary(data)


class InlineEmitManager(socketio.AsyncManager):  # type: ignore[misc]  # untyped library class
    """``AsyncManager`` whose plain emit (no ack) puts the packet in each recipient's send
    queue in turn, instead of a task per recipient and an ``asyncio.wait`` for them all.

    Why: that wait is a trip round the event loop for every emit. The relay's socket sink
    emits three or four times per event (two namespaces, masked twins), so at 400 message
    legs a second a batch of N events waited about 4N loop iterations, each as long as the
    loop's whole queue of ready work: the events reached the operators' and visitors'
    sockets 0.3 to 1.7 s after they were committed, while the visitors' acks took 16 ms
    (bench/README.md, "fan9"). A recipient's queue is unbounded, so the put does not wait;
    the packets go out in the same order as before, from the sockets' own writer tasks."""

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
        namespace = namespace or "/"
        if callback is not None:  # an ack id per recipient: the library's way
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
            )
            return
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(
            socketio.packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        packets = [
            packet.Packet(packet.MESSAGE, p) for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        # Taken whole first: a send that finds its socket timed out closes it, which changes
        # the rooms being walked.
        recipients = [
            eio_sid for sid, eio_sid in self.get_participants(namespace, to or room) if sid not in skip
        ]
        for eio_sid in recipients:
            for pkt in packets:
                try:
                    await self.server._send_eio_packet(eio_sid, pkt)
                except Exception:  # one socket's failure must not keep the event from the rest
                    log.exception("send to %s failed", eio_sid)


class OmniSocketServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped library class
    """``socketio.AsyncServer`` on ``OmniEngineServer``, with ``OmniPacket``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", OmniPacket)
        super().__init__(*args, **kwargs)

    def _engineio_server_class(self) -> type[OmniEngineServer]:
        return OmniEngineServer
