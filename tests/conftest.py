"""App fixtures: the real app over httpx, against SQLite+local storage and PostgreSQL+S3."""

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.config import Settings
from mediakeep.migrate import upgrade_async
from tests.factories import TestUser, new_user
from tests.fixtures.services import (
    PostgresServer,
    S3Server,
    ServiceUnavailable,
    start_postgres,
    start_seaweedfs,
)

BACKENDS = ["sqlite-local", "postgres-s3"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="tests/reliability at full counts (crash matrix 20x per path, more fuzzing); slow",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (rather than skip) the backend parametrisations a `backends(...)` mark excludes:
    a route that only exists on one backend is not a skipped test on the other."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if marker is not None and backend is not None and backend not in marker.args:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def long_mode(request: pytest.FixtureRequest) -> bool:
    """True under `pytest --long`: reliability tests use DESIGN.md's full counts."""
    return bool(request.config.getoption("--long"))


@pytest.fixture(scope="session")
def service_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mediakeep-test-") as root:
        yield Path(root)


@pytest.fixture(scope="session")
def postgres(service_root: Path) -> Iterator[PostgresServer]:
    try:
        server = start_postgres(service_root / "pg")
    except ServiceUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(service_root: Path) -> Iterator[S3Server]:
    try:
        server = start_seaweedfs(service_root / "s3")
    except ServiceUnavailable as exc:
        pytest.skip(f"S3 server not available: {exc}")
    yield server
    server.stop()


def make_settings(
    backend: str, data_dir: Path, request: pytest.FixtureRequest, **overrides: Any
) -> Settings:
    """Settings for one backend combination; PostgreSQL/S3 servers are started on demand."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "auth_secret_key": "test-secret-" + "x" * 40,
        "allow_private_networks": False,
        "sweep_interval": "1h",
        "log_level": "WARNING",
        # Every test registers fresh users; production-cost Argon2id would dominate the run.
        # Hashes stay Argon2id; tests/auth/test_security.py checks the production defaults.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        # The suite makes thousands of requests from one address and a few tokens: limits stay
        # on (every request passes the middleware) but generous; tests/ratelimit sets its own.
        "rate_limit_anonymous": "1000000/minute",
        "rate_limit_user": "1000000/minute",
        "rate_limit_api_key": "1000000/minute",
        "rate_limit_register": "1000000/minute",
    }
    if backend == "postgres-s3":
        pg: PostgresServer = request.getfixturevalue("postgres")
        s3: S3Server = request.getfixturevalue("s3_server")
        database = pg.create_database()
        bucket = f"mk-{uuid.uuid4().hex[:20]}"
        s3.create_bucket(bucket)
        values |= {
            "db_write_dsn": database,
            "storage_backend": "s3",
            "s3_endpoint": s3.endpoint,
            "s3_bucket": bucket,
            "s3_access_key_id": s3.access_key,
            "s3_secret_access_key": s3.secret_key,
            "s3_region": s3.region,
            "s3_use_path_style": True,
        }
    values |= overrides
    return Settings(**values)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def settings(
    backend: str, service_root: Path, request: pytest.FixtureRequest
) -> Settings:
    data_dir = service_root / f"app-{backend}"
    result = make_settings(backend, data_dir, request)
    await upgrade_async(result)
    return result


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, run_background=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def user(client: httpx.AsyncClient) -> TestUser:
    return await new_user(client)


@pytest.fixture
async def other_user(client: httpx.AsyncClient) -> TestUser:
    return await new_user(client)


os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")
