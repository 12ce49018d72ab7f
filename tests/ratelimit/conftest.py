"""Fixtures of the rate-limit tests: apps with small budgets, a real Redis."""

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings
from tests.fixtures.services import RedisServer, ServiceUnavailable, start_redis

_apps = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(service_root: Path) -> Iterator[RedisServer]:
    try:
        server = start_redis(service_root / "redis")
    except ServiceUnavailable as exc:
        pytest.skip(f"Redis not available: {exc.reason}")
    yield server
    server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied: every test starts with untouched budgets."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_server.url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return redis_server.url


MakeApp = Callable[..., contextlib.AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def make_app(service_root: Path, request: pytest.FixtureRequest) -> MakeApp:
    """`async with make_app(rate_limit_anonymous="3/minute") as app:` an app (SQLite, local
    storage) with its own data dir and these settings, its lifespan running."""

    @contextlib.asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[FastAPI]:
        data_dir = service_root / f"ratelimit-{next(_apps)}"
        settings = make_settings("sqlite-local", data_dir, request, **overrides)
        await upgrade_async(settings)
        app = create_app(settings, run_background=False)
        async with app.router.lifespan_context(app):
            yield app

    return build
