"""A real `mediakeep serve` (auth on, rate limits off) shared by the SDK and CLI tests of a
module, and a signed-in user per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.fixtures.services import free_port
from tests.live import LiveServer, base_env

from mediakeep.client import Client

PASSWORD = "a-long-password-for-tests"

SERVER_ENV = {
    "AUTH_ENABLED": "true",
    "AUTH_SECRET_KEY": "client-test-secret-" + "x" * 40,
    # Every test registers users; production-cost Argon2id would dominate the run.
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_KIB": "1024",
    "MEDIA_RATE_LIMIT_ENABLED": "false",
    "MEDIA_ORPHAN_TTL": "1h",
    "MEDIA_SWEEP_INTERVAL": "1h",
    "MEDIA_LOG_LEVEL": "WARNING",
}


def start_server(root: Path, env: dict[str, str] | None = None) -> LiveServer:
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    values = base_env() | SERVER_ENV | {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_API_HOST": "127.0.0.1",
        "MEDIA_API_PORT": str(port),
    }
    values |= env or {}
    server = LiveServer(
        data_dir=data_dir, env=values, port=port, log_path=root / "server.log"
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server (SQLite, local storage) for the tests of a module; killed at the end."""
    live = start_server(tmp_path_factory.mktemp("client-server"))
    try:
        yield live
    finally:
        live.stop()


@dataclass
class Account:
    email: str
    password: str
    client: Client


def new_account(server: LiveServer, **options: object) -> Account:
    email = f"u{uuid.uuid4().hex[:12]}@example.com"
    client = Client(server.base_url, api_key=None, token=None, **options)  # type: ignore[arg-type]
    client.api_key = client.token = None  # whatever MEDIAKEEP_* the shell has
    client.register(email, PASSWORD, name="Test User")
    client.login(email, PASSWORD)
    return Account(email, PASSWORD, client)


@pytest.fixture
def account(server: LiveServer) -> Iterator[Account]:
    """A freshly registered user, signed in (its client holds the tokens)."""
    acct = new_account(server)
    try:
        yield acct
    finally:
        acct.client.close()


@pytest.fixture
def client(account: Account) -> Client:
    return account.client
