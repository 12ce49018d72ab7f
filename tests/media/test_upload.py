"""POST /api/v1/media/upload: multipart uploads, sniffing, dedup, limits, tenancy."""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser, new_user
from tests.media.support import (
    MEDIA,
    MEDIA_FIELDS,
    MEDIA_ID,
    RFC3339_Z,
    asgi_client,
    assert_error,
    extra_app,
    fetch_url,
    leftover_spool_files,
    settings_of,
    stored_originals,
    upload,
    upload_ok,
)

SMALL_LIMIT = 50_000
SMALL_LIMIT_AV = 60_000


@pytest.fixture(scope="module")
async def small_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    """An app whose MEDIA_MAX_BYTES is tiny, to cross the limit with small files."""
    async with extra_app(
        request,
        backend,
        service_root,
        "small",
        max_bytes=SMALL_LIMIT,
        max_bytes_video=SMALL_LIMIT_AV,
    ) as application:
        yield application


@pytest.fixture
async def small_client(small_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(small_app) as http:
        yield http


def _parse_time(value: str) -> datetime:
    assert RFC3339_Z.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_upload_answers_201_with_the_media_object_of_the_spec(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg(64, 48)
    before = datetime.now(UTC)

    body = await upload_ok(client, user, data, part_name="cat.jpg")

    assert set(body) == MEDIA_FIELDS | {"deduped"}
    assert MEDIA_ID.match(body["id"]), body["id"]
    assert body["org_id"] == user.org_id
    assert body["kind"] == "image"
    assert body["source"] == "upload"
    assert body["status"] == "ready"
    assert body["filename"] == "cat.jpg"
    assert body["mime"] == "image/jpeg"
    assert body["size_bytes"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["width"], body["height"]) == (64, 48)
    assert body["duration_seconds"] is None
    assert (body["alt"], body["caption"], body["description"]) == (None, None, None)
    assert body["is_private"] is False
    assert isinstance(body["metadata"], dict)
    assert body["derived_from"] is None
    assert isinstance(body["variants"], list)
    assert body["captions"] == []
    assert body["version"] == 1
    created = _parse_time(body["created_at"])
    assert before.replace(microsecond=0) <= created <= datetime.now(UTC)
    _parse_time(body["updated_at"])
    assert _parse_time(body["expires_at"]) > datetime.now(UTC)


async def test_upload_url_downloads_the_exact_bytes(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg(80, 60)
    body = await upload_ok(client, user, data)

    settings = settings_of(app)
    if settings.storage_backend == "local":
        assert body["url"].startswith("http://127.0.0.1:8285/files/")
    else:
        assert body["url"].startswith(f"{settings.s3_endpoint}/{settings.s3_bucket}/")
    downloaded = await fetch_url(app, client, body["url"])
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.content == data
    assert downloaded.headers["content-type"].startswith("image/jpeg")


async def test_mime_is_sniffed_from_the_bytes_not_the_name_or_declared_type(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(30, 20)
    body = await upload_ok(client, user, data, part_name="looks-like.jpg", declared="image/jpeg")
    assert body["mime"] == "image/png"
    assert (body["width"], body["height"]) == (30, 20)
    assert body["filename"] == "looks-like.jpg"


async def test_optional_form_fields_are_stored_and_read_back(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    fields = {
        "filename": "holiday.jpg",
        "alt": "A grey cat on a sofa",
        "caption": "Our cat",
        "description": "Taken in the summer.\nSecond line.",
        "is_private": "true",
    }
    body = await upload_ok(client, user, mediagen.jpeg(), part_name="IMG_0001.JPG", **fields)
    fetched = await client.get(f"{MEDIA}/{body['id']}", headers=user.headers)
    assert fetched.status_code == 200, fetched.text
    for media in (body, fetched.json()):
        assert media["filename"] == "holiday.jpg"
        assert media["alt"] == fields["alt"]
        assert media["caption"] == "Our cat"
        assert media["description"] == fields["description"]
        assert media["is_private"] is True


async def test_filename_defaults_to_the_file_parts_name_without_directories(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    body = await upload_ok(client, user, mediagen.jpeg(), part_name="../../etc/dir\\photo.jpg")
    assert body["filename"] == "photo.jpg"


async def test_names_beyond_latin1_as_browsers_send_them_are_kept(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    """Browsers put the file part's name in the header as raw UTF-8; it was parsed as Latin-1
    text, so "写真 ☀.jpg" made the whole upload a 400 (found by the stateful fuzz run)."""
    body = await upload_ok(client, user, mediagen.jpeg(), part_name="写真 ☀.jpg", alt="日本の猫 ☀")
    assert body["filename"] == "写真 ☀.jpg"
    assert body["alt"] == "日本の猫 ☀"


async def test_unknown_form_field_is_400(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await upload(client, user, mediagen.jpeg(), colour="blue")
    assert_error(response, 400, "validation.invalid")


async def test_same_bytes_twice_in_one_org_give_the_same_media_stored_once(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg()
    first = await upload_ok(client, user, data, part_name="a.jpg")

    second = await upload(client, user, data, part_name="b.jpg")

    assert second.status_code == 200, second.text
    again = second.json()
    assert again["deduped"] is True
    assert again["id"] == first["id"]
    assert again["sha256"] == first["sha256"]
    assert again["filename"] == "a.jpg"  # the existing media, unchanged
    assert stored_originals(app, user.org_id) == [first["sha256"]]
    listed = await client.get(MEDIA, headers=user.headers)
    assert [m["id"] for m in listed.json()["data"]] == [first["id"]]


async def test_same_bytes_in_two_orgs_are_two_media_invisible_to_each_other(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    data = mediagen.jpeg()
    mine = await upload_ok(client, user, data)
    theirs = await upload_ok(client, other_user, data)

    assert mine["id"] != theirs["id"]
    assert mine["sha256"] == theirs["sha256"]
    assert theirs["org_id"] == other_user.org_id
    assert_error(
        await client.get(f"{MEDIA}/{theirs['id']}", headers=user.headers), 404, "not_found"
    )
    assert_error(
        await client.get(f"{MEDIA}/{mine['id']}", headers=other_user.headers), 404, "not_found"
    )
    assert stored_originals(app, user.org_id) == [mine["sha256"]]
    assert stored_originals(app, other_user.org_id) == [theirs["sha256"]]


async def test_concurrent_uploads_of_the_same_bytes_make_one_media(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg(200, 150)

    responses = await asyncio.gather(*(upload(client, user, data) for _ in range(4)))

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    assert [r.json()["deduped"] for r in responses].count(False) == 1
    assert stored_originals(app, user.org_id) == [hashlib.sha256(data).hexdigest()]
    listed = await client.get(MEDIA, params={"include_total": "true"}, headers=user.headers)
    assert listed.json()["total"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"<!DOCTYPE html><html><head><title>x</title></head><body><script>alert(1)</script>"
        b"</body></html>\n",
        b"Just some plain text pretending to be a photo.\n" * 20,
        b"\x7fELF\x02\x01\x01" + b"\x00" * 4096,
    ],
    ids=["html", "plain-text", "elf"],
)
async def test_bytes_that_are_not_an_allowed_type_are_415_whatever_the_declared_type(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, payload: bytes
) -> None:
    response = await upload(client, user, payload, part_name="photo.jpg", declared="image/jpeg")

    assert_error(response, 415, "validation.mime.unsupported")
    listed = await client.get(MEDIA, headers=user.headers)
    assert listed.json()["data"] == []
    assert stored_originals(app, user.org_id) == []
    assert leftover_spool_files(app, user.org_id) == []


@pytest.mark.parametrize("keep", [0.5, 0.6])
async def test_truncated_jpeg_is_422_unprocessable(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, keep: float
) -> None:
    response = await upload(client, user, mediagen.truncated_jpeg(keep))

    assert_error(response, 422, "media.unprocessable")
    assert stored_originals(app, user.org_id) == []
    assert leftover_spool_files(app, user.org_id) == []


async def test_empty_file_is_400(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await upload(client, user, b"")
    error = assert_error(response, 400, "validation.invalid")
    assert error["details"][0]["field"] == "file"


async def test_form_without_a_file_part_is_400(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.post(
        f"{MEDIA}/upload",
        files={"attachment": ("a.jpg", mediagen.jpeg(), "image/jpeg")},
        data={"alt": "no file here"},
        headers=user.headers,
    )
    error = assert_error(response, 400, "validation.invalid")
    assert error["details"][0]["field"] == "file"


async def test_body_that_is_not_multipart_is_400(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.post(
        f"{MEDIA}/upload",
        content=mediagen.jpeg(),
        headers=user.headers | {"content-type": "image/jpeg"},
    )
    assert_error(response, 400, "validation.invalid")


async def test_file_over_max_bytes_is_413_and_leaves_nothing(
    small_app: FastAPI, small_client: httpx.AsyncClient
) -> None:
    owner = await new_user(small_client)
    data = mediagen.jpeg(400, 400, quality=95)
    assert len(data) > SMALL_LIMIT_AV

    response = await upload(small_client, owner, data)

    assert_error(response, 413, "validation.size.exceeds_limit")
    assert stored_originals(small_app, owner.org_id) == []
    assert leftover_spool_files(small_app, owner.org_id) == []


async def test_image_just_over_the_image_limit_is_413_once_its_type_is_known(
    small_app: FastAPI, small_client: httpx.AsyncClient
) -> None:
    # Bigger than MEDIA_MAX_BYTES but within the audio/video limit: only the sniffed type
    # tells that the image limit applies.
    owner = await new_user(small_client)
    data = mediagen.jpeg(160, 120, quality=95)
    padding = SMALL_LIMIT + 1_000 - len(data)
    assert padding > 0
    data += b"\0" * padding  # trailing bytes after the JPEG's end marker still decode
    assert SMALL_LIMIT < len(data) < SMALL_LIMIT_AV

    response = await upload(small_client, owner, data)

    assert_error(response, 413, "validation.size.exceeds_limit")


async def test_image_under_the_limit_is_accepted_by_the_small_app(
    small_client: httpx.AsyncClient,
) -> None:
    owner = await new_user(small_client)
    data = mediagen.jpeg(32, 32)
    assert len(data) < SMALL_LIMIT
    await upload_ok(small_client, owner, data)


async def test_body_declared_far_over_the_limit_is_413_before_it_is_read(
    small_client: httpx.AsyncClient,
) -> None:
    owner = await new_user(small_client)
    response = await upload(small_client, owner, b"\xff\xd8\xff" + b"\0" * (1 << 21))
    assert_error(response, 413, "validation.size.exceeds_limit")


async def test_wav_upload_is_audio_with_its_duration(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.wav(1.5)
    body = await upload_ok(client, user, data, part_name="tone.wav", declared="audio/wav")

    assert body["kind"] == "audio"
    assert body["mime"] == "audio/wav"
    assert body["duration_seconds"] == pytest.approx(1.5, abs=0.1)
    assert (body["width"], body["height"]) == (None, None)
    downloaded = await fetch_url(app, client, body["url"])
    assert downloaded.content == data


async def test_mp4_upload_is_video_with_duration_and_frame_size(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.mp4(2.0, 64, 48)
    body = await upload_ok(client, user, data, part_name="clip.mp4", declared="video/mp4")

    assert body["kind"] == "video"
    assert body["mime"] == "video/mp4"
    assert body["duration_seconds"] == pytest.approx(2.0, abs=0.1)
    assert (body["width"], body["height"]) == (64, 48)
    assert body["metadata"].get("codec") == "h264"


async def test_upload_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await upload(client, None, mediagen.jpeg())
    assert_error(response, 401, "auth.unauthorized")


async def test_upload_with_a_bad_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("a.jpg", mediagen.jpeg(), "image/jpeg")},
        headers={"Authorization": "Bearer not-a-real-token"},
    )
    assert_error(response, 401, "auth.unauthorized")
