"""Hostile images: pixel bombs, frame bombs, truncated files, scripts and ImageMagick payloads
are refused before they cost memory; a JPEG/HTML polyglot is never served as HTML (issue 6)."""

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import TestUser
from tests.images.support import (
    MSL_PAYLOAD,
    MVG_PAYLOAD,
    SVG_WITH_SCRIPT,
    gif_with_frames,
    jpeg_html_polyglot,
    png_bomb,
    scene_png,
)
from tests.live import RssSampler, small_png
from tests.live.conftest import StartServer
from tests.media.support import assert_error, fetch_url, stored_originals, upload, upload_ok
from tests.mediagen import truncated_jpeg

MiB = 1024 * 1024


async def test_png_declaring_50000_by_50000_pixels_is_422_without_decoding(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    bomb = png_bomb()
    assert len(bomb) < 1100
    response = await upload(client, user, bomb, part_name="bomb.png", declared="image/png")
    error = assert_error(response, 422, "media.unprocessable")
    assert "50000x50000" in error["message"]
    assert stored_originals(app, user.org_id) == []


def test_the_probe_refuses_the_bomb_under_a_tight_address_space_limit(tmp_path: Path) -> None:
    """Under a 1.5 GiB address-space cap a decode of 50000×50000×3 bytes cannot even start: the
    probe must refuse from the header alone."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    script = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024 * 1024, 1536 * 1024 * 1024))
        from pathlib import Path
        from mediakeep.processing.probe import ProbeError, probe
        try:
            probe(Path({str(bomb)!r}), "image", max_pixels=100_000_000)
        except ProbeError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "refused: the image declares 50000x50000" in done.stdout


async def test_gif_with_10000_frames_is_422(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    frames = gif_with_frames(10_000)
    assert len(frames) < 3 * MiB
    response = await upload(client, user, frames, part_name="f.gif", declared="image/gif")
    error = assert_error(response, 422, "media.unprocessable")
    assert "10000 frames" in error["message"]
    assert stored_originals(app, user.org_id) == []


@pytest.mark.parametrize(
    ("name", "make", "declared", "said"),
    [
        # A decode would need 7.5 GB.
        ("bomb.png", png_bomb, "image/png", "50000x50000"),
        ("frames.gif", lambda: gif_with_frames(10_000), "image/gif", "10000 frames"),
    ],
    ids=["pixel-bomb", "frame-bomb"],
)
def test_bombs_cost_the_server_no_memory(
    start_live_server: StartServer, name: str, make: Any, declared: str, said: str
) -> None:
    """Measured in a fresh `mediakeep serve`: its process tree's RSS, sampled every 5 ms while
    the bomb is uploaded and refused, stays within 64 MiB of where it was just before (after
    one ordinary image has warmed libvips up)."""
    server = start_live_server()
    payload = make()
    with server.client() as http:
        warm = http.post(
            "/api/v1/media/upload", files={"file": ("w.png", small_png(), "image/png")}
        )
        assert warm.status_code == 201, warm.text
        with RssSampler(server.pid) as memory:
            response = http.post("/api/v1/media/upload", files={"file": (name, payload, declared)})
    assert response.status_code == 422, response.text
    assert said in response.json()["error"]["message"]
    assert memory.grown < 64 * MiB, memory.describe()


async def test_a_small_animation_of_the_same_making_is_accepted(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(
        client, user, gif_with_frames(3), part_name="ok.gif", declared="image/gif"
    )
    assert media["metadata"]["frames"] == 3


@pytest.mark.parametrize(
    ("name", "data", "declared"),
    [
        ("cut.jpg", truncated_jpeg(0.5), "image/jpeg"),
        ("cut.png", scene_png(300, 200)[:-400], "image/png"),
        # libvips keeps the whole frames of a cut animation, as browsers do; one cut inside
        # its first frame has none.
        ("cut.gif", gif_with_frames(3)[:80], "image/gif"),
    ],
)
async def test_truncated_images_are_422_and_store_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    name: str,
    data: bytes,
    declared: str,
) -> None:
    response = await upload(client, user, data, part_name=name, declared=declared)
    assert_error(response, 422, "media.unprocessable")
    assert stored_originals(app, user.org_id) == []


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("x.svg", SVG_WITH_SCRIPT),
        ("exploit.mvg", MVG_PAYLOAD),
        ("exploit.msl", MSL_PAYLOAD),
        ("exploit.jpg", b"push graphic-context\n" + MVG_PAYLOAD),
    ],
)
async def test_scripts_and_imagemagick_payloads_are_415(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, name: str, data: bytes
) -> None:
    response = await upload(client, user, data, part_name=name, declared="image/jpeg")
    assert_error(response, 415, "validation.mime.unsupported")
    assert stored_originals(app, user.org_id) == []


async def test_jpeg_html_polyglot_is_only_ever_served_as_a_jpeg(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    polyglot = jpeg_html_polyglot()
    media = await upload_ok(client, user, polyglot, part_name="page.html", declared="text/html")
    assert media["mime"] == "image/jpeg"
    content = await client.get(f"/api/v1/media/{media['id']}/content", headers=user.headers)
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in content.headers["content-security-policy"]
    assert content.content == polyglot
    link = await fetch_url(app, client, media["url"])
    assert link.status_code == 200
    assert link.headers["content-type"] == "image/jpeg"
    assert "html" not in link.headers["content-type"]
    for variant in media["variants"]:  # re-encoded: the HTML is gone
        data = (await fetch_url(app, client, variant["url"])).content
        assert b"<script>" not in data
