"""The lean Engine.IO session (``omni.realtime.transport``) keeps the library's guarantees:
ping/pong keeps a socket open, a silent peer is dropped after the ping timeout, an oversized
packet closes the connection, long-polling works with one worker and is refused with the
reason when several share the port. Raw WebSocket frames, a real uvicorn with ``omni serve``'s
settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio
import uvicorn
from engineio.async_socket import AsyncSocket

from omni.cli import server_config
from omni.realtime.live import FanoutManager
from omni.realtime.transport import InlineEmitManager, LeanSocket, OmniSocketServer, PacketQueue
from omni.settings import Settings
from tests.conftest import REDIS_URL, free_port
from tests.helpers import until

LIMIT = 1000


class Served:
    def __init__(self, sio: socketio.AsyncServer, url: str) -> None:
        self.sio = sio
        self.url = url
        self.disconnected: list[str] = []


async def _serve(workers: int) -> AsyncIterator[Served]:
    sio = OmniSocketServer(
        async_mode="asgi",
        transports=["websocket"] if workers > 1 else ["polling", "websocket"],
        workers=workers,
        ping_interval=0.3,
        ping_timeout=0.5,
        max_http_buffer_size=LIMIT,
    )
    port = free_port()
    served = Served(sio, f"http://127.0.0.1:{port}")

    @sio.on("disconnect", namespace="/")  # type: ignore[untyped-decorator]  # untyped library
    async def gone(sid: str, *_: Any) -> None:
        served.disconnected.append(sid)

    @sio.on("connect", namespace="/")  # type: ignore[untyped-decorator]  # untyped library
    async def hello(sid: str, *_: Any) -> None:
        return None

    server = uvicorn.Server(server_config(socketio.ASGIApp(sio), Settings(), host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, 30, what="the server")
    try:
        yield served
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def one_worker() -> AsyncIterator[Served]:
    async for served in _serve(1):
        yield served


@pytest.fixture
async def two_workers() -> AsyncIterator[Served]:
    async for served in _serve(2):
        yield served


async def _open(http: aiohttp.ClientSession, served: Served) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(served.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
    opening = await ws.receive()
    assert str(opening.data).startswith("0{")
    await ws.send_str("40")
    assert str((await ws.receive()).data).startswith("40{")
    return ws


async def test_a_socket_that_answers_pings_stays_open_and_a_silent_one_is_dropped(one_worker: Served) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await _open(http, one_worker)
        assert all(type(s) is LeanSocket for s in one_worker.sio.eio.sockets.values())
        pings = 0
        while pings < 4:  # four ping intervals, each answered
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            if msg.data == "2":
                pings += 1
                await ws.send_str("3")
        assert not ws.closed and one_worker.disconnected == []

        async def keep_answering() -> None:
            async for msg in ws:
                if msg.data == "2":
                    await ws.send_str("3")

        answering = asyncio.create_task(keep_answering())
        silent = await _open(http, one_worker)
        while True:  # never answers: the server ends the session after the ping timeout
            msg = await asyncio.wait_for(silent.receive(), 10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        await until(lambda: len(one_worker.disconnected) == 1, 10, what="the silent socket's disconnect")
        assert not ws.closed and not answering.done()
        answering.cancel()
        await ws.close()


async def test_an_oversized_packet_closes_the_connection(one_worker: Served) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await _open(http, one_worker)
        await ws.send_str('42["message","' + "x" * LIMIT + '"]')
        while (await asyncio.wait_for(ws.receive(), 10)).type == aiohttp.WSMsgType.TEXT:
            pass
        await until(lambda: len(one_worker.disconnected) == 1, 10, what="the disconnect")


async def test_long_polling_with_one_worker_and_refused_with_the_reason_with_two(
    one_worker: Served, two_workers: Served
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(one_worker.url + "/socket.io/?EIO=4&transport=polling") as ok:
            assert ok.status == 200 and (await ok.text()).startswith("0{")
        async with http.get(two_workers.url + "/socket.io/?EIO=4&transport=polling") as refused:
            assert refused.status == 400
            text = await refused.text()
        assert "long-polling is off" in text and "2 worker processes" in text
        ws = await _open(http, two_workers)  # WebSocket still works
        await ws.close()


async def test_packet_queue_keeps_asyncio_queue_semantics() -> None:
    queue = PacketQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # the getter waits
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    queue.put_nowait("a")
    await queue.put("b")
    assert await queue.get() == "a" and queue.get_nowait() == "b"
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    joined = asyncio.create_task(queue.join())
    await asyncio.sleep(0)
    assert not joined.done()
    queue.task_done()
    queue.task_done()
    await asyncio.wait_for(joined, 5)
    with pytest.raises(ValueError):
        queue.task_done()


@pytest.mark.parametrize(
    "data",
    [
        None,
        "text",
        3,
        2.5,
        True,
        b"raw",
        bytearray(b"raw"),
        ["event", {"seq": 1, "data": {"body": "hi", "attachments": [{"id": "f1", "size": 3}]}}],
        ["event", {"seq": 1, "data": {"attachments": [{"blob": b"\x00\x01"}]}}],
        {"deep": [[[{"x": [bytearray(b"z")]}]]]},
        ("a", b"in a tuple"),  # the library does not look into tuples; neither do we
        [{"k": ("x", b"y")}],
    ],
)
def test_the_quick_binary_check_answers_as_the_librarys(data: Any) -> None:
    """``OmniPacket`` (what every emit's packet and every Redis publish is checked with) finds
    bytes exactly where python-socketio's own recursive check finds them."""
    from omni.realtime.transport import OmniPacket, has_binary

    expected = socketio.packet.Packet.data_is_binary(data)
    assert has_binary(data) is expected
    assert OmniPacket.data_is_binary(data) is expected
    built = OmniPacket(socketio.packet.EVENT, data=["event", data], namespace="/operator")
    assert built.packet_type == (socketio.packet.BINARY_EVENT if expected else socketio.packet.EVENT)


async def _sockets(sio: socketio.AsyncServer, names: tuple[str, ...]) -> dict[str, tuple[str, AsyncSocket]]:
    """Engine.IO sessions as the library makes them, each connected to ``/operator``; what is
    emitted to one waits in its send queue (no WebSocket: the writer would take it from there)."""
    made = {}
    for name in names:
        sock = AsyncSocket(sio.eio, f"eio-{name}")
        sio.eio.sockets[sock.sid] = sock
        made[name] = (await sio.manager.connect(sock.sid, "/operator"), sock)
    return made


def _queued(sock: AsyncSocket) -> list[str]:
    got = []
    while not sock.queue.empty():
        got.append(sock.queue.get_nowait().data)
    return got


@pytest.mark.parametrize("distributed", [False, True], ids=["in-process", "redis"])
async def test_an_emit_reaches_every_recipient_in_order_without_a_trip_round_the_event_loop(
    distributed: bool,
) -> None:
    """Issue 15 (bench/README.md, fan9): the library's emit made a task per recipient and
    waited for them all, a trip round the event loop per emit. The relay's socket sink emits
    three or four times per event, so under load a batch's events reached the operators'
    sockets up to 1.7 s after they were committed while acks took 16 ms. The emit now puts the
    packet in each recipient's queue before it returns, without letting anything else run:
    every socket in any of the rooms gets it once, in emit order, ``skip_sid`` honoured; the
    Redis manager's local delivery goes the same way."""
    manager = (
        FanoutManager(REDIS_URL, f"omni-test-{uuid.uuid4().hex[:8]}:socketio")
        if distributed
        else InlineEmitManager()
    )
    sio = OmniSocketServer(async_mode="asgi", client_manager=manager)
    made = await _sockets(sio, ("a", "b", "c"))
    (a, sock_a), (b, sock_b), (_, sock_c) = made["a"], made["b"], made["c"]
    await sio.enter_room(a, "queue:1", namespace="/operator")
    await sio.enter_room(b, "queue:1", namespace="/operator")
    await sio.enter_room(b, "user:2", namespace="/operator")
    others: list[int] = []

    async def ready_meanwhile() -> None:
        others.append(1)

    waiting = asyncio.create_task(ready_meanwhile())
    if distributed:
        assert isinstance(manager, FanoutManager)
        async with manager.batched():  # the relay's sink: Redis gets the batch at the end
            await sio.emit("event", {"seq": 1}, to=["queue:1", "user:2"], namespace="/operator")
            await sio.emit("event", {"seq": 2}, to="queue:1", namespace="/operator", skip_sid=a)
            assert others == [], "nothing else ran while the emits went out"
    else:
        await sio.emit("event", {"seq": 1}, to=["queue:1", "user:2"], namespace="/operator")
        await sio.emit("event", {"seq": 2}, to="queue:1", namespace="/operator", skip_sid=a)
        assert others == [], "nothing else ran while the emits went out"
    await waiting
    one, two = '2/operator,["event",{"seq":1}]', '2/operator,["event",{"seq":2}]'
    assert _queued(sock_a) == [one]
    assert _queued(sock_b) == [one, two], "in both rooms, sent once"
    assert _queued(sock_c) == []
    if distributed:
        assert isinstance(manager, FanoutManager)
        if manager.redis is not None:
            await manager.redis.aclose()
