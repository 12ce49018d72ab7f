"""SQLAlchemy's aiosqlite dialect with one thread hand-off per statement.

aiosqlite runs each call on the connection's own thread, and SQLAlchemy's adapter makes four
calls per statement (open a cursor, execute, fetch the rows, close the cursor) and one more for
the rollback that ends every read. Each is a queue put, a thread wake-up and a wake-up of the
event loop, and on the hot reads those hand-offs cost more than SQLite's answer. Here a
statement is one call on the connection's thread (cursor, execute, fetch and close together),
and commit/rollback are skipped when SQLite has no transaction open (a read without BEGIN).

Only the execution path changes: types, errors, pooling and SQL are aiosqlite's dialect's.
It leans on aiosqlite's connection queue (`_tx`, as SQLAlchemy's own adapter does for its
isolation-level setter), so aiosqlite is pinned to the minor versions tested.
"""

import asyncio
import collections
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)

DRIVER = "mediakeep"  # the URL's driver name: sqlite+mediakeep:///path


class _Outcome:
    """What a finished statement leaves behind: the cursor attributes SQLAlchemy reads."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, rows: list[Any]) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.arraysize = cursor.arraysize
        self.rows = rows

    @classmethod
    def nothing_yet(cls) -> "_Outcome":
        """A cursor's attributes before its first statement (its own: they are settable)."""
        empty = cls.__new__(cls)
        empty.description, empty.rowcount, empty.lastrowid = None, -1, None
        empty.arraysize, empty.rows = 1, []
        return empty


def _execute(connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """Runs on the connection's thread: the whole statement, rows included."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        return _Outcome(cursor, cursor.fetchall() if cursor.description else [])
    finally:
        cursor.close()


def _execute_many(
    connection: sqlite3.Connection, operation: str, parameters: Sequence[Any]
) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, parameters)
        return _Outcome(cursor, [])
    finally:
        cursor.close()


async def _on_thread(adapted: "OneHopConnection", function: Any, *args: Any) -> _Outcome:
    """One call on the aiosqlite connection's thread, answered through the event loop."""
    driver = adapted._connection
    future: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
    driver._tx.put_nowait((future, lambda: function(driver._conn, *args)))
    return await future


class LoopReader:
    """Hot reads on the event loop's own thread, each thread with a query-only connection of
    its own (`mediakeep.prepared`, for read sessions only).

    A statement handed to a connection's thread waits for the GIL twice on its way back (the
    thread to take the rows, then to wake the loop), and under load the event loop's thread
    gives the GIL up only when the interpreter makes it, every 5 ms: that wait, not SQLite,
    set the hot reads' p99 (25-28 ms at c=8, 12 ms without the hand-off, same machine and
    run). A hot read is a few index pages that SQLite answers in tens of microseconds, less
    than the hand-off's own cost, so it runs where the request runs.

    The connection never waits on a lock (timeout 0): when SQLite is busy (WAL readers rarely
    are: while another connection recovers the WAL, say) `fetch_all` answers None and the
    caller reads through the pool, whose connections wait as every other statement does.
    Reads here see each statement's own snapshot, as a read session's do on its pooled
    connection, so they never stand in for a write session's reads (which must see its own
    uncommitted rows).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: no implicit BEGIN (as the pooled readers, see mediakeep.db).
            # Used by this thread only (thread-local); `close` may run on another at shutdown.
            connection = sqlite3.connect(
                self._path, timeout=0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA query_only=ON")
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def fetch_all(self, operation: str, parameters: Sequence[Any]) -> list[Any] | None:
        """The rows as sqlite3 returns them, or None when SQLite is busy."""
        try:
            return _execute(self._connection(), operation, parameters).rows
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise

    def close(self) -> None:
        """Close every thread's connection (at shutdown: none is in use any more)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that opens nothing until it executes, and then does it all in one call."""

    __slots__ = ()

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # Not the base class's __init__: that opens an aiosqlite cursor (a hand-off) up front.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _Outcome.nothing_yet()  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        adapted: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        async with adapted._execute_mutex:
            outcome = await _on_thread(adapted, _execute, operation, parameters)
        self._cursor = outcome  # type: ignore[assignment]
        self._rows = collections.deque(outcome.rows)
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        adapted: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        async with adapted._execute_mutex:
            self._cursor = await _on_thread(  # type: ignore[assignment]
                adapted, _execute_many, operation, seq_of_parameters
            )
        return None

    async def _async_soft_close(self) -> None:
        return None  # closed on the connection's thread, right after its statement

    def close(self) -> None:
        self._rows.clear()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def _has_transaction(self) -> bool:
        # Read on the event loop's thread, as aiosqlite's own `in_transaction` does: the
        # connection is checked out to this session alone, with no statement in flight.
        driver = self._connection._connection
        return driver is not None and driver.in_transaction

    async def fetch_all(self, operation: str, parameters: Sequence[Any]) -> list[Any]:
        """A statement's rows in one call on the connection's thread, outside SQLAlchemy's
        cursor (`mediakeep.prepared`): the rows as sqlite3 returns them, errors as sqlite3's."""
        async with self._execute_mutex:
            return (await _on_thread(self, _execute, operation, parameters)).rows

    def rollback(self) -> None:
        if self._has_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._has_transaction():
            super().commit()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


class OneHopDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> OneHopDBAPI:
        return OneHopDBAPI(__import__("aiosqlite"), __import__("sqlite3"))


def one_hop_url(url: str) -> str:
    """The same SQLite database through this dialect (`sqlite+aiosqlite://` or `sqlite://`)."""
    scheme, sep, rest = url.partition("://")
    return f"sqlite+{DRIVER}{sep}{rest}" if scheme.startswith("sqlite") else url


registry.register(f"sqlite.{DRIVER}", __name__, "OneHopDialect")
