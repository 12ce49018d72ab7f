"""mediakeep.sqlite_driver: SQLAlchemy's aiosqlite dialect with one hand-off to the connection's
thread per statement, and none for ending a read that holds no transaction. Real SQLite files,
the engines `Database` builds; the hand-offs are counted on aiosqlite's own queue."""

from collections.abc import AsyncIterator
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mediakeep.db import make_engine
from mediakeep.sqlite_driver import DRIVER, one_hop_url

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
)


class CountingQueue:
    """Stands in front of aiosqlite's request queue (its thread keeps reading the real one),
    counting what the event loop hands to the thread."""

    puts = 0

    def __init__(self, queue: "SimpleQueue[Any]") -> None:
        self.queue = queue

    def put_nowait(self, item: Any) -> None:
        type(self).puts += 1
        self.queue.put_nowait(item)


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}"
    writer, reader = make_engine(url), make_engine(url, writer=False)
    for engine in (writer, reader):
        event.listen(engine.sync_engine, "connect", _count_hand_offs)
    async with writer.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield writer, reader
    await writer.dispose()
    await reader.dispose()


def _count_hand_offs(dbapi_connection: Any, _record: Any) -> None:
    driver = dbapi_connection.driver_connection
    driver._tx = CountingQueue(driver._tx)


def test_urls_are_rewritten_to_this_dialect_only_for_sqlite() -> None:
    assert one_hop_url("sqlite+aiosqlite:////data/m.db") == f"sqlite+{DRIVER}:////data/m.db"
    assert one_hop_url("sqlite:///m.db") == f"sqlite+{DRIVER}:///m.db"
    postgres = "postgresql+asyncpg://u@h/db"
    assert one_hop_url(postgres) == postgres


async def test_a_read_is_one_hand_off_and_its_end_none(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    writer, reader = engines
    async with writer.begin() as connection:
        await connection.execute(insert(things), [{"name": "a"}, {"name": "b"}])
    reads = async_sessionmaker(reader)
    async with reads() as session:  # open the pooled connection once, outside the count
        await session.execute(text("SELECT 1"))
    CountingQueue.puts = 0
    async with reads() as session:
        rows = (await session.execute(select(things.c.name).order_by(things.c.id))).all()
    assert [row.name for row in rows] == ["a", "b"]
    # aiosqlite through SQLAlchemy's adapter: cursor, execute, fetchall, close, rollback.
    assert CountingQueue.puts == 1


async def test_a_write_unit_is_begin_statements_and_commit(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    writer, _ = engines
    writes = async_sessionmaker(writer)
    async with writes() as session:
        await session.execute(text("SELECT 1"))
        await session.rollback()
    CountingQueue.puts = 0
    async with writes() as session:
        await session.execute(insert(things).values(name="c"))
        changed = await session.execute(update(things).where(things.c.name == "c").values(name="d"))
        await session.commit()
    assert changed.rowcount == 1  # the ORM's version checks rely on it
    assert CountingQueue.puts == 4  # BEGIN IMMEDIATE, insert, update, commit
    async with writes() as session:
        assert (await session.execute(select(things.c.name))).scalars().all() == ["d"]


async def test_rollback_undoes_and_errors_keep_their_types(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    writer, _ = engines
    writes = async_sessionmaker(writer)
    async with writes() as session:
        await session.execute(insert(things).values(name="kept"))
        await session.commit()
    async with writes() as session:
        await session.execute(insert(things).values(name="undone"))
        with pytest.raises(IntegrityError):
            await session.execute(insert(things).values(name="kept"))
        await session.rollback()
    async with writes() as session:
        with pytest.raises(OperationalError):
            await session.execute(text("SELECT * FROM no_such_table"))
    async with writes() as session:
        names = (await session.execute(select(things.c.name))).scalars().all()
    assert names == ["kept"]


async def test_many_rows_in_one_statement_and_last_row_ids(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    writer, _ = engines
    async with writer.begin() as connection:
        await connection.execute(insert(things), [{"name": f"n{i}"} for i in range(500)])
        inserted = await connection.execute(insert(things).values(name="last"))
        assert inserted.inserted_primary_key == (501,)
    async with AsyncSession(writer) as session:
        count = (await session.execute(text("SELECT count(*) FROM things"))).scalar_one()
        streamed = [row async for row in await session.stream(select(things.c.id))]
    assert count == 501
    assert len(streamed) == 501
