"""Every ingest path ends in the one post-ingest step (ingest/finish.py), issue 16 item 3.

The same small image goes in through each path (multipart, remote URL, data URL, presigned
upload + finalize, tus with the real tuspy client), and a short video through tus; what comes
out is checked for real: the variant rows with their names, each object fetched and decoded to
its dimensions, the placeholders in the media answer, the video's poster and storyboard.
"""

import asyncio
import contextlib
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tusclient.client import TusClient

from tests.factories import TestUser, new_user
from tests.images.support import decode, download, scene_jpeg
from tests.media.support import (
    MEDIA,
    LoopbackServer,
    asgi_client,
    extra_app,
    serve_bytes,
    upload_ok,
)
from tests.mediagen import data_url
from tests.uploads.support import ask_upload_ok, finalize_path, send
from tests.video.support import clip

pytestmark = pytest.mark.timeout(180)

TUS = "/api/v1/uploads/tus"
PATHS = ["multipart", "remote_url", "data_url", "presigned", "tus"]
# MEDIA_VARIANTS' defaults on a 400x300 picture: none upscaled, so no medium or large.
IMAGE_SIZE = (400, 300)
IMAGE_VARIANTS = {"thumbnail": (150, 150), "small": (320, 240), "original_webp": (400, 300)}
# A 3 s 320x180 clip: its poster is a frame; its storyboard has three 160x90 tiles.
VIDEO_VARIANTS = {"poster": (320, 180), "storyboard": (480, 90)}


@pytest.fixture(scope="module")
async def open_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    """An app that may fetch from loopback (MEDIA_ALLOW_PRIVATE_NETWORKS=true) for the remote
    URL path; otherwise the defaults."""
    async with extra_app(
        request, backend, service_root, "post-ingest", allow_private_networks=True
    ) as application:
        yield application


@pytest.fixture
async def open_client(open_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(open_app) as http:
        yield http


@pytest.fixture
async def open_user(open_client: httpx.AsyncClient) -> TestUser:
    return await new_user(open_client)


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """`app` behind a real uvicorn on loopback, in this event loop (its lifespan already runs),
    for a client that speaks real HTTP from another thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # bound before serving: a client's connect waits in the backlog
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _tus_upload(base_url: str, user: TestUser, data: bytes, filename: str) -> str:
    """Upload with tuspy (blocking; run in a thread); the upload's URL."""
    client = TusClient(f"{base_url}{TUS}", headers=dict(user.headers))
    uploader = client.uploader(
        file_stream=io.BytesIO(data), chunk_size=64 * 1024, metadata={"filename": filename}
    )
    uploader.upload()
    assert uploader.url is not None
    return str(uploader.url)


async def via_tus(app: FastAPI, user: TestUser, data: bytes, filename: str) -> str:
    async with served(app) as base_url:
        url = await asyncio.to_thread(_tus_upload, base_url, user, data, filename)
        async with httpx.AsyncClient(trust_env=False, timeout=30) as real:
            answer = await real.head(url, headers={"Tus-Resumable": "1.0.0", **user.headers})
    assert answer.status_code == 200, answer.text
    return answer.headers["media-id"]


async def ingest_by(
    path: str, app: FastAPI, client: httpx.AsyncClient, user: TestUser, data: bytes
) -> str:
    """Send `data` (a JPEG) through one ingest path; the new media's id."""
    if path == "multipart":
        return str((await upload_ok(client, user, data))["id"])
    if path in ("remote_url", "data_url"):
        async with LoopbackServer({"/picture.jpg": serve_bytes(data, "image/jpeg")}) as origin:
            source: dict[str, str] = (
                {"type": "remote_url", "url": origin.url("/picture.jpg")}
                if path == "remote_url"
                else {"type": "data_url", "data_url": data_url(data, "image/jpeg")}
            )
            response = await client.post(MEDIA, json={"source": source}, headers=user.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])
    if path == "presigned":
        answer = await ask_upload_ok(client, user, data, mime="image/jpeg", filename="p.jpg")
        sent = await send(app, client, answer, data)
        assert sent.status_code in (200, 201, 204), sent.text
        finalized = await client.post(
            finalize_path(answer["media_id"]), json={}, headers=user.headers
        )
        assert finalized.status_code == 200, finalized.text
        return str(answer["media_id"])
    assert path == "tus"
    return await via_tus(app, user, data, "picture.jpg")


async def media_of(client: httpx.AsyncClient, user: TestUser, media_id: str) -> dict[str, Any]:
    response = await client.get(f"{MEDIA}/{media_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    media: dict[str, Any] = response.json()
    assert media["status"] == "ready", media
    return media


async def check_variants(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    media: dict[str, Any],
    expected: dict[str, tuple[int, int]],
) -> dict[str, dict[str, Any]]:
    """The media has variant rows named `expected` (at least), each fetchable and decoding to
    the expected dimensions; returns the variants by name."""
    listed = await client.get(f"{MEDIA}/{media['id']}/variants", headers=user.headers)
    assert listed.status_code == 200, listed.text
    rows = {v["name"]: v for v in listed.json()["data"]}
    assert set(expected) <= set(rows), (sorted(rows), sorted(expected))
    assert {v["name"] for v in media["variants"]} == set(rows)
    for name, (width, height) in expected.items():
        variant = rows[name]
        assert (variant["width"], variant["height"]) == (width, height), variant
        body = (await download(app, client, variant["url"])).content
        assert len(body) == variant["size_bytes"]
        picture = decode(body)
        assert (picture.width, picture.height) == (width, height), name
    return rows


@pytest.mark.parametrize("path", PATHS)
async def test_an_image_gets_its_variants_and_placeholders_on_every_ingest_path(
    path: str, open_app: FastAPI, open_client: httpx.AsyncClient, open_user: TestUser
) -> None:
    media_id = await ingest_by(path, open_app, open_client, open_user, scene_jpeg(*IMAGE_SIZE))
    media = await media_of(open_client, open_user, media_id)
    assert media["kind"] == "image"
    assert (media["width"], media["height"]) == IMAGE_SIZE
    rows = await check_variants(open_app, open_client, open_user, media, IMAGE_VARIANTS)
    assert set(rows) == set(IMAGE_VARIANTS)  # medium and large would be upscales
    assert all(row["mime"] == "image/webp" for row in rows.values())
    placeholder = media["placeholder"]
    assert placeholder is not None, media
    assert isinstance(placeholder["blurhash"], str)
    assert len(placeholder["blurhash"]) >= 6
    assert isinstance(placeholder["thumbhash"], str)
    assert placeholder["thumbhash"]


async def test_a_video_uploaded_with_tus_gets_its_poster_and_storyboard(
    open_app: FastAPI, open_client: httpx.AsyncClient, open_user: TestUser
) -> None:
    media_id = await via_tus(open_app, open_user, clip(3.0, 320, 180), "clip.mp4")
    media = await media_of(open_client, open_user, media_id)
    assert media["kind"] == "video"
    rows = await check_variants(open_app, open_client, open_user, media, VIDEO_VARIANTS)
    assert rows["poster"]["mime"] == "image/jpeg"
    assert rows["storyboard"]["mime"] == "image/jpeg"
    track = rows["storyboard_vtt"]
    assert track["mime"] == "text/vtt"
    text = (await download(open_app, open_client, track["url"])).text
    assert text.startswith("WEBVTT")
    assert "storyboard.jpg#xywh=" in text
