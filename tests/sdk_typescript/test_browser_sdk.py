"""The TypeScript SDK's browser bundle (`npm run bundle`) in Chromium, from a page served on
another origin than the API (so CORS is part of the test): a multipart upload with progress
events, a tus upload paused (aborted) and resumed from the server's offset, and a playback URL
from `streams.get` that the page can read.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer
from tests.live.conftest import StartServer
from tests.sdk_typescript.conftest import BuiltSdk

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
PAGE = """<!doctype html><meta charset="utf-8"><title>SDK</title>
<script type="module">
  import * as scenarios from "./browser_scenarios.mjs";
  window.scenarios = scenarios;
  document.title = "ready";
</script>"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture
def page_origin(built_sdk: BuiltSdk, tmp_path: Path) -> Iterator[str]:
    """The page and the bundle, served from their own loopback port (another origin)."""
    root = tmp_path / "page"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    shutil.copy(built_sdk.package / "dist/browser/mediakeep.min.js", root)
    shutil.copy(SAMPLES / "holiday.mp4", root)
    shutil.copy(Path(__file__).with_name("browser_scenarios.mjs"), root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api(start_live_server: StartServer, page_origin: str) -> tuple[LiveServer, str]:
    """A server with auth on that lets the page's origin in (CORS), and a user's token."""
    server = start_live_server(
        env={
            "AUTH_ENABLED": "true",
            "AUTH_ARGON2_TIME_COST": "1",
            "AUTH_ARGON2_MEMORY_KIB": "1024",
            "MEDIA_CORS_ORIGINS": page_origin,
            "MEDIA_VIDEO_AUTO_STREAM": "false",
        }
    )
    credentials = {"email": "browser@example.com", "password": "a-long-password-123"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        client.post("/api/v1/auth/register", json=credentials).raise_for_status()
        login = client.post("/api/v1/auth/login", json=credentials)
        login.raise_for_status()
    return server, str(login.json()["access_token"])


def test_the_browser_bundle_uploads_pauses_resumes_and_plays(
    browser: Any, api: tuple[LiveServer, str], page_origin: str
) -> None:
    server, token = api
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{page_origin}/index.html")
        page.wait_for_function("document.title === 'ready'")
        args = {"baseUrl": server.base_url, "token": token}

        uploaded = page.evaluate("args => window.scenarios.uploadWithProgress(args)", args)
        media, events, size = uploaded["media"], uploaded["events"], uploaded["size"]
        assert (media["filename"], media["alt"], media["mime"]) == (
            "noise.png",
            "from a browser",
            "image/png",
        )
        assert media["size_bytes"] == size
        assert events[-1] == [size, size]
        assert all(t == size for _, t in events)
        assert [s for s, _ in events] == sorted(s for s, _ in events)

        resumed = page.evaluate("args => window.scenarios.pauseAndResume(args)", args)
        assert resumed["paused"] == "client.aborted"
        assert resumed["remembered"] == 1  # the unfinished upload, in localStorage
        # Resumed from the server's offset, not from 0; nothing left in the store at the end.
        assert resumed["firstResumed"] >= 1024 * 1024, resumed
        assert resumed["lastResumed"] == resumed["size"]
        assert resumed["media"]["sha256"] == resumed["digest"]
        assert resumed["media"]["source"] == "tus"
        assert resumed["left"] == 0

        played = page.evaluate("args => window.scenarios.playbackUrl(args)", args)
        assert played["status"] == "completed"
        assert played["playlist"] == 200
        assert played["text"] == "#EXTM3U"
        missing = played["missing"]
        assert (missing["name"], missing["status"], missing["code"]) == (
            "MediakeepError",
            404,
            "not_found",
        )
        assert missing["requestId"].startswith("req_")  # X-Request-Id is exposed to the page
    finally:
        context.close()
