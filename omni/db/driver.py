"""Core statements run straight on the asyncpg connection of a session's transaction.

A statement executed through SQLAlchemy's async Core costs about 0.3 ms of Python on top of
its round trip (the greenlet hop, the compiled-cache key and look-up, ``construct_params``, the
result set-up): more than a routing decision's statements take inside PostgreSQL
(bench/README.md, "Issue 15"). :class:`Direct` runs a statement built once (every value a bound
parameter) on the driver connection under the same ``AsyncConnection``, in the same
transaction: it is compiled once per dialect, its bound values go through the same type
processors SQLAlchemy applies (aware UTC datetimes, JSON), its rows through the result
processors, and asyncpg prepares it once per connection (its statement cache is keyed by the
SQL text).

What stays as it was: the transaction is the session's (begun the way SQLAlchemy's adapter
begins it when it has not yet sent anything, committed or rolled back by the session — or,
in a transaction without a session (``omni.db.HeldConnection.bare``), committed by
:meth:`Direct.commit`), so locks and atomicity don't change; an error comes out as
SQLAlchemy's ``DBAPIError`` subclass (``IntegrityError``, ``OperationalError``…), and a lost
connection is invalidated as SQLAlchemy would. Statements sent here don't pass SQLAlchemy's
``before_cursor_execute`` event: whoever counts statements (the routing bench, the tests'
statement caps) adds :func:`listen`.

PostgreSQL + asyncpg only; SQLite (and any other driver) stays on SQLAlchemy's execution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

__all__ = ["Core", "Direct", "listen", "remove", "session_statements", "statements"]

StatementListener = Callable[[str], None]

_LISTENERS: WeakKeyDictionary[Engine, list[StatementListener]] = WeakKeyDictionary()


def listen(engine: AsyncEngine, listener: StatementListener) -> None:
    """Call ``listener(sql)`` for every statement :class:`Direct` sends through ``engine``
    (what ``before_cursor_execute`` is for the statements SQLAlchemy sends)."""
    _LISTENERS.setdefault(engine.sync_engine, []).append(listener)


def remove(engine: AsyncEngine, listener: StatementListener) -> None:
    _LISTENERS.get(engine.sync_engine, []).remove(listener)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]
    """``(name, bind processor, value bound at build time)`` in ``$n`` order."""
    results: tuple[Callable[[Any], Any] | None, ...]
    """One result processor per column (``None``: the driver's value as it is)."""
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]
    """The columns that have one, by position: a wide row (the ingest look-up's 56 columns,
    13 processed) is not walked column by column."""
    keys: tuple[str, ...]


_COMPILED: WeakKeyDictionary[Dialect, dict[int, tuple[Any, _Compiled]]] = WeakKeyDictionary()


def _compiled(stmt: Any, dialect: Dialect) -> _Compiled:
    by_stmt = _COMPILED.setdefault(dialect, {})
    hit = by_stmt.get(id(stmt))
    if hit is not None and hit[0] is stmt:
        return hit[1]
    c = stmt.compile(dialect=dialect)
    if not c.positional or c.positiontup is None:
        raise TypeError(f"{dialect.name} does not compile to positional parameters")
    if c.literal_execute_params or c.post_compile_params:
        raise TypeError("a statement run directly can't have expanding or literal-execute parameters")
    binds = []
    for name in c.positiontup:
        bind = c.binds[name]
        proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((name, proc, bind.value if not bind.required else None))
    columns = list(getattr(stmt, "selected_columns", ()) or ())
    results = tuple(col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns)
    keys = tuple(getattr(stmt, "selected_columns", {}).keys()) if columns else ()
    processed = tuple((i, p) for i, p in enumerate(results) if p is not None)
    compiled = _Compiled(c.string, tuple(binds), results if any(results) else (), processed, keys)
    by_stmt[id(stmt)] = (stmt, compiled)  # the statement is kept: its id can't be reused
    return compiled


