"""What the PostgreSQL bench scripts share: loopback-only admin DSNs, throwaway databases built
from an Alembic template, progress on stderr, nearest-rank percentiles and this process's
memory (RSS, its peak and resetting the peak).

Imported by the scripts next to it (``python bench/<script>.py`` puts ``bench/`` first on the
path); ``routing`` re-exports the names ``scenarios`` and ``widget`` take from it.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from omni.db.migrate import upgrade_async

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def check_loopback(dsn: str) -> None:
    """A benchmark creates and drops databases: never anywhere but on this machine."""
    host = urlsplit(dsn).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to run against {host!r}: the benchmark runs on loopback only")


def raw_dsn(admin_dsn: str, dbname: str) -> str:
    return f"{admin_dsn.rsplit('/', 1)[0]}/{dbname}"


def sqlalchemy_url(admin_dsn: str, dbname: str) -> str:
    return raw_dsn(admin_dsn, dbname).replace("postgresql://", "postgresql+asyncpg://", 1)


async def admin_execute(admin_dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def build_template(admin_dsn: str, template: str) -> None:
    """A fresh database ``template`` at the head migration, for ``clone`` to copy."""
    await admin_execute(
        admin_dsn, f"DROP DATABASE IF EXISTS {template} WITH (FORCE)", f"CREATE DATABASE {template}"
    )
    # Alembic's env runs its own event loop, hence the thread.
    await upgrade_async(sqlalchemy_url(admin_dsn, template))


async def clone(admin_dsn: str, source: str, name: str) -> None:
    await admin_execute(admin_dsn, f"CREATE DATABASE {name} TEMPLATE {source}")


async def drop(admin_dsn: str, *names: str) -> None:
    await admin_execute(admin_dsn, *(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in names))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0); ``False`` where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (Linux ``/proc``), a load-independent
    figure next to the wall-clock rates (a worker-process ``serve`` counts whole)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += used.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


async def widget_line(session: Any, name: str) -> tuple[Any, int]:
    """One available operator (room for every conversation, no calls) behind an auto-accepting
    widget inbox: the smallest world in which a visitor message runs the whole chat path.
    Returns the operator and the inbox id."""
    import uuid

    from omni import seed as factory
    from omni.domain import presence
    from omni.domain.auth import hash_password

    op = await factory.user(
        session, f"{name}-op", password_hash=hash_password("x" * 16), capacity=10_000, handles_voice=False
    )
    queue = await factory.queue(session, name, [op], auto_accept=True, queue_timeout_seconds=3600)
    inbox = await factory.inbox(session, queue, "widget", name, public_token=uuid.uuid4().hex)
    await presence.do_set_status(session, op.id, await presence.status_by_code(session, "available"))
    return op, inbox.id
