"""Web chat widget benchmark: delivery latency both ways and memory per idle connection.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/widget.py [--widgets 1000] [--rate 200] [--duration 30]
                                     [--idle 5000] [--skip-idle] [--quick]
                                     [--out bench/results/widget.json]

What it does, on 127.0.0.1 only:

1. creates ``omni_bench_widget_<id>`` with the Alembic migrations and seeds operators
   (high capacity, chat weight 1), one auto-accepting queue and one widget inbox, with an
   API token per operator;
2. **delivery**: starts a server as a separate process (``omni serve``, or the bare
   python-socketio relay ``bench/relay_baseline.py``), connects the operators to
   ``/operator`` and ``--widgets`` visitors to ``/widget``, lets every visitor open its
   conversation (one message each, then waits until every conversation is assigned), then
   for ``--duration`` seconds the visitors send ``--rate`` messages per second in total
   (round robin). The operator handling a conversation answers every message it receives
   with ``send``. Both clients live in this process, so each latency is one monotonic clock:
   visitor ``message`` emit -> operator receives the ``message.created`` event, and operator
   ``send`` emit -> the visitor receives ``message``;
3. **idle memory**: starts a fresh server process, warms it up, reads its VmRSS, connects
   ``--idle`` visitors that then stay silent, reads VmRSS again; the difference / N is the
   cost of one idle widget connection. Same for the bare relay;
4. prints a table, writes JSON to ``--out`` and drops the database.

The clients speak Engine.IO 4 / Socket.IO 5 directly over aiohttp WebSockets (one
``ClientSession``, one reader task per socket): python-socketio's ``AsyncClient`` costs a
``ClientSession`` and several tasks per connection, too much for thousands in one process
that also has to time deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import secrets
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg  # type: ignore[import-untyped]
from benchkit import tree_cpu_seconds
from routing import LatencyStats, admin_execute, sqlalchemy_url, summarize
from sqlalchemy import func, select

from omni import seed as factory
from omni.db import Database
from omni.db import models as m
from omni.db.migrate import upgrade_async
from omni.domain import auth
from omni.domain.auth import hash_password

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESEND_AFTER_SECONDS = 3.0
"""The widget's own retry pause for a message the server could not store."""
DEFAULT_OUT = HERE / "results" / "widget.json"
RELAY_SCRIPT = HERE / "relay_baseline.py"
DEFAULT_RATE_LIMIT = 30
"""``OMNI_WIDGET_MESSAGES_PER_MINUTE`` default (omni/settings.py)."""

Handler = Callable[[str, Any, float], Awaitable[None]]
AckCallback = Callable[[Any, float], None]


T_START = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --- processes ----------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / RssAnon / RssFile / VmHWM of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = float(sum(values[:8]))
    return total - idle, total


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU used by the server, this client process and the whole machine over an interval."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.t0 = time.perf_counter()
        self.server0 = tree_cpu_seconds(server_pid)
        self.client0 = self_cpu_seconds()
        self.busy0, self.total0 = machine_busy()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        busy, total = machine_busy()
        return {
            "wall_seconds": round(wall, 3),
            "server_cores": round((tree_cpu_seconds(self.pid) - self.server0) / wall, 3),
            "client_cores": round((self_cpu_seconds() - self.client0) / wall, 3),
            "machine_busy_fraction": round((busy - self.busy0) / max(1.0, total - self.total0), 3),
        }


