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
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from omni.db.outbox import unflushed

__all__ = ["Core", "Direct", "Entity", "listen", "load_first", "remove", "session_statements", "statements"]

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


@dataclass(frozen=True, slots=True)
class Entity:
    """A mapped class's columns in a row read here: its attribute keys in the row's order and
    where its primary key is among them. Turns a row of plain columns back into the persistent
    object the ORM would have loaded (:meth:`load`), without the ORM's execution and loading:
    that was a third of a bot step's CPU (bench/README.md, scen7) and about half of the Python
    of a chat message's leg (bench/widget_legs.py)."""

    cls: type[Any]
    keys: tuple[str, ...]
    pk: int
    identity: Any
    """The class an identity key names (the mapper's, for inheritance), found once."""

    @classmethod
    def of(cls, mapped: type[Any]) -> Entity:
        mapper = mapped.__mapper__
        table = mapper.local_table
        keys = tuple(p.key for p in mapper.column_attrs if p.columns[0].table is table)
        (key,) = mapper.primary_key
        identity = mapper.identity_key_from_primary_key((0,))[0]
        return cls(mapped, keys, keys.index(mapper.get_property_by_column(key).key), identity)

    def columns(self, source: Any) -> list[Any]:
        """The entity's columns taken from ``source`` (its table or a lateral alias of it); the
        row is read by position (a name two tables share is labelled apart by SQLAlchemy)."""
        mapper = self.cls.__mapper__
        return [source.c[mapper.get_property(k).columns[0].key] for k in self.keys]

    def load(self, session: AsyncSession, values: Sequence[Any]) -> Any:
        """The row's object, persistent in ``session`` as if the ORM had loaded it (its values
        committed, nothing to flush); the object already there when the session has it (as the
        ORM's loading keeps it); ``None`` for an outer join's empty side.

        Attached as the ORM's own loading attaches a new row (``orm.loading``: the identity
        key and session set on the state, the state put in the identity map), not through
        ``make_transient_to_detached`` and ``session.add``: their checks, attach events and
        cascade walk cost a bot step about a tenth of its CPU for four objects
        (bench/README.md, scen8). Not fired, as before: the ORM's ``load`` and
        ``loaded_as_persistent`` events, nor (unlike ``session.add``) the attach ones; Omni
        listens for none of them. Unloaded relationships stay lazy, as on a loaded object."""
        pk = values[self.pk]
        if pk is None:
            return None
        sync = session.sync_session
        identities = sync.identity_map
        key = (self.identity, (pk,), None)
        held = identities.get(key)
        if held is not None:
            state = instance_state(held)
            if state.expired_attributes:
                # Changed behind the ORM's back and expired (routing_pg): the ORM's loading
                # fills what was expired from the row, and so does this.
                for k, v in zip(self.keys, values, strict=True):
                    if k in state.expired_attributes:
                        set_committed_value(held, k, v)
            return held
        obj = self.cls.__mapper__.class_manager.new_instance()
        state = instance_state(obj)
        state.dict.update(zip(self.keys, values, strict=True))
        state.key = key
        state.session_id = sync.hash_key
        identities._add_unpresent(state, key)
        return obj


async def load_first(
    session: AsyncSession, entity: Entity, stmt: Any, params: Mapping[str, Any], *, flush: bool = True
) -> Any:
    """The first row of ``stmt`` (``entity.columns(...)``, nothing else) as ``entity``'s
    persistent object in ``session``, or ``None``: ``session.scalar(select(Mapped)…)`` without
    the ORM's execution. ``flush``: write what the session holds first, as the ORM's autoflush
    would before a read (the statement does not pass the session's execution, so no
    autoflush); off where the caller runs under ``no_autoflush``."""
    if flush and session.autoflush and unflushed(session):
        await session.flush()
    row = await (await session_statements(session)).first(stmt, params)
    return None if row is None else entity.load(session, row)
