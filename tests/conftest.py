"""Shared fixtures: real PostgreSQL and Redis (started by scripts/services.sh), per-test DBs.

Each test gets its own PostgreSQL database cloned from a template that was built by running
the Alembic migrations (so migration drift fails the suite), and its own Redis key prefix.

Under pytest-xdist (``-n 2``) every worker builds its own template (its name is random) and
uses a Redis database index of its own (``gw0`` → 1, ``gw1`` → 2, …), so workers share
nothing but the servers. Tests that must not share the machine with each other run in one
``xdist_group`` (see ``pytest_collection_modifyitems``; run with ``--dist loadgroup``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import secrets
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import uvicorn

from omni import heap
from omni.cli import server_config
from omni.db.migrate import upgrade
from omni.services import Services, build_services
from omni.settings import Settings


def _worker_redis_url(url: str, worker: str) -> str:
    """The Redis URL with a database index of the xdist worker's own (unchanged when serial)."""
    if not url or not worker.startswith("gw"):
        return url
    base, _, _index = url.rpartition("/")
    return f"{base}/{1 + int(worker.removeprefix('gw')) % 15}"


PG_DSN = os.environ.get("OMNI_TEST_PG_DSN", "")
REDIS_URL = _worker_redis_url(
    os.environ.get("OMNI_TEST_REDIS_URL", ""), os.environ.get("PYTEST_XDIST_WORKER", "")
)
TEMPLATE = "omni_template"

# Tests that each start several processes or a browser: run one group at a time per worker, so
# two of them never fight over the same two cores (and the lighter tests fill the other worker).
# The browser journeys are split in ``BROWSER_LANES`` groups by file (see below).
XDIST_GROUPS = {
    "tests/e2e/": "browser",
    "tests/test_race.py": "processes",
    "tests/test_redis_restart.py": "processes",
    "tests/test_lease_failover.py": "processes",
    # One Celery worker per module (``shared`` in the file): its tests stay on one worker.
    "tests/test_webhooks.py": "webhooks",
}


# Long tests outside the groups (from CI's --durations): collected first. ``--dist loadgroup``
# hands out the groups (largest first), then single tests in collection order, so a long one
# collected late (test_serve_workers, 39 s, came after ~1,100 others) ran alone at the end while the other
# workers were idle; started first, they overlap with everything else.
LONG_FIRST = (
    "tests/api/test_schemathesis.py",
    "tests/test_serve_workers.py",
    "tests/channels/telegram/test_broadcast.py",
)


# The browser journeys run in this many groups (whole files each, balanced by test count): in
# one group they were ~60 journeys in a row on one worker, the longest lane of the CI run.
BROWSER_LANES = 2


def _lanes(counts: dict[str, int]) -> dict[str, int]:
    """Each file to a lane, the biggest files first to the emptiest lane. Every xdist worker
    collects the same items, so every one computes the same split."""
    load = [0] * BROWSER_LANES
    lane: dict[str, int] = {}
    for path in sorted(counts, key=lambda p: (-counts[p], p)):
        lane[path] = load.index(min(load))
        load[lane[path]] += counts[path]
    return lane


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).resolve().parents[1]
    paths: dict[str, str] = {}
    groups: dict[str, str] = {}
    for item in items:
        path = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        paths[item.nodeid] = path
        for prefix, group in XDIST_GROUPS.items():
            if path.startswith(prefix):
                groups[item.nodeid] = group
    browser_files: dict[str, int] = {}
    for nodeid, group in groups.items():
        if group == "browser":
            browser_files[paths[nodeid]] = browser_files.get(paths[nodeid], 0) + 1
    lanes = _lanes(browser_files)
    for item in items:
        group = groups.get(item.nodeid)
        if group == "browser":
            group = f"browser-{lanes[paths[item.nodeid]] + 1}"
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: not paths[item.nodeid].startswith(LONG_FIRST))  # stable


