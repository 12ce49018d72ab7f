"""Serving signed transforms: the output's format and size, caching (render once, then from
storage), content negotiation, crops and fits, and new versions of the media."""

import asyncio
from typing import Any

import httpx
import pytest
import pyvips
from fastapi import FastAPI
from sqlalchemy import update

from mediakeep.models import Media
from mediakeep.storage.keys import transforms_prefix
from tests.factories import TestUser
from tests.media.support import assert_error, upload_ok
from tests.transforms.support import (
    decode,
    loader,
    mint_path,
    renders,
    signed_path,
    upload_image,
)

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    ("fmt", "mime", "load"),
    [
        ("jpeg", "image/jpeg", "jpegload_buffer"),
        ("png", "image/png", "pngload_buffer"),
        ("webp", "image/webp", "webpload_buffer"),
        ("avif", "image/avif", "heifload_buffer"),
    ],
)
async def test_signed_url_serves_the_format_and_size_it_names(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, fmt: str, mime: str, load: str
) -> None:
    media = await upload_image(client, user, 640, 480)
    path = await mint_path(app, client, user, media["id"], width=320, format=fmt, quality=80)
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["etag"].endswith('-v1"')
    assert "accept" not in response.headers.get("vary", "").lower()
    image = decode(response.content)
    assert loader(image) == load
    assert (image.width, image.height) == (320, 240)


