"""Fixtures for the job tests: the app with each dispatcher and real workers.

`queue_app` is parametrized over the two dispatchers, so every test that uses it runs the same
tasks through the local worker processes (owned by the app, as `mediakeep serve` owns them) and
through a real `mediakeep worker` (Celery) on a real Redis.
"""

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.config import Settings
from mediakeep.migrate import upgrade_async
from mediakeep.services import Services
from tests.conftest import make_settings
from tests.factories import TestUser, new_user
from tests.fixtures.services import RedisServer, ServiceUnavailable, start_redis
from tests.jobs.support import FAST_JOBS, TEST_TASKS_ENV, WorkerProcess, worker_env

DISPATCHERS = ["local", "celery"]
_redis_databases = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(service_root: Path) -> Iterator[RedisServer]:
    try:
        server = start_redis(service_root / "redis")
    except ServiceUnavailable as exc:
        pytest.skip(f"Redis not available: {exc}")
    yield server
    server.stop()


@dataclass
class QueueApp:
    dispatcher: str
    app: FastAPI
    settings: Settings
    worker: WorkerProcess | None

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services


@pytest.fixture(scope="module", params=DISPATCHERS)
async def queue_app(request: pytest.FixtureRequest, service_root: Path) -> AsyncIterator[QueueApp]:
    kind = str(request.param)
    module = request.module.__name__.rsplit(".", 1)[-1]
    data_dir = service_root / f"jobs-{module}-{kind}"
    overrides = dict(FAST_JOBS, queue_backend=kind)
    if kind == "celery":
        redis: RedisServer = request.getfixturevalue("redis_server")
        # A Redis database of its own: no other module's worker ever sees these messages.
        overrides["redis_url"] = redis.url.rsplit("/", 1)[0] + f"/{next(_redis_databases)}"
    settings = make_settings("sqlite-local", data_dir, request, **overrides)
    await upgrade_async(settings)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_TASKS_ENV.items():  # local workers inherit the environment
            patch.setenv(name, value)
        worker = None
        if kind == "celery":
            worker = WorkerProcess(worker_env(settings.as_env()), data_dir / "worker.log")
            worker.start()
        app = create_app(settings, run_background=False, workers=kind == "local")
        try:
            async with app.router.lifespan_context(app):
                yield QueueApp(kind, app, settings, worker)
        finally:
            if worker is not None:
                worker.stop()


@pytest.fixture
async def client(queue_app: QueueApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=queue_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def user(client: httpx.AsyncClient) -> TestUser:
    return await new_user(client)
