"""A Redis restart mid-traffic must not cost live clients anything (issue 10, item 10).

Two real server processes share PostgreSQL and a Redis of this test's own (started here, on
its own port, so stopping it touches nobody else). An operator socket and a widget visitor
sit on node B and never reconnect; traffic is acked by both nodes before, during and after
the outage. Every acked message must reach both clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import socketio

from omni.db import Database
from omni.db import models as m
from tests import factories as f
from tests.conftest import free_port
from tests.helpers import HTTP_TIMEOUT, until, wait_ready
from tests.test_race import _node_env
from tests.test_realtime import OperatorClient

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


class RedisProcess:
    """A redis-server of the test's own, which the test may stop and start again."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - a server process for the test's lifetime
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), *NO_PERSISTENCE],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        client = aioredis.from_url(self.url)
        try:
            for _ in range(200):
                with contextlib.suppress(Exception):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis.log")
    try:
        yield server
    finally:
        server.stop()


class LiveOperator(OperatorClient):
    """Like the operator page: on ``sync`` it resumes after the last seq it applied."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token)
        self.syncs = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sio.on("sync", self._on_sync, namespace=self.ns)

    async def _on_sync(self, _data: Any = None) -> None:
        self.syncs += 1
        task = asyncio.create_task(self.resume())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def message_ids(self) -> set[int]:
        return {int(e["data"]["id"]) for e in self.events if e["type"] == "message.created"}


class LiveVisitor:
    """Like the widget: shows each message id once; on ``sync`` asks for what follows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.shown: dict[int, dict[str, Any]] = {}
        self.synced_up_to = 0
        """Every message up to this id is shown: the welcome's history, then each resume."""
        self.welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sio.on("welcome", self._on_welcome, namespace="/widget")
        self.sio.on("message", self._on_message, namespace="/widget")
        self.sio.on("sync", self._on_sync, namespace="/widget")

    async def _on_welcome(self, data: dict[str, Any]) -> None:
        if not self.welcome.done():
            self.welcome.set_result(data)
        for msg in data["messages"]:
            await self._on_message(msg)
        self.synced_up_to = max([self.synced_up_to, *(x["id"] for x in data["messages"])])

    async def _on_message(self, data: dict[str, Any]) -> None:
        self.shown.setdefault(int(data["id"]), data)

    async def _on_sync(self, _data: Any = None) -> None:
        task = asyncio.create_task(self.catch_up())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def catch_up(self) -> None:
        more = True
        while more:
            ack = await self.sio.call("resume", {"after": self.synced_up_to}, namespace="/widget", timeout=10)
            assert ack["ok"], ack
            for msg in ack["messages"]:
                await self._on_message(msg)
            self.synced_up_to = max([self.synced_up_to, *(x["id"] for x in ack["messages"])])
            more = bool(ack["more"])

    async def connect(self, inbox: str) -> None:
        await self.sio.connect(
            self.url, wait_timeout=10, namespaces=["/widget"], auth={"inbox": inbox}, transports=["websocket"]
        )
        await asyncio.wait_for(self.welcome, 10)

    async def send(self, body: str) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(
            "message",
            {"body": body, "client_id": f"c-{random.randrange(1 << 40)}", "name": "Ann"},
            namespace="/widget",
            timeout=20,
        )
        return ack

    def out_ids(self) -> set[int]:
        return {i for i, x in self.shown.items() if x["direction"] == "out"}


@dataclass
class Traffic:
    """What the nodes acked, by phase."""

    acked: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: {"before": [], "during": [], "after": []}
    )
    phase: str = "before"

    def count(self, phase: str) -> int:
        return len(self.acked[phase])

    def all(self) -> list[tuple[int, str]]:
        return [x for v in self.acked.values() for x in v]


