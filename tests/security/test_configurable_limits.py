"""The limits of issue 17 follow their settings (MEDIA_MAX_JSON_BYTES, MEDIA_METADATA_MAX_*)."""

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediakeep.app import create_app
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings
from tests.factories import new_user
from tests.media.support import assert_error, upload_ok
from tests.mediagen import png

_apps = itertools.count(1)


@contextlib.asynccontextmanager
async def client_of(
    backend: str, root: Path, request: pytest.FixtureRequest, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(backend, root / f"limits-{next(_apps)}", request, **overrides)
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_the_limits_follow_their_settings(
    backend: str, service_root: Path, request: pytest.FixtureRequest
) -> None:
    overrides = {"max_json_bytes": 4096, "metadata_max_keys": 3, "metadata_max_depth": 2}
    async with client_of(backend, service_root, request, **overrides) as client:
        user = await new_user(client)
        media = await upload_ok(client, user, png(), part_name="a.png", declared="image/png")
        body = {"alt": "a" * 5000}
        too_big = await client.patch(
            f"/api/v1/media/{media['id']}", json=body, headers=user.headers
        )
        error = assert_error(too_big, 413, "validation.body_too_large")
        assert "4096" in error["message"]
        patched = await client.patch(
            f"/api/v1/media/{media['id']}",
            json={"metadata": {"a": 1, "b": 2, "c": 3, "d": 4}},
            headers=user.headers,
        )
        assert_error(patched, 422, "validation.metadata_too_large")
        deep = await client.patch(
            f"/api/v1/media/{media['id']}",
            json={"metadata": {"a": {"b": {}}}},
            headers=user.headers,
        )
        assert_error(deep, 422, "validation.metadata_too_large")
