"""Telegram channel benchmark: webhook updates end to end, and a paced outbound broadcast.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/telegram.py [--updates 2000] [--concurrency 32] [--customers 200]
                                       [--broadcast 1000] [--out bench/results/telegram.json]

What it does, on 127.0.0.1 only:

1. creates ``omni_bench_tg_<id>`` with the Alembic migrations; seeds an admin, an operator
   (a member of the queue, left offline so no offers churn) and a queue; starts the Bot API
   emulator of the tests (``tests/channels/telegram/emulator.py``) in this process and Omni
   (``omni serve``) as a separate process pointed at it;
2. creates a bot through ``POST /api/v1/telegram/bots`` (getMe + setWebhook against the
   emulator), connects the operator over Socket.IO;
3. **inbound**: posts ``--updates`` text updates (from ``--customers`` customers, round
   robin) to the webhook with the secret header, ``--concurrency`` at a time. Latency of an
   update = POST sent → the operator's Socket.IO client receives its ``message.created``
   (stored + queued + operator notified). Throughput = updates / (last notification − first
   POST);
4. **bare floor**: the same load against a bare Litestar app (separate process) whose
   endpoint checks the secret header and decodes the JSON, nothing else; latency = the HTTP
   round trip;
5. **broadcast**: ``--broadcast`` conversations with distinct chats, one bot notice each
   (``do_send_automated``, one transaction) → relay → adapter → the bot's paced sender → the
   emulator, which enforces Telegram's limits (30 msg/s per bot, 1 msg/s per chat) by
   answering 429. Reports the achieved rate (arrivals at the emulator) and the 429 count;
6. prints a table, writes JSON to ``--out``, drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import httpx
import msgspec
import socketio
from litestar import Litestar, Request, Response, post
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchkit import tree_cpu_seconds  # noqa: E402 - after the path tweak

from omni import seed as factory  # noqa: E402
from omni.db import Database  # noqa: E402
from omni.db import models as m  # noqa: E402
from omni.db.migrate import upgrade_async  # noqa: E402
from omni.domain import automated, conversations  # noqa: E402
from omni.domain.auth import hash_password  # noqa: E402
from omni.domain.conversations import InboundMessage  # noqa: E402
from tests.channels.telegram.emulator import BotApiEmulator  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SCRIPT = Path(__file__).resolve()
DEFAULT_OUT = ROOT / "bench" / "results" / "telegram.json"
PASSWORD = "bench-password-never-used"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def stats(latencies: Sequence[float], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "count": n,
        "wall_seconds": round(wall, 3),
        "per_second": round(n / wall, 1) if wall > 0 else None,
        "p50_ms": round(percentile(ordered, 50) * 1000, 2),
        "p90_ms": round(percentile(ordered, 90) * 1000, 2),
        "p99_ms": round(percentile(ordered, 99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2) if n else None,
    }


# --- the bare floor -------------------------------------------------------------------------


def baseline_app() -> Any:
    """Checks the secret header and decodes the update: the least a webhook endpoint does."""

    @post("/webhook/{token:str}", status_code=200)
    async def hook(request: Request[Any, Any, Any], token: str) -> Response[dict[str, Any]]:
        if request.headers.get(SECRET_HEADER.lower()) != "bench-secret":
            return Response({"ok": False}, status_code=403)
        update = msgspec.json.decode(await request.body())
        return Response({"ok": "update_id" in update})

    @post("/bench-ready-probe", status_code=200)
    async def probe() -> dict[str, Any]:
        return {}

    return Litestar(route_handlers=[hook, probe])


class ServerProcess:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        self.argv, self.env, self.log_path, self.port = argv, env, log_path, port
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        async with httpx.AsyncClient() as c:
            for _ in range(300):
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    await c.get(f"{self.url}/bench-ready-probe")
                    return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# --- load ---------------------------------------------------------------------------------------


def make_update(emulator: BotApiEmulator, customer: int, text: str) -> dict[str, Any]:
    user = {"id": customer, "first_name": f"Customer {customer}"}
    return emulator.update(message=emulator.message(user, text=text))


async def fire(
    url: str,
    headers: dict[str, str],
    updates: list[dict[str, Any]],
    concurrency: int,
    sent_at: dict[str, float],
) -> tuple[list[float], float, int]:
    """POST every update, ``concurrency`` at a time; HTTP latencies, start time, failures."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for u in updates:
        queue.put_nowait(u)
    http_latency: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                update = queue.get_nowait()
                body = json.dumps(update).encode()
                t0 = time.monotonic()
                sent_at[update["message"]["text"]] = t0
                resp = await client.post(
                    url, content=body, headers={**headers, "content-type": "application/json"}
                )
                http_latency.append(time.monotonic() - t0)
                if resp.status_code != 200:
                    failures += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return http_latency, start, failures


