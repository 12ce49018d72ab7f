"""The web app's files are served with the right types, caching and Content-Security-Policy."""

import re
from pathlib import Path, PurePosixPath

import pytest
from fastapi.testclient import TestClient

from mediakeep.app import create_app
from mediakeep.config import Settings


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """The app without its lifespan: static files need no database or storage."""
    settings = Settings(data_dir=tmp_path, auth_enabled=False)
    return TestClient(create_app(settings, run_background=False))


def test_index_is_html_with_a_strict_csp(client: TestClient) -> None:
    res = client.get("/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in res.text
    csp = res.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    # Presigned S3 / CDN links must still load as images, media and fetches.
    assert "img-src 'self' data: blob: *" in csp
    assert "media-src 'self' data: blob: *" in csp
    assert "connect-src 'self' *" in csp
    assert res.headers["cache-control"] == "no-cache"
    assert res.headers["x-content-type-options"] == "nosniff"


def test_static_modules_are_javascript(client: TestClient) -> None:
    for name in (
        "app.js",
        "api.js",
        "captions.js",
        "dom.js",
        "player.js",
        "playground.js",
        "realtime.js",
        "uploads.js",
        "webhooks.js",
    ):
        res = client.get(f"/static/{name}")
        assert res.status_code == 200, name
        assert "javascript" in res.headers["content-type"], name
        assert "content-security-policy" in res.headers
        assert "max-age" in res.headers["cache-control"]
    for vendored_name in ("hls.mjs", "mediakeep-client.mjs"):
        vendored = client.get(f"/static/vendor/{vendored_name}")
        assert vendored.status_code == 200, vendored_name
        assert "javascript" in vendored.headers["content-type"], vendored_name
    css = client.get("/static/app.css")
    assert css.headers["content-type"].startswith("text/css")
    assert client.get("/static/missing.js").status_code == 404
    assert client.get("/static/../router.py").status_code == 404


def test_web_app_is_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/static") for path in paths)


def test_every_module_import_is_served(client: TestClient) -> None:
    """Each relative `import ... from "./x.js"` (static or dynamic) of the app's modules loads."""
    pattern = re.compile(r"""(?:from\s+|import\s*\(\s*)["'](\./[^"']+)["']""")
    seen: set[str] = set()
    pending = ["app.js"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        res = client.get(f"/static/{name}")
        assert res.status_code == 200, name
        if name.startswith("vendor/"):
            continue  # built third-party files: their imports are their own
        for target in pattern.findall(res.text):
            pending.append(str(PurePosixPath(name).parent / target.removeprefix("./")))
    assert {
        "api.js",
        "captions.js",
        "player.js",
        "uploads.js",
        "webhooks.js",
        "vendor/hls.mjs",
        "vendor/mediakeep-client.mjs",
    } <= seen