# The collector in a test process. A worker's heap is the whole suite's: ~0.5 million objects
# of imported modules (Litestar, SQLAlchemy, Playwright, every test module) before the first test,
# and every in-process app adds its routes and mappers. ``omni.heap`` collects all of it and
# freezes it whenever an app starts, and thaws it when the app stops (right for a node, which
# starts once); in a test process that was a full collection per live server (~0.3 CPU-s each,
# ~0.45 s when the machine is busy), and the thaw put the suite's heap back in every later
# automatic full collection: a third of the wall time of live-server tests went to the collector.
# Here the heap alive after collection (the web stack imported) is frozen once, the per-app
# freeze/thaw is left out (nodes started as processes — ``omni serve`` in test_serve_workers,
# test_race, test_lease_failover — still do it), and young objects are collected in larger
# batches. Nothing a test asserts depends on when garbage is collected.
GC_THRESHOLD = (10_000, 10, 10)


def _keep_the_suite_heap_frozen() -> None:
    pass


heap.freeze_startup_heap = _keep_the_suite_heap_frozen
heap.thaw_heap = _keep_the_suite_heap_frozen


def pytest_collection_finish(session: pytest.Session) -> None:
    import omni.app  # noqa: F401  (LiveServer imports the web stack on first use: freeze it too)

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _require_services() -> None:
    if not PG_DSN or not REDIS_URL:
        pytest.fail(
            "OMNI_TEST_PG_DSN and OMNI_TEST_REDIS_URL are not set: run the suite with scripts/test.sh "
            "(it starts PostgreSQL and Redis on loopback)"
        )


def _asyncpg_url(dbname: str) -> str:
    base = PG_DSN.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{dbname}"


