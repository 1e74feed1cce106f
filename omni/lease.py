"""Leases: one node of several owns a thing that must have exactly one owner (the AMI link,
a long-polling Telegram bot), and another node takes it over within seconds when it dies.

A lease is a PostgreSQL *session* advisory lock on a key derived from a stable name
(``voice:ami``, ``telegram:poll:<bot id>``), held on one **dedicated** connection per node
(``Leases``), never on a pooled one: a pooled connection goes back to the pool and its session
lock would follow it to whoever checks it out next. Why a session lock:

* the holder's process dying (SIGKILL, OOM, a crashed host whose kernel still closes the
  socket) closes its connection, and PostgreSQL frees the lock at once;
* PostgreSQL restarting, or the connection breaking (network), frees it too: the holder finds
  out at its next check (every ``check_seconds``), stops owning *before* anything else
  (``on_lost``), reconnects and competes again like any other node;
* nothing is written: no rows, no clocks to compare between nodes.

Every ``check_seconds`` the node runs one statement on that connection: it proves the
connection (and so every lock it holds) is alive and tries each lease it wants but does not
hold (``pg_try_advisory_lock``). A standby therefore takes a lease over at most
``check_seconds`` after its holder's connection is gone. The window where two nodes could
both believe they own a key is the time the old holder needs to notice a broken connection
(one check), which only happens when PostgreSQL itself dropped it.

Embedded mode (SQLite, one process): there is nobody to compete with; every lease is held
from the moment it is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from omni.aio import stop_tasks, wait_set

log = logging.getLogger(__name__)

__all__ = ["Lease", "Leases", "holders", "lease_key"]

Hook = Callable[[], Awaitable[None]]

CHECK_SECONDS = 1.0
"""Default period of the holder's proof and of a standby's attempts (``OMNI_LEASE_CHECK_SECONDS``)."""

CONNECT_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_SECONDS = 5.0
"""Least time a check's statement may take before the connection counts as lost: a busy server
answering late must not make the holder give its leases up (a broken connection fails at once)."""


def lease_key(name: str) -> int:
    """The advisory lock number of a lease name: a signed 64-bit hash, stable across nodes
    and versions (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(f"omni.lease:{name}".encode()).digest()[:8], "big", signed=True)


async def _noop() -> None:
    return None


@dataclass(eq=False)
class Lease:
    """One named lease of this node. ``on_acquired`` runs when this node becomes the owner,
    ``on_lost`` when it stops being the owner (connection lost, or ``stop``); they never
    overlap and alternate strictly. ``held`` says whether this node owns it now."""

    leases: Leases
    name: str
    on_acquired: Hook = _noop
    on_lost: Hook = _noop
    held: bool = False
    acquisitions: int = 0
    """How many times this node took the lease (tests wait on it)."""
    key: int = field(init=False)
    _wanted: bool = False

    def __post_init__(self) -> None:
        self.key = lease_key(self.name)

    async def start(self) -> None:
        """Want the lease: taken at once if it is free (this call returns after ``on_acquired``
        ran), else whenever its holder lets go."""
        await self.leases._want(self)

    async def stop(self) -> None:
        """Give the lease up: ``on_lost`` runs first (while the lock still keeps the others
        out), then the lock is released so a standby takes it at its next check."""
        await self.leases._unwant(self)


