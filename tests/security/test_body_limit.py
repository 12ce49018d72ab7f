"""Issue 17, M2: one body limit at the edge. JSON and form bodies over MEDIA_MAX_JSON_BYTES
are refused with 413 `validation.body_too_large` before they are parsed, declared or streamed;
uploads keep their own limits."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from mediakeep.edge import CAPTION_BODY_BYTES
from tests.factories import TestUser
from tests.media.support import assert_error, upload_ok
from tests.mediagen import data_url, jpeg, png

LOGIN = "/api/v1/auth/login"
LIMIT = 1024 * 1024  # MEDIA_MAX_JSON_BYTES's default, which the shared app runs with


def padded_login(size: int) -> bytes:
    """A login body of exactly `size` bytes (the padding is an ignored field), for an account
    of its own (the shared app's login throttle counts failures per account)."""
    email = f"nobody-{uuid.uuid4().hex}@example.com"
    head = b'{"email":"%b","password":"not-the-password","pad":"' % email.encode()
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def assert_too_large(response: httpx.Response) -> None:
    error = assert_error(response, 413, "validation.body_too_large")
    assert str(LIMIT) in error["message"]


async def test_json_over_the_limit_is_413_and_at_the_limit_is_read(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Content-Type": "application/json"}
    at_limit = await client.post(LOGIN, content=padded_login(LIMIT), headers=headers)
    assert at_limit.status_code == 401, at_limit.text
    assert_too_large(await client.post(LOGIN, content=padded_login(LIMIT + 1), headers=headers))


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "image/png", "application/octet-stream", "application/merge-patch+json"],
)
async def test_any_content_type_to_a_json_route_is_bounded(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    # FastAPI reads a route's body whole whatever the declared type: the type buys no room.
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(LOGIN, content=padded_login(LIMIT + 1), headers=headers)
    assert_too_large(response)


async def test_a_form_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    form = {"username": "nobody@example.com", "password": "x" * (LIMIT + 1)}
    assert_too_large(await client.post(LOGIN, data=form))


async def test_a_streamed_body_is_counted_as_it_arrives(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email":"nobody@example.com","pad":"'
        for _ in range(64):  # 4 MiB without a Content-Length
            yield b"x" * 64 * 1024

    response = await client.post(
        LOGIN, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_too_large(response)


async def test_authenticated_json_routes_are_bounded_too(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await upload_ok(client, user, png(), part_name="a.png", declared="image/png")
    body = b'{"alt":"' + b"a" * LIMIT + b'"}'
    patched = await client.patch(
        f"/api/v1/media/{made['id']}",
        content=body,
        headers=user.headers | {"Content-Type": "application/json"},
    )
    assert_too_large(patched)


async def test_uploads_keep_their_own_limits(client: httpx.AsyncClient, user: TestUser) -> None:
    big = jpeg(1400, 1400, quality=98)  # noise: well over MEDIA_MAX_JSON_BYTES
    assert len(big) > 2 * LIMIT
    made = await upload_ok(client, user, big, part_name="big.jpg", declared="image/jpeg")
    assert made["size_bytes"] == len(big)
    # A data URL is an upload inside JSON: POST /media keeps MEDIA_MAX_BYTES's room.
    created = await client.post(
        "/api/v1/media",
        json={"source": {"type": "data_url", "data_url": data_url(big, "image/jpeg")}},
        headers=user.headers,
    )
    assert created.status_code in (200, 201), created.text
    assert created.json()["sha256"] == made["sha256"]


async def test_caption_files_get_room_for_their_characters(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await upload_ok(client, user, png(), part_name="a.png", declared="image/png")
    cue = "00:00:00.000 --> 00:00:01.000\n" + "word " * 40 + "\n\n"
    content = "WEBVTT\n\n" + cue * (LIMIT // len(cue) + 10)
    assert LIMIT < len(content) < CAPTION_BODY_BYTES
    posted = await client.post(
        f"/api/v1/media/{made['id']}/captions",
        json={"language": "en-US", "content": content},
        headers=user.headers,
    )
    assert posted.status_code == 201, posted.text[:300]
