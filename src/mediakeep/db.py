"""Engines (write + optional read replica) and the session scopes that own commits."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mediakeep.config import Settings

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run `action` once the unit of work has committed (never if it rolls back).

    For effects outside the database that must not happen for work that is undone: deleting
    objects, telling the job dispatcher, publishing events.
    """
    session.info.setdefault("after_commit", []).append(action)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Database:
    """The write engine and, when `DB_POSTGRESQL_READ1_DSN` is set, a read-replica engine."""

    def __init__(self, settings: Settings) -> None:
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_engine = make_engine(settings.database_url)
        self.read_engine = (
            make_engine(settings.database_read_url)
            if settings.database_read_url
            else self.write_engine
        )
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
