"""``omni`` command: serve, migrate, createuser, demo, rollups, softphones."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
import time
from typing import Any

import uvicorn
from pydantic import ValidationError
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from uvicorn.supervisors.multiprocess import Multiprocess, Process
from wsproto.connection import ConnectionState

from omni.settings import Settings, get_settings


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format='{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}',
    )
    # Per-update / per-plugin chatter from libraries: keep it out of INFO.
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


NOISY_LOGGERS = ("aiogram.event", "alembic.runtime.plugins")


async def _with_db(settings: Settings, fn: object) -> object:
    from omni.db import Database
    from omni.db.migrate import upgrade_async

    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        async with db.transaction() as session:
            return await fn(session)  # type: ignore[operator]  # callers pass an async callable
    finally:
        await db.dispose()


SHUTDOWN_GRACE_SECONDS = 8


class ClosingSafeWSProtocol(WSProtocol):
    """uvicorn's wsproto protocol, whose shutdown leaves alone a socket whose close handshake
    is already over.

    When a client closes, uvicorn answers its close frame at once (the wsproto connection is
    then ``CLOSED``), but the connection leaves the server's list only with
    ``connection_lost``, a loop turn later. A shutdown in between sent a second close frame,
    wsproto raised ``LocalProtocolError`` out of ``Server.shutdown``, and the app's lifespan
    shutdown never ran: the outbox relay, the router and the leases of a stopped node kept
    running (seen in CI as a stopped test server's loops outliving its database)."""

    def shutdown(self) -> None:
        if self.handshake_complete and self.conn.state not in (
            ConnectionState.OPEN,
            ConnectionState.REMOTE_CLOSING,
        ):
            self.close_sent = True  # nothing more may be sent: uvicorn only closes the socket
        super().shutdown()


KEEP_ALIVE_SECONDS = 75


def server_config(app: Any, settings: Settings, *, host: str, port: int, **extra: Any) -> uvicorn.Config:
    """How uvicorn serves the app (``omni serve`` and the tests' live servers alike).

    ``X-Forwarded-For`` is believed only from ``OMNI_TRUSTED_PROXIES``: uvicorn's default
    trusts any loopback peer, so anything on the host (or a proxy that passes the header on
    unchecked) could pick the address the login throttle and the widget limits count.
    """
    trusted = settings.trusted_proxy_list
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "lifespan": "on",
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
        # SIGTERM: connections and tasks still open after this are cut, so the lifespan's
        # shutdown (the outbox relay, the scheduler, the pools) always runs and a node stops in
        # bounded time (an orchestrator's kill timer, a test's wait).
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
        # Longer than any client's or proxy's idle reuse of a connection (httpx 5 s, nginx's
        # upstream keepalive 60 s): with uvicorn's default 5 s the server closed a connection
        # at the moment a client sent its next request on it, which the client saw as
        # "Server disconnected without sending a response" (test_rbac, on a loaded machine).
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        # Memory per idle socket (bench/README.md, serve15): wsproto holds less per connection
        # than the websockets implementations; Engine.IO's own ping/pong already finds dead
        # peers, so uvicorn's second keepalive timer per socket goes; permessage-deflate would
        # keep a zlib context pair per socket for messages of a few hundred bytes.
        "ws": ClosingSafeWSProtocol,
        "ws_ping_interval": None,
        "ws_per_message_deflate": False,
        **extra,
    }
    return uvicorn.Config(app, **values)


WORKER_STOP_SECONDS = 30
"""After SIGTERM, how long ``omni serve --workers N`` waits for its workers before SIGKILL: a
worker's own bound (``SHUTDOWN_GRACE_SECONDS`` for connections, then the lifespan's bounded
stops) fits well inside."""


class Workers(Multiprocess):
    """uvicorn's worker supervisor (a dead worker is replaced, SIGTERM stops them all) with a
    log line naming each dead worker and a bounded wait for all of them to stop."""

    def keep_subprocess_alive(self) -> None:
        # uvicorn's loop (a dead or hung worker is killed and replaced), plus a warning that
        # names it: uvicorn says so only at INFO.
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # the app cannot start: no restart loop
                logging.getLogger("omni").error("worker process %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logging.getLogger("omni").warning(
                "worker process %s exited with code %s; starting a replacement", process.pid, process.exitcode
            )
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[idx] = replacement

    def join_all(self) -> None:
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.process.exitcode is None:
                logging.getLogger("omni").error(
                    "worker process %s still running %d s after SIGTERM; killing it",
                    process.pid,
                    WORKER_STOP_SECONDS,
                )
                process.kill()
                process.process.join()


