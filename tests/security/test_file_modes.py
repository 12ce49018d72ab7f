"""Issue 17, I (file permissions): a `mediakeep migrate` + `mediakeep serve` on a data
directory that does not exist yet leaves it 0700, and the SQLite database (with its -wal and
-shm), the generated key and the spool files in flight 0600."""

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.services import free_port
from tests.live import (
    BOUNDARY,
    LiveServer,
    base_env,
    connect,
    multipart_head,
    request_head,
    small_png,
)

pytestmark = pytest.mark.timeout(180)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    data_dir = tmp_path / "srv" / "data"  # not there yet: migrate and serve create it
    data_dir.parent.mkdir()
    port = free_port()
    env = base_env() | {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_API_HOST": "127.0.0.1",
        "MEDIA_API_PORT": str(port),
        "AUTH_ENABLED": "false",  # every request acts as the local admin
        "MEDIA_LOG_LEVEL": "WARNING",
        "MEDIA_SWEEP_INTERVAL": "1h",
    }  # no AUTH_SECRET_KEY: the key is generated into the data dir
    server = LiveServer(data_dir=data_dir, env=env, port=port, log_path=tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


def test_the_data_dir_and_its_files_are_private(fresh_server: LiveServer) -> None:
    server = fresh_server
    data_dir = server.data_dir
    with server.client() as client:  # a write: the WAL and its index exist from here on
        made = client.post(
            "/api/v1/media/upload", files={"file": ("a.png", small_png(), "image/png")}
        )
    assert made.status_code == 201, made.text

    assert mode(data_dir) == 0o700
    database = data_dir / "mediakeep.db"
    assert mode(database) == 0o600
    for companion in ("mediakeep.db-wal", "mediakeep.db-shm"):
        if (data_dir / companion).exists():
            assert mode(data_dir / companion) == 0o600, companion
    assert mode(data_dir / "secret.key") == 0o600
    # Whatever else the server made below the data dir is its own too.
    for path in data_dir.rglob("*"):
        assert mode(path) & 0o077 == 0, f"{path.relative_to(data_dir)} is {oct(mode(path))}"


def test_spool_files_in_flight_are_private(fresh_server: LiveServer) -> None:
    server = fresh_server
    with connect(server) as sock:
        sock.sendall(
            request_head(
                server,
                "/api/v1/media/upload",
                {
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Content-Length": str(10 * 1024 * 1024),
                },
            )
        )
        sock.sendall(multipart_head("a.png", "image/png") + small_png() + b"\0" * 256 * 1024)
        deadline = time.monotonic() + 30
        while not server.spool_files():
            assert time.monotonic() < deadline, "no spool file appeared for the upload"
            time.sleep(0.02)  # poll interval while the server receives the first bytes
        for path in server.spool_files():
            assert mode(path) == 0o600, f"{path} is {oct(mode(path))}"
