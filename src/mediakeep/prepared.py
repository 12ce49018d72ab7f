"""Prepared reads: a hot SELECT compiled once and, on SQLite, run without SQLAlchemy's
per-execution machinery: for a read session on the event loop's own thread
(`sqlite_driver.LoopReader`, the pool when SQLite is busy there), for a write session on its
connection's thread, in one call inside its transaction.

On the hot reads (`GET /media/{id}`, the list) SQLAlchemy's execution path (execution
context, cursor result, greenlet switches) cost more CPU than SQLite's answer: about 0.13 ms
of a 0.33 ms read, measured in process. A `PreparedRead` keeps what SQLAlchemy gives that
matters: the SQL it compiles for the dialect, its bind and result processors (dates, JSON,
booleans), its exceptions, and the engine's `before_cursor_execute` / `after_cursor_execute`
events (without a Connection, cursor or context), so statement counters and the tenancy check
still see every statement.

On PostgreSQL a read session's prepared read (one without an ORM session yet) runs the same
way on its pooled connection's asyncpg connection (`fetch`, whose statement cache prepares it
once per connection): the read engine is in autocommit, so there is no transaction to begin.
The result processors are SQLAlchemy's for the column types asyncpg reports (its numeric
processors need them), taken from one `prepare` the first time. A write session's, or a read
session's once it has an ORM session, goes through SQLAlchemy's Core path on the session's
connection: a write session's transaction is begun by SQLAlchemy's adapter at its first
statement, which a bypass would skip.
"""

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Select, Text, cast, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import sqltypes

from mediakeep.db import LazyReadSession, ReadOnlySession, sqlite_driver_of
from mediakeep.sqlite_driver import DRIVER, LoopReader

Processor = Callable[[Any], Any]


class _Compiled:
    """The statement for one dialect: its SQL, parameter order and type processors."""

    __slots__ = (
        "_loads",
        "binds",
        "columns",
        "dialect",
        "fixed",
        "json_at",
        "names",
        "results",
        "sql",
    )

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        self.dialect = dialect
        self.columns = list(statement.selected_columns)
        self.json_at: frozenset[int] = frozenset()
        # The engine's JSON decoder (`json_deserializer`), as SQLAlchemy's JSON type uses it.
        self._loads: Callable[[str], Any] = (
            getattr(dialect, "_json_deserializer", None) or json.loads
        )
        if dialect.driver == "asyncpg":
            # asyncpg decodes JSON as it reads each row, and a media's JSON repeats on every
            # row of its children: fetched as text instead, it is decoded when `Rows.part`
            # asks, once per media (as on SQLite, where JSON is text anyway).
            self.json_at = frozenset(
                index
                for index, column in enumerate(self.columns)
                if isinstance(column.type, sqltypes.JSON)
            )
            statement = statement.with_only_columns(
                *(
                    cast(column, Text) if index in self.json_at else column
                    for index, column in enumerate(self.columns)
                )
            )
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: Sequence[str] = compiled.positiontup or ()
        # Literals the statement carries itself (anonymous parameters such as `param_1`).
        self.fixed: dict[str, Any] = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        # Values of a tuple type would have a processor per element: none is bound here.
        self.binds: Mapping[str, Processor] = {
            name: processor
            for name, processor in compiled._bind_processors.items()
            if callable(processor)
        }
        # SQLite's processors do not depend on the column's type code; asyncpg's do (their
        # numeric ones): those are set from the first prepare (`_read_asyncpg`).
        self.results: list[tuple[int, Processor]] | None = (
            self.results_for([None] * len(self.columns)) if dialect.name == "sqlite" else None
        )

    def results_for(self, type_codes: Sequence[Any]) -> list[tuple[int, Processor]]:
        found: list[tuple[int, Processor]] = []
        for index, (column, code) in enumerate(zip(self.columns, type_codes, strict=True)):
            if index in self.json_at:
                found.append((index, self._json_text))
            elif (
                processor := column.type._cached_result_processor(self.dialect, code)
            ) is not None:
                found.append((index, processor))
        return found

    def _json_text(self, text: str | None) -> Any:
        return None if text is None else self._loads(text)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        binds = self.binds
        merged = {**self.fixed, **values} if self.fixed else values
        return tuple(
            binds[name](merged[name]) if name in binds else merged[name] for name in self.names
        )


class Rows:
    """A prepared read's rows, each part decoded only when asked for (`part`): the hot reads
    join a media with its children, so the media's columns (JSON, dates) repeat on every
    child's row and are decoded once, for the first."""

    __slots__ = ("_results", "raw", "rows")

    def __init__(
        self,
        rows: Sequence[Sequence[Any]],
        results: Sequence[tuple[int, Processor]] | None = None,
    ) -> None:
        self.rows = rows
        # As the driver gave them (plain, hashable values: JSON still text), or SQLAlchemy's
        # rows, already decoded (`results` None).
        self.raw = results is not None
        self._results = results or ()

    def part(self, row: Sequence[Any], start: int, end: int) -> tuple[Any, ...]:
        """The decoded values of `row[start:end]`."""
        values = list(row[start:end])
        for index, processor in self._results:
            if start <= index < end:
                values[index - start] = processor(values[index - start])
        return tuple(values)

    def decoded(self) -> list[tuple[Any, ...]]:
        return [self.part(row, 0, len(row)) for row in self.rows]