async def test_second_request_is_served_from_storage_without_rendering(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    path = await mint_path(app, client, user, media["id"], width=200, format="webp")
    before = await renders(client)
    first = await client.get(path)
    assert first.status_code == 200, first.text
    assert await renders(client) == before + 1
    for _ in range(3):
        again = await client.get(path)
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == IMMUTABLE
    assert await renders(client) == before + 1
    # A URL with the same output but another expiry shares the stored output.
    longer = await mint_path(
        app, client, user, media["id"], width=200, format="webp", expires_in=60
    )
    assert (await client.get(longer)).content == first.content
    assert await renders(client) == before + 1


async def test_if_none_match_answers_304(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    path = await mint_path(app, client, user, media["id"], width=100)
    first = await client.get(path)
    response = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert response.status_code == 304
    assert response.headers["etag"] == first.headers["etag"]
    assert response.content == b""
    head = await client.head(path)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(first.content))


async def test_ten_concurrent_identical_requests_render_once(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user, 1200, 900)
    path = await mint_path(app, client, user, media["id"], width=300, height=300, format="avif")
    before = await renders(client)
    answers = await asyncio.gather(*(client.get(path) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert len({a.content for a in answers}) == 1
    assert len({a.headers["etag"] for a in answers}) == 1
    assert await renders(client) == before + 1


@pytest.mark.parametrize(
    ("accept", "mime", "load"),
    [
        ("image/avif,image/webp,*/*", "image/avif", "heifload_buffer"),
        ("image/webp,image/apng,*/*;q=0.8", "image/webp", "webpload_buffer"),
        ("image/avif;q=0,image/webp", "image/webp", "webpload_buffer"),
        ("image/png,*/*", "image/jpeg", "jpegload_buffer"),
        (None, "image/jpeg", "jpegload_buffer"),
    ],
)
async def test_format_auto_follows_accept_and_varies_on_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    accept: str | None,
    mime: str,
    load: str,
) -> None:
    media = await upload_image(client, user)
    path = await mint_path(app, client, user, media["id"], width=160, format="auto")
    headers = {"Accept": accept} if accept is not None else {}
    before = await renders(client)
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    assert "Accept" in response.headers["vary"]
    assert loader(decode(response.content)) == load
    again = await client.get(path, headers=headers)
    assert again.headers["content-type"] == mime
    assert await renders(client) == before + 1


async def test_format_auto_keeps_one_cached_output_per_negotiated_format(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    path = await mint_path(app, client, user, media["id"], width=160, format="auto")
    avif = await client.get(path, headers={"Accept": "image/avif,image/webp"})
    webp = await client.get(path, headers={"Accept": "image/webp"})
    assert avif.headers["etag"] != webp.headers["etag"]
    assert (await client.get(path, headers={"Accept": "image/avif"})).content == avif.content


@pytest.mark.parametrize("gravity", ["smart", "entropy", "center"])
async def test_cover_crop_gives_the_exact_box(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, gravity: str
) -> None:
    media = await upload_image(client, user, 800, 400)
    path = await mint_path(
        app, client, user, media["id"], width=200, height=200, fit="cover", gravity=gravity
    )
    response = await client.get(path)
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert (image.width, image.height) == (200, 200)


@pytest.mark.parametrize(
    ("fit", "fmt", "size"),
    [
        ("inside", "jpeg", (200, 100)),
        ("contain", "png", (200, 200)),
        ("contain", "jpeg", (200, 200)),
        ("fill", "jpeg", (200, 200)),
        ("outside", "jpeg", (400, 200)),
        ("cover", "jpeg", (200, 200)),
    ],
)
async def test_fits_give_the_sizes_they_promise(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    fit: str,
    fmt: str,
    size: tuple[int, int],
) -> None:
    media = await upload_image(client, user, 800, 400)
    path = await mint_path(
        app, client, user, media["id"], width=200, height=200, fit=fit, format=fmt
    )
    response = await client.get(path)
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert (image.width, image.height) == size
    if fit == "contain" and fmt == "png":
        assert image.hasalpha()  # letterboxed with transparency where the format has it


async def test_images_are_never_enlarged_except_by_fill(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user, 100, 50)
    wide = decode(
        (await client.get(await mint_path(app, client, user, media["id"], width=400))).content
    )
    assert (wide.width, wide.height) == (100, 50)
    filled = await mint_path(app, client, user, media["id"], width=300, height=300, fit="fill")
    image = decode((await client.get(filled)).content)
    assert (image.width, image.height) == (300, 300)


async def test_blur_changes_the_pixels_but_not_the_size(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user, 200, 100)
    sharp = decode(
        (await client.get(await mint_path(app, client, user, media["id"], format="png"))).content
    )
    blurred_path = await mint_path(app, client, user, media["id"], format="png", blur=5)
    blurred = decode((await client.get(blurred_path)).content)
    assert (blurred.width, blurred.height) == (200, 100)
    assert blurred.deviate() < sharp.deviate() / 2


async def test_a_new_version_is_served_by_the_same_url(
    fresh_app: FastAPI, fresh_client: httpx.AsyncClient, fresh_user: TestUser
) -> None:
    app, client, user = fresh_app, fresh_client, fresh_user
    media = await upload_image(client, user, 640, 480)
    replacement = await upload_image(client, user, 300, 600)
    path = await mint_path(app, client, user, media["id"], width=160)
    first = await client.get(path)
    assert decode(first.content).height == 120
    # What a crop with mode "replace" does to the row: version + 1, another original.
    async with app.state.services.db.write_session() as session:
        await session.execute(
            update(Media)
            .where(Media.org_id == user.org_id, Media.id == media["id"])
            .values(version=2, storage_key=f"{user.org_id}/originals/{replacement['sha256']}")
        )
    before = await renders(client)
    second = await client.get(path)
    assert second.status_code == 200, second.text
    assert second.headers["etag"].endswith('-v2"')
    assert second.headers["etag"] != first.headers["etag"]
    image = decode(second.content)
    assert (image.width, image.height) == (160, 320)
    assert await renders(client) == before + 1
    # The old version's output is forgotten and gone from storage (once stored in the
    # background, after the answer).
    await app.state.transforms.settled()
    storage = app.state.services.storage
    stored = [
        info.key async for info in storage.list_objects(transforms_prefix(user.org_id, media["id"]))
    ]
    assert len(stored) == 1, stored
    assert "/v2/" in stored[0]
    old = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert old.status_code == 200


async def test_quarantined_media_is_451(
    fresh_app: FastAPI, fresh_client: httpx.AsyncClient, fresh_user: TestUser
) -> None:
    app, client, user = fresh_app, fresh_client, fresh_user
    media = await upload_image(client, user, 64, 48)
    path = await mint_path(app, client, user, media["id"], width=32)
    async with app.state.services.db.write_session() as session:
        await session.execute(
            update(Media)
            .where(Media.org_id == user.org_id, Media.id == media["id"])
            .values(status="quarantined")
        )
    assert_error(await client.get(path), 451, "media.quarantined")


async def test_deleted_media_is_404_and_its_outputs_are_gone(
    fresh_app: FastAPI, fresh_client: httpx.AsyncClient, fresh_user: TestUser
) -> None:
    app, client, user = fresh_app, fresh_client, fresh_user
    media = await upload_image(client, user, 64, 48)
    path = signed_path(app, user.org_id, "w_32", media["id"])
    assert (await client.get(path)).status_code == 200
    await app.state.transforms.settled()
    deleted = await client.delete(f"/api/v1/media/{media['id']}", headers=user.headers)
    assert deleted.status_code == 204
    assert_error(await client.get(path), 404, "not_found")
    storage = app.state.services.storage
    prefix = transforms_prefix(user.org_id, media["id"])
    assert [info.key async for info in storage.list_objects(prefix)] == []


async def test_every_size_of_an_exif_rotated_source_is_upright(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    """The source's header is read once per process (its upright size is remembered by its
    storage key); later sizes are still fitted to the upright image."""
    image = pyvips.Image.xyz(64, 48)[0].cast("uchar").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    media = await upload_ok(client, user, image.jpegsave_buffer(keep="all"))
    asked: list[tuple[dict[str, Any], tuple[int, int]]] = [
        ({"width": 24}, (24, 32)),
        ({}, (48, 64)),  # as large as the source
        ({"width": 24, "height": 24, "fit": "outside"}, (24, 32)),
    ]
    for options, size in asked:
        path = await mint_path(app, client, user, media["id"], format="png", **options)
        response = await client.get(path)
        assert response.status_code == 200, response.text
        out = decode(response.content)
        assert (out.width, out.height) == size, options
