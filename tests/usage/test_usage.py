"""GET /usage: what the acting org stores (media by kind, bytes of distinct originals), its
jobs and AI requests, and the quota; never another org's."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from mediakeep.ids import new_id
from mediakeep.models import Media
from tests import mediagen
from tests.auth.support import assert_error, execute
from tests.factories import TestUser, new_user
from tests.media.support import MEDIA, asgi_client, extra_app, upload_ok
from tests.orgs.support import add_member, create_org

USAGE = "/api/v1/usage"
ZERO = {"count": 0, "bytes": 0}


async def _usage(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(USAGE, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_new_org_uses_nothing(client: httpx.AsyncClient, user: TestUser) -> None:
    assert await _usage(client, user.headers) == {
        "media_count": 0,
        "bytes_stored": 0,
        "by_kind": {"image": ZERO, "video": ZERO, "audio": ZERO, "document": ZERO},
        "jobs_by_status": {},
        "ai_requests_today": 0,
        "quota_bytes": None,
    }


async def test_uploads_are_counted_by_kind_with_their_bytes(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    jpeg = await upload_ok(client, user, mediagen.jpeg())
    png = await upload_ok(client, user, mediagen.png(), part_name="b.png", declared="image/png")
    wav = await upload_ok(client, user, mediagen.wav(0.3), part_name="c.wav", declared="audio/wav")
    image_bytes = jpeg["size_bytes"] + png["size_bytes"]
    usage = await _usage(client, user.headers)
    assert usage["media_count"] == 3
    assert usage["bytes_stored"] == image_bytes + wav["size_bytes"]
    assert usage["by_kind"] == {
        "image": {"count": 2, "bytes": image_bytes},
        "video": ZERO,
        "audio": {"count": 1, "bytes": wav["size_bytes"]},
        "document": ZERO,
    }


async def test_the_same_bytes_uploaded_twice_count_once(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg()
    first = await upload_ok(client, user, data)
    again = await client.post(
        f"{MEDIA}/upload", files={"file": ("copy.jpg", data, "image/jpeg")}, headers=user.headers
    )
    assert again.json()["deduped"] is True
    usage = await _usage(client, user.headers)
    assert (usage["media_count"], usage["bytes_stored"]) == (1, first["size_bytes"])


async def test_an_original_that_two_media_share_is_counted_once(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    first = await upload_ok(client, user, mediagen.jpeg())
    async with app.state.services.db.read_session() as session:
        row = (await session.execute(select(Media).where(Media.id == first["id"]))).scalar_one()
    # A second media pointing at the same stored original (as a replaced version may).
    await execute(
        app,
        insert(Media).values(
            id=new_id("med"),
            org_id=user.org_id,
            kind="image",
            source="upload",
            status="ready",
            filename="alias.jpg",
            mime="image/jpeg",
            size_bytes=row.size_bytes,
            sha256=None,
            storage_key=row.storage_key,
            metadata_={},
        ),
    )
    usage = await _usage(client, user.headers)
    assert usage["media_count"] == 2
    assert usage["bytes_stored"] == first["size_bytes"]
    assert usage["by_kind"]["image"] == {"count": 2, "bytes": first["size_bytes"]}


async def test_deleting_media_gives_its_bytes_back(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    kept = await upload_ok(client, user, mediagen.jpeg())
    gone = await upload_ok(client, user, mediagen.jpeg(50, 50))
    deleted = await client.delete(f"{MEDIA}/{gone['id']}", headers=user.headers)
    assert deleted.status_code == 204
    usage = await _usage(client, user.headers)
    assert (usage["media_count"], usage["bytes_stored"]) == (1, kept["size_bytes"])


async def test_usage_is_the_acting_orgs_only(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    mine = await upload_ok(client, user, mediagen.jpeg())
    assert (await _usage(client, other_user.headers))["media_count"] == 0

    team = await create_org(client, user)
    await add_member(client, user, team["slug"], other_user, "viewer")
    in_team = {"X-Org": team["slug"]}
    assert (await _usage(client, user.headers | in_team))["media_count"] == 0
    shared = await upload_ok(client, user, mediagen.png(), part_name="t.png", declared="image/png")
    assert shared["org_id"] == user.org_id  # without X-Org the upload lands in the personal org
    team_upload = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("t.jpg", mediagen.jpeg(30, 30), "image/jpeg")},
        headers=user.headers | in_team,
    )
    assert team_upload.status_code == 201, team_upload.text

    viewer_sees = await _usage(client, other_user.headers | in_team)
    assert viewer_sees["media_count"] == 1
    assert viewer_sees["bytes_stored"] == team_upload.json()["size_bytes"]
    personal = await _usage(client, user.headers)
    assert personal["media_count"] == 2
    assert personal["bytes_stored"] == mine["size_bytes"] + shared["size_bytes"]


async def test_an_org_the_caller_is_not_in_is_404(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    response = await client.get(USAGE, headers=user.headers | {"X-Org": other_user.org_slug})
    assert_error(response, 404, "not_found")


async def test_usage_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(USAGE), 401, "auth.unauthorized")


async def test_a_viewer_key_reads_usage(client: httpx.AsyncClient, user: TestUser) -> None:
    key = await client.post(
        "/api/v1/api-keys", json={"name": "dash", "role": "viewer"}, headers=user.headers
    )
    usage = await _usage(client, {"X-API-Key": key.json()["key"]})
    assert usage["media_count"] == 0


async def test_the_configured_quota_is_reported(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    async with (
        extra_app(request, backend, service_root, "quota", org_quota_bytes=5_000_000) as app,
        asgi_client(app) as client,
    ):
        user = await new_user(client)
        assert (await _usage(client, user.headers))["quota_bytes"] == 5_000_000


async def test_jobs_are_counted_by_status(client: httpx.AsyncClient, user: TestUser) -> None:
    answer = await client.post(
        "/api/v1/media/upload",
        files={"file": ("a.png", mediagen.png(), "image/png")},
        data={"async": "true"},
        headers=user.headers,
    )
    assert answer.status_code == 202, answer.text
    counts = (await _usage(client, user.headers))["jobs_by_status"]
    assert sum(counts.values()) == 1  # pending or already picked up, but exactly one job