async def until_quiet(pid: int, *, cores: float = 0.05, window: float = 1.0, limit: float = 120) -> float:
    """Seconds until the server's CPU stays under ``cores`` for a whole ``window``: the
    opening phase leaves work behind it (queue positions, the report driver's catch-up) that
    would otherwise be timed as the first third's latency."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        before = tree_cpu_seconds(pid)
        await asyncio.sleep(window)
        if (tree_cpu_seconds(pid) - before) / window < cores:
            break
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server under test in its own process; stdout/stderr go to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, http: aiohttp.ClientSession, within: float = 300) -> None:
        with self.log_path.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{self.url}/bench-ready-probe") as resp:
                    await resp.read()
                    return  # any HTTP answer: the ASGI lifespan has completed
            await asyncio.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        await self.stop()
        raise RuntimeError(f"{self.name} did not start; log tail:\n{tail}")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            # omni serve --workers waits up to WORKER_STOP_SECONDS (30 s) for its workers.
            await asyncio.wait_for(self.proc.wait(), 45)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# --- a minimal Socket.IO client -----------------------------------------------------------


class SioError(Exception):
    pass


class SioSocket:
    """One Engine.IO 4 WebSocket carrying one Socket.IO 5 namespace (text packets only).

    ``handler(event, data, received_at)`` runs in the reader task for every server event;
    ``received_at`` is ``time.perf_counter()`` when the frame was taken off the socket.
    """

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, namespace: str, handler: Handler, deflate: bool
    ) -> None:
        self.http = http
        self.url = base_url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ns = namespace
        self.handler = handler
        self.deflate = deflate
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks: dict[int, AckCallback] = {}
        self._next_ack = 0
        self.closed = False

    async def connect(self, auth_data: dict[str, Any], within: float = 60) -> None:
        async with asyncio.timeout(within):
            self.ws = await self.http.ws_connect(
                self.url, autoping=True, compress=15 if self.deflate else 0, max_msg_size=0
            )
            opening = await self.ws.receive()
            if opening.type != aiohttp.WSMsgType.TEXT or not str(opening.data).startswith("0"):
                raise SioError(f"unexpected Engine.IO open packet: {opening.data!r}")
            await self.ws.send_str(f"40{self.ns},{json.dumps(auth_data)}")
            self._reader = asyncio.create_task(self._read())
            await self._connected

    async def emit(self, event: str, data: Any, on_ack: AckCallback | None = None) -> None:
        assert self.ws is not None
        ack = ""
        if on_ack is not None:
            self._next_ack += 1
            self._acks[self._next_ack] = on_ack
            ack = str(self._next_ack)
        await self.ws.send_str(f"42{self.ns},{ack}{json.dumps([event, data])}")

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.send_str(f"41{self.ns},")
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                now = time.perf_counter()
                data: str = msg.data
                if data == "2":  # Engine.IO ping
                    await self.ws.send_str("3")
                elif data.startswith("4"):
                    await self._packet(data[1:], now)
        finally:
            self.closed = True
            if not self._connected.done():
                self._connected.set_exception(SioError("closed before the namespace connected"))

    async def _packet(self, pkt: str, now: float) -> None:
        kind, rest = pkt[0], pkt[1:]
        if rest.startswith("/"):
            comma = rest.find(",")
            rest = "" if comma < 0 else rest[comma + 1 :]
        if kind == "2" or kind == "3":
            i = 0
            while i < len(rest) and rest[i].isdigit():
                i += 1
            ack_id = int(rest[:i]) if i else None
            args = json.loads(rest[i:])
            if kind == "2":
                await self.handler(args[0], args[1] if len(args) > 1 else None, now)
            elif ack_id is not None and (cb := self._acks.pop(ack_id, None)) is not None:
                cb(args[0] if args else None, now)
        elif kind == "0":
            if not self._connected.done():
                self._connected.set_result(None)
        elif kind == "4":
            if not self._connected.done():
                self._connected.set_exception(SioError(f"connection refused: {rest}"))
        elif kind == "1":
            self.closed = True


# --- the delivery run ---------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    """One server to measure, and how to talk to it."""

    name: str
    server: ServerProcess
    inbox_token: str
    operators: list[tuple[int, str]]
    """(user id, API token) per operator."""
    wait_assigned: Callable[[list[int]], Awaitable[None]]
    """Returns once every conversation id given is with an operator who can reply."""


@dataclass(slots=True)
class DeliveryResult:
    target: str
    widgets: int
    operators: int
    rate: float
    duration: float
    connect_seconds: float
    open_conversations_seconds: float
    quiet_after_open_seconds: float
    sent_in: int
    delivered_in: int
    lost_in: int
    replies_sent: int
    delivered_out: int
    lost_out: int
    duplicates: int
    duplicates_at_operator: int
    """A visitor message the operator's socket got twice (``message.created`` with the same
    client id); ``duplicates`` minus this is replies a visitor's socket got twice."""
    errors: dict[str, int]
    widget_to_operator: LatencyStats
    operator_to_widget: LatencyStats
    visitor_ack: LatencyStats
    operator_ack: LatencyStats
    widget_to_operator_by_third_p50_ms: list[float]
    operator_to_widget_by_third_p50_ms: list[float]
    widget_to_operator_by_second_ms: list[tuple[float, float]]
    """(p50, max) of each second's messages by send time: when a backlog formed and drained."""
    operator_to_widget_by_second_ms: list[tuple[float, float]]
    send_lateness_max_ms: float
    achieved_in_per_second: float
    achieved_out_per_second: float
    cpu: dict[str, float]
    server_rss_kib: dict[str, int]


class Visitor:
    def __init__(self, run: DeliveryRun, idx: int) -> None:
        self.run = run
        self.idx = idx
        self.conversation_id: int | None = None
        self.welcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sock = SioSocket(run.http, run.target.server.url, "/widget", self.on_event, run.deflate)

    async def on_event(self, event: str, data: Any, now: float) -> None:
        if event == "message":
            self.run.widget_message(data, now)
        elif event == "welcome" and not self.welcome.done():
            self.welcome.set_result(data)


class Operator:
    def __init__(self, run: DeliveryRun, user_id: int, token: str) -> None:
        self.run = run
        self.user_id = user_id
        self.token = token
        self.sock = SioSocket(run.http, run.target.server.url, "/operator", self.on_event, run.deflate)

    async def on_event(self, event: str, data: Any, now: float) -> None:
        if event == "event" and isinstance(data, dict) and data.get("type") == "message.created":
            await self.run.operator_event(self, data, now)


