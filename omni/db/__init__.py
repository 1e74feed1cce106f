"""Database access: the one way to open a session is ``Database.transaction()``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from omni.db import models
from omni.db.driver import Core, Direct, statements
from omni.db.outbox import OutboxSession
from omni.db.unit_of_work import Plugins, UnitOfWork, attach
from omni.wire import dumps, loads

__all__ = ["BareTransaction", "Database", "HeldConnection", "models"]

IDLE_PING_SECONDS = 5.0
"""A pooled connection idle longer than this is pinged before use (see ``_check_at_checkout``)."""


class Database:
    """Engine + session factory, with after-commit hooks for the outbox relay.

    On SQLite (embedded, one process) write transactions are serialised by an asyncio lock,
    which is what SQLite does anyway, minus "database is locked" errors. On PostgreSQL
    transactions run concurrently and rely on row locks (``FOR UPDATE SKIP LOCKED``).
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        """``pool_size``: the most PostgreSQL connections open at once. Each is opened when
        first needed and then kept. There is no overflow: SQLAlchemy closes an overflow
        connection when it is handed back, so a node at its peak opened and closed connections
        several times a second — a new backend, the dialect's type set-up and every statement
        prepared again each time — which made a saturated node slower still (bench/README.md,
        widget, pool15). The most recently returned connection goes out first, so a quiet node
        keeps using a few warm ones."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # JSON columns through msgspec (omni.wire): the events' payloads are read on every
        # relay pass and written with every message.
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": dumps, "json_deserializer": loads}
        if not self.is_sqlite:
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_use_lifo=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            _check_at_checkout(self.engine)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=OutboxSession
        )
        self._sqlite_lock = asyncio.Lock() if self.is_sqlite else None
        self.after_commit_hooks: list[Callable[[UnitOfWork], None]] = []
        """Run with the unit of work of every committed transaction (the relay and routing
        nudges), before the work the transaction itself queued."""
        self.plugins = Plugins()
        """What plug-ins (the bot gateway, their deadline kinds) give every transaction's unit
        of work: how domain code that only gets a session reaches them, without globals."""

    @asynccontextmanager
    async def transaction(self, *, snapshot: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: commit on success, rollback on error.

        ``snapshot``: every read sees the database as of the first one (REPEATABLE READ on
        PostgreSQL; SQLite's transactions are serialised here anyway), for a reader that must
        not mix two commits (the IVR deciding what a caller hears next).

        The session carries a fresh :class:`~omni.db.unit_of_work.UnitOfWork`. After a
        successful commit every hook runs with it (the relay and routing nudges), then the work
        it queued (a bot's HTTP calls), so nothing is announced or started for a change that
        rolled back.
        """
        if self._sqlite_lock is not None:
            async with self._sqlite_lock, self._run() as session:
                yield session
        else:
            async with self._run() as session:
                if snapshot:
                    _ = await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                yield session

    @asynccontextmanager
    async def _run(self, bind: AsyncConnection | None = None) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker(**({"bind": bind} if bind is not None else {})) as session:
            uow = UnitOfWork.of(self.plugins)
            attach(session, uow)
            async with session.begin():
                yield session
            for hook in self.after_commit_hooks:
                hook(uow)
            for work in uow.after_commit:
                work()

    async def dispose(self) -> None:
        await self.engine.dispose()


