"""Engines (write + optional read replica) and the session scopes that own commits."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVarTuple, overload

import asyncpg
import structlog
from sqlalchemy import (
    CompoundSelect,
    Result,
    ScalarResult,
    Select,
    TextClause,
    TextualSelect,
    event,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from typing_extensions import TypeVar

from mediakeep.config import Settings
from mediakeep.datadir import prepare_data_dir
from mediakeep.dsn import parse_pg_dsn, sqlalchemy_url
from mediakeep.sqlite_driver import DRIVER, LoopReader, OneHopConnection, one_hop_url

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class ReadOnlySession(Protocol):
    """What a read unit of work offers: AsyncSession's queries and `get`, none of its writes.

    A write session (an `AsyncSession`) is one too, structurally; a read session is not an
    `AsyncSession`. So staging, flushing or committing through a read session, running an
    INSERT, UPDATE or DELETE statement in it, or passing it where a write session is expected
    fails the type check (mypy), before the connection's read-only setting would fail it at
    run time. Repositories are generic in their session (`Repo(reader)` is a
    `Repo[ReadOnlySession]`) and their writing methods take `self: Repo[AsyncSession]`.
    """

    @overload
    async def execute(
        self,
        statement: Select[*_Ts] | CompoundSelect[*_Ts],
        params: Any = None,
        *,
        execution_options: Any = ...,
        bind_arguments: Any = None,
    ) -> Result[*_Ts]: ...
    @overload
    async def execute(
        self,
        statement: TextClause | TextualSelect,
        params: Any = None,
        *,
        execution_options: Any = ...,
        bind_arguments: Any = None,
    ) -> Result[*tuple[Any, ...]]: ...

    @overload
    async def scalar(
        self,
        statement: Select[_T] | CompoundSelect[_T],
        params: Any = None,
        *,
        execution_options: Any = ...,
        bind_arguments: Any = None,
    ) -> _T | None: ...
    @overload
    async def scalar(
        self,
        statement: TextClause | TextualSelect,
        params: Any = None,
        *,
        execution_options: Any = ...,
        bind_arguments: Any = None,
    ) -> Any: ...

    @overload
    async def scalars(
        self,
        statement: Select[_T] | CompoundSelect[_T],
        params: Any = None,
        *,
        execution_options: Any = ...,
        bind_arguments: Any = None,
    ) -> ScalarResult[_T]: ...
    @overload
    async def scalars(
        self,
        statement: TextClause | TextualSelect,
        params: Any = None,
        *,
        execution_options: Any = ...,
        bind_arguments: Any = None,
    ) -> ScalarResult[Any]: ...

    async def get(
        self,
        entity: type[_T],
        ident: Any,
        *,
        options: Any = None,
        populate_existing: bool | None = None,
        with_for_update: Any = None,
        identity_token: Any = None,
        execution_options: Any = ...,
    ) -> _T | None: ...


# The session type a repository is generic in: by default (a bare `Repo`) a write session.
SessionT = TypeVar("SessionT", bound=ReadOnlySession, default=AsyncSession)


AfterCommit = Callable[[], Awaitable[None]]
UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]
ReadUnit = Callable[[], AbstractAsyncContextManager[ReadOnlySession]]


@dataclass(frozen=True)
class SideUnits:
    """Units of work beside a request's own, which its scope hands to authentication
    (`Database.side_units`) for the two things it may not do in the request's session.

    - `bookkeeping`: writes that must commit whatever the request then does, and although
      authentication reads in a read session (an API key's last use, the user of a
      first-seen external identity).
    - `primary`: a session on the primary, for when reads go to a replica, which may lag
      behind a user or a membership made moments ago. None when there is no replica.
    - `lookup`: a read beside the request's own, for what `bookkeeping` may create: on SQLite
      a read session's snapshot begins at its first statement, so a lookup there that misses
      would hide the row created next from the rest of the request.
    """

    bookkeeping: UnitOfWork
    primary: UnitOfWork | None
    lookup: ReadUnit


def after_commit(session: AsyncSession | Session, action: AfterCommit) -> None:
    """Run `action` once the unit of work has committed (never if it rolls back).

    For effects outside the database that must not happen for work that is undone: deleting
    objects, telling the job dispatcher, publishing events.
    """
    session.info.setdefault("after_commit", []).append(action)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """One step of a unit of work that can be undone alone (a SAVEPOINT). When it fails, the
    after-commit actions it registered are dropped with it: they belong to work undone."""
    actions: list[AfterCommit] = session.info.setdefault("after_commit", [])
    mark = len(actions)
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        del actions[mark:]
        raise


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by us (below), not by the driver: pysqlite's own handling runs
    # SELECTs outside any transaction, so a read-then-write unit of work would not be isolated.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


READ_POOL_SIZE = 32  # SQLite readers: WAL lets them all read at once


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # a write through a read session fails, loudly
    cursor.close()


def make_engine(url: str, *, writer: bool = True) -> AsyncEngine:
    """An engine. On SQLite a writer's transactions start with BEGIN IMMEDIATE (the write lock
    up front, waiting on busy_timeout) so read-check-write units of work are serialised. A
    reader runs each statement in its own implicit transaction, with no BEGIN and no reset on
    return: on aiosqlite each of those is a thread hand-off costing more than the hot reads'
    one statement (which reads a media with its children at once, so needs no wider
    snapshot), and its connections are query-only. Both run each statement in one thread
    hand-off (`mediakeep.sqlite_driver`)."""
    if url.startswith("sqlite"):
        url = one_hop_url(url)
        if not writer:
            reader = create_async_engine(
                url,
                connect_args={"timeout": 30},
                pool_reset_on_return=None,
                # Opening a SQLite connection is a file open and five PRAGMAs, each a thread
                # hand-off: the default pool (5) made every request past the fifth concurrent
                # one open and close a connection of its own.
                pool_size=READ_POOL_SIZE,
                max_overflow=READ_POOL_SIZE,
            )
            event.listen(reader.sync_engine, "connect", _sqlite_pragmas)
            event.listen(reader.sync_engine, "connect", _sqlite_read_only)
            return reader
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(
            engine.sync_engine,
            "begin",
            lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"),
        )
        return engine
    # A libpq DSN: asyncpg parses it itself (see mediakeep.dsn); SQLAlchemy only picks the dialect.
    args = parse_pg_dsn(url)

    # A reader's connections refuse writes (the server enforces it, as SQLite's query_only
    # does) and run in autocommit: a read unit of work is its statements, each consistent by
    # itself, without the BEGIN and ROLLBACK round trips a transaction costs.
    read_only = {} if writer else {"server_settings": {"default_transaction_read_only": "on"}}

    async def connect() -> Any:
        return await asyncpg.connect(args.dsn, timeout=args.timeout or 60, **read_only)

    return create_async_engine(
        sqlalchemy_url(url),
        async_creator=connect,
        # Up to 30 writer and 16 reader connections a process: two `serve` workers stay
        # under PostgreSQL's default max_connections (100).
        pool_size=10 if writer else 8,
        max_overflow=20 if writer else 8,
        **({} if writer else {"isolation_level": "AUTOCOMMIT"}),
        # No ping at checkout: on asyncpg it is BEGIN, a statement and ROLLBACK (three round
        # trips, for pgbouncer's sake) before every unit of work. A connection the server
        # dropped fails its first statement instead, which invalidates the whole pool (that
        # request is answered 503 `database.unavailable`, like an outage), and connections
        # are replaced after 5 minutes so idle ones cut by a firewall are not handed out.
        pool_recycle=300,
    )


class LazyReadSession:
    """A read session as the request scope opens it (`Database.read_session`): what an
    `AsyncSession` offers for reading (`ReadOnlySession`), with the ORM session made only when
    a statement needs one. A prepared read (`mediakeep.prepared`) on SQLite runs on the event
    loop's thread (`loop_reader`), and takes a pooled connection alone only when SQLite is busy
    there: checking one out and back in costs about a tenth of what a session's connection,
    begin and close around it do. On PostgreSQL a prepared read runs on such a pooled
    connection's asyncpg connection, while the unit has no ORM session. `connection()` is the
    ORM session's.

    Reads run without a transaction (SQLite's readers and PostgreSQL's are statement by
    statement, see `mediakeep.db`), so a unit that reads through both the pooled connection
    and its session reads no less consistently than one connection would.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        loop_reader: LoopReader | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self.loop_reader = loop_reader  # SQLite: hot reads on the event loop's thread
        self._session: AsyncSession | None = None
        self._pooled: PoolProxiedConnection | None = None

    def _orm(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessions()
            if self._pooled is not None:  # one connection a unit: the session checks its own out
                self._pooled.close()
                self._pooled = None
        return self._session

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return await self._orm().execute(statement, params, **kw)

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return await self._orm().scalar(statement, params, **kw)

    async def scalars(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return await self._orm().scalars(statement, params, **kw)

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        return await self._orm().get(entity, ident, **kw)

    async def connection(self) -> AsyncConnection:
        return await self._orm().connection()

    @property
    def has_orm_session(self) -> bool:
        return self._session is not None

    async def pooled(self) -> PoolProxiedConnection:
        """The connection checked out for this unit's prepared reads while it has no ORM
        session (which then checks out its own: see `_orm`)."""
        if self._pooled is None:
            self._pooled = await self._engine.raw_connection()
        return self._pooled

    async def sqlite_driver(self) -> OneHopConnection:
        """The pooled SQLite connection for a prepared read: the session's when it has one,
        else one checked out for this unit (SQLite only)."""
        if self._session is not None:
            return await sqlite_driver_of(await self._session.connection())
        driver = (await self.pooled()).dbapi_connection
        assert isinstance(driver, OneHopConnection)
        return driver

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            if self._pooled is not None:
                self._pooled.close()  # back to the pool; a reader's needs no reset


async def sqlite_driver_of(connection: AsyncConnection) -> OneHopConnection:
    """The connection's pooled SQLite driver connection (`mediakeep.prepared`)."""
    driver = (await connection.get_raw_connection()).dbapi_connection
    assert isinstance(driver, OneHopConnection), "a connection of mediakeep.sqlite_driver"
    return driver


class Database:
    """The write engine and, when `DB_POSTGRESQL_READ1_DSN` is set, a read-replica engine."""

    def __init__(self, settings: Settings) -> None:
        prepare_data_dir(settings)  # umask, data dir 0700, SQLite file 0600
        self.write_engine = make_engine(settings.database_url)
        # Readers have their own pool: on the replica if there is one, else on the primary
        # (read-only and in autocommit on PostgreSQL, query-only on SQLite).
        self.read_engine = make_engine(
            settings.database_read_url or settings.database_url, writer=False
        )
        self.has_replica = bool(settings.database_read_url)
        # SQLite has one writer at a time: a write session holds the lock from its first
        # statement (BEGIN IMMEDIATE) until it ends.
        self.single_writer = settings.database_url.startswith("sqlite")
        # A class of its own, so listeners (the auth cache's change watch) see only this
        # database's write sessions, not every session in the process.
        self.write_session_class: type[Session] = type("WriteSession", (Session,), {})
        self._write = async_sessionmaker(
            self.write_engine, expire_on_commit=False, sync_session_class=self.write_session_class
        )
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)
        database = self.read_engine.url.database
        self.loop_reader = (
            LoopReader(database)
            if self.read_engine.dialect.driver == DRIVER and database and database != ":memory:"
            else None
        )

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed when the block ends normally, rolled back otherwise."""
        async with self._write() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                session.info.pop("after_commit", None)
                await session.rollback()
                raise
            for action in session.info.pop("after_commit", []):
                try:
                    await action()
                except Exception:  # the commit stands; a failed side effect is for the sweeper
                    log.exception("after-commit action failed")

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[ReadOnlySession]:
        session = LazyReadSession(self.read_engine, self._read, self.loop_reader)
        try:
            yield session
        finally:
            await session.close()

    def side_units(self) -> SideUnits:
        """What a request scope gives authentication, which always reads in a read session
        (a write request's authentication has one of its own: deps._authenticate)."""
        return SideUnits(
            bookkeeping=self.write_session,
            primary=self.write_session if self.has_replica else None,
            lookup=self.read_session,
        )

    @property
    def engines(self) -> tuple[AsyncEngine, AsyncEngine]:
        """The write and the read engine: where to listen for every statement."""
        return (self.write_engine, self.read_engine)

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()
        if self.loop_reader is not None:
            self.loop_reader.close()
