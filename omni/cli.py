"""``omni`` command: serve, migrate, createuser, demo, rollups."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from typing import Any

import uvicorn

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
        **extra,
    }
    return uvicorn.Config(app, **values)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from omni.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    mode = "embedded (SQLite, in-process)" if settings.embedded else "distributed (Redis)"
    logging.getLogger("omni").info("Omni on http://%s:%s, mode: %s", host, port, mode)
    uvicorn.Server(server_config(create_app(settings), settings, host=host, port=port)).run()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omni", description="Omni contact center")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="run the web server (embedded defaults unless settings say otherwise)"
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
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
    args = parser.parse_args(argv)
    settings = get_settings()
    _configure_logging(settings)
    handlers = {
        "serve": cmd_serve,
        "migrate": cmd_migrate,
        "createuser": cmd_createuser,
        "demo": cmd_demo,
        "rollups": cmd_rollups,
    }
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