def die_with_supervisor(grace: float = WORKER_STOP_SECONDS) -> None:
    """End this worker when its supervisor dies, also by SIGKILL, which no handler sees: the
    kernel then sends the worker SIGTERM (``PR_SET_PDEATHSIG``) and it stops as on a normal
    shutdown. Without it an orphaned worker kept serving the shared port with nobody left to
    replace or stop it (seen after a supervisor was killed while its workers drained a
    backlog). A supervisor already gone before this call is noticed by its pid. The graceful
    stop is bounded as the supervisor would bound it: ``grace`` seconds after the worker is
    orphaned it exits whatever its shutdown is waiting for (one such worker hung in its
    shutdown with two Redis connections open for 45 minutes)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    import threading

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    supervisor = os.environ.get("OMNI_SUPERVISOR_PID", "")
    parent = int(supervisor) if supervisor.isdigit() else os.getppid()
    if os.getppid() != parent:  # gone before the kernel was asked: no SIGTERM will come
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        time.sleep(grace)
        logging.getLogger("omni").error(
            "worker %s: supervisor gone, shutdown not done in %.0f s; exiting; still running: %s",
            os.getpid(),
            grace,
            "; ".join(_pending_tasks()) or "no asyncio task",
        )
        os._exit(1)

    threading.Thread(target=watch, name="omni-supervisor-watch", daemon=True).start()


def _pending_tasks() -> list[str]:
    """Every unfinished asyncio task of the process with where it waits, read from another
    thread as a last word before a hung worker exits (best effort: the set may change while it
    is read, and then it is read again)."""
    from omni.aio import awaiting

    for _ in range(3):
        try:
            tasks = list(getattr(asyncio.tasks, "_all_tasks", ()))
            break
        except RuntimeError:  # changed size during iteration
            continue
    else:
        return []
    return [
        f"{task.get_name()} at {' <- '.join(reversed(awaiting(task.get_coro()))) or '?'}"
        for task in tasks
        if not task.done()
    ][:50]


def worker_app() -> Any:
    """The app of one worker process of ``omni serve --workers N`` (a fresh interpreter:
    settings and logging from the environment the supervisor passed on)."""
    from omni.app import create_app

    die_with_supervisor()
    settings = get_settings()
    _configure_logging(settings)
    return create_app(settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.host
    port = args.port or settings.port
    if (host, port) != (settings.host, settings.port):
        # ``--host``/``--port`` move the server as OMNI_HOST/OMNI_PORT do: an unset public address
        # follows them (the consoles' sockets are same-origin), in this process and its workers.
        os.environ["OMNI_HOST"], os.environ["OMNI_PORT"] = host, str(port)
        get_settings.cache_clear()
        settings = get_settings()
    workers = args.workers or settings.workers
    mode = "embedded (SQLite, in-process)" if settings.embedded else "distributed (Redis)"
    if workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and settings.embedded:
        # Embedded mode fans out in process: a visitor on one worker would never reach an
        # operator on another.
        print("error: --workers > 1 needs OMNI_REDIS_URL (distributed mode)", file=sys.stderr)
        return 2
    logging.getLogger("omni").info("Omni on http://%s:%s, mode: %s, workers: %d", host, port, mode, workers)
    if workers == 1:
        from omni.app import create_app

        uvicorn.Server(server_config(create_app(settings), settings, host=host, port=port)).run()
        return 0
    os.environ["OMNI_WORKERS"] = str(workers)  # each worker's settings: WebSocket-only Socket.IO
    os.environ["OMNI_SUPERVISOR_PID"] = str(os.getpid())  # ``die_with_supervisor``
    config = server_config(
        "omni.cli:worker_app", settings, host=host, port=port, factory=True, workers=workers
    )
    Workers(config, sockets=[config.bind_socket()]).run()
    return 0


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from omni.db.migrate import upgrade

    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    print("database is at the latest revision")
    return 0


def cmd_createuser(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from omni.db import models as m
    from omni.domain.auth import hash_password
    from omni.domain.errors import DomainError

    password = args.password or getpass.getpass("Password: ")

    async def create(session: object) -> object:
        existing = await session.scalar(select(m.User).where(m.User.username == args.username))  # type: ignore[attr-defined]
        if existing is not None:
            raise DomainError("user '{username}' already exists", username=args.username)
        user = m.User(
            username=args.username,
            display_name=args.name or args.username,
            role=args.role,
            password_hash=hash_password(password),
            language=args.language,
            is_active=True,
            handles_chat=True,
            handles_voice=True,
            capacity=3,
            chat_weight=1,
            voice_weight=3,
        )
        session.add(user)  # type: ignore[attr-defined]
        return user

    try:
        asyncio.run(_with_db(settings, create))
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"created {args.role} '{args.username}'")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from omni.demo import seed_demo

    logins = asyncio.run(
        _with_db(settings, lambda s: seed_demo(s, args.password, reset_passwords=args.reset_passwords))
    )
    assert isinstance(logins, list)
    if not logins:
        print("demo data already present (users keep the passwords printed when they were created)")
    for login in logins:
        print(f"demo login: {login.username} / {login.password} ({login.role})")
    return 0


def cmd_rollups(args: argparse.Namespace, settings: Settings) -> int:
    """Rebuild the report rollups of the last ``--days`` (an install upgrading with history)."""
    from datetime import UTC, datetime, timedelta

    from omni.db import Database
    from omni.domain.reports.driver import backfill

    async def run() -> int:
        db = Database(settings.effective_database_url)
        try:
            now = datetime.now(UTC)
            return await backfill(db, now - timedelta(days=args.days), now + timedelta(minutes=15), now=now)
        finally:
            await db.dispose()

    days = asyncio.run(run())
    print(f"report rollups rebuilt over {days} days")
    return 0


def cmd_softphones(args: argparse.Namespace, settings: Settings) -> int:
    """Write the PJSIP endpoints of the browser operators (docs/voice.md "Softphone"): Asterisk
    ``#include``s the file and reloads, after operators are added or switch endpoint."""
    from pathlib import Path

    from sqlalchemy import select

    from omni.db import models as m
    from omni.domain import softphone

    async def render(session: Any) -> str:
        users = (await session.scalars(select(m.User).order_by(m.User.id))).all()
        return softphone.pjsip_endpoints(users, settings)

    text = str(asyncio.run(_with_db(settings, render)))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        path = Path(args.output)
        path.write_text(text)
        path.chmod(0o640)  # it holds passwords
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omni", description="Omni contact center")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="run the web server (embedded defaults unless settings say otherwise)"
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes sharing the port (default OMNI_WORKERS, 1); more than one needs "
        "Redis and serves Socket.IO over WebSocket only",
    )
    sub.add_parser("migrate", help="apply database migrations")
    cu = sub.add_parser("createuser", help="create a user")
    cu.add_argument("username")
    cu.add_argument("--role", choices=["admin", "supervisor", "operator", "auditor"], default="operator")
    cu.add_argument("--password", help="(prompted when omitted)")
    cu.add_argument("--name", default="")
    cu.add_argument("--language", choices=["ru", "en"], default="en")
    demo = sub.add_parser("demo", help="seed demo users, queues, statuses and result codes; print logins")
    demo.add_argument("--password", help="password for all demo users (random when omitted)")
    demo.add_argument(
        "--reset-passwords", action="store_true", help="give existing demo users the new password"
    )
    rollups = sub.add_parser("rollups", help="rebuild the report rollups of the last days (backfill)")
    rollups.add_argument("--days", type=int, default=90)
    phones = sub.add_parser(
        "softphones", help="write the PJSIP endpoints of the operators whose phone is the browser"
    )
    phones.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        # A wrong setting is the operator's to fix: say which and why, not a traceback.
        for problem in exc.errors():
            where = ".".join(str(part) for part in problem["loc"])
            print(f"error: settings: {where + ': ' if where else ''}{problem['msg']}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    handlers = {
        "serve": cmd_serve,
        "migrate": cmd_migrate,
        "createuser": cmd_createuser,
        "demo": cmd_demo,
        "rollups": cmd_rollups,
        "softphones": cmd_softphones,
    }
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
