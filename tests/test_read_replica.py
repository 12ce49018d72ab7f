"""Read-replica support against a REAL PostgreSQL streaming-replication hot standby.

A dedicated primary plus a ``pg_basebackup`` standby; the app gets the primary as
``DB_POSTGRESQL_WRITE_DSN`` and the standby as ``DB_POSTGRESQL_READ1_DSN``. Writes (register,
login, upload) must land on the primary (the standby is read-only, so any write there would
fail), reads (``GET``s and the auth look-ups) come from the standby: pausing WAL replay on
the standby freezes what the list endpoint shows, resuming it catches up.
"""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mediakeep.app import create_app
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings
from tests.fixtures.services import (
    _REPLICATION_HBA,
    PostgresServer,
    ServiceUnavailable,
    _hba_allows_local_replication,
    pause_replay,
    resume_replay,
    start_postgres,
    start_postgres_standby,
    wait_for_replay,
)
from tests.mediagen import png

pytestmark = pytest.mark.postgres

API = "/api/v1"
PASSWORD = "correct horse battery staple"


@dataclass
class Replicated:
    primary: PostgresServer
    standby: PostgresServer

    def catch_up(self) -> None:
        wait_for_replay(self.primary, self.standby)


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    try:
        server = start_postgres(tmp_path_factory.mktemp("replica-primary"))
    except ServiceUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc.reason}")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
async def migrated_primary(
    primary: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> PostgresServer:
    assert primary.database == "mediakeep"
    assert primary.dsn.endswith(f":{primary.port}/mediakeep")
    settings = make_settings(
        "sqlite-local",
        tmp_path_factory.mktemp("replica-migrate"),
        request,
        db_write_dsn=primary.dsn,
    )
    await upgrade_async(settings)
    return primary


@pytest.fixture(scope="module")
def replicated(
    migrated_primary: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicated]:
    # Started after the migration: the base backup carries the schema.
    standby = start_postgres_standby(migrated_primary, tmp_path_factory.mktemp("replica-standby"))
    try:
        yield Replicated(migrated_primary, standby)
    finally:
        standby.cleanup()


@pytest.fixture(scope="module")
async def replica_app(
    replicated: Replicated,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        "sqlite-local",
        tmp_path_factory.mktemp("replica-app"),
        request,
        db_write_dsn=replicated.primary.dsn,
        db_read_dsn=replicated.standby.dsn,
    )
    application = create_app(settings, run_background=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def replica_client(replica_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=replica_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def primary_engine(replicated: Replicated) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(replicated.primary.dsn)
    yield engine
    await engine.dispose()


@pytest.fixture
async def standby_engine(replicated: Replicated) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(replicated.standby.dsn)
    yield engine
    await engine.dispose()


async def _scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def _upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> str:
    response = await client.post(
        f"{API}/media/upload", files={"file": ("pic.png", data, "image/png")}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["deduped"] is False
    media_id: str = response.json()["id"]
    return media_id


async def _listed_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    response = await client.get(f"{API}/media", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


async def test_engines_point_at_primary_and_standby(
    replica_app: FastAPI, replicated: Replicated, standby_engine: AsyncEngine
) -> None:
    db = replica_app.state.services.db
    assert db.write_engine.url.port == replicated.primary.port
    assert db.read_engine.url.port == replicated.standby.port
    assert db.read_engine is not db.write_engine
    # the standby is a real hot standby of the primary, carrying the migrated schema
    assert await _scalar(standby_engine, "select pg_is_in_recovery()") is True
    assert await _scalar(standby_engine, "select to_regclass('public.media') is not null")
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with standby_engine.begin() as conn:
            await conn.execute(text("create table must_fail (x int)"))


async def test_writes_go_to_primary_reads_come_from_standby(
    replica_client: httpx.AsyncClient,
    replicated: Replicated,
    primary_engine: AsyncEngine,
    standby_engine: AsyncEngine,
) -> None:
    client = replica_client
    email = f"replica-{id(client):x}@example.com"

    # register + login are writes: they work against the primary even though the standby
    # is read-only (an INSERT there fails with "cannot execute INSERT in a read-only
    # transaction").
    registered = await client.post(
        f"{API}/auth/register", json={"email": email, "password": PASSWORD, "name": "Replica"}
    )
    assert registered.status_code == 201, registered.text
    login = await client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    # The bearer look-up and GET /users/me read from the standby: once it has replayed the
    # primary's WAL, the new user is there.
    replicated.catch_up()
    me = await client.get(f"{API}/users/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email
    user_id = me.json()["id"]
    assert await _scalar(standby_engine, "select count(*) from users where id = :i", i=user_id)

    # upload (write path) -> primary; after replay the standby serves it
    first = await _upload(client, headers, png())
    replicated.catch_up()
    got = await client.get(f"{API}/media/{first}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == first
    assert first in await _listed_ids(client, headers)

    # With replay paused the standby is frozen: the next upload still succeeds (the write
    # session never touches the read-only standby), but reads do not see it yet.
    pause_replay(replicated.standby)
    try:
        second = await _upload(client, headers, png(40, 30))
        assert await _scalar(primary_engine, "select count(*) from media where id = :i", i=second)
        assert not await _scalar(
            standby_engine, "select count(*) from media where id = :i", i=second
        )
        listed = await _listed_ids(client, headers)
        assert first in listed
        assert second not in listed  # the list came from the paused standby
        with pytest.raises(TimeoutError, match="paused"):
            wait_for_replay(replicated.primary, replicated.standby, timeout=0.3)
        stale = await client.get(f"{API}/media/{second}", headers=headers)
        assert stale.status_code == 404, stale.text
    finally:
        resume_replay(replicated.standby)

    replicated.catch_up()
    assert await _listed_ids(client, headers) >= {first, second}
    got = await client.get(f"{API}/media/{second}", headers=headers)
    assert got.status_code == 200, got.text


async def test_write_to_standby_fails_read_only(standby_engine: AsyncEngine) -> None:
    """What the app would hit if a write session ever went to the standby."""
    with pytest.raises(DBAPIError, match="cannot execute INSERT in a read-only transaction"):
        async with standby_engine.begin() as conn:
            await conn.execute(text("insert into media (id) values ('med_must_not_exist')"))


def test_hba_replication_rule_detection() -> None:
    assert _hba_allows_local_replication(_REPLICATION_HBA)
    assert _hba_allows_local_replication("host replication postgres 127.0.0.1/32 trust # ok\n")
    assert not _hba_allows_local_replication("# " + _REPLICATION_HBA)
    assert not _hba_allows_local_replication("host all all 127.0.0.1/32 trust")
    assert not _hba_allows_local_replication("host replication all 127.0.0.1/32 scram-sha-256")
