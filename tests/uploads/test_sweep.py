"""The orphan sweep and direct uploads: a pending upload past its finalize deadline loses its
row and its object; stray incoming objects go once older than the TTL (also S3 objects left by
presigned POSTs); a live upload keeps its object however old, and can still be finalized."""

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.ids import new_id
from mediakeep.ingest.sweeper import sweep_once
from mediakeep.kit.time import now
from tests import mediagen
from tests.factories import TestUser, new_user
from tests.media.support import (
    MEDIA,
    asgi_client,
    assert_error,
    extra_app,
    s3_client,
    settings_of,
    upload_ok,
)
from tests.uploads.support import (
    ask_upload_ok,
    finalize_path,
    incoming_objects,
    org_objects,
    send,
    set_upload_expiry,
    upload_key,
)


@pytest.fixture
async def sweep_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    """An app of its own: sweeping with max_age=0 must not disturb other tests' uploads."""
    name = f"uploads-sweep-{new_id('t')[-8:]}"
    async with extra_app(request, backend, service_root, name) as application:
        yield application


def _put_stray_incoming(app: FastAPI, key: str, data: bytes) -> None:
    """An incoming object no row knows, as a presigned POST whose row is gone leaves behind."""
    settings = settings_of(app)
    if settings.storage_backend == "s3":
        s3_client(settings).put_object(Bucket=settings.s3_bucket, Key=key, Body=data)
        return
    path = Path(settings.local_storage_path) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _pending_ids(client: httpx.AsyncClient, user: TestUser) -> list[str]:
    listed = await client.get(MEDIA, params={"status": "pending"}, headers=user.headers)
    return sorted(media["id"] for media in listed.json()["data"])


async def test_expired_uploads_and_stray_incoming_objects_are_swept_live_ones_are_kept(
    sweep_app: FastAPI,
) -> None:
    app = sweep_app
    services = app.state.services
    ttl = settings_of(app).upload_url_ttl
    async with asgi_client(app) as client:
        user = await new_user(client)
        uploaded_then_expired = mediagen.png(20, 20)
        expired = await ask_upload_ok(client, user, uploaded_then_expired)
        await send(app, client, expired, uploaded_then_expired)
        never_uploaded = await ask_upload_ok(client, user, mediagen.png(20, 20))
        live_data = mediagen.png(20, 20)
        live = await ask_upload_ok(client, user, live_data)
        await send(app, client, live, live_data)
        past_deadline = now() - ttl - timedelta(minutes=1)
        for answer in (expired, never_uploaded):
            await set_upload_expiry(app, user.org_id, answer["media_id"], past_deadline)
        stray = f"{user.org_id}/incoming/{new_id('upl')}"
        _put_stray_incoming(app, stray, b"left behind")

        # With the default TTL: expired uploads go whatever their age; young strays stay.
        report = await sweep_once(services)

        assert report.expired_uploads == 2
        assert await _pending_ids(client, user) == [live["media_id"]]
        assert incoming_objects(app, user.org_id) == sorted([upload_key(live), stray])
        for answer in (expired, never_uploaded):
            gone = await client.post(finalize_path(answer["media_id"]), headers=user.headers)
            assert_error(gone, 404, "not_found")

        # Everything older than now: the stray goes, the live upload's object stays.
        report = await sweep_once(services, max_age=timedelta(0))

        assert report.expired_uploads == 0
        assert report.incomplete >= 1
        assert incoming_objects(app, user.org_id) == [upload_key(live)]
        done = await client.post(finalize_path(live["media_id"]), headers=user.headers)
        assert done.status_code == 200, done.text

        await sweep_once(services, max_age=timedelta(0))
        digest = hashlib.sha256(live_data).hexdigest()
        stored = [key for key in org_objects(app, user.org_id) if "/variants/" not in key]
        assert stored == [f"{user.org_id}/originals/{digest}"]
        assert await _pending_ids(client, user) == []


async def test_derived_objects_of_a_media_that_has_no_row_are_swept_a_live_ones_stay(
    sweep_app: FastAPI,
) -> None:
    """A crash after rendering a new media's variants but before its row committed leaves
    variants (or stream files, captions, cached transforms) that no row names: the sweep
    removes them; a living media's derived objects stay."""
    app = sweep_app
    async with asgi_client(app) as client:
        user = await new_user(client)
        kept = await upload_ok(client, user, mediagen.png(40, 30), part_name="kept.png",
                               declared="image/png")  # fmt: skip
        kept_objects = org_objects(app, user.org_id)
        assert any(f"/variants/{kept['id']}/" in key for key in kept_objects)
        unborn = new_id("med")
        strays = [
            f"{user.org_id}/variants/{unborn}/v1/thumbnail.webp",
            f"{user.org_id}/streams/{unborn}/v1/master.m3u8",
            f"{user.org_id}/captions/{unborn}/en.vtt",
            f"{user.org_id}/transforms/{unborn}/v1/{'a' * 16}.jpg",
        ]
        for key in strays:
            _put_stray_incoming(app, key, b"left by a crash")

        young = await sweep_once(app.state.services)  # default TTL: too young to judge
        assert young.unreferenced_derived == 0
        assert set(strays) <= set(org_objects(app, user.org_id))

        report = await sweep_once(app.state.services, max_age=timedelta(0))

        assert report.unreferenced_derived == len(strays)
        assert org_objects(app, user.org_id) == kept_objects
        fetched = await client.get(f"{MEDIA}/{kept['id']}", headers=user.headers)
        assert [v["name"] for v in fetched.json()["variants"]]
