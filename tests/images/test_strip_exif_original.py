"""MEDIA_STRIP_EXIF_ORIGINAL: private EXIF leaves the stored original too, losslessly for JPEG,
PNG and WebP; by default the original is kept byte for byte (issue 6)."""

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image as PILImage

from tests.factories import TestUser, new_user
from tests.images.support import (
    API,
    decode,
    exif_block,
    pixels,
    private_exif_in,
    scene,
    scene_jpeg,
    with_exif,
)
from tests.media.support import asgi_client, extra_app, upload_ok


@pytest.fixture(scope="module")
async def stripping(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    async with extra_app(
        request, backend, service_root, "strip-exif", strip_exif_original=True
    ) as app:
        yield app


async def _stored(client: httpx.AsyncClient, user: TestUser, media: dict[str, object]) -> bytes:
    response = await client.get(f"{API}/{media['id']}/content", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.content


def _pillow(fmt: str) -> bytes:
    picture = PILImage.frombytes("RGB", (64, 48), scene(64, 48).write_to_memory())
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, exif=exif_block(orientation=1), lossless=True)
    return buffer.getvalue()


async def test_by_default_the_original_is_stored_byte_for_byte(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    source = with_exif(scene_jpeg(80, 60), exif_block())
    media = await upload_ok(client, user, source)
    assert await _stored(client, user, media) == source


async def test_jpeg_original_loses_gps_and_serials_and_keeps_the_rest_losslessly(
    stripping: FastAPI,
) -> None:
    async with asgi_client(stripping) as client:
        owner = await new_user(client)
        source = with_exif(scene_jpeg(120, 80), exif_block(orientation=6))
        assert private_exif_in(source)
        media = await upload_ok(client, owner, source)
        stored = await _stored(client, owner, media)
        assert private_exif_in(stored) == []
        assert b"Canon" in stored
        assert media["metadata"]["exif"]["Orientation"] == 6
        assert (media["width"], media["height"]) == (80, 120)  # still turned on display
        assert media["sha256"] == hashlib.sha256(stored).hexdigest()
        assert media["size_bytes"] == len(stored) < len(source)
        assert np.array_equal(pixels(decode(stored)), pixels(decode(source)))
        again = await client.post(
            f"{API}/upload",
            files={"file": ("again.jpg", source, "image/jpeg")},
            headers=owner.headers,
        )
        assert again.status_code == 200, again.text
        assert again.json()["id"] == media["id"]


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("WEBP", "image/webp")])
async def test_png_and_webp_originals_lose_gps_and_serials_losslessly(
    stripping: FastAPI, fmt: str, mime: str
) -> None:
    source = _pillow(fmt)
    assert private_exif_in(source)
    async with asgi_client(stripping) as client:
        owner = await new_user(client)
        media = await upload_ok(client, owner, source, part_name="p", declared=mime)
        stored = await _stored(client, owner, media)
        assert media["mime"] == mime
        assert private_exif_in(stored) == []
        assert b"Canon" in stored
        assert np.array_equal(pixels(decode(stored)), pixels(decode(source)))
        assert media["sha256"] == hashlib.sha256(stored).hexdigest()