# --- setup ----------------------------------------------------------------------------------------


async def admin_execute(dsn: str, *sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


async def seed(db: Database) -> int:
    pw = hash_password(PASSWORD)
    async with db.transaction() as s:
        await factory.user(s, "admin", m.Role.ADMIN, password_hash=pw)
        op = await factory.user(s, "op", m.Role.OPERATOR, password_hash=pw)
        q = await factory.queue(s, "telegram", [op], queue_timeout_seconds=3600, overflow_action="none")
        return q.id


async def api_token(base: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        r.raise_for_status()
        t = await c.post("/api/v1/me/tokens", json={"name": "bench"})
        t.raise_for_status()
        return str(t.json()["token"])


# --- main -------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    dsn = args.dsn or os.environ.get("OMNI_TEST_PG_DSN", "")
    redis_url = os.environ.get("OMNI_TEST_REDIS_URL", "")
    if not dsn or not redis_url:
        raise SystemExit('set OMNI_TEST_PG_DSN / OMNI_TEST_REDIS_URL: eval "$(scripts/services.sh start)"')
    for url in (dsn, redis_url):
        if (urlsplit(url).hostname or "") not in LOOPBACK:
            raise SystemExit("the benchmark runs on loopback only")
    dbname = f"omni_bench_tg_{uuid.uuid4().hex[:8]}"
    sa_url = f"{dsn.rsplit('/', 1)[0]}/{dbname}".replace("postgresql://", "postgresql+asyncpg://", 1)
    await admin_execute(dsn, f"CREATE DATABASE {dbname}")
    emulator = BotApiEmulator(free_port())
    workdir = Path(tempfile.mkdtemp(prefix="omni-bench-tg-"))
    server: ServerProcess | None = None
    bare: ServerProcess | None = None
    db = Database(sa_url)
    report: dict[str, Any] = {
        "params": vars(args) | {"out": str(args.out)},
        "machine": {
            "nproc": os.cpu_count(),
            "loadavg_at_start": list(os.getloadavg()),
            "python": platform.python_version(),
        },
    }
    try:
        log("migrating…")
        await upgrade_async(sa_url)
        queue_id = await seed(db)
        await emulator.start()
        port = free_port()
        env = {
            **os.environ,
            "OMNI_DATABASE_URL": sa_url,
            "OMNI_REDIS_URL": redis_url,
            "OMNI_REDIS_PREFIX": f"omni-bench-{uuid.uuid4().hex[:6]}",
            "OMNI_SECRET_KEY": "bench-secret-key-" + "x" * 32,
            "OMNI_DATA_DIR": str(workdir),
            "OMNI_LOG_LEVEL": "WARNING",
            "OMNI_TELEGRAM_API_BASE_URL": emulator.url,
            "OMNI_TELEGRAM_WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
        }
        server = ServerProcess(
            [sys.executable, "-m", "omni.cli", "serve", "--port", str(port)], env, workdir / "omni.log", port
        )
        await server.start()
        admin = await api_token(server.url, "admin")
        op_token = await api_token(server.url, "op")
        token = emulator.add_bot("omni_bench_bot")
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}) as c:
            r = await c.post(
                "/api/v1/telegram/bots",
                json={
                    "name": "bench",
                    "token": token,
                    "queue_id": queue_id,
                    "mode": "webhook",
                    "queue_message": "",
                },
            )
            r.raise_for_status()
        bot = emulator.bots[token]

        # operator client: time of each message.created by body
        notified: dict[str, float] = {}
        sio = socketio.AsyncClient(reconnection=False)

        async def on_event(data: dict[str, Any]) -> None:
            if data.get("type") == "message.created":
                notified.setdefault(str(data["data"].get("body")), time.monotonic())

        sio.on("event", on_event, namespace="/operator")
        await sio.connect(
            server.url, namespaces=["/operator"], auth={"token": op_token}, transports=["websocket"]
        )

        # --- inbound through Omni
        customers = [900_000_000 + i for i in range(args.customers)]
        warm = [make_update(emulator, c, f"warm-{c}") for c in customers]
        log(f"warming up: {len(warm)} first messages (new contacts + conversations)…")
        await fire(bot.webhook_url, {SECRET_HEADER: bot.webhook_secret}, warm, args.concurrency, {})
        updates = [
            make_update(emulator, customers[i % len(customers)], f"u-{i}") for i in range(args.updates)
        ]
        sent: dict[str, float] = {}
        log(f"inbound: {len(updates)} updates, concurrency {args.concurrency}…")
        assert server.proc is not None
        cpu_before = tree_cpu_seconds(server.proc.pid)
        http_lat, start, failures = await fire(
            bot.webhook_url, {SECRET_HEADER: bot.webhook_secret}, updates, args.concurrency, sent
        )
        deadline = time.monotonic() + 60
        while len([k for k in sent if k in notified]) < len(sent) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls another component's progress
            await asyncio.sleep(0.05)
        omni_cpu = tree_cpu_seconds(server.proc.pid) - cpu_before
        e2e = [notified[k] - t for k, t in sent.items() if k in notified]
        last = max((notified[k] for k in sent if k in notified), default=start)
        report["omni_webhook"] = stats(e2e, last - start) | {
            "http_response": stats(http_lat, max(http_lat) if http_lat else 0) | {"per_second": None},
            "failures": failures,
            "not_notified": len(sent) - len(e2e),
            "server_cpu_ms_per_update": round(omni_cpu * 1000 / max(1, len(updates)), 2),
        }
        async with db.transaction() as s:
            stored = await s.scalar(
                select(func.count()).select_from(m.Message).where(m.Message.body.like("u-%"))
            )
        report["omni_webhook"]["stored"] = int(stored or 0)
        await sio.disconnect()

        # --- bare floor
        bare_port = free_port()
        bare = ServerProcess(
            [sys.executable, str(SCRIPT), "--serve-baseline", str(bare_port)],
            dict(os.environ),
            workdir / "bare.log",
            bare_port,
        )
        await bare.start()
        bare_updates = [
            make_update(emulator, customers[i % len(customers)], f"b-{i}") for i in range(args.updates)
        ]
        log("bare floor…")
        await fire(
            f"{bare.url}/webhook/t", {SECRET_HEADER: "bench-secret"}, bare_updates[:200], args.concurrency, {}
        )
        t0 = time.monotonic()
        assert bare.proc is not None
        cpu_before = tree_cpu_seconds(bare.proc.pid)
        bare_lat, _, bare_fail = await fire(
            f"{bare.url}/webhook/t", {SECRET_HEADER: "bench-secret"}, bare_updates, args.concurrency, {}
        )
        bare_cpu = tree_cpu_seconds(bare.proc.pid) - cpu_before
        report["bare_litestar"] = stats(bare_lat, time.monotonic() - t0) | {
            "failures": bare_fail,
            "server_cpu_ms_per_update": round(bare_cpu * 1000 / max(1, len(bare_updates)), 2),
        }
        omni_rate, bare_rate = report["omni_webhook"]["per_second"], report["bare_litestar"]["per_second"]
        report["ratio_to_bare"] = round(omni_rate / bare_rate, 3) if omni_rate and bare_rate else None
        await bare.stop()

        # --- broadcast
        n = args.broadcast
        log(f"broadcast: {n} messages to {n} chats…")
        async with db.transaction() as s:
            inbox = await s.scalar(select(m.Inbox).where(m.Inbox.channel == "telegram"))
            assert inbox is not None
            conv_ids = []
            for i in range(n):
                chat = 800_000_000 + i
                res = await conversations.do_ingest_inbound(
                    s,
                    InboundMessage(
                        inbox_id=inbox.id,
                        identity_kind="telegram",
                        identity_value=str(chat),
                        body="subscribe",
                        external_id=f"{chat}:1",
                        variables={"telegram_chat_id": chat},
                    ),
                )
                conv_ids.append(res.conversation.id)
        emulator.calls.clear()
        emulator.refused_429 = 0
        async with db.transaction() as s:
            for i, conv_id in enumerate(conv_ids):
                await automated.do_send_automated(s, conv_id, f"broadcast-{i}")
        t_commit = time.monotonic()
        deadline = time.monotonic() + n / 10 + 60
        while len(emulator.sent(method="sendMessage")) < n and time.monotonic() < deadline:  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.1)
        arrivals = sorted(c.at for c in emulator.sent(method="sendMessage"))
        async with db.transaction() as s:
            marked = await s.scalar(
                select(func.count())
                .select_from(m.Message)
                .where(m.Message.body.like("broadcast-%"), m.Message.delivery == "sent")
            )
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        report["broadcast"] = {
            "messages": n,
            "delivered": len(arrivals),
            "marked_sent": int(marked or 0),
            "first_arrival_after_commit_s": round(arrivals[0] - t_commit, 3) if arrivals else None,
            "span_seconds": round(span, 3),
            "achieved_per_second": round((len(arrivals) - 1) / span, 2) if span else None,
            "telegram_limit_per_second": 30,
            "configured_per_second": 28.0,
            "refused_429": emulator.refused_429,
        }
        report["machine"]["loadavg_at_end"] = list(os.getloadavg())
    finally:
        if server is not None:
            await server.stop()
        if bare is not None:
            await bare.stop()
        await emulator.close()
        await db.dispose()
        await admin_execute(dsn, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    return report


def print_table(r: dict[str, Any]) -> None:
    o, b, bc = r["omni_webhook"], r["bare_litestar"], r["broadcast"]
    print("\nwebhook updates (same load, same run)")
    print(f"{'':34} {'omni (end to end)':>20} {'bare Litestar':>16}")
    print(f"{'updates':34} {o['count']:>20} {b['count']:>16}")
    print(f"{'updates/s':34} {o['per_second']:>20} {b['per_second']:>16}")
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        print(f"{key:34} {o[key]:>20} {b[key]:>16}")
    cpu = "server_cpu_ms_per_update"
    print(f"{'server CPU ms per update':34} {o.get(cpu, ''):>20} {b.get(cpu, ''):>16}")
    print(f"{'ratio to the bare endpoint':34} {r.get('ratio_to_bare')!s:>20}  (goal ≥ 0.5)")
    load = r["machine"]
    print(f"{'load average start / end':34} {load['loadavg_at_start']} / {load.get('loadavg_at_end')}")
    answer = o["http_response"]
    print(f"{'omni HTTP answer p50 / p99 ms':34} {answer['p50_ms']:>11} / {answer['p99_ms']}")
    print(f"{'stored / not notified / failures':34} {o['stored']} / {o['not_notified']} / {o['failures']}")
    print("\noutbound broadcast")
    for key, value in bc.items():
        print(f"{key:34} {value}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--updates", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--broadcast", type=int, default=1000)
    p.add_argument("--dsn", default="")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--serve-baseline", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def cli() -> None:
    args = parse_args()
    if args.serve_baseline:
        import uvicorn

        uvicorn.run(baseline_app(), host="127.0.0.1", port=args.serve_baseline, log_level="warning")
        return
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    log(f"written to {args.out}")


if __name__ == "__main__":
    cli()