def _raw_dsn(dbname: str) -> str:
    return f"{PG_DSN.rsplit('/', 1)[0]}/{dbname}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A template built by the migrations, named per run so parallel runs never share one."""
    _require_services()
    name = f"{TEMPLATE}_{uuid.uuid4().hex[:8]}"

    async def run(*sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            for statement in sql:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    try:
        upgrade(_asyncpg_url(name))
        yield name
    finally:
        asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def create_test_database(template: str) -> str:
    name = f"omni_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    finally:
        await conn.close()
    return name


async def drop_test_database(name: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


def make_settings(
    database_url: str, *, redis: bool = True, data_dir: Path | None = None, **extra: object
) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": REDIS_URL if redis else "",
        "redis_prefix": f"omni-test-{uuid.uuid4().hex[:8]}",
        "secret_key": "test-secret-" + "x" * 32,
    }
    if data_dir is not None:
        values["data_dir"] = data_dir
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def pg_url(pg_template: str) -> AsyncIterator[str]:
    name = await create_test_database(pg_template)
    try:
        yield _asyncpg_url(name)
    finally:
        await drop_test_database(name)


@pytest.fixture
def settings(pg_url: str, tmp_path: Path) -> Settings:
    return make_settings(pg_url, data_dir=tmp_path)


@pytest_asyncio.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """Domain services with no background loops: tests drive routing and the relay."""
    svc = build_services(settings, run_background=False)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded database built by the migrations once per test process (0.7 CPU-s a run)."""
    data_dir = tmp_path_factory.mktemp("sqlite-template")
    settings = Settings(data_dir=data_dir, secret_key="s" * 40)
    upgrade(settings.effective_database_url)
    return data_dir / "omni.sqlite3"


def copy_sqlite(template: Path, data_dir: Path, name: str = "omni.sqlite3") -> str:
    """``template`` as the embedded database of ``data_dir`` (or its file ``name``), migrated
    to head without running the migrations again (SQLite's backup API: a WAL database is
    copied with what its log holds). Returns the database's URL. Tests about the migrations
    themselves run them (tests/test_migrations.py)."""
    import sqlite3

    data_dir.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(template), sqlite3.connect(data_dir / name)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return f"sqlite+aiosqlite:///{data_dir / name}"


@pytest_asyncio.fixture(params=["postgresql", "sqlite"])
async def svc(
    request: pytest.FixtureRequest, tmp_path: Path, pg_template: str, sqlite_template: Path
) -> AsyncIterator[Services]:
    """Domain services on each database the product runs on (a fresh PostgreSQL database, then
    the embedded SQLite file), with the in-process bus: a RedisBus stopped a few milliseconds
    after it started can hang in its listener's cancellation (omni/bus.py)."""
    dbname = ""
    if request.param == "postgresql":
        dbname = await create_test_database(pg_template)
        settings = make_settings(_asyncpg_url(dbname), redis=False, data_dir=tmp_path)
    else:
        settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
        copy_sqlite(sqlite_template, tmp_path)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()
        if dbname:
            await drop_test_database(dbname)


def _port_block() -> range:
    """Ports this test process hands out: below the kernel's ephemeral range (where every
    outgoing connection — to PostgreSQL, Redis, a test server — takes its local port, so a port
    picked there can be gone before the server binds it: "address already in use"), one block
    per xdist worker so two workers never pick the same one."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = 1500
    start = max(1024, low - size * (index + 1))
    return range(start, start + size)


_PORTS = _port_block()
_next_port = random.randrange(len(_PORTS))


def free_port() -> int:
    """A loopback port nobody listens on, from this process's own block (``_port_block``)."""
    global _next_port
    for _ in range(len(_PORTS)):
        port = _PORTS[_next_port % len(_PORTS)]
        _next_port += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {_PORTS}")


def bind_free_port() -> socket.socket:
    """A listening socket on a free loopback port of this process's block, for a
    server to serve on. ``free_port`` only checks a port and lets it go: until the server binds
    it, another test run on the machine can take it (its workers use the same blocks), and
    uvicorn's failed bind is a ``SystemExit`` that breaks the event loop of every later test on
    that worker. A server handed this socket owns its port from the start."""
    global _next_port
    for _ in range(len(_PORTS)):
        candidate = _PORTS[_next_port % len(_PORTS)]
        _next_port += 1
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover is no owner
        try:
            sock.bind(("127.0.0.1", candidate))
            sock.listen()  # a bound socket not yet listening can still be shared with SO_REUSEADDR
        except OSError:
            sock.close()
            continue
        return sock
    raise RuntimeError(f"no free loopback port in {_PORTS}")


class _PromptServer(uvicorn.Server):
    """uvicorn's server, woken at once by ``exit_soon``: its main loop looks at ``should_exit``
    only every 0.1 s (on average 0.05 s of a test's wall time per server, ~400 servers a run).
    The shutdown is uvicorn's own, 0.1 s pause included: without that pause the lifespan's
    shutdown cancelled the outbox relay at the moment the test's last request woke it, and
    Python 3.11's ``asyncio.wait_for`` swallows a cancellation that arrives as the awaited event
    fires, so the relay never stopped (seen once in a full run; see docs/notes.md)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    def exit_soon(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):  # the tick still runs every 0.1 s (Date header)
                await asyncio.wait_for(self._exit.wait(), timeout=0.1)
            should_exit = await self.on_tick(counter)


class LiveServer:
    """The real ASGI app under uvicorn on loopback, inside the test's event loop."""

    def __init__(self, settings: Settings) -> None:
        from omni.app import create_app

        self.settings = settings
        self._socket = bind_free_port()
        self.port: int = self._socket.getsockname()[1]
        self.app = create_app(settings)
        # The same server settings as ``omni serve`` (trusted proxies included).
        config = server_config(self.app, settings, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = _PromptServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def services(self) -> Services:
        services: Services = self.app.other_asgi_app.state.services
        return services

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self._socket]))
        for _ in range(200):
            if self.server.started:
                return
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)
        raise RuntimeError("server did not start")

    async def stop(self) -> None:
        self.server.exit_soon()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=15)
            except TimeoutError:
                # Say what the app's shutdown is stuck on (a hang here is a product bug).
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.print_stack(file=sys.stderr)
                self._task.cancel()
                raise


@pytest_asyncio.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def password() -> Iterator[str]:
    yield "pw-" + secrets.token_urlsafe(8)