class PreparedRead:
    """A SELECT whose values are all bound parameters, run many times on the hot path."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        # By dialect and driver: asyncpg's statement fetches JSON as text (see `_Compiled`).
        self._by_dialect: dict[tuple[str, str], _Compiled] = {}

    async def rows(
        self, session: ReadOnlySession, values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The rows, decoded as SQLAlchemy decodes them (see `read`)."""
        return (await self.read(session, values)).decoded()

    async def read(self, session: ReadOnlySession, values: Mapping[str, Any]) -> Rows:
        """The rows (decoded as SQLAlchemy decodes them when asked), in the session's unit of
        work: a read session's on the event loop's thread (falling back to its pooled
        connection when SQLite is busy), a write session's on its own connection, inside its
        transaction."""
        loop_reader: LoopReader | None = None
        if (
            isinstance(session, LazyReadSession)
            and session.engine.dialect.driver == "asyncpg"
            and not session.has_orm_session
        ):
            return await self._read_asyncpg(session, values)
        if isinstance(session, LazyReadSession) and _on_sqlite(session.engine):
            engine, loop_reader, pooled = session.engine, session.loop_reader, session.sqlite_driver
        elif isinstance(session, AsyncSession) and _on_sqlite(session.bind):
            connection = await session.connection()
            engine, pooled = connection.engine, partial(sqlite_driver_of, connection)
        else:  # PostgreSQL: SQLAlchemy's Core path (see the module's docstring)
            result = await session.execute(self.statement, dict(values))
            return Rows(result.all())
        compiled = self._compiled(engine.dialect)
        parameters = compiled.parameters(values)
        with _cursor_events(engine, compiled.sql, parameters):
            try:
                found = loop_reader.fetch_all(compiled.sql, parameters) if loop_reader else None
                if found is None:
                    found = await (await pooled()).fetch_all(compiled.sql, parameters)
            except sqlite3.Error as error:
                raise exc.DBAPIError.instance(
                    compiled.sql, parameters, error, sqlite3.Error, dialect=engine.dialect
                ) from error
        assert compiled.results is not None
        return Rows(found, compiled.results)

    async def _read_asyncpg(self, session: LazyReadSession, values: Mapping[str, Any]) -> Rows:
        engine = session.engine
        pooled = await session.pooled()
        driver = pooled.driver_connection
        assert driver is not None
        compiled = self._compiled(engine.dialect)
        parameters = compiled.parameters(values)
        with _cursor_events(engine, compiled.sql, parameters):
            try:
                if compiled.results is None:
                    attributes = (await driver.prepare(compiled.sql)).get_attributes()
                    compiled.results = compiled.results_for([a.type.oid for a in attributes])
                found = await driver.fetch(compiled.sql, *parameters)
            except Exception as error:
                lost = driver.is_closed()  # the server went away: the pool must not reuse it
                raised = _as_dbapi_error(
                    pooled, engine.dialect, compiled.sql, parameters, error, lost=lost
                )
                if lost:
                    pooled.invalidate(error)
                raise raised from error
            except BaseException:
                # Cancelled mid-statement (the client went away): asyncpg is still unwinding
                # the statement on that connection, so it must not serve the next unit.
                pooled.invalidate()
                raise
        return Rows(found, compiled.results)

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get((dialect.name, dialect.driver))
        if found is None:
            key = (dialect.name, dialect.driver)
            found = self._by_dialect[key] = _Compiled(self.statement, dialect)
        return found


@contextmanager
def _cursor_events(engine: AsyncEngine, sql: str, parameters: Any) -> Iterator[None]:
    """The engine's `before_cursor_execute` / `after_cursor_execute` around a statement run
    without SQLAlchemy's cursor, so statement counters and the tenancy check see it (the
    after event only when it succeeded, as SQLAlchemy fires it)."""
    events = engine.sync_engine.dispatch if engine.sync_engine._has_events else None
    if events is not None:
        events.before_cursor_execute(None, None, sql, parameters, None, False)
    yield
    if events is not None:
        events.after_cursor_execute(None, None, sql, parameters, None, False)


def _as_dbapi_error(
    pooled: PoolProxiedConnection,
    dialect: Dialect,
    sql: str,
    parameters: Any,
    error: Exception,
    *,
    lost: bool,
) -> exc.StatementError:
    """What SQLAlchemy raises for asyncpg's `error` on its own path: its adapter's DB-API error
    (`UniqueViolationError` -> `IntegrityError`, ...) wrapped as `sqlalchemy.exc.DBAPIError`'s
    subclass of that name, marked `connection_invalidated` when the connection was lost (as
    SQLAlchemy marks a disconnect: the request is then answered 503 `database.unavailable`)."""
    original: Exception = error
    try:
        pooled.dbapi_connection._handle_exception(error)  # type: ignore[union-attr]
    except Exception as translated:  # noqa: BLE001 - the adapter raises its translation
        original = translated
    return exc.DBAPIError.instance(
        sql,
        parameters,
        original,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )


def _on_sqlite(bind: AsyncEngine | AsyncConnection | None) -> bool:
    """Whether the session's statements go to SQLite through `mediakeep.sqlite_driver`."""
    return bind is not None and bind.dialect.driver == DRIVER