class DeliveryRun:
    """Visitors and operators of one target; all the bookkeeping of one delivery run."""

    def __init__(
        self, http: aiohttp.ClientSession, target: Target, args: argparse.Namespace, deflate: bool
    ) -> None:
        self.http = http
        self.target = target
        self.args = args
        self.deflate = deflate
        self.in_sent: dict[str, float] = {}
        """client id -> send time of visitor messages not yet seen by their operator."""
        self.out_sent: dict[str, float] = {}
        """client id -> send time of operator replies not yet seen by their visitor."""
        self.delivered: set[str] = set()
        self.in_lat: list[tuple[float, float]] = []  # (sent at, latency)
        self.out_lat: list[tuple[float, float]] = []
        self.visitor_ack: list[float] = []
        self._resends: set[asyncio.Task[None]] = set()
        self.operator_ack: list[float] = []
        self.errors: dict[str, int] = {}
        self.duplicates = 0
        self.duplicates_at_operator = 0
        self.replies_sent = 0
        self.reply = False
        self.t0 = 0.0
        self.sending = False
        self.drained = asyncio.Event()
        """Set once sending is over and nothing is in flight any more."""

    def _check_drained(self) -> None:
        if not self.sending and not self.in_sent and not self.out_sent:
            self.drained.set()

    def _error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1

    # event handlers (reader tasks)

    def widget_message(self, data: Any, now: float) -> None:
        if not isinstance(data, dict) or data.get("direction") != "out":
            return
        cid = str(data.get("client_id") or "")
        sent = self.out_sent.pop(cid, None)
        if sent is not None:
            self.out_lat.append((sent - self.t0, now - sent))
            self.delivered.add(cid)
            self._check_drained()
        elif cid in self.delivered:
            self.duplicates += 1

    async def operator_event(self, op: Operator, wire: dict[str, Any], now: float) -> None:
        msg = wire.get("data") or {}
        if msg.get("direction") != "in" or wire.get("user_id") != op.user_id:
            return
        cid = str(msg.get("client_id") or "")
        sent = self.in_sent.pop(cid, None)
        if sent is None:
            if cid in self.delivered:
                self.duplicates += 1
                self.duplicates_at_operator += 1
            return
        self.in_lat.append((sent - self.t0, now - sent))
        self.delivered.add(cid)
        if not self.reply or not cid.startswith("b"):
            self._check_drained()
            return
        reply_id = "r" + cid[1:]
        t = time.perf_counter()
        self.out_sent[reply_id] = t
        self.replies_sent += 1
        await op.sock.emit(
            "send",
            {"conversation_id": wire["conversation_id"], "body": f"reply to {cid}", "client_id": reply_id},
            self._acked(self.operator_ack, t, "operator_send"),
        )

    def _acked(self, into: list[float], sent: float, what: str) -> AckCallback:
        def done(ack: Any, now: float) -> None:
            if isinstance(ack, dict) and ack.get("ok"):
                into.append(now - sent)
            else:
                err = ack.get("error") if isinstance(ack, dict) else "bad-ack"
                self._error(f"{what}:{err}")

        return done

    async def _send_visitor_message(self, v: Visitor, data: dict[str, Any], first_sent: float) -> None:
        """Like the widget: a message the server says it could not store ("unavailable") is
        sent again with the same client id after a pause; latency counts from the first send."""

        def done(ack: Any, now: float) -> None:
            if isinstance(ack, dict) and ack.get("error") == "unavailable":
                self._error("visitor_message:unavailable (resent)")
                task = asyncio.get_running_loop().create_task(self._resend(v, data, first_sent))
                self._resends.add(task)
                task.add_done_callback(self._resends.discard)
                return
            self._acked(self.visitor_ack, first_sent, "visitor_message")(ack, now)

        await v.sock.emit("message", data, done)

    async def _resend(self, v: Visitor, data: dict[str, Any], first_sent: float) -> None:
        await asyncio.sleep(RESEND_AFTER_SECONDS)
        with contextlib.suppress(Exception):
            await self._send_visitor_message(v, data, first_sent)

    # phases

    async def run(self) -> DeliveryResult:
        a = self.args
        server = self.target.server
        operators = [Operator(self, uid, tok) for uid, tok in self.target.operators]
        for op in operators:
            await op.sock.connect({"token": op.token})
        visitors = [Visitor(self, i) for i in range(a.widgets)]
        t_connect = time.perf_counter()
        gate = asyncio.Semaphore(a.connect_concurrency)

        async def connect(v: Visitor) -> None:
            async with gate:
                await v.sock.connect({"inbox": self.target.inbox_token})
                await asyncio.wait_for(v.welcome, 60)

        await gather_progress(
            [connect(v) for v in visitors], f"{self.target.name}: connecting {a.widgets} visitors"
        )
        connect_seconds = time.perf_counter() - t_connect
        log(f"  {a.widgets} visitors connected in {connect_seconds:.1f}s")

        # Every visitor opens its conversation; routing assigns them (not timed).
        t_open = time.perf_counter()

        async def open_conversation(v: Visitor) -> None:
            async with gate:
                done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                await v.sock.emit(
                    "message",
                    {"body": "hello, bench here", "client_id": f"w{v.idx}", "name": f"Bench visitor {v.idx}"},
                    lambda ack, _now: done.set_result(ack) if not done.done() else None,
                )
                ack = await asyncio.wait_for(done, 60)
                if not (isinstance(ack, dict) and ack.get("ok")):
                    raise RuntimeError(f"opening message of visitor {v.idx} refused: {ack}")
                v.conversation_id = int(ack["conversation_id"])

        await gather_progress(
            [open_conversation(v) for v in visitors], f"{self.target.name}: opening conversations"
        )
        await self.target.wait_assigned([v.conversation_id for v in visitors if v.conversation_id])
        open_seconds = time.perf_counter() - t_open
        log(f"  {a.widgets} conversations opened and assigned in {open_seconds:.1f}s")
        # Per worker process: two idle workers (Engine.IO pings of 500 visitors each, the routing
        # tick) took 0.08 cores together and the wait always ran to its 120 s limit.
        workers = self.args.server_workers if self.target.name == "omni" else 1
        quiet = await until_quiet(server.pid, cores=self.args.quiet_cores * workers, window=self.args.settle)
        log(f"  server quiet after {quiet:.1f}s")
        self.in_sent.clear()
        self.in_lat.clear()
        self.visitor_ack.clear()
        self.errors.clear()
        self.duplicates = self.duplicates_at_operator = 0

        # Timed phase.
        self.reply = a.reply
        self.sending = True
        total = int(a.rate * a.duration)
        rss_before = proc_status(server.pid)
        spy = await start_profile(a.profile, server.pid, a.duration) if self.target.name == "omni" else None
        profiled = a.cprofile is not None and self.target.name == "omni"
        if profiled:
            os.kill(server.pid, signal.SIGUSR1)  # bench/profiled_serve.py: the window opens
        cpu = CpuMeter(server.pid)
        self.t0 = time.perf_counter() + 0.2
        lateness = 0.0
        next_log = self.t0 + 5
        for j in range(total):
            due = self.t0 + j / a.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            lateness = max(lateness, now - due)
            v = visitors[j % a.widgets]
            cid = f"b{j}"
            self.in_sent[cid] = now
            await self._send_visitor_message(v, {"body": f"bench message {j}", "client_id": cid}, now)
            if now >= next_log:
                next_log += 5
                log(
                    f"  t={now - self.t0:5.1f}s sent {j + 1}/{total}, at operator {len(self.in_lat)}, "
                    f"replies at visitor {len(self.out_lat)}, in flight {len(self.in_sent)}+"
                    f"{len(self.out_sent)}"
                )
        send_end = time.perf_counter()
        self.sending = False
        self._check_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drained.wait(), a.drain)
        cpu_used = cpu.stop()
        if profiled:
            await stop_cprofile(server.pid, a.cprofile, total)
        if spy is not None:
            await spy.wait()
            log(f"  py-spy profile of the timed phase: {a.profile}")
        rss_after = proc_status(server.pid)
        drained = time.perf_counter() - send_end
        log(
            f"  sent {total} in {send_end - self.t0:.1f}s; drained in {drained:.1f}s; "
            f"still missing {len(self.in_sent)} in, {len(self.out_sent)} out"
        )
        self.reply = False
        lost_in, lost_out = len(self.in_sent), len(self.out_sent)
        # Counted at the same instant: replies still arriving while the sockets close would
        # count as delivered and lost (1,338 + 177 of 1,500 in one run).
        delivered_in, delivered_out = len(self.in_lat), len(self.out_lat)
        for op in operators:
            await op.sock.close()
        await close_all([v.sock for v in visitors])
        last_in = max((s + lat for s, lat in self.in_lat), default=0.0)
        last_out = max((s + lat for s, lat in self.out_lat), default=0.0)
        return DeliveryResult(
            target=self.target.name,
            widgets=a.widgets,
            operators=len(operators),
            rate=a.rate,
            duration=a.duration,
            connect_seconds=round(connect_seconds, 3),
            open_conversations_seconds=round(open_seconds, 3),
            quiet_after_open_seconds=round(quiet, 1),
            sent_in=total,
            delivered_in=delivered_in,
            lost_in=lost_in,
            replies_sent=self.replies_sent,
            delivered_out=delivered_out,
            lost_out=lost_out,
            duplicates=self.duplicates,
            duplicates_at_operator=self.duplicates_at_operator,
            errors=dict(self.errors),
            widget_to_operator=summarize([lat for _, lat in self.in_lat]),
            operator_to_widget=summarize([lat for _, lat in self.out_lat]),
            visitor_ack=summarize(self.visitor_ack),
            operator_ack=summarize(self.operator_ack),
            widget_to_operator_by_third_p50_ms=by_third(self.in_lat, a.duration),
            operator_to_widget_by_third_p50_ms=by_third(self.out_lat, a.duration),
            widget_to_operator_by_second_ms=by_second(self.in_lat),
            operator_to_widget_by_second_ms=by_second(self.out_lat),
            send_lateness_max_ms=round(lateness * 1000, 3),
            achieved_in_per_second=round(len(self.in_lat) / last_in, 1) if last_in else 0.0,
            achieved_out_per_second=round(len(self.out_lat) / last_out, 1) if last_out else 0.0,
            cpu=cpu_used,
            server_rss_kib={
                "before_timed_phase": rss_before["VmRSS"],
                "after_timed_phase": rss_after["VmRSS"],
                "peak": rss_after["VmHWM"],
            },
        )


