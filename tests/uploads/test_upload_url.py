"""POST /media/upload-url (and its alias /media/prepare-upload): what is checked before any
byte moves, sha256 dedup without an upload, the quota, roles and the route's rate limit."""

import hashlib
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser, new_user
from tests.media.support import (
    MEDIA,
    asgi_client,
    assert_error,
    extra_app,
    settings_of,
    upload_ok,
)
from tests.uploads.support import UPLOAD_URL, ask_upload, ask_upload_ok, finalize_path, send


async def _media_ids(client: httpx.AsyncClient, user: TestUser) -> list[str]:
    listed = await client.get(MEDIA, headers=user.headers)
    return [media["id"] for media in listed.json()["data"]]


async def test_the_alias_prepare_upload_answers_the_same(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.post(
        f"{MEDIA}/prepare-upload",
        json={"filename": "a.png", "mime": "image/png", "size_bytes": 100},
        headers=user.headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["upload_method"] in ("PUT", "POST")


async def test_a_size_over_the_limit_of_the_declared_type_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    settings = settings_of(app)
    image = await ask_upload(client, user, settings.max_bytes + 1, mime="image/jpeg")
    assert_error(image, 413, "validation.size.exceeds_limit")
    video = await ask_upload(client, user, settings.max_bytes_video + 1, mime="video/mp4")
    assert_error(video, 413, "validation.size.exceeds_limit")
    # The video limit applies to a video even when it is far above the image limit.
    fine = await ask_upload(client, user, settings.max_bytes + 1, mime="video/mp4")
    assert fine.status_code == 201, fine.text
    assert await _media_ids(client, user) == [fine.json()["media_id"]]


@pytest.mark.parametrize("size", [0, -1])
async def test_a_size_below_one_byte_is_invalid(
    client: httpx.AsyncClient, user: TestUser, size: int
) -> None:
    response = await ask_upload(client, user, size)

    error = assert_error(response, 400, "validation.invalid")
    assert error["details"][0]["field"] == "size_bytes"


@pytest.mark.parametrize("mime", ["text/html", "image/svg+xml", "application/x-msdownload"])
async def test_a_declared_type_that_is_not_allowed_is_refused(
    client: httpx.AsyncClient, user: TestUser, mime: str
) -> None:
    response = await ask_upload(client, user, 100, mime=mime)

    error = assert_error(response, 415, "validation.mime.unsupported")
    assert error["details"][0]["field"] == "mime"
    assert await _media_ids(client, user) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mime": "not a type"}, "mime"),
        ({"kind": "video"}, "kind"),
        ({"kind": "spreadsheet"}, "kind"),
        ({"sha256": "xyz"}, "sha256"),
        ({"filename": ""}, "filename"),
        ({"collection": "col_1"}, "collection"),
    ],
)
async def test_a_malformed_body_is_invalid(
    client: httpx.AsyncClient, user: TestUser, body: dict[str, str], field: str
) -> None:
    payload = {"filename": "a.png", "mime": "image/png", "size_bytes": 100} | body

    response = await client.post(UPLOAD_URL, json=payload, headers=user.headers)

    error = assert_error(response, 400, "validation.invalid")
    assert field in error["message"]


async def test_known_bytes_are_deduped_without_an_upload_or_a_row(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg(24, 24)
    existing = await upload_ok(client, user, data)

    response = await ask_upload(
        client,
        user,
        len(data),
        mime="image/jpeg",
        sha256=hashlib.sha256(data).hexdigest().upper(),
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"media_id": existing["id"], "deduped": True}
    assert await _media_ids(client, user) == [existing["id"]]


async def test_unknown_bytes_with_a_sha256_get_an_upload_url(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    digest = hashlib.sha256(data).hexdigest()
    answer = await ask_upload_ok(client, user, data, sha256=digest)

    await send(app, client, answer, data)
    done = await client.post(finalize_path(answer["media_id"]), headers=user.headers)

    assert done.status_code == 200, done.text
    assert done.json()["sha256"] == digest


async def test_another_orgs_bytes_are_not_deduped(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    data = mediagen.jpeg(24, 24)
    theirs = await upload_ok(client, other_user, data)

    response = await ask_upload(
        client, user, len(data), mime="image/jpeg", sha256=hashlib.sha256(data).hexdigest()
    )

    assert response.status_code == 201, response.text
    answer = response.json()
    # A fresh pending media of this org with its own upload URL, never the other org's media.
    assert answer["media_id"] != theirs["id"]
    assert "deduped" not in answer or answer["deduped"] is False
    assert answer["upload_url"]
    pending = await client.get(f"{MEDIA}/{answer['media_id']}", headers=user.headers)
    assert pending.status_code == 200, pending.text
    assert pending.json()["status"] == "pending"
    # The other org still has exactly its own media, untouched.
    assert await _media_ids(client, other_user) == [theirs["id"]]


async def test_the_optional_fields_are_kept_on_the_media(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(
        client, user, data, filename="dir/../cat.png", alt="a cat", is_private=True
    )
    await send(app, client, answer, data)

    media = (await client.post(finalize_path(answer["media_id"]), headers=user.headers)).json()

    assert (media["filename"], media["alt"], media["is_private"]) == ("cat.png", "a cat", True)


async def test_an_upload_url_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post(
        UPLOAD_URL, json={"filename": "a.png", "mime": "image/png", "size_bytes": 1}
    )
    assert_error(response, 401, "auth.unauthorized")


async def test_the_route_carries_its_own_rate_limit(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await ask_upload(client, user, 100)

    assert response.status_code == 201
    limit = settings_of(app).rate_limit_upload_url.split("/", 1)[0]
    assert response.headers["x-ratelimit-limit"] == limit
    assert int(response.headers["x-ratelimit-remaining"]) == int(limit) - 1


async def test_the_route_limit_refuses_once_spent(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    async with (
        extra_app(
            request, backend, service_root, "upload-url-limit", rate_limit_upload_url="2/minute"
        ) as app,
        asgi_client(app) as client,
    ):
        user = await new_user(client)
        for _ in range(2):
            assert (await ask_upload(client, user, 100)).status_code == 201
        refused = await ask_upload(client, user, 100)
        assert_error(refused, 429, "rate.limited")
        assert "retry-after" in refused.headers


async def test_the_quota_is_checked_when_asking_and_again_at_finalize(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    first, filler, late = mediagen.png(32, 24), mediagen.png(40, 30), mediagen.png(36, 24)
    quota = len(first) + len(filler) + len(late) - 1
    async with (
        extra_app(request, backend, service_root, "upload-url-quota", org_quota_bytes=quota) as app,
        asgi_client(app) as client,
    ):
        user = await new_user(client)
        await upload_ok(client, user, first, part_name="a.png", declared="image/png")
        left = quota - len(first)

        refused = await ask_upload(client, user, left + 1)
        assert_error(refused, 413, "quota.exceeded")
        assert (await ask_upload(client, user, left)).status_code == 201

        answer = await ask_upload_ok(client, user, late)
        await upload_ok(client, user, filler, part_name="b.png", declared="image/png")
        await send(app, client, answer, late)
        response = await client.post(finalize_path(answer["media_id"]), headers=user.headers)
        assert_error(response, 413, "quota.exceeded")
        gone = await client.get(f"{MEDIA}/{answer['media_id']}", headers=user.headers)
        assert_error(gone, 404, "not_found")
