"""Engines (write + optional read replica) and the session scopes that own commits."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mediakeep.config import Settings
from mediakeep.kit.private import prepare_data_dir

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run `action` once the unit of work has committed (never if it rolls back).

    For effects outside the database that must not happen for work that is undone: deleting
    objects, telling the job dispatcher, publishing events.
    """
    session.info.setdefault("after_commit", []).append(action)


# SQLSTATE classes meaning "the server is not there right now": connection exceptions (08) and
# operator intervention — shutting down, crash recovery, starting up (57P).
_UNREACHABLE_SQLSTATES = ("08", "57P")


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached (down, restarting, connection lost),
    as opposed to a bug or a refused statement: those are worth a 503 and a retry."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNREACHABLE_SQLSTATES):
            return True
        # SQLite's "database is locked" after busy_timeout: the writer is busy, try again.
        return isinstance(exc, sa_exc.OperationalError) and "locked" in str(exc.orig)
    if isinstance(exc, ConnectionError | TimeoutError):
        # asyncpg raises the socket's own error while (re)connecting, unwrapped.
        traceback = exc.__traceback__
        while traceback is not None:
            filename = traceback.tb_frame.f_code.co_filename
            if "/asyncpg/" in filename or "/sqlalchemy/" in filename:
                return True
            traceback = traceback.tb_next
    return False


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


def make_engine(url: str, *, writer: bool = True) -> AsyncEngine:
    """An engine; on SQLite a writer's transactions start with BEGIN IMMEDIATE (the write lock
    up front, waiting on busy_timeout) so read-check-write units of work are serialised, and a
    reader's with a plain BEGIN (one consistent snapshot)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(
            engine.sync_engine, "begin", lambda connection: connection.exec_driver_sql(begin)
        )
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Database:
    """The write engine and, when `DB_POSTGRESQL_READ1_DSN` is set, a read-replica engine."""

    def __init__(self, settings: Settings) -> None:
        prepare_data_dir(settings)  # umask, data dir 0700, SQLite file 0600
        self.write_engine = make_engine(settings.database_url)
        if settings.database_read_url:
            self.read_engine = make_engine(settings.database_read_url, writer=False)
        elif settings.database_url.startswith("sqlite"):
            self.read_engine = make_engine(settings.database_url, writer=False)
        else:
            self.read_engine = self.write_engine
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)

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
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session:
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