async def start_profile(path: Path | None, pid: int, seconds: float) -> asyncio.subprocess.Process | None:
    """``--profile``: py-spy samples the Omni server over the timed phase (collapsed stacks,
    one line per stack with its sample count; ``--idle`` frames included so waiting shows)."""
    if path is None:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    argv = [str(spy), "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", "200"]
    argv += ["-f", "raw", "-o", str(path), "--nonblocking"]
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def stop_cprofile(pid: int, path: Path, messages: int) -> None:
    """``--cprofile``: close the window and wait for the server to write its profile."""
    written = lambda: path.exists() and path.stat().st_size > 0  # noqa: E731  # a local check
    clear = lambda: path.unlink(missing_ok=True)  # noqa: E731  # an earlier run's profile
    clear()
    os.kill(pid, signal.SIGUSR2)
    for _ in range(300):
        if written():
            await asyncio.sleep(0.5)  # written in one go; let it finish
            break
        await asyncio.sleep(0.1)
    log(f"  cProfile (CPU time) of the timed phase: {path}; read it with")
    log(f"    python bench/profiled_serve.py --summary {path} --per {messages}")


def by_third(samples: list[tuple[float, float]], duration: float) -> list[float]:
    """p50 latency (ms) of messages sent in the first, middle and last third of the run:
    a growing figure means the server fell behind (a queue built up)."""
    out = []
    for k in range(3):
        lo, hi = duration * k / 3, duration * (k + 1) / 3
        part = [lat for at, lat in samples if lo <= at < hi or (k == 2 and at >= hi)]
        out.append(summarize(part).p50_ms)
    return out