class HeldConnection:
    """One connection a loop keeps across its transactions (the outbound scheduler's passes):
    taken from the pool once, so its transactions skip the pool's checkout and pre-ping (on
    asyncpg BEGIN, ``;`` and ROLLBACK: three round trips before every pass, more than the
    pass's own reads cost inside PostgreSQL; bench/outbound_scheduler.py).

    SQLAlchemy's public API only: each ``transaction()`` is a session bound to the connection,
    begun and committed (or rolled back) by ``session.begin()``, with the same unit of work and
    after-commit hooks as ``Database.transaction()``. Any error inside one (a statement failing,
    the connection lost to a PostgreSQL restart, a cancellation) invalidates the connection:
    one whose state is in doubt is never used again, and the next transaction takes a fresh one
    from the pool, pinged there. ``lost`` tells whether a failure was the held connection gone
    stale, which the caller may retry once at once (the pool would have replaced it unseen).
    On SQLite (no pool, no ping, one writer) it is ``Database.transaction()``.

    ``generic_plans`` (PostgreSQL 12+): the connection runs its prepared statements with
    generic plans and without JIT (``plan_cache_mode = force_generic_plan``, ``jit = off``; set
    once when it is taken and reset before it goes back to the pool). A loop that runs the same
    few statements on it again and again (the scheduler) then plans each once: left to itself
    PostgreSQL plans a statement with a parameterised ``LIMIT`` for every execution (a custom
    plan), which cost the scheduler's claim more than running it (bench/outbound_scheduler.py).
    JIT goes with it: a generic plan costs such a ``LIMIT`` as a tenth of the table, over
    ``jit_above_cost``, and compiling took 0.5 s per execution of a 0.2 ms claim.
    """

    def __init__(self, db: Database, *, generic_plans: bool = False) -> None:
        self.db = db
        self.generic_plans = generic_plans
        self._conn: AsyncConnection | None = None
        self._run: Direct | Core | None = None
        """How built-once statements run on the held connection (found once per connection)."""
        self._reused = False
        """Whether the running transaction's connection was held from an earlier one."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self.db.is_sqlite:
            async with self.db.transaction() as session:
                yield session
            return
        self._reused = self._conn is not None
        if self._conn is None:
            self._conn = await self._connect()
        conn = self._conn
        try:
            async with self.db._run(conn) as session:
                yield session
        except BaseException:
            self._conn = None
            await conn.invalidate()
            await conn.close()
            raise

    @asynccontextmanager
    async def bare(self) -> AsyncIterator[BareTransaction]:
        """One transaction on the held connection without an ORM session unless the work asks
        for one (:meth:`BareTransaction.session`): the routing pass's decisions, whose
        statements run straight on the driver (``omni.db.driver``). A session's set-up, its
        begin, flush check, commit and close cost about 0.45 ms of Python per transaction, more
        than the decision's four statements (bench/README.md, "Issue 15 … route6").

        The same guarantees as :meth:`transaction`: one transaction (BEGIN goes with the first
        statement, as SQLAlchemy's adapter sends it), committed when the block ends — a session
        asked for is committed first, so its flush and outbox rows go in the same transaction —
        and rolled back with the connection invalidated on any error; the unit of work's
        after-commit hooks and queued work run only after the commit. PostgreSQL only: on
        SQLite use :meth:`transaction`.
        """
        if self.db.is_sqlite:
            raise TypeError("a bare transaction is for PostgreSQL; SQLite takes transaction()")
        self._reused = self._conn is not None
        if self._conn is None:
            self._conn = await self._connect()
            self._run = None
        conn = self._conn
        if self._run is None:
            self._run = await statements(conn)
        tx = BareTransaction(self.db, conn, self._run)
        try:
            yield tx
            await tx.commit()
        except BaseException:
            self._conn = self._run = None
            await tx.discard()
            await conn.invalidate()
            await conn.close()
            raise
        uow = tx.uow
        for hook in self.db.after_commit_hooks:
            hook(uow)
        for work in uow.after_commit:
            work()

    def lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` (raised by the last ``transaction()``) is the loss of a connection
        held from an earlier transaction (a PostgreSQL restart since): the pool's ping would
        have replaced it unseen, so the caller may run its transaction again at once, on a
        fresh connection. The lost transaction did not commit, unless the loss hit its COMMIT:
        only a caller that re-reads what it decides on (the scheduler) retries."""
        return self._reused and isinstance(exc, DBAPIError) and exc.connection_invalidated

    async def _connect(self) -> AsyncConnection:
        conn = await self.db.engine.connect()
        if self._sets_plans(conn):
            try:
                for name, value in _GENERIC_PLANS:
                    await conn.exec_driver_sql(f"SET {name} = {value}")
                await conn.commit()
            except BaseException:
                await conn.invalidate()
                await conn.close()
                raise
        return conn

    def _sets_plans(self, conn: AsyncConnection) -> bool:
        version = conn.dialect.server_version_info
        return self.generic_plans and version is not None and version >= (12,)

    async def close(self) -> None:
        conn, self._conn, self._run = self._conn, None, None
        if conn is None:
            return
        if self._sets_plans(conn):
            try:  # back to the pool as any other connection is
                for name, _ in _GENERIC_PLANS:
                    await conn.exec_driver_sql(f"RESET {name}")
                await conn.commit()
            except Exception:
                await conn.invalidate()  # never handed out again with the setting
        await conn.close()


class BareTransaction:
    """What :meth:`HeldConnection.bare` yields: the connection, its statements (``run``), the
    transaction's :class:`~omni.db.unit_of_work.UnitOfWork`, and an ORM session on demand."""

    __slots__ = ("_db", "_session", "conn", "run", "uow")

    def __init__(self, db: Database, conn: AsyncConnection, run: Direct | Core) -> None:
        self._db = db
        self.conn = conn
        self.run = run
        self.uow = UnitOfWork.of(db.plugins)
        self._session: AsyncSession | None = None

    @property
    def opened_session(self) -> AsyncSession | None:
        """The session :meth:`session` made, if it was asked for."""
        return self._session

    async def session(self) -> AsyncSession:
        """A session in this same transaction, with this unit of work (made at the first call;
        what ran before on ``run`` is visible to it, and its changes are flushed before the
        commit)."""
        if self._session is None:
            session = self._db.sessionmaker(bind=self.conn)
            attach(session, self.uow)
            self._session = session
        return self._session

    async def commit(self) -> None:
        """Flush and end the session, if any, then whatever of the transaction is still open:
        on the database it is one transaction, however many of these layers began it."""
        session = self._session
        if session is not None:
            await session.commit()  # its flush and outbox rows; the COMMIT if it began it
            await session.close()
        if self.conn.in_transaction():  # a statement through SQLAlchemy began it
            await self.conn.commit()
        if isinstance(self.run, Direct):
            await self.run.commit()  # begun by a statement sent straight on the driver

    async def discard(self) -> None:
        """Drop the session without touching the connection (invalidated next: the server
        rolls the transaction back)."""
        session, self._session = self._session, None
        if session is not None:
            session.expunge_all()
            await session.invalidate()


_GENERIC_PLANS = (("plan_cache_mode", "force_generic_plan"), ("jit", "off"))
"""``HeldConnection(generic_plans=True)``'s settings."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _check_at_checkout(engine: AsyncEngine) -> None:
    """Hand out only live connections, without a round trip for the busy ones.

    ``pool_pre_ping`` pings every checkout, and asyncpg's ping is three round trips (BEGIN,
    ``;``, ROLLBACK): 3 of a message's 11 (bench/widget_legs.py). Here a connection asyncpg
    already knows is closed (PostgreSQL restarted or dropped it: the socket saw EOF) is
    replaced without asking the server, and only a connection that sat idle for
    ``IDLE_PING_SECONDS`` — where a silent drop may have gone unseen — gets the dialect's own
    ping. Both are SQLAlchemy's documented pessimistic-disconnect hooks: raising
    ``DisconnectionError`` at checkout makes the pool discard the connection and try another.
    Nothing here starts or ends a transaction the pool doesn't know about.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["omni_idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is None or driver.is_closed():
            raise DisconnectionError("the pooled connection is closed")
        since = record.info.get("omni_idle_since")
        if since is not None and time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"the pooled connection failed its ping: {exc}") from exc
        if not alive:
            raise DisconnectionError("the pooled connection failed its ping")