class Direct:
    """Statements on ``conn``'s driver connection, inside ``conn``'s transaction."""

    __slots__ = ("_adapted", "_dialect", "_driver", "_listeners", "conn")

    def __init__(self, conn: AsyncConnection, adapted: Any, listeners: Sequence[StatementListener]) -> None:
        self.conn = conn
        self._adapted = adapted
        self._driver = adapted._connection
        self._dialect = conn.dialect
        self._listeners = listeners

    @classmethod
    async def of(cls, conn: AsyncConnection) -> Direct | None:
        """For ``conn`` (a session's connection, its transaction begun), or ``None`` when it
        isn't asyncpg's (SQLite): use SQLAlchemy's execution then."""
        if conn.dialect.driver != "asyncpg":
            return None
        raw = await conn.get_raw_connection()
        adapted = raw.dbapi_connection
        if adapted is None or not hasattr(adapted, "_start_transaction"):
            return None
        return cls(conn, adapted, _LISTENERS.get(conn.engine.sync_engine, ()))

    async def _run(self, stmt: Any, params: Mapping[str, Any]) -> tuple[_Compiled, list[Any]]:
        c = _compiled(stmt, self._dialect)
        args = []
        for name, proc, value in c.binds:
            v = params.get(name, value)
            args.append(v if proc is None else proc(v))  # as SQLAlchemy does, ``None`` too
        for listener in self._listeners:
            listener(c.sql)
        adapted = self._adapted
        try:
            if adapted._transaction is None:
                # Nothing sent yet in this transaction: BEGIN as SQLAlchemy's adapter does, so
                # the session's COMMIT or ROLLBACK ends what runs here.
                await adapted._start_transaction()
            rows = await self._driver.fetch(c.sql, *args)
        except exc.DBAPIError:
            raise
        except Exception as error:
            await self._raise(error, c.sql, args)
        return c, rows

    async def _raise(self, error: Exception, sql: str, args: list[Any]) -> None:
        """``error`` as SQLAlchemy raises it from a statement it sent itself."""
        dialect = self._dialect
        dbapi = dialect.loaded_dbapi
        try:
            self._adapted._handle_exception(error)  # the DB-API exception for asyncpg's
        except dbapi.Error as translated:
            disconnect = dialect.is_disconnect(translated, None, None)
            if disconnect:
                await self.conn.invalidate(translated)
            raise exc.DBAPIError.instance(
                sql, args, translated, dbapi.Error, connection_invalidated=disconnect, dialect=dialect
            ) from error

    async def rows(self, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        c, rows = await self._run(stmt, params)
        if not c.processed:
            return [tuple(r) for r in rows]
        processed = c.processed
        out = []
        for r in rows:
            values = list(r)
            for i, p in processed:
                values[i] = p(values[i])
            out.append(tuple(values))
        return out

    async def first(self, stmt: Any, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        rows = await self.rows(stmt, params)
        return rows[0] if rows else None

    async def named(self, stmt: Any, params: Mapping[str, Any]) -> SimpleNamespace | None:
        """The first row with its columns as attributes (``None``: no row)."""
        row = await self.first(stmt, params)
        if row is None:
            return None
        return SimpleNamespace(**dict(zip(_compiled(stmt, self._dialect).keys, row, strict=True)))

    async def execute(self, stmt: Any, params: Mapping[str, Any]) -> None:
        await self._run(stmt, params)

    async def commit(self) -> None:
        """COMMIT the transaction a statement here began, when nothing ended it since (a
        transaction without a session: ``omni.db.HeldConnection.bare``). As SQLAlchemy's
        adapter commits: the transaction is dropped whether or not the COMMIT succeeds."""
        adapted = self._adapted
        transaction = adapted._transaction
        if transaction is None:
            return
        adapted._transaction = None
        try:
            await transaction.commit()
        except exc.DBAPIError:
            raise
        except Exception as error:
            await self._raise(error, "COMMIT", [])


class Core:
    """:class:`Direct`'s methods through SQLAlchemy's execution (another driver, SQLite)."""

    __slots__ = ("conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def rows(self, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in (await self.conn.execute(stmt, params)).all()]

    async def first(self, stmt: Any, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        row = (await self.conn.execute(stmt, params)).first()
        return None if row is None else tuple(row)

    async def named(self, stmt: Any, params: Mapping[str, Any]) -> SimpleNamespace | None:
        row = (await self.conn.execute(stmt, params)).first()
        return None if row is None else SimpleNamespace(**row._asdict())

    async def execute(self, stmt: Any, params: Mapping[str, Any]) -> None:
        await self.conn.execute(stmt, params)


_SESSION_KEY = "omni.driver.statements"


async def session_statements(session: AsyncSession) -> Direct | Core:
    """:func:`statements` for the transaction ``session`` is in, found once per transaction
    (the ingest look-up and the bot step's write share it): kept in ``session.info`` with its
    connection, which a later transaction of the same session does not share."""
    conn = await session.connection()
    held = session.info.get(_SESSION_KEY)
    if held is not None and held.conn is conn:
        return held  # type: ignore[no-any-return]
    run = await statements(conn)
    session.info[_SESSION_KEY] = run
    return run


async def statements(conn: AsyncConnection) -> Direct | Core:
    """How to run built-once statements in ``conn``'s transaction: straight on asyncpg when it
    is the driver, else through SQLAlchemy."""
    return await Direct.of(conn) or Core(conn)