def by_second(samples: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(p50, max) latency (ms) of the messages sent in each second of the run, in order."""
    buckets: dict[int, list[float]] = {}
    for at, lat in samples:
        buckets.setdefault(int(at), []).append(lat)
    return [(summarize(part).p50_ms, round(max(part) * 1000, 1)) for _, part in sorted(buckets.items())]


async def gather_progress(jobs: Sequence[Awaitable[None]], what: str) -> None:
    total = len(jobs)
    done = 0
    step = max(1, total // 5)

    async def one(job: Awaitable[None]) -> None:
        nonlocal done
        await job
        done += 1
        if done % step == 0 or done == total:
            log(f"  {what}: {done}/{total}")

    await asyncio.gather(*(one(j) for j in jobs))


async def close_all(socks: Sequence[SioSocket], batch: int = 500) -> None:
    for start in range(0, len(socks), batch):
        await asyncio.gather(*(s.close() for s in socks[start : start + batch]))


# --- idle memory --------------------------------------------------------------------------


@dataclass(slots=True)
class IdleResult:
    target: str
    connections: int
    connected: int
    connect_seconds: float
    rss_before_kib: int
    rss_after_kib: int
    rss_anon_before_kib: int
    rss_anon_after_kib: int
    rss_after_disconnect_kib: int
    per_connection_kib: float
    per_connection_anon_kib: float
    hold_seconds: float
    server_cores_while_idle: float
    error: str = ""


async def idle_memory(
    http: aiohttp.ClientSession,
    name: str,
    server: ServerProcess,
    inbox_token: str,
    n: int,
    *,
    concurrency: int,
    deflate: bool,
    hold: float,
    settle: float,
) -> IdleResult:
    async def noop(_event: str, _data: Any, _now: float) -> None:
        return None

    errors: list[str] = []

    async def open_socket(gate: asyncio.Semaphore, into: list[SioSocket]) -> None:
        async with gate:
            if errors:
                return  # the server or this machine ran out of something: stop there
            sock = SioSocket(http, server.url, "/widget", noop, deflate)
            try:
                await sock.connect({"inbox": inbox_token})
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                await sock.close()
                return
            into.append(sock)

    # Warm up: imports, pools, caches and the allocator's first arenas, outside the sample.
    warm: list[SioSocket] = []
    gate = asyncio.Semaphore(concurrency)
    await asyncio.gather(*(open_socket(gate, warm) for _ in range(min(100, n))))
    await close_all(warm)
    await asyncio.sleep(settle)
    before = proc_status(server.pid)
    socks: list[SioSocket] = []
    t0 = time.perf_counter()
    await gather_progress([open_socket(gate, socks) for _ in range(n)], f"{name}: {n} idle connections")
    error = errors[0] if errors else ""
    if error:
        log(f"  {name}: stopped at {len(socks)} connections: {error} ({len(errors)} failures)")
    connect_seconds = time.perf_counter() - t0
    await asyncio.sleep(settle)
    cpu = CpuMeter(server.pid)
    await asyncio.sleep(hold)  # Engine.IO pings every 25 s: the cost of keeping them open
    held = cpu.stop()
    open_now = sum(1 for s in socks if not s.closed)
    after = proc_status(server.pid)
    await close_all(socks)
    await asyncio.sleep(settle)
    gone = proc_status(server.pid)
    count = max(1, open_now)
    return IdleResult(
        target=name,
        connections=n,
        connected=open_now,
        connect_seconds=round(connect_seconds, 3),
        rss_before_kib=before["VmRSS"],
        rss_after_kib=after["VmRSS"],
        rss_anon_before_kib=before["RssAnon"],
        rss_anon_after_kib=after["RssAnon"],
        rss_after_disconnect_kib=gone["VmRSS"],
        per_connection_kib=round((after["VmRSS"] - before["VmRSS"]) / count, 2),
        per_connection_anon_kib=round((after["RssAnon"] - before["RssAnon"]) / count, 2),
        hold_seconds=held["wall_seconds"],
        server_cores_while_idle=held["server_cores"],
        error=error,
    )


# --- database -----------------------------------------------------------------------------


def check_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to use {what} on '{host}': the benchmark runs on loopback only")


@dataclass(slots=True)
class Seeded:
    inbox_token: str
    queue_id: int
    operators: list[tuple[int, str]]
    capacity: int


async def seed(db: Database, *, operators: int, capacity: int) -> Seeded:
    password_hash = hash_password(secrets.token_urlsafe(16))  # nobody logs in with a password
    async with db.transaction() as s:
        users = [
            await factory.user(
                s,
                f"bench-op-{i:03d}",
                password_hash=password_hash,
                display_name=f"Bench operator {i}",
                handles_voice=False,
                capacity=capacity,
                voice_weight=capacity,
            )
            for i in range(operators)
        ]
        queue = await factory.queue(
            s,
            "bench-widget",
            users,
            queue_timeout_seconds=3600,
            operator_timeout_seconds=600,
            auto_accept=True,
        )
        inbox = await factory.inbox(
            s, queue, "widget", "bench-widget", public_token=f"bench-{uuid.uuid4().hex}"
        )
        tokens = [(u.id, (await auth.do_create_api_token(s, u, "bench"))[1]) for u in users]
        return Seeded(inbox.public_token, queue.id, tokens, capacity)


def omni_waiter(db: Database, timeout: float) -> Callable[[list[int]], Awaitable[None]]:
    async def wait(conv_ids: list[int]) -> None:
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            async with db.transaction() as s:
                active = int(
                    await s.scalar(
                        select(func.count())
                        .select_from(m.Conversation)
                        .where(
                            m.Conversation.id.in_(conv_ids),
                            m.Conversation.status == m.ConversationStatus.ACTIVE,
                            m.Conversation.assigned_user_id.is_not(None),
                        )
                    )
                    or 0
                )
            if active >= len(conv_ids):
                return
            if active != last:
                log(f"  assigned {active}/{len(conv_ids)}")
                last = active
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {active}/{len(conv_ids)} conversations assigned after {timeout}s")
            await asyncio.sleep(1)

    return wait


async def nothing_to_wait_for(_conv_ids: list[int]) -> None:
    return None


async def machine_info(admin_dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        pg = {n: await conn.fetchval(f"SHOW {n}") for n in ("server_version", "fsync", "synchronous_commit")}
    finally:
        await conn.close()
    return {
        "nproc": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            p: version(p)
            for p in (
                "python-socketio",
                "python-engineio",
                "uvicorn",
                "websockets",
                "aiohttp",
                "sqlalchemy",
                "asyncpg",
                "litestar",
            )
        },
        "postgres": pg,
        "open_files_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


# --- report -------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    mach = report["machine"]
    p = report["params"]
    print()
    print(
        f"machine: {mach['nproc']} CPUs, Python {mach['python']}, python-socketio "
        f"{mach['versions']['python-socketio']}, uvicorn {mach['versions']['uvicorn']}, "
        f"loadavg {mach['loadavg_at_start'][0]:.2f} -> {mach['loadavg_at_end'][0]:.2f}"
    )
    print(
        f"omni server: OMNI_WIDGET_MESSAGES_PER_MINUTE={p['widget_messages_per_minute']}, "
        f"{p['operators']} operators (capacity {p['capacity']}, chat weight 1), auto-accepting queue"
    )
    deliveries = report.get("delivery") or {}
    if deliveries:
        names = list(deliveries)
        print(
            f"\ndelivery: {p['widgets']} visitors, {p['rate']:g} msg/s for {p['duration']:g}s, "
            f"operators {'answer every message' if p['reply'] else 'do not answer'}\n"
        )
        rows: list[tuple[str, ...]] = []

        def row(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
            rows.append((label, *(fn(deliveries[n]) for n in names)))

        def lat(key: str, stat: str) -> Callable[[dict[str, Any]], str]:
            return lambda d: f"{d[key][stat]:.1f}"

        def thirds(key: str) -> Callable[[dict[str, Any]], str]:
            return lambda d: " / ".join(f"{x:.0f}" for x in d[f"{key}_by_third_p50_ms"])

        row("visitor messages sent", lambda d: str(d["sent_in"]))
        row("  delivered to operator / lost", lambda d: f"{d['delivered_in']} / {d['lost_in']}")
        row("operator replies sent", lambda d: str(d["replies_sent"]))
        row("  delivered to visitor / lost", lambda d: f"{d['delivered_out']} / {d['lost_out']}")
        row(
            "duplicates (at operator + at visitor), errors",
            lambda d: (
                f"{d['duplicates']} ({d.get('duplicates_at_operator', 0)} + "
                f"{d['duplicates'] - d.get('duplicates_at_operator', 0)}), {sum(d['errors'].values())}"
            ),
        )
        for key, label in (
            ("widget_to_operator", "widget->operator"),
            ("operator_to_widget", "operator->widget"),
        ):
            for stat in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
                row(f"{label} {stat.replace('_ms', '')} ms", lat(key, stat))
            row(f"{label} p50 ms by third", thirds(key))
        row(
            "visitor ack p50 / p99 ms",
            lambda d: f"{d['visitor_ack']['p50_ms']:.1f} / {d['visitor_ack']['p99_ms']:.1f}",
        )
        row(
            "operator ack p50 / p99 ms",
            lambda d: f"{d['operator_ack']['p50_ms']:.1f} / {d['operator_ack']['p99_ms']:.1f}",
        )
        row(
            "delivered msg/s in / out",
            lambda d: f"{d['achieved_in_per_second']:.0f} / {d['achieved_out_per_second']:.0f}",
        )
        row("server CPU cores", lambda d: f"{d['cpu']['server_cores']:.2f}")
        row("bench client CPU cores", lambda d: f"{d['cpu']['client_cores']:.2f}")
        row("machine busy", lambda d: f"{d['cpu']['machine_busy_fraction'] * 100:.0f}%")
        row("max send lateness ms", lambda d: f"{d['send_lateness_max_ms']:.1f}")
        print_rows(["", *names], rows)
    idle = report.get("idle") or {}
    if idle:
        names = list(idle)
        print(f"\nidle widget connections: {p['idle']} requested\n")
        rows = []
        idle_rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
            ("connected", lambda d: str(d["connected"])),
            ("connect time s", lambda d: f"{d['connect_seconds']:.1f}"),
            ("server VmRSS before MiB", lambda d: f"{d['rss_before_kib'] / 1024:.1f}"),
            ("server VmRSS after MiB", lambda d: f"{d['rss_after_kib'] / 1024:.1f}"),
            ("VmRSS after disconnect MiB", lambda d: f"{d['rss_after_disconnect_kib'] / 1024:.1f}"),
            ("KiB per connection (VmRSS)", lambda d: f"{d['per_connection_kib']:.1f}"),
            ("KiB per connection (RssAnon)", lambda d: f"{d['per_connection_anon_kib']:.1f}"),
            ("server CPU cores while idle", lambda d: f"{d['server_cores_while_idle']:.3f}"),
        ]
        for label, fn in idle_rows:
            rows.append((label, *(fn(idle[n]) for n in names)))
        print_rows(["", *names], rows)
        for n in names:
            if idle[n]["error"]:
                print(f"{n}: {idle[n]['error']}")


def print_rows(header: list[str], rows: list[tuple[str, ...]]) -> None:
    width = max(len(r[0]) for r in rows)
    cols = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(1, len(header))]
    print(f"{header[0]:{width}}  " + "  ".join(f"{h:>{c}}" for h, c in zip(header[1:], cols, strict=True)))
    for r in rows:
        print(f"{r[0]:{width}}  " + "  ".join(f"{v:>{c}}" for v, c in zip(r[1:], cols, strict=True)))


# --- main ---------------------------------------------------------------------------------


def raise_open_files(needed: int) -> list[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        log(f"warning: open files limit {soft} is below the {needed} this run needs")
    return [soft, hard]


def widget_rate_limit(args: argparse.Namespace) -> int:
    """Keep Omni's default flood limit unless the configured load itself would exceed it."""
    if args.widget_rate_limit:
        return int(args.widget_rate_limit)
    per_visitor_per_minute = math.ceil(args.rate / max(1, args.widgets) * 60) + 1  # + the opening message
    return (
        DEFAULT_RATE_LIMIT
        if per_visitor_per_minute <= DEFAULT_RATE_LIMIT // 2
        else per_visitor_per_minute * 4
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    admin_dsn: str = args.dsn
    check_loopback(admin_dsn, "PostgreSQL")
    check_loopback(args.redis_url, "Redis")
    limits = raise_open_files(max(args.widgets, args.idle) + 1000)
    run_id = uuid.uuid4().hex[:8]
    dbname = f"omni_bench_widget_{run_id}"
    prefix = f"omni-bench-{run_id}"
    started = datetime.now(UTC)
    machine = await machine_info(admin_dsn)
    machine["open_files_limit"] = limits
    rate_limit = widget_rate_limit(args)
    capacity = max(1000, args.widgets)
    tmp = Path(tempfile.mkdtemp(prefix="omni-bench-widget-"))
    report: dict[str, Any] = {
        "benchmark": "widget",
        "started_at": started.isoformat(),
        "params": {
            "widgets": args.widgets,
            "rate": args.rate,
            "duration": args.duration,
            "drain": args.drain,
            "idle": 0 if args.skip_idle else args.idle,
            "operators": args.operators,
            "capacity": capacity,
            "reply": args.reply,
            "deflate": args.deflate,
            "widget_messages_per_minute": rate_limit,
            "relay_redis": args.relay_redis,
            "server_env": args.server_env,
            "client": "raw Engine.IO 4 / Socket.IO 5 over aiohttp WebSockets (this file)",
        },
        "machine": machine,
        "delivery": {},
        "idle": {},
    }
    omni_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OMNI_")},
        "OMNI_DATABASE_URL": sqlalchemy_url(admin_dsn, dbname),
        "OMNI_REDIS_URL": args.redis_url,
        "OMNI_REDIS_PREFIX": prefix,
        "OMNI_SECRET_KEY": "bench-secret-" + secrets.token_urlsafe(32),
        "OMNI_DATA_DIR": str(tmp / "data"),
        "OMNI_LOG_LEVEL": "WARNING",
        "OMNI_WIDGET_MESSAGES_PER_MINUTE": str(rate_limit),
        # Every simulated visitor comes from loopback and opens its chat in the same minute.
        "OMNI_WIDGET_NEW_CONVERSATIONS_PER_ADDRESS": str(10 * (args.widgets + args.idle)),
        "OMNI_WIDGET_NEW_CONVERSATIONS_PER_INBOX": str(10 * (args.widgets + args.idle)),
        **dict(kv.split("=", 1) for kv in args.server_env),
    }
    omni_argv = [*omni_command(), "serve", "--host", "127.0.0.1"]
    if args.cprofile is not None:
        wrapper = [sys.executable, str(HERE / "profiled_serve.py"), str(args.cprofile.resolve())]
        omni_argv = [*wrapper, *omni_argv[-3:]]
    if args.server_workers > 1:
        omni_argv += ["--workers", str(args.server_workers)]
    relay_argv = [sys.executable, str(RELAY_SCRIPT), "--host", "127.0.0.1"]
    if args.relay_redis:
        relay_argv += ["--redis-url", args.redis_url]

    def omni_server(tag: str) -> ServerProcess:
        port = free_port()
        return ServerProcess(
            f"omni-{tag}", [*omni_argv, "--port", str(port)], omni_env, tmp / f"omni-{tag}.log", port
        )

    def relay_server(tag: str) -> ServerProcess:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
        return ServerProcess(
            f"relay-{tag}", [*relay_argv, "--port", str(port)], env, tmp / f"relay-{tag}.log", port
        )

    log(f"creating {dbname} (migrations); logs in {tmp}")
    await admin_execute(admin_dsn, f"CREATE DATABASE {dbname}")
    db = Database(sqlalchemy_url(admin_dsn, dbname))
    running: list[ServerProcess] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
    try:
        await upgrade_async(sqlalchemy_url(admin_dsn, dbname))
        seeded = await seed(db, operators=args.operators, capacity=capacity)
        relay_ops = [(i + 1, f"bench-op-{i + 1}") for i in range(args.operators)]

        async def delivery(server: ServerProcess, target: Target) -> None:
            running.append(server)
            await server.start(http)
            try:
                result = await DeliveryRun(http, target, args, args.deflate).run()
            finally:
                await server.stop()
            report["delivery"][target.name] = asdict(result)

        if args.widgets > 0:
            log(f"delivery through the bare relay: {args.widgets} visitors, {args.rate} msg/s")
            srv = relay_server("delivery")
            await delivery(srv, Target("bare relay", srv, "", relay_ops, nothing_to_wait_for))
            log(f"delivery through Omni: {args.widgets} visitors, {args.rate} msg/s")
            srv = omni_server("delivery")
            waiter = omni_waiter(db, timeout=120 + args.widgets * 0.5)
            await delivery(srv, Target("omni", srv, seeded.inbox_token, seeded.operators, waiter))

        if not args.skip_idle and args.idle > 0:
            for name, make, token in (
                ("bare relay", relay_server, ""),
                ("omni", omni_server, seeded.inbox_token),
            ):
                if args.idle_only and name != args.idle_only:
                    continue
                log(f"idle memory, {name}: {args.idle} connections")
                srv = make("idle")
                running.append(srv)
                await srv.start(http)
                try:
                    idle = await idle_memory(
                        http,
                        name,
                        srv,
                        token,
                        args.idle,
                        concurrency=args.connect_concurrency,
                        deflate=args.deflate,
                        hold=args.idle_hold,
                        settle=args.settle,
                    )
                finally:
                    await srv.stop()
                report["idle"][name] = asdict(idle)
    finally:
        for srv in running:
            await srv.stop()
        await http.close()
        await db.dispose()
        await admin_execute(admin_dsn, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        await drop_redis_keys(args.redis_url, prefix)
    machine["loadavg_at_end"] = list(os.getloadavg())
    return report


def omni_command() -> list[str]:
    """The ``omni`` console script next to this interpreter (what ``omni serve`` runs)."""
    script = Path(sys.executable).with_name("omni")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "import sys; from omni.cli import main; sys.exit(main())"]
    )