@pytest.fixture
async def two_nodes(
    pg_url: str, tmp_path: Path, redis_server: RedisProcess
) -> AsyncIterator[tuple[list[str], dict[str, Any]]]:
    await redis_server.start()
    db = Database(pg_url)
    async with db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op", capacity=5)
        q = await f.queue(s, "web", [op], operator_timeout_seconds=120)
        ib = await f.inbox(s, q, channel="widget")
        seeded = {"inbox": ib.public_token}
    await db.dispose()
    env = _node_env(pg_url, f"restart-{random.randrange(1 << 30)}")
    env.update(OMNI_REDIS_URL=redis_server.url, OMNI_WIDGET_MESSAGES_PER_MINUTE="100000")
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - a server process for the test's lifetime
            [sys.executable, "-m", "omni.cli", "serve", "--host", "127.0.0.1", "--port", str(p)],
            env=env,
            stdout=(tmp_path / f"node{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i, p in enumerate(ports)
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, proc in zip(urls, procs, strict=True):
            await wait_ready(url, proc)
        yield urls, seeded
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


async def _token(url: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
        assert resp.status_code == 200, resp.text
        created = await client.post("/api/v1/me/tokens", json={"name": "socket"})
        token: str = created.json()["token"]
        return token


async def test_redis_restart_mid_traffic_loses_nothing_on_the_other_node(
    two_nodes: tuple[list[str], dict[str, Any]], redis_server: RedisProcess
) -> None:
    (node_a, node_b), seeded = two_nodes
    token = await _token(node_a, "op")
    watcher = LiveOperator(node_b, token)  # the operator's page, on node B
    sender = OperatorClient(node_a, token)  # the same operator typing through node A
    visitor = LiveVisitor(node_b)
    await watcher.connect()
    await sender.connect()
    assert (await watcher.call("set_status", {"status": "available"}))["ok"]
    await visitor.connect(seeded["inbox"])
    first = await visitor.send("hello")
    assert first["ok"], first
    conv_id = int(first["conversation_id"])
    offer = await watcher.wait_for("conversation.offered", timeout=30, id=conv_id)
    assert (await watcher.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]

    traffic = Traffic()
    stop = asyncio.Event()

    async def reply_from_node_a() -> None:
        n = 0
        while not stop.is_set():
            phase = traffic.phase
            ack = await sender.call("send", {"conversation_id": conv_id, "body": f"reply {n}"})
            if ack.get("ok"):
                traffic.acked[phase].append((int(ack["message"]["id"]), "out"))
            n += 1
            await asyncio.sleep(0.03)  # pacing: a person types, not a loop

    async def write_from_node_b() -> None:
        n = 0
        while not stop.is_set():
            phase = traffic.phase
            ack = await visitor.send(f"customer {n}")
            if ack.get("ok"):
                traffic.acked[phase].append((int(ack["message"]["id"]), "in"))
            n += 1
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(reply_from_node_a()), asyncio.create_task(write_from_node_b())]
    try:
        await until(lambda: traffic.count("before") >= 10, 120, what="traffic before the outage")
        traffic.phase = "during"
        redis_server.stop()
        await until(lambda: traffic.count("during") >= 30, 120, what="traffic acked while Redis is down")
        traffic.phase = "after"
        await redis_server.start()
        await until(lambda: traffic.count("after") >= 30, 120, what="traffic acked after Redis is back")
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    acked = traffic.all()
    replies = {i for i, d in acked if d == "out"}
    everything = {i for i, _ in acked}
    try:
        await until(
            lambda: everything <= watcher.message_ids(), 120, what="the operator on B to get every message"
        )
        await until(
            lambda: replies <= visitor.out_ids(), 120, what="the visitor on node B to get every reply"
        )
    finally:
        missing_op = sorted(everything - watcher.message_ids())
        missing_visitor = sorted(replies - visitor.out_ids())
        print(f"operator missed {missing_op}, visitor missed {missing_visitor}, syncs {watcher.syncs}")
    assert watcher.sio.connected and visitor.sio.connected, "nobody had to reconnect"
    assert watcher.syncs >= 1, "node B noticed its listener reconnect and told its clients"
    assert traffic.count("during") and traffic.count("after")
    await watcher.sio.disconnect()
    await sender.sio.disconnect()
    await visitor.sio.disconnect()
