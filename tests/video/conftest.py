"""The app with real local worker processes (as `mediakeep serve` runs them), for the video
and audio operations; MEDIA_MAX_DURATION is 30 s so an over-long input is cheap to make."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings
from tests.factories import TestUser, new_user
from tests.jobs.support import FAST_JOBS, TEST_TASKS_ENV

MAX_DURATION_SECONDS = 30


@pytest.fixture(scope="module")
async def video_app(request: pytest.FixtureRequest, service_root: Path) -> AsyncIterator[FastAPI]:
    module = request.module.__name__.rsplit(".", 1)[-1]
    overrides = dict(
        FAST_JOBS,
        queue_backend="local",
        max_duration=f"{MAX_DURATION_SECONDS}s",
        ffmpeg_timeout="60s",
    )
    settings = make_settings("sqlite-local", service_root / f"video-{module}", request, **overrides)
    await upgrade_async(settings)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_TASKS_ENV.items():
            patch.setenv(name, value)
        app = create_app(settings, run_background=False, workers=True)
        async with app.router.lifespan_context(app):
            yield app


@pytest.fixture
async def client(video_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=video_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def user(client: httpx.AsyncClient) -> TestUser:
    return await new_user(client)