async def drop_redis_keys(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def setting(text: str) -> str:
    """An ``OMNI_NAME=VALUE`` for ``--server-env``; anything else is refused by argparse."""
    name, sep, _ = text.partition("=")
    if not sep or not name.startswith("OMNI_"):
        raise argparse.ArgumentTypeError(f"expected OMNI_NAME=VALUE, got {text!r}")
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--widgets", type=int, default=1000, help="connected visitors in the delivery run")
    p.add_argument("--rate", type=float, default=200, help="visitor messages per second, in total")
    p.add_argument("--duration", type=float, default=30, help="seconds of timed sending")
    p.add_argument("--drain", type=float, default=30, help="seconds to wait for stragglers after sending")
    p.add_argument("--idle", type=int, default=5000, help="idle widget connections for the memory figure")
    p.add_argument("--skip-idle", action="store_true", help="no idle-memory measurement")
    p.add_argument(
        "--idle-only",
        choices=["bare relay", "omni"],
        help="measure idle memory of this server only (a long run at 10,000 on a busy machine)",
    )
    p.add_argument(
        "--idle-hold", type=float, default=30, help="seconds the idle connections stay open (CPU measured)"
    )
    p.add_argument("--settle", type=float, default=2, help="seconds of quiet before each RSS reading")
    p.add_argument("--operators", type=int, default=2, help="operators sharing the queue")
    p.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="worker processes of omni serve (--workers; the server's CPU counts them all)",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        type=setting,
        metavar="OMNI_NAME=VALUE",
        help="a setting for the Omni server (repeatable; the bench strips the caller's OMNI_ variables)",
    )
    p.add_argument(
        "--no-reply", dest="reply", action="store_false", help="operators do not answer (one direction only)"
    )
    p.add_argument(
        "--widget-rate-limit",
        type=int,
        default=0,
        help="OMNI_WIDGET_MESSAGES_PER_MINUTE for the Omni server (default: Omni's 30 unless the load "
        "needs more per visitor)",
    )
    p.add_argument("--connect-concurrency", type=int, default=50, help="connections opened at once")
    p.add_argument("--deflate", action="store_true", help="offer permessage-deflate, as browsers do")
    p.add_argument("--relay-redis", action="store_true", help="the bare relay uses AsyncRedisManager too")
    p.add_argument("--quick", action="store_true", help="smoke run: 50 widgets, 20 msg/s, 5 s, 200 idle")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--profile", type=Path, default=None, help="py-spy collapsed stacks of Omni's timed phase to PATH"
    )
    p.add_argument(
        "--quiet-cores",
        type=float,
        default=0.05,
        help="the timed phase starts once the server uses less CPU than this (per worker) over --settle s "
        "(the routing tick alone can exceed 0.05 on a slow machine; 120 s at most)",
    )
    p.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        help="cProfile (CPU time) of Omni's timed phase to PATH (bench/profiled_serve.py; one worker)",
    )
    p.add_argument(
        "--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""), help="admin DSN ($OMNI_TEST_PG_DSN)"
    )
    p.add_argument(
        "--redis-url", default=os.environ.get("OMNI_TEST_REDIS_URL", ""), help="Redis ($OMNI_TEST_REDIS_URL)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.widgets, args.rate, args.duration, args.idle, args.drain = 50, 20.0, 5.0, 200, 10.0
        args.idle_hold, args.settle = 1.0, 1.0
    if not args.dsn or not args.redis_url:
        p.error('no PostgreSQL DSN or Redis URL: run `eval "$(scripts/services.sh start)"` first')
    if args.widgets < 0 or args.rate <= 0 or args.duration <= 0 or args.idle < 0 or args.operators < 1:
        p.error("sizes must be positive")
    return args


def cli() -> None:
    args = parse_args()
    report = asyncio.run(main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nJSON written to {args.out}")


if __name__ == "__main__":
    cli()
