"""`mediakeep serve` on a database nobody migrated, as a new user or a fresh replica runs it:
the real CLI in a real process, SQLite in an empty data dir or a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic import command

from mediakeep.config import Settings
from mediakeep.migrate import alembic_config, head_revision
from tests.fixtures.services import PostgresServer, free_port
from tests.live import base_env, mediakeep_executable
from tests.system.support import FAST_AUTH, Serve, servers

__all__ = ["servers"]

HEAD = head_revision(Settings())


def _libpq(asyncpg_dsn: str, query: str = "") -> str:
    """The fixture's `postgresql+asyncpg://` URL as a libpq user writes it: `postgres://...`."""
    parts = urlsplit(asyncpg_dsn)
    return urlunsplit(parts._replace(scheme="postgres", query=query))


def _env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    return {**base_env(), **FAST_AUTH, "MEDIA_DATA_DIR": str(tmp_path / name), **extra}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [mediakeep_executable(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_serve_on_an_empty_data_dir_creates_the_schema(
    tmp_path: Path, servers: list[Serve]
) -> None:
    data_dir = tmp_path / "data"
    assert not data_dir.exists()
    server = Serve(_env(tmp_path, "data"), tmp_path / "serve.log")
    servers.append(server)
    server.wait_ready()
    assert server.register("first@example.com").status_code == 201
    assert f"created the schema at revision {HEAD}" in server.log()
    assert "Traceback" not in server.log()


def test_serve_upgrades_an_old_sqlite_schema(tmp_path: Path, servers: list[Serve]) -> None:
    env = _env(tmp_path, "data")
    old = Settings(data_dir=tmp_path / "data")
    old.data_dir.mkdir(parents=True)
    command.upgrade(alembic_config(old), "0005")  # an install from before events and captions
    server = Serve(env, tmp_path / "serve.log")
    servers.append(server)
    server.wait_ready()
    assert server.register("old@example.com").status_code == 201
    assert f"upgraded the schema from 0005 to {HEAD}" in server.log()


def test_serve_with_auto_migrate_off_refuses_a_schema_behind_in_one_line(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, "data", MEDIA_AUTO_MIGRATE="false")
    result = _cli(env, "serve", "--no-worker", "--port", str(free_port()))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the database schema is empty")
    assert "mediakeep migrate" in lines[0]
    assert "MEDIA_AUTO_MIGRATE" in lines[0]


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    env = _env(tmp_path, "data")
    first = _cli(env, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip() == f"created the schema at revision {HEAD}"
    again = _cli(env, "migrate")
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == f"already at head {HEAD}"


def test_two_replicas_starting_together_on_one_fresh_postgres_database(
    tmp_path: Path, servers: list[Serve], postgres: PostgresServer
) -> None:
    dsn = _libpq(postgres.create_database())
    for name in ("a", "b"):
        env = _env(tmp_path, name, DB_POSTGRESQL_WRITE_DSN=dsn)
        servers.append(Serve(env, tmp_path / f"serve-{name}.log"))
    for index, server in enumerate(servers):
        server.wait_ready()
        assert server.register(f"replica{index}@example.com").status_code == 201
    logs = [server.log() for server in servers]
    # One of them created the schema under the advisory lock; the other found it at head.
    assert sum(f"created the schema at revision {HEAD}" in log for log in logs) == 1
    assert all("Traceback" not in log for log in logs)


async def _application_names(postgres: PostgresServer, database: str) -> set[str]:
    connection = await asyncpg.connect(postgres.url)
    try:
        rows = await connection.fetch(
            "SELECT application_name FROM pg_stat_activity WHERE datname = $1", database
        )
    finally:
        await connection.close()
    return {row["application_name"] for row in rows}


def test_libpq_dsn_with_sslmode_and_application_name(
    tmp_path: Path, servers: list[Serve], postgres: PostgresServer
) -> None:
    fresh = postgres.create_database()
    database = urlsplit(fresh).path.lstrip("/")
    dsn = _libpq(fresh, "sslmode=disable&application_name=mk-libpq-test&connect_timeout=10")
    env = _env(tmp_path, "data", DB_POSTGRESQL_WRITE_DSN=dsn, DB_POSTGRESQL_READ1_DSN=dsn)
    migrated = _cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr.strip() == f"created the schema at revision {HEAD}"
    server = Serve(env, tmp_path / "serve.log")
    servers.append(server)
    server.wait_ready()
    assert server.register("libpq@example.com").status_code == 201
    assert "mk-libpq-test" in asyncio.run(_application_names(postgres, database))


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("sslmod=disable", "unknown DSN parameter 'sslmod'; accepted: application_name"),
        ("sslmode=sometimes", "sslmode='sometimes'; accepted: disable"),
        ("connect_timeout=soon", "connect_timeout='soon' is not a whole number"),
    ],
)
@pytest.mark.parametrize("variable", ["DB_POSTGRESQL_WRITE_DSN", "DB_POSTGRESQL_READ1_DSN"])
def test_a_bad_dsn_parameter_is_one_line_and_exit_2(
    tmp_path: Path, query: str, named: str, variable: str
) -> None:
    good = "postgres://media:s3cr3t-pw@127.0.0.1:1/media_api"
    env = _env(tmp_path, "data", DB_POSTGRESQL_WRITE_DSN=good)
    env[variable] = f"{good}?{query}"
    for args in (["migrate"], ["serve", "--no-worker"]):
        result = _cli(env, *args)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {variable}: ")
        assert named in lines[0]
        assert "s3cr3t-pw" not in lines[0]
