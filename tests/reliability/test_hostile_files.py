"""Hostile files through the real multipart upload route (issue 11): bombs, polyglots, SVG
scripts and entities, ImageMagick and Ghostscript payloads, FFmpeg playlist tricks, absurd
metadata, truncated and mislabelled files, all generated in tests/reliability/hostile_corpus.py.

Each gets its documented answer (415 / 422, or 201 stored as the inert media type it really
is and never served as anything else; an SVG, where allowed, only as a download), no 500,
within a per-case time limit; no answer, stored object or variant contains a line of
/etc/passwd, and a canary listening on every loopback address the payloads name sees no
connection at all. A remote server's gzip bomb is in here too."""

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import TestUser, new_user
from tests.media.support import (
    MEDIA,
    LoopbackServer,
    asgi_client,
    assert_error,
    extra_app,
    fetch_url,
    leftover_spool_files,
    settings_of,
    stored_originals,
    upload,
)
from tests.reliability.hostile_corpus import (
    Canary,
    HostileFile,
    hostile_files,
    listeners,
    passwd_markers,
)
from tests.reliability.report import record

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(90)]

FILES = hostile_files()
BY_ID = {item.id: item for item in FILES}
# Filled as the cases run; the summary test at the end of the module reports it.
OUTCOMES: dict[str, dict[str, Any]] = {}
MARKERS = passwd_markers()
MAX_ANSWER = 64 * 1024  # a media object echoing a megabyte of metadata would be a leak too


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    with listeners() as (listener, _origin):
        yield listener


@pytest.fixture(scope="module")
async def hostile_app(request: pytest.FixtureRequest, service_root: Path) -> AsyncIterator[FastAPI]:
    async with extra_app(request, "sqlite-local", service_root, "hostile-files") as app:
        yield app


@pytest.fixture(scope="module")
async def svg_app(request: pytest.FixtureRequest, service_root: Path) -> AsyncIterator[FastAPI]:
    async with extra_app(
        request, "sqlite-local", service_root, "hostile-svg", allow_svg=True
    ) as app:
        yield app


@pytest.fixture(scope="module")
async def pg_app(request: pytest.FixtureRequest, service_root: Path) -> AsyncIterator[FastAPI]:
    async with extra_app(request, "postgres-s3", service_root, "hostile-files") as app:
        yield app


def _no_passwd(data: bytes, where: str) -> None:
    for marker in MARKERS:
        assert marker not in data, f"/etc/passwd content in {where}"


async def _check(
    key: str, app: FastAPI, item: HostileFile, canary: Canary, svg_allowed: bool
) -> None:
    """Upload one hostile file and check everything the issue asks; records the outcome."""
    data = item.build(canary.port)
    async with asgi_client(app) as http:
        user = await new_user(http)
        before = canary.connections
        response = await upload(http, user, data, part_name=item.filename, declared=item.declared)
        OUTCOMES[key] = {"status": response.status_code, "outcome": "unchecked"}
        assert response.status_code < 500, response.text[:500]
        _no_passwd(response.content, "the answer")
        if svg_allowed and item.svg_allowed == "attachment":
            await _served_as_attachment(app, http, user, response, data)
            outcome = "svg-attachment"
        elif item.inert_mime is None:
            assert_error(response, item.status, item.code)
            assert stored_originals(app, user.org_id) == []
            outcome = f"refused-{item.status}"
        else:
            await _served_inert(app, http, user, response, item.inert_mime, data)
            outcome = "inert"
        assert canary.connections == before, canary.first_bytes
    OUTCOMES[key]["outcome"] = outcome


async def _served_inert(
    app: FastAPI,
    http: httpx.AsyncClient,
    user: TestUser,
    response: httpx.Response,
    mime: str,
    data: bytes,
) -> None:
    assert response.status_code == 201, response.text[:500]
    assert len(response.content) < MAX_ANSWER
    media = response.json()
    assert media["mime"] == mime
    content = await http.get(f"/api/v1/media/{media['id']}/content", headers=user.headers)
    assert content.status_code == 200
    assert content.headers["content-type"] == mime
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.content == data
    link = await fetch_url(app, http, media["url"])
    assert link.status_code == 200
    assert link.headers["content-type"] == mime
    if settings_of(app).storage_backend == "local":
        # A presigned S3 link is served by S3, which has no way to add this header.
        assert link.headers["x-content-type-options"] == "nosniff"
    for variant in media["variants"]:
        served = await fetch_url(app, http, variant["url"])
        assert served.status_code == 200
        assert "html" not in served.headers["content-type"]  # images, or an audio waveform
        assert b"<script" not in served.content  # re-encoded: nothing rides along
        _no_passwd(served.content, f"variant {variant['name']}")