class Leases:
    """This node's leases, on one dedicated PostgreSQL connection (or none: SQLite).

    ``url`` is the app's SQLAlchemy URL; ``node`` names this node in ``pg_stat_activity``
    (``application_name``: ``omni-lease <node>``) so an operator can see who holds what.
    """

    def __init__(self, url: str, *, node: str, check_seconds: float = CHECK_SECONDS) -> None:
        self.url = url
        self.node = node
        self.check_seconds = check_seconds
        self.local = url.startswith("sqlite")
        self._leases: dict[str, Lease] = {}
        self._conn: Any = None  # asyncpg.Connection (asyncpg is untyped)
        self._lock = asyncio.Lock()
        """Serialises every use of the connection and every hook (one owner change at a time)."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # --- the public surface ------------------------------------------------------------------

    def lease(self, name: str, *, on_acquired: Hook = _noop, on_lost: Hook = _noop) -> Lease:
        """A handle for ``name``; nothing happens until its ``start``. One handle per name."""
        if name in self._leases:
            raise ValueError(f"lease {name!r} is already in use on this node")
        lease = Lease(self, name, on_acquired, on_lost)
        return lease

    def held(self) -> dict[str, bool]:
        """Every lease this node wants, with whether it holds it (``/readyz``, metrics)."""
        return {name: lease.held for name, lease in sorted(self._leases.items())}

    async def holder(self, name: str) -> str | None:
        """The node holding ``name`` now (its ``application_name``), from ``pg_locks``; ``None``
        when nobody does. SQLite: this node, when it wants it."""
        if self.local:
            lease = self._leases.get(name)
            return self.node if lease is not None and lease.held else None
        conn = await self._connect_once()
        try:
            found = await conn.fetchval(HOLDER_SQL, *_halves(lease_key(name)))
        finally:
            await conn.close()
        return str(found).removeprefix("omni-lease ") if found is not None else None

    async def start(self) -> None:
        """Start the checks (a no-op in embedded mode)."""
        if self.local or self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name="leases")

    async def stop(self) -> None:
        """Give every lease up (``on_lost`` each) and close the connection: the locks are free
        for the other nodes at once, not after a timeout."""
        for lease in list(self._leases.values()):
            await lease.stop()
        if self._task is not None:
            await stop_tasks(self._task)
            self._task = None
        async with self._lock:
            await self._close()

    # --- internals ----------------------------------------------------------------------------

    async def _want(self, lease: Lease) -> None:
        if lease._wanted:
            return
        if self._leases.setdefault(lease.name, lease) is not lease:
            raise ValueError(f"lease {lease.name!r} is already in use on this node")
        lease._wanted = True
        if self.local:
            async with self._lock:
                await self._acquired(lease)
            return
        # Try at once, so a lone node (or the first) owns it before its start returns.
        async with self._lock:
            await self._check()
        self._wake.set()

    async def _unwant(self, lease: Lease) -> None:
        if not lease._wanted:
            return
        lease._wanted = False
        async with self._lock:
            if lease.held:
                await self._lost(lease, "given up")
                if self._conn is not None:
                    try:
                        await self._conn.fetchval("SELECT pg_advisory_unlock($1)", lease.key)
                    except Exception as exc:  # the connection is gone: so is the lock
                        log.warning(
                            "lease %s: unlock failed (%s); closing the lease connection", lease.name, exc
                        )
                        await self._drop_connection(str(exc))
            self._leases.pop(lease.name, None)

    async def _run(self) -> None:
        while True:
            await wait_set(self._wake, self.check_seconds)
            self._wake.clear()
            try:
                async with self._lock:
                    await self._check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease check failed")

    @property
    def _statement_timeout(self) -> float:
        return max(STATEMENT_TIMEOUT_SECONDS, self.check_seconds * 5)

    async def _check(self) -> None:
        """One round: prove the connection, try what is wanted and free. Lock held."""
        if not self._leases:
            return
        if self._conn is None:
            try:
                self._conn = await self._connect_once()
            except Exception as exc:
                log.warning(
                    "leases: can't reach PostgreSQL (%s); trying again in %.1fs", exc, self.check_seconds
                )
                return
        wanted = [lease for lease in self._leases.values() if lease._wanted and not lease.held]
        try:
            if wanted:
                rows = await self._conn.fetch(
                    "SELECT k, pg_try_advisory_lock(k) AS got FROM unnest($1::bigint[]) AS k",
                    [lease.key for lease in wanted],
                    timeout=self._statement_timeout,
                )
                got = {int(row["k"]) for row in rows if row["got"]}
            else:
                await self._conn.fetchval("SELECT 1", timeout=self._statement_timeout)
                got = set()
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            await self._drop_connection(f"{type(exc).__name__}: {exc}")
            return
        for lease in wanted:
            if lease.key in got:
                await self._acquired(lease)

    async def _drop_connection(self, why: str) -> None:
        """The connection is gone (PostgreSQL restarted, the network broke, a statement timed
        out): every lock on it is gone or about to be, so nothing is owned from now on."""
        held = [lease for lease in self._leases.values() if lease.held]
        if held:
            log.warning(
                "leases: connection to PostgreSQL lost (%s): giving up %s",
                why,
                ", ".join(x.name for x in held),
            )
        await self._close()
        for lease in held:
            await self._lost(lease, f"connection lost: {why}")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)
            if not conn.is_closed():
                conn.terminate()

    async def _connect_once(self) -> Any:
        url = make_url(self.url).set(drivername="postgresql")
        return await asyncpg.connect(
            url.render_as_string(hide_password=False),
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={
                "application_name": f"omni-lease {self.node}"[:63],
                # A peer that vanished without closing (power loss, a cut cable): the server
                # notices within ~15 s and frees its locks instead of after two hours.
                "tcp_keepalives_idle": "5",
                "tcp_keepalives_interval": "2",
                "tcp_keepalives_count": "5",
            },
        )

    async def _acquired(self, lease: Lease) -> None:
        lease.held = True
        lease.acquisitions += 1
        log.info("lease %s acquired by node %s", lease.name, self.node)
        try:
            await lease.on_acquired()
        except Exception:
            log.exception("lease %s: starting as its owner failed", lease.name)

    async def _lost(self, lease: Lease, why: str) -> None:
        lease.held = False
        if why.startswith("connection"):
            log.warning("lease %s lost by node %s: %s", lease.name, self.node, why)
        else:
            log.info("lease %s released by node %s (%s)", lease.name, self.node, why)
        try:
            await lease.on_lost()
        except Exception:
            log.exception("lease %s: stopping as its owner failed", lease.name)


def _halves(key: int) -> tuple[int, int]:
    """``pg_locks`` shows a bigint advisory key as ``classid`` (high 32 bits) and ``objid``
    (low 32 bits), both unsigned."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


async def holders(session: AsyncSession, names: Sequence[str]) -> dict[str, str | None]:
    """Which node holds each lease now (``pg_locks`` joined to the holders' ``application_name``),
    through any session: a node can tell who owns what without wanting it itself."""
    found: dict[str, str | None] = {}
    for name in names:
        high, low = _halves(lease_key(name))
        app = await session.scalar(
            text(HOLDER_SQL.replace("$1", ":high").replace("$2", ":low")), {"high": high, "low": low}
        )
        found[name] = str(app).removeprefix("omni-lease ") if app is not None else None
    return found


HOLDER_SQL = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.database = (
      SELECT oid FROM pg_database WHERE datname = current_database())
"""
