"""Fixtures that start real `mediakeep serve` processes (killed at teardown, always)."""

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.services import PostgresServer, S3Server, free_port
from tests.live import LiveServer, base_env

LIVE_BACKENDS = [
    pytest.param("sqlite-local", id="sqlite-local"),
    pytest.param("postgres-s3", id="postgres-s3", marks=[pytest.mark.postgres, pytest.mark.s3]),
]

StartServer = Callable[..., LiveServer]
_buckets = itertools.count(1)


@pytest.fixture(params=LIVE_BACKENDS)
def live_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_live_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StartServer]:
    """`start(backend="sqlite-local", env={...})` → a running LiveServer with a fresh data dir.

    Every server is configured only by environment variables (AUTH_ENABLED=false: each
    request acts as the local admin) and is killed by PID at teardown, whatever happened.
    PostgreSQL and S3 (SeaweedFS) come from the session fixtures, started on first use.
    """
    servers: list[LiveServer] = []

    def start(
        backend: str = "sqlite-local",
        env: dict[str, str] | None = None,
        serve_args: tuple[str, ...] = (),
    ) -> LiveServer:
        index = len(servers)
        data_dir = tmp_path / f"server{index}" / "data"
        data_dir.mkdir(parents=True)
        values = base_env() | {
            "MEDIA_DATA_DIR": str(data_dir),
            "MEDIA_API_HOST": "127.0.0.1",
            "AUTH_ENABLED": "false",
            "AUTH_SECRET_KEY": "live-test-secret-" + "x" * 40,
            "MEDIA_ORPHAN_TTL": "1h",
            "MEDIA_SWEEP_INTERVAL": "1h",
            "MEDIA_LOG_LEVEL": "WARNING",
        }
        s3_client = None
        bucket = None
        if backend == "postgres-s3":
            pg: PostgresServer = request.getfixturevalue("postgres")
            s3: S3Server = request.getfixturevalue("s3_server")
            slug = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[-30:].strip("-")
            bucket = f"live-{next(_buckets)}-{slug}"[:63].rstrip("-")
            s3.create_bucket(bucket)
            s3_client = s3.client()
            values |= {
                "DB_POSTGRESQL_WRITE_DSN": pg.create_database(),
                "MEDIA_STORAGE_BACKEND": "s3",
                "MEDIA_S3_ENDPOINT": s3.endpoint,
                "MEDIA_S3_BUCKET": bucket,
                "MEDIA_S3_ACCESS_KEY_ID": s3.access_key,
                "MEDIA_S3_SECRET_ACCESS_KEY": s3.secret_key,
                "MEDIA_S3_USE_PATH_STYLE": "true",
                "MEDIA_S3_REGION": s3.region,
            }
        elif backend != "sqlite-local":
            raise ValueError(f"unknown backend {backend!r}")
        values |= env or {}
        port = free_port()
        values["MEDIA_API_PORT"] = str(port)
        server = LiveServer(
            data_dir=data_dir,
            env=values,
            port=port,
            log_path=data_dir.parent / "server.log",
            backend=backend,
            s3_client=s3_client,
            bucket=bucket,
            serve_args=serve_args,
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def live_server(start_live_server: StartServer) -> LiveServer:
    """A server on SQLite and local storage with the default settings."""
    return start_live_server()
