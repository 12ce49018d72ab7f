"""Browser tests: one Chromium for the whole session, and real `mediakeep serve` processes.

`start_live_server` (a fresh server per test) comes from tests/live; `web_server` is one server
shared by a whole module, so a module of page tests pays for start-up and migrations once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.services import free_port
from tests.live import LiveServer, base_env
from tests.live.conftest import start_live_server

__all__ = ["start_live_server"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SERVER_ENV = {
    "AUTH_ENABLED": "true",
    "AUTH_ARGON2_TIME_COST": "1",  # every run registers a user; keep Argon2id cheap in tests
    "AUTH_ARGON2_MEMORY_KIB": "1024",
    "MEDIA_RATE_LIMIT_ENABLED": "false",
}


def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright's sync API, closed when the caller is done."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is missing at /usr/bin/chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


# Module scope, not session: while Playwright's sync API is open it marks the main thread's
# event loop as running, and every later test that starts one (asyncio.run, pytest-asyncio)
# fails with "Runner.run() cannot be called from a running event loop".
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def artifacts() -> Path:
    """Screenshots for a human to look at (gitignored); each run overwrites its own files."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server on SQLite and local storage for a module, with auth on; loopback webhook
    receivers are allowed (MEDIA_ALLOW_PRIVATE_NETWORKS) so deliveries can be watched."""
    root = tmp_path_factory.mktemp("web-server")
    data_dir = root / "data"
    data_dir.mkdir()
    port = free_port()
    env = (
        base_env()
        | {
            "MEDIA_DATA_DIR": str(data_dir),
            "MEDIA_API_HOST": "127.0.0.1",
            "MEDIA_API_PORT": str(port),
            "AUTH_SECRET_KEY": "web-test-secret-" + "x" * 40,
            "MEDIA_ORPHAN_TTL": "1h",
            "MEDIA_SWEEP_INTERVAL": "1h",
            "MEDIA_LOG_LEVEL": "WARNING",
            "MEDIA_ALLOW_PRIVATE_NETWORKS": "true",
        }
        | SERVER_ENV
    )
    server = LiveServer(data_dir=data_dir, env=env, port=port, log_path=root / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
