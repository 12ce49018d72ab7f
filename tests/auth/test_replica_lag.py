"""Authentication of users a lagging read replica has not seen yet (real PostgreSQL hot standby
with WAL replay paused): guests and external identities made moments ago still authenticate,
because a miss on the replica is asked again of the primary."""

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.auth import security
from mediakeep.migrate import upgrade_async
from tests.auth.jwks_support import JwksServer, SigningKey, claims
from tests.auth.support import assert_error, bearer
from tests.conftest import make_settings
from tests.fixtures.services import (
    PostgresServer,
    ServiceUnavailable,
    pause_replay,
    resume_replay,
    start_postgres,
    start_postgres_standby,
    wait_for_replay,
)

pytestmark = pytest.mark.postgres

API = "/api/v1"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresServer, str]]:
    try:
        primary = start_postgres(tmp_path_factory.mktemp("lag-primary"))
    except ServiceUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc.reason}")
    try:
        yield primary, primary.dsn
    finally:
        primary.cleanup()


@pytest.fixture(scope="module")
async def lag_app(
    servers: tuple[PostgresServer, str],
    jwks_server: JwksServer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[FastAPI, PostgresServer, PostgresServer]]:
    primary, dsn = servers
    base = make_settings(
        "sqlite-local", tmp_path_factory.mktemp("lag-migrate"), request, db_write_dsn=dsn
    )
    await upgrade_async(base)
    try:
        standby = start_postgres_standby(primary, tmp_path_factory.mktemp("lag-standby"))
    except ServiceUnavailable as exc:
        pytest.skip(f"PostgreSQL standby not available: {exc.reason}")
    try:
        settings = make_settings(
            "sqlite-local",
            tmp_path_factory.mktemp("lag-app"),
            request,
            db_write_dsn=dsn,
            db_read_dsn=standby.dsn,
            auth_guest_enabled=True,
            auth_issuer=jwks_server.issuer,
            auth_jwks_url=jwks_server.jwks_url,
        )
        app = create_app(settings, run_background=False)
        async with app.router.lifespan_context(app):
            yield app, primary, standby
    finally:
        standby.cleanup()


@pytest.fixture
async def lagging(
    lag_app: tuple[FastAPI, PostgresServer, PostgresServer],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app while the standby applies no WAL."""
    app, primary, standby = lag_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        pause_replay(standby)
        try:
            yield client
        finally:
            resume_replay(standby)
            wait_for_replay(primary, standby)


async def test_a_fresh_guest_authenticates_while_the_replica_lags(
    lagging: httpx.AsyncClient,
) -> None:
    pair = (await lagging.post(f"{API}/auth/guest-login")).json()
    keys = await lagging.get(f"{API}/api-keys", headers=bearer(pair["access_token"]))
    assert keys.status_code == 200, keys.text
    assert keys.json()["data"] == []


async def test_a_first_seen_external_user_authenticates_while_the_replica_lags(
    lagging: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    key = SigningKey.ec("lag-key")
    jwks_server.publish(key)
    token = key.sign(claims(jwks_server.issuer, str(uuid.uuid4())))
    for _ in range(2):  # created, then found again on the primary (the replica still lacks it)
        response = await lagging.get(f"{API}/api-keys", headers=bearer(token))
        assert response.status_code == 200, response.text


async def test_an_unknown_user_is_still_refused(
    lagging: httpx.AsyncClient, lag_app: tuple[FastAPI, PostgresServer, PostgresServer]
) -> None:
    secret = lag_app[0].state.services.settings.secret_key
    token = security.create_access_token(secret, "usr_nobody", timedelta(minutes=5))
    error = assert_error(
        await lagging.get(f"{API}/api-keys", headers=bearer(token)), 401, "auth.unauthorized"
    )
    assert "no longer exists" in error["message"]
