"""An app that reads the media row on every `/t/` request (no source cache), for tests that
change a row and look at the next answer at once."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import TestUser, new_user
from tests.media.support import asgi_client, extra_app


@pytest.fixture(scope="session")
async def fresh_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    async with extra_app(
        request, backend, service_root, "transforms-fresh", transform_source_cache_ttl="0s"
    ) as app:
        yield app


@pytest.fixture
async def fresh_client(fresh_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(fresh_app) as client:
        yield client


@pytest.fixture
async def fresh_user(fresh_client: httpx.AsyncClient) -> TestUser:
    return await new_user(fresh_client)
