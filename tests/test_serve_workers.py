"""``omni serve --workers 2``: one port, two worker processes, Socket.IO over WebSocket only.

A visitor and operators on both workers chat (events cross the processes through Redis);
a long-polling request is refused with a message saying why; a worker killed with SIGKILL is
named in the log and replaced; SIGTERM stops the supervisor and every worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from omni.cli import WORKER_STOP_SECONDS
from omni.db import Database
from omni.db import models as m
from omni.domain import presence
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import REDIS_URL, free_port
from tests.helpers import HTTP_TIMEOUT, until, wait_ready
from tests.test_realtime import OperatorClient


def _workers(parent: int) -> set[int]:
    """The worker processes of the supervisor ``parent`` (multiprocessing spawn children)."""
    path = Path(f"/proc/{parent}/task/{parent}/children")
    found = set()
    for pid in path.read_text().split() if path.exists() else []:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            found.add(int(pid))
    return found


def _started(log_path: Path) -> int:
    """Workers that finished their startup (uvicorn's INFO line; the lifespan has run)."""
    return log_path.read_text().count("Application startup complete.")


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (an orphan's new parent may not wait for it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def _login_token(url: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
        assert resp.status_code == 200
        token: str = (await client.post("/api/v1/me/tokens", json={"name": "socket"})).json()["token"]
        return token


async def _node_of_sockets(db: Database) -> set[str]:
    async with db.transaction() as s:
        return set(await s.scalars(select(m.OperatorConnection.node_id)))


@pytest.mark.timeout(900)  # two fresh interpreters import everything on a shared 2-core machine
async def test_two_workers_share_a_port_chat_crosses_them_and_a_killed_worker_is_replaced(
    pg_url: str, tmp_path: Path
) -> None:
    db = Database(pg_url)
    async with db.transaction() as s:
        op = await f.user(s, "op", capacity=5)
        q = await f.queue(s, "web", [op], auto_accept=True)
        ib = await f.inbox(s, q, channel="widget")
        await presence.do_set_status(s, op.id, await presence.status_by_code(s, "available"))
        inbox_token = ib.public_token
        op_id = op.id
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        OMNI_DATABASE_URL=pg_url,
        OMNI_REDIS_URL=REDIS_URL,
        OMNI_REDIS_PREFIX=f"workers-{random.randrange(1 << 30)}",
        OMNI_SECRET_KEY="workers-secret-" + "w" * 32,
        OMNI_LOG_LEVEL="INFO",  # each worker's "Application startup complete." is the sentinel
    )
    log_path = tmp_path / "serve.log"
    proc = subprocess.Popen(  # noqa: ASYNC220 - the server for the test's lifetime
        [
            sys.executable,
            "-m",
            "omni.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    operators: list[OperatorClient] = []
    try:
        await wait_ready(url, proc)
        await until(lambda: _started(log_path) >= 2, 600, what="both workers started")
        assert len(_workers(proc.pid)) == 2
        token = await _login_token(url, "op")

        # Operator sockets until both workers hold some (the kernel picks the worker).
        async def one_more() -> None:
            client = OperatorClient(url, token)
            await client.connect()
            operators.append(client)

        for _ in range(8):
            await asyncio.gather(*(one_more() for _ in range(4)))
            if len(await _node_of_sockets(db)) == 2:
                break
        assert len(await _node_of_sockets(db)) == 2, "every operator socket landed on one worker"

        visitor = Visitor(url)
        await visitor.connect(inbox=inbox_token)
        ack = await visitor.send("hello from the site", "c-1")
        assert ack["ok"], ack
        conv = ack["conversation_id"]
        # Whichever worker the visitor is on, one of the two workers is the other one.
        for client in operators:
            await until(
                lambda c=client: any(
                    e["type"] == "message.created" and e["data"].get("client_id") == "c-1" for e in c.events
                ),
                30,
                what="the visitor's message on every operator socket",
            )

        # Auto-accept: the router hands it to op on its own pass; a reply before that is refused
        # (only the handler replies), which a loaded CI machine reached first.
        async def assigned_to_op() -> bool:
            async with db.transaction() as s:
                who = await s.scalar(select(m.Conversation.assigned_user_id).where(m.Conversation.id == conv))
            return who == op_id

        await until(assigned_to_op, 60, what="the conversation assigned to op")
        for client in operators:
            reply = await client.sio.call(
                "send",
                {"conversation_id": conv, "body": "hi", "client_id": f"r-{id(client)}"},
                namespace="/operator",
            )
            assert reply["ok"], reply
        await until(lambda: len(visitor.messages) == len(operators), 30, what="every reply at the visitor")

        # Long-polling cannot work across workers: refused with the reason.
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            polling = await client.get(f"{url}/socket.io/?EIO=4&transport=polling")
        assert polling.status_code == 400
        assert "long-polling is off" in polling.text and "2 worker processes" in polling.text
        await visitor.sio.disconnect()

        # A worker killed outright: named in the log, replaced, and the port keeps serving.
        before = _workers(proc.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        await until(
            lambda: f"worker process {victim} exited with code -9" in log_path.read_text(),
            60,
            what="the log line",
        )
        await until(
            lambda: len(_workers(proc.pid)) == 2 and victim not in _workers(proc.pid),
            120,
            what="a replacement",
        )
        await until(lambda: _started(log_path) >= 3, 600, what="the replacement started")
        again = Visitor(url)
        welcome = await again.connect(inbox=inbox_token)
        assert welcome["visitor"]
        assert (await again.send("still here", "c-2"))["ok"]
        await again.sio.disconnect()
        workers = _workers(proc.pid)
    finally:
        for client in operators:
            if client.sio.connected:
                await client.sio.disconnect()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=WORKER_STOP_SECONDS + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
        await db.dispose()
    assert code == 0, log_path.read_text()[-2000:]
    assert not any(_alive(pid) for pid in workers), "a worker outlived SIGTERM"


@contextlib.asynccontextmanager
async def _orphaned_worker(tmp_path: Path, setup: str) -> AsyncIterator[int]:
    """A worker that runs ``setup`` (Python statements) and then idles, under a stand-in
    supervisor that is killed outright once the worker is up; yields the orphan's pid."""
    ready = tmp_path / "worker-ready"
    worker = f"import os, time; {setup}; open({str(ready)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    supervisor = subprocess.Popen(  # noqa: ASYNC220 - stands in for the supervisor
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time; os.environ['OMNI_SUPERVISOR_PID'] = str(os.getpid()); "
            f"subprocess.Popen([sys.executable, '-c', {worker!r}]); time.sleep(600)",
        ]
    )
    try:
        await until(lambda: ready.exists() and ready.read_text().isdigit(), 60, what="the worker started")
        pid = int(ready.read_text())
        assert _alive(pid)
        supervisor.kill()
        supervisor.wait()
        yield pid
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


async def test_a_worker_ends_when_its_supervisor_is_killed_outright(tmp_path: Path) -> None:
    """SIGKILL reaches no handler of the supervisor, so it can't stop its workers; each worker
    asks the kernel for SIGTERM when its parent dies (``die_with_supervisor``, called where
    ``omni serve --workers N`` builds a worker's app), so none is left serving the port alone."""
    async with _orphaned_worker(
        tmp_path, "from omni.cli import die_with_supervisor; die_with_supervisor()"
    ) as pid:
        await until(lambda: _ended(pid), 30, what="the orphaned worker ended")


async def test_an_orphaned_worker_whose_shutdown_hangs_still_exits_within_its_bound(tmp_path: Path) -> None:
    """The SIGTERM an orphaned worker gets starts a graceful shutdown, which may wait on
    something that never comes; the worker exits anyway once its bound has passed (here 1 s;
    ``WORKER_STOP_SECONDS`` in ``omni serve``)."""
    setup = (
        "import signal; from omni.cli import die_with_supervisor; die_with_supervisor(grace=1); "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)"  # a shutdown that never finishes
    )
    async with _orphaned_worker(tmp_path, setup) as pid:
        await until(lambda: _ended(pid), 30, what="the hung orphan exited")


async def test_workers_need_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(OMNI_DATA_DIR=str(tmp_path), OMNI_SECRET_KEY="x" * 40)
    done = subprocess.run(  # noqa: ASYNC221 - the command exits at once
        [sys.executable, "-m", "omni.cli", "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a loaded machine imports slowly; the refusal itself comes before the app
    )
    assert done.returncode == 2
    assert "--workers > 1 needs OMNI_REDIS_URL" in done.stderr


READ_GATE = "from omni.settings import Settings; print(Settings().widget.max_concurrent_db)"


async def test_a_widget_gate_as_large_as_the_pool_is_refused_in_one_line(tmp_path: Path) -> None:
    """The widget's gate must leave the relay connections of its own: a setting that lets a
    visitor flood take the whole pool stops the server with a line naming both settings,
    not a traceback; within the pool it is taken."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(
        OMNI_DATA_DIR=str(tmp_path),
        OMNI_SECRET_KEY="x" * 40,
        OMNI_DATABASE_URL="postgresql+asyncpg://omni@127.0.0.1:1/none",
        OMNI_DB_POOL_SIZE="10",
    )
    done = subprocess.run(  # noqa: ASYNC221 - the command exits at once
        [sys.executable, "-m", "omni.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: settings: Value error, OMNI_WIDGET_MAX_CONCURRENT_DB (24) must be smaller than "
        "OMNI_DB_POOL_SIZE (10): the relay and the router need connections of their own"
    ]
    env["OMNI_WIDGET_MAX_CONCURRENT_DB"] = "6"
    taken = subprocess.run(  # noqa: ASYNC221 - reads the settings and exits
        [sys.executable, "-c", READ_GATE],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert taken.stdout.strip() == "6", taken.stderr


async def test_a_hung_worker_names_its_unfinished_tasks_as_it_exits() -> None:
    """The last log line of an orphan whose shutdown hung lists its asyncio tasks and where
    each waits: read from the watcher thread while the loop is stuck."""
    from omni.cli import _pending_tasks

    never = asyncio.Event()

    async def waits_for_a_server_that_is_gone() -> None:
        await never.wait()

    task = asyncio.create_task(waits_for_a_server_that_is_gone(), name="redis-close")
    await asyncio.sleep(0)
    pending = await asyncio.to_thread(_pending_tasks)
    task.cancel()
    (line,) = [p for p in pending if p.startswith("redis-close at ")]
    assert "in waits_for_a_server_that_is_gone" in line
    assert "in wait" in line.split(" <- ")[0]  # innermost first: the Event's wait
