"""MEDIA_RETENTION_DAYS: media older than N days are deleted as a user's DELETE would (rows,
memberships, objects), in batches, from the background sweeper; younger media stay."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from mediakeep.ingest import sweeper
from mediakeep.kit.time import now
from mediakeep.models import Media
from mediakeep.retention.sweeper import delete_expired_media
from mediakeep.services import Services
from tests import mediagen
from tests.collections.support import add_media, create_collection, get_collection
from tests.factories import TestUser, new_user
from tests.media.support import MEDIA, asgi_client, extra_app, original_exists, upload_ok

DAYS = 30


@pytest.fixture(scope="module")
async def retention_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    async with extra_app(
        request, backend, service_root, "retention", retention_days=DAYS
    ) as application:
        yield application


@pytest.fixture
async def http(retention_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(retention_app) as client:
        yield client


def _services(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


async def _age(app: FastAPI, media_ids: list[str], days: float) -> None:
    """Pretend these media were created `days` ago (straight in the database)."""
    async with _services(app).db.write_session() as session:
        await session.execute(
            update(Media)
            .where(Media.id.in_(media_ids))
            .values(created_at=now() - timedelta(days=days))
        )


async def _uploads(http: httpx.AsyncClient, user: TestUser, count: int) -> list[dict[str, Any]]:
    return [await upload_ok(http, user, mediagen.jpeg()) for _ in range(count)]


async def _exists(http: httpx.AsyncClient, user: TestUser, media_id: str) -> bool:
    response = await http.get(f"{MEDIA}/{media_id}", headers=user.headers)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


async def test_media_older_than_the_retention_are_deleted_and_younger_kept(
    retention_app: FastAPI, http: httpx.AsyncClient
) -> None:
    user = await new_user(http)
    old, borderline, young = await _uploads(http, user, 3)
    album = await create_collection(http, user.headers)
    await add_media(http, user.headers, album["id"], [old["id"], young["id"]])
    await _age(retention_app, [old["id"]], DAYS + 1)
    await _age(retention_app, [borderline["id"]], DAYS - 0.5)

    removed = await delete_expired_media(_services(retention_app))

    assert removed >= 1
    assert not await _exists(http, user, old["id"])
    assert not original_exists(retention_app, user.org_id, old["sha256"])
    for kept in (borderline, young):
        assert await _exists(http, user, kept["id"])
        assert original_exists(retention_app, user.org_id, kept["sha256"])
        content = await http.get(f"{MEDIA}/{kept['id']}/content", headers=user.headers)
        assert content.status_code == 200
    after = await get_collection(http, user.headers, album["id"])
    assert after["media_count"] == 1


async def test_every_org_is_swept_in_batches_until_none_is_left(
    retention_app: FastAPI, http: httpx.AsyncClient
) -> None:
    first, second = await new_user(http), await new_user(http)
    olds = {
        first.user_id: await _uploads(http, first, 3),
        second.user_id: await _uploads(http, second, 2),
    }
    keep = await upload_ok(http, second, mediagen.jpeg())
    await _age(retention_app, [m["id"] for ms in olds.values() for m in ms], DAYS * 3)

    removed = await delete_expired_media(_services(retention_app), batch_size=2)

    assert removed >= 5
    for user in (first, second):
        for media in olds[user.user_id]:
            assert not await _exists(http, user, media["id"])
            assert not original_exists(retention_app, user.org_id, media["sha256"])
    assert await _exists(http, second, keep["id"])
    # Nothing older is left, so the next pass (a resumed one, say) has nothing to do.
    assert await delete_expired_media(_services(retention_app), batch_size=2) == 0


async def test_zero_days_keeps_everything(retention_app: FastAPI, http: httpx.AsyncClient) -> None:
    user = await new_user(http)
    [ancient] = await _uploads(http, user, 1)
    await _age(retention_app, [ancient["id"]], 3650)

    assert await delete_expired_media(_services(retention_app), retention_days=0) == 0
    assert await _exists(http, user, ancient["id"])

    await delete_expired_media(_services(retention_app))
    assert not await _exists(http, user, ancient["id"])


async def test_the_default_deployment_keeps_media_forever(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    assert _services(app).settings.retention_days == 0
    media = await upload_ok(client, user, mediagen.jpeg())
    await _age(app, [media["id"]], 3650)

    assert await delete_expired_media(_services(app)) == 0
    assert (await client.get(f"{MEDIA}/{media['id']}", headers=user.headers)).status_code == 200


async def test_the_background_sweeper_applies_the_retention(
    retention_app: FastAPI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await new_user(http)
    old, young = await _uploads(http, user, 2)
    await _age(retention_app, [old["id"]], DAYS + 2)
    swept = asyncio.Event()
    real_sweep = sweeper.sweep_once

    async def sweep_and_tell(services: Services, max_age: timedelta | None = None) -> Any:
        try:
            return await real_sweep(services, max_age)
        finally:
            swept.set()

    monkeypatch.setattr(sweeper, "sweep_once", sweep_and_tell)
    task = asyncio.create_task(sweeper.run_sweeper(_services(retention_app)))
    try:
        # One tick runs the retention pass, then the orphan sweep.
        await asyncio.wait_for(swept.wait(), timeout=60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert not await _exists(http, user, old["id"])
    assert not original_exists(retention_app, user.org_id, old["sha256"])
    assert await _exists(http, user, young["id"])
