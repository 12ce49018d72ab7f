"""/docs and /redoc work offline: every asset from this origin, under a CSP with no inline
script, and Swagger UI renders the operations in Chromium with other hosts unreachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from mediakeep.app import create_app
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings
from tests.live.conftest import start_live_server
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

__all__ = ["start_live_server"]

BASE = "http://docs.test"
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class _References(HTMLParser):
    """Every `src` and `href` of a page, and the text of any inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


@pytest.fixture
async def http(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings("sqlite-local", tmp_path / "data", request)
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_this_origin(http: httpx.AsyncClient, page: str) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "img-src 'self' data: blob:;" in policy  # not even an image from elsewhere
    found = _References()
    found.feed(response.text)
    assert found.inline_scripts == []  # the CSP would block them
    scripts = [url for url in found.urls if url.endswith(".js")]
    assert scripts, "the page loads its viewer from a script"
    for url in found.urls:
        absolute = urljoin(f"{BASE}{page}", url)
        assert urlsplit(absolute).netloc == urlsplit(BASE).netloc, f"{url} is on another host"
        asset = await http.get(absolute)
        assert asset.status_code == 200, url
        expected = CONTENT_TYPES[Path(urlsplit(absolute).path).suffix]
        assert asset.headers["content-type"].split(";")[0] == expected, url
        assert len(asset.content) > 0


async def test_an_unknown_docs_asset_is_404(http: httpx.AsyncClient) -> None:
    for path in ("/docs/assets/nothing.js", "/docs/assets/..%2F__init__.py"):
        response = await http.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_swagger_ui_and_redoc_render_with_other_hosts_unreachable(start_live_server: Any) -> None:
    # A Chromium of this test's own (not tests/web's session one): a sync Playwright left
    # running would sit on the event loop of the async tests collected after this module.
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is missing at /usr/bin/chromium (apt-get install chromium)")
    server = start_live_server()
    elsewhere: list[str] = []
    refused: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # the network is "unplugged": anything else fails, and is noted
            elsewhere.append(route.request.url)
            route.abort()

    def note_refused_script(message: Any) -> None:
        if "Content Security Policy" in message.text and "script" in message.text:
            refused.append(message.text)

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.route("**/*", only_loopback)
            page.on("console", note_refused_script)
            page.goto(f"{server.base_url}/docs")
            upload = page.locator(".opblock-summary-path", has_text="/api/v1/media/upload")
            upload.first.wait_for(state="visible", timeout=30_000)
            assert page.locator(".opblock").count() > 50
            page.goto(f"{server.base_url}/redoc")
            page.get_by_text("Download OpenAPI specification").wait_for(timeout=30_000)
            assert page.locator("[data-section-id]").count() > 50
        finally:
            chromium.close()
    assert elsewhere == []
    assert refused == []