async def _served_as_attachment(
    app: FastAPI, http: httpx.AsyncClient, user: TestUser, response: httpx.Response, data: bytes
) -> None:
    """With MEDIA_ALLOW_SVG the file is kept as uploaded and only ever handed out as a
    download (API.md): never inline, never rasterised, never re-served as HTML."""
    assert response.status_code == 201, response.text[:500]
    media = response.json()
    assert media["mime"] == "image/svg+xml"
    assert media["variants"] == []
    content = await http.get(f"/api/v1/media/{media['id']}/content", headers=user.headers)
    assert content.status_code == 200
    assert content.headers["content-disposition"].startswith("attachment")
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.content == data
    link = await fetch_url(app, http, media["url"])
    assert link.status_code == 200
    assert link.headers["content-disposition"].startswith("attachment")
    _no_passwd(link.content, "the served SVG")
    # On-the-fly transforms only ever answer raster images; libvips will not open an SVG.
    signed = await http.post(
        f"/api/v1/media/{media['id']}/transform-url", json={"width": 8}, headers=user.headers
    )
    if signed.status_code == 200:
        served = await fetch_url(app, http, signed.json()["url"])
        assert served.status_code in (200, 422), served.text[:300]
        assert "svg" not in served.headers["content-type"]
    else:
        assert_error(signed, 422, "media.unprocessable")


@pytest.mark.parametrize("file_id", [item.id for item in FILES])
async def test_hostile_file_upload(hostile_app: FastAPI, canary: Canary, file_id: str) -> None:
    await _check(file_id, hostile_app, BY_ID[file_id], canary, svg_allowed=False)


@pytest.mark.parametrize("file_id", [item.id for item in FILES if item.svg_allowed])
async def test_hostile_svg_with_svg_allowed(svg_app: FastAPI, canary: Canary, file_id: str) -> None:
    await _check(f"svg-allowed/{file_id}", svg_app, BY_ID[file_id], canary, svg_allowed=True)


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.parametrize("file_id", [item.id for item in FILES if item.postgres_s3])
async def test_hostile_file_upload_on_postgres_s3(
    pg_app: FastAPI, canary: Canary, file_id: str
) -> None:
    await _check(f"postgres-s3/{file_id}", pg_app, BY_ID[file_id], canary, svg_allowed=False)


async def test_remote_gzip_bomb_is_refused_without_inflating(
    request: pytest.FixtureRequest, service_root: Path
) -> None:
    """A remote server that answers the identity-only fetch with a gzip bomb anyway (1 MiB
    that inflates to 1 GiB, declared as a PNG) gets 502 before a byte is inflated."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(deflate.compress(b"\0" * (1 << 20)) for _ in range(1024)) + deflate.flush()

    async def respond(writer: asyncio.StreamWriter) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(bomb)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + bomb)
        await writer.drain()

    async with (
        extra_app(
            request, "sqlite-local", service_root, "hostile-remote", allow_private_networks=True
        ) as app,
        asgi_client(app) as http,
        LoopbackServer({"/bomb.png": respond}) as server,
    ):
        user = await new_user(http)
        response = await http.post(
            MEDIA,
            json={"source": {"type": "remote_url", "url": server.url("/bomb.png")}},
            headers=user.headers,
        )
        error = assert_error(response, 502, "upstream.fetch_failed")
        assert "gzip-encoded" in error["message"]
        assert server.paths == ["/bomb.png"]
        assert stored_originals(app, user.org_id) == []
        assert leftover_spool_files(app, user.org_id) == []
    OUTCOMES["remote/gzip-bomb"] = {"status": response.status_code, "outcome": "refused-502"}


@pytest.fixture(scope="module", autouse=True)
def report_hostile_corpus(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, one report line of what ran (docs/reliability.md's figures). A report,
    not a check: every case asserts its own outcome (status, canary), so no test depends on
    which others ran before it."""
    yield
    if not OUTCOMES:
        return
    outcomes = [o["outcome"] for o in OUTCOMES.values()]
    line = {
        "suite": "hostile_files",
        "files": len(FILES),
        "uploads": len(OUTCOMES),
        "refused": sum(1 for o in outcomes if o.startswith("refused")),
        "accepted_inert": outcomes.count("inert"),
        "svg_attachment_only": outcomes.count("svg-attachment"),
        "failed_checks": outcomes.count("unchecked"),
        "server_errors": sum(1 for o in OUTCOMES.values() if int(o["status"]) == 500),
    }
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        record(line)  # shown in a plain run, not only with -s


def test_hostile_corpus_is_big_enough() -> None:
    assert len(FILES) >= 30
    assert len({item.id for item in FILES}) == len(FILES)
