"""mediakeep.prepared: a hot SELECT run outside SQLAlchemy's execution machinery (on SQLite)
answers exactly what SQLAlchemy answers for it: the same rows decoded the same way (dates,
JSON, booleans), with its bound literals and bind processors, its errors as SQLAlchemy's, its
cursor events fired; a read session's on the event loop's thread (through the pool when
SQLite is busy there), a write session's in one hand-off inside its transaction. On both
databases (the SQLite-only paths say so when skipped)."""

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import (
    Column,
    Float,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from mediakeep.db import LazyReadSession, sqlite_driver_of
from mediakeep.errors import database_unreachable
from mediakeep.models import Caption, Media, Variant
from mediakeep.prepared import PreparedRead
from mediakeep.services import Services
from mediakeep.sqlite_driver import LoopReader, OneHopConnection
from tests import mediagen
from tests.factories import TestUser

API = "/api/v1"
MEDIA, VARIANTS, CAPTIONS = Media.__table__, Variant.__table__, Caption.__table__

# Every kind of column the hot reads decode: JSON (metadata, placeholder), booleans, aware
# datetimes, integers, floats and text; the children through outer joins (NULLs included).
WITH_CHILDREN = (
    select(*MEDIA.c, *VARIANTS.c, *CAPTIONS.c)
    .select_from(
        MEDIA.outerjoin(VARIANTS, VARIANTS.c.media_id == MEDIA.c.id).outerjoin(
            CAPTIONS, CAPTIONS.c.media_id == MEDIA.c.id
        )
    )
    .where(
        MEDIA.c.org_id == bindparam("org_id"),
        # a bound datetime (its bind processor) and a literal the statement carries itself
        MEDIA.c.created_at > bindparam("after", type_=MEDIA.c.created_at.type),
        MEDIA.c.status != "deleted",
    )
    .order_by(MEDIA.c.id, VARIANTS.c.id, CAPTIONS.c.language)
)


async def _upload(client: httpx.AsyncClient, user: TestUser) -> str:
    response = await client.post(
        f"{API}/media/upload",
        files={"file": ("p.png", mediagen.png(64, 48), "image/png")},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    media_id: str = response.json()["id"]
    captioned = await client.post(
        f"{API}/media/{media_id}/captions",
        json={"language": "en", "content": "WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"},
        headers=user.headers,
    )
    assert captioned.status_code in (200, 201), captioned.text
    return media_id


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = services.db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_rows_are_sqlalchemys_rows(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await _upload(client, user)
    services: Services = app.state.services
    values = {"org_id": user.org_id, "after": datetime.now(UTC) - timedelta(hours=1)}
    async with services.db.read_session() as session:
        expected = [tuple(row) for row in (await session.execute(WITH_CHILDREN, values)).all()]
    prepared = PreparedRead(WITH_CHILDREN)
    for _ in range(2):  # compiled on the first call, reused on the second
        async with services.db.read_session() as session:
            got = [tuple(row) for row in await prepared.rows(session, values)]
        assert got == expected
    assert len(expected) >= 2  # a media with variants: several joined rows
    first = dict(zip(WITH_CHILDREN.selected_columns.keys(), expected[0], strict=False))
    assert isinstance(first["metadata"], dict)  # JSON decoded
    assert isinstance(first["is_private"], bool)
    assert first["created_at"].tzinfo is not None  # aware, as the column type makes it
    # The bound datetime is compared as a date, not as text: none is newer than now.
    values["after"] = datetime.now(UTC) + timedelta(hours=1)
    async with services.db.read_session() as session:
        assert await prepared.rows(session, values) == []


async def test_cursor_events_see_the_statement(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await _upload(client, user)
    services: Services = app.state.services
    prepared = PreparedRead(WITH_CHILDREN)
    values = {"org_id": user.org_id, "after": datetime(2000, 1, 1, tzinfo=UTC)}
    with statements(services) as seen:
        async with services.db.read_session() as session:
            await prepared.rows(session, values)
    ours = [s for s in seen if "FROM media" in s]
    assert len(ours) == 1, seen
    assert "media.org_id =" in ours[0]


async def test_errors_are_sqlalchemys(app: FastAPI) -> None:
    services: Services = app.state.services
    missing = Table("no_such_table", MetaData(), Column("id", String))
    prepared = PreparedRead(select(missing.c.id).where(missing.c.id == bindparam("id")))
    async with services.db.read_session() as session:
        with pytest.raises((OperationalError, ProgrammingError)):
            await prepared.rows(session, {"id": "x"})


def _sqlite_only(services: Services) -> None:
    if not services.settings.database_url.startswith("sqlite"):
        pytest.skip("the event loop's reader and thread hand-offs exist on SQLite only")


@contextmanager
def hand_offs(driver: OneHopConnection) -> Iterator[list[Any]]:
    """What the event loop hands to this pooled connection's thread meanwhile."""
    queue = driver._connection._tx
    puts: list[Any] = []

    class Counting:
        def put_nowait(self, item: Any) -> None:
            puts.append(item)
            queue.put_nowait(item)

    driver._connection._tx = Counting()
    try:
        yield puts
    finally:
        driver._connection._tx = queue


async def test_a_read_session_reads_with_no_orm_session_and_at_most_one_connection(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # A prepared read in a read session makes no ORM session (nor its connection, begin and
    # close). On SQLite it runs on the event loop's own reader: no pooled connection at all.
    # On PostgreSQL it takes one pooled connection (its asyncpg connection's `fetch`), which
    # goes back to the pool when the unit ends.
    services: Services = app.state.services
    await _upload(client, user)
    pool = services.db.read_engine.sync_engine.pool
    values = {"org_id": user.org_id, "after": datetime(2000, 1, 1, tzinfo=UTC)}
    held = 0 if services.settings.database_url.startswith("sqlite") else 1
    before = pool.checkedout()  # type: ignore[attr-defined]
    async with services.db.read_session() as session:
        assert isinstance(session, LazyReadSession)
        rows = await PreparedRead(WITH_CHILDREN).rows(session, values)
        assert not session.has_orm_session
        assert pool.checkedout() == before + held  # type: ignore[attr-defined]
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    assert rows


async def test_a_write_sessions_read_is_one_hand_off_inside_its_transaction(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # A write session's prepared read goes through its own connection, so it sees what the
    # session wrote and has not committed (the event loop's reader would not).
    services: Services = app.state.services
    _sqlite_only(services)
    media_id = await _upload(client, user)
    values = {"org_id": user.org_id, "after": datetime(2000, 1, 1, tzinfo=UTC)}
    alt = WITH_CHILDREN.selected_columns.keys().index("alt")

    async def writes_reads_then_undoes() -> None:
        async with services.db.write_session() as session:
            await session.execute(
                MEDIA.update().where(MEDIA.c.id == media_id).values(alt="not committed")
            )
            driver = await sqlite_driver_of(await session.connection())
            with hand_offs(driver) as puts:
                rows = await PreparedRead(WITH_CHILDREN).rows(session, values)
            assert len(puts) == 1
            assert {row[alt] for row in rows} == {"not committed"}
            raise LookupError("undo")

    with pytest.raises(LookupError):  # rolled back: nothing of this stays
        await writes_reads_then_undoes()


def _locked_database(path: Path) -> sqlite3.Connection:
    """A database (rollback journal) whose writer holds the exclusive lock: readers are busy."""
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


def test_the_loop_reader_answers_none_when_sqlite_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    blocker = _locked_database(path)
    reader = LoopReader(str(path))
    try:
        assert reader.fetch_all("SELECT x FROM t", ()) is None  # at once: it never waits
        blocker.execute("INSERT INTO t VALUES (7)")
        blocker.execute("COMMIT")
        assert reader.fetch_all("SELECT x FROM t", ()) == [(7,)]
        with pytest.raises(sqlite3.OperationalError):  # other errors are errors
            reader.fetch_all("SELECT x FROM no_such_table", ())
    finally:
        blocker.close()
        reader.close()


async def test_a_busy_loop_reader_falls_back_to_the_pool(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, tmp_path: Path
) -> None:
    # The read session's event-loop reader here reads a database that is locked, so every
    # prepared read finds SQLite busy there and must be answered through the pool instead.
    services: Services = app.state.services
    _sqlite_only(services)
    await _upload(client, user)
    values = {"org_id": user.org_id, "after": datetime(2000, 1, 1, tzinfo=UTC)}
    prepared = PreparedRead(WITH_CHILDREN)
    async with services.db.read_session() as session:
        expected = await prepared.rows(session, values)
    blocker = _locked_database(tmp_path / "locked.db")
    busy = LoopReader(str(tmp_path / "locked.db"))
    try:
        db = services.db
        session = LazyReadSession(db.read_engine, db._read, busy)
        try:
            driver = await session.sqlite_driver()
            with hand_offs(driver) as puts:
                rows = await prepared.rows(session, values)
        finally:
            await session.close()
    finally:
        blocker.close()
        busy.close()
    assert rows == expected
    assert len(puts) == 1


async def test_a_read_session_gives_back_every_connection(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # A read session checks a pooled connection out for a prepared read and makes an ORM
    # session only for an ORM read: both go back to the pool when it ends, also on an error.
    media_id = await _upload(client, user)
    services: Services = app.state.services
    pool = services.db.read_engine.sync_engine.pool
    values = {"org_id": user.org_id, "after": datetime(2000, 1, 1, tzinfo=UTC)}
    prepared = PreparedRead(WITH_CHILDREN)
    ended: list[object] = []  # held, so that no connection goes back by garbage collection

    async def reads_then_fails() -> None:
        async with services.db.read_session() as session:
            ended.append(session)
            first = await prepared.rows(session, values)
            media = await session.get(Media, media_id)
            assert media is not None
            assert media.org_id == user.org_id
            assert await prepared.rows(session, values) == first
            raise LookupError("the request failed after its reads")

    before = pool.checkedout()  # type: ignore[attr-defined]
    with pytest.raises(LookupError):
        await reads_then_fails()
    assert pool.checkedout() == before  # type: ignore[attr-defined]


def _postgres_only(services: Services) -> None:
    if services.settings.database_url.startswith("sqlite"):
        pytest.skip("asyncpg's connections exist on PostgreSQL only")


async def test_a_lost_postgres_connection_is_not_handed_out_again(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # The server ends the pooled connection's backend: the read fails as SQLAlchemy's error
    # for a lost connection (a 503), the connection is invalidated (the pool will not hand it
    # out again), and the next unit reads on a live one.
    services: Services = app.state.services
    _postgres_only(services)
    await _upload(client, user)
    values = {"org_id": user.org_id, "after": datetime(2000, 1, 1, tzinfo=UTC)}
    prepared = PreparedRead(WITH_CHILDREN)
    async with services.db.read_session() as session:
        assert isinstance(session, LazyReadSession)
        assert await prepared.rows(session, values)
        pooled = await session.pooled()
        driver: Any = pooled.driver_connection
        async with services.db.write_session() as killer:
            await killer.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": driver.get_server_pid()}
            )
        with pytest.raises(DBAPIError) as lost:
            await prepared.rows(session, values)
        assert lost.value.connection_invalidated
        assert database_unreachable(lost.value)  # answered 503 database.unavailable
        assert not pooled.is_valid
    async with services.db.read_session() as session:
        assert await prepared.rows(session, values)


async def test_a_postgres_read_cancelled_mid_statement_gives_up_its_connection(
    app: FastAPI,
) -> None:
    # A request cancelled while its statement runs (the client went away): asyncpg is still
    # unwinding it on that connection, so the connection is invalidated, not pooled again.
    services: Services = app.state.services
    _postgres_only(services)
    slow = PreparedRead(select(func.pg_sleep(bindparam("seconds", type_=Float))))
    started = asyncio.Event()

    def running(*_: Any) -> None:
        started.set()

    engine = services.db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", running)
    try:
        async with services.db.read_session() as session:
            assert isinstance(session, LazyReadSession)
            pooled = await session.pooled()
            reading = asyncio.create_task(slow.rows(session, {"seconds": 30.0}))
            await started.wait()
            await asyncio.sleep(0)  # into asyncpg's fetch
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            assert not pooled.is_valid
    finally:
        event.remove(engine, "before_cursor_execute", running)
