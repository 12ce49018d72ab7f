"""Self-tests of tests/fixtures/services.py: start each real service, round-trip, stop."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.fixtures.services import (
    ServiceUnavailable,
    _pid_alive,
    free_port,
    free_port_pair,
    redis_ping,
    start_postgres,
    start_redis,
    start_seaweedfs,
)

T = TypeVar("T")


def _start_or_skip(start: Callable[..., T], *args: object, **kwargs: object) -> T:
    try:
        return start(*args, **kwargs)
    except ServiceUnavailable as exc:
        pytest.skip(exc.reason)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_free_ports_are_distinct() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    p = free_port_pair()
    assert p + 10000 <= 65535
    assert not _port_open(p)
    assert not _port_open(p + 10000)


async def _pg_query(dsn: str) -> tuple[int, str, str]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(dsn)
    try:
        async with engine.connect() as conn:
            one = (await conn.execute(text("select 1"))).scalar_one()
            db = (await conn.execute(text("select current_database()"))).scalar_one()
            fsync = (await conn.execute(text("show fsync"))).scalar_one()
    finally:
        await engine.dispose()
    return one, db, fsync


@pytest.mark.postgres
async def test_postgres_roundtrip_restart_and_stop(tmp_path: Path) -> None:
    pg = _start_or_skip(start_postgres, tmp_path)
    try:
        assert pg.dsn == f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/mediakeep"
        assert await _pg_query(pg.dsn) == (1, "mediakeep", "off")
        first_pid = pg.pid
        assert first_pid is not None

        pg.stop(mode="fast")
        assert not _pid_alive(first_pid)
        assert not _port_open(pg.port)

        pg.start()  # same data dir: the database is still there
        assert await _pg_query(pg.dsn) == (1, "mediakeep", "off")

        crashed_pid = pg.pid
        assert crashed_pid is not None
        pg.stop(mode="immediate")
        assert not _pid_alive(crashed_pid)
        pg.start()  # crash recovery
        assert (await _pg_query(pg.dsn))[0] == 1
    finally:
        pg.cleanup()
    assert pg.pid is None
    assert not _port_open(pg.port)


@pytest.mark.postgres
async def test_postgres_durable_keeps_fsync_on(tmp_path: Path) -> None:
    pg = _start_or_skip(start_postgres, tmp_path, durable=True)
    try:
        assert await _pg_query(pg.dsn) == (1, "mediakeep", "on")
    finally:
        pg.cleanup()


async def test_redis_roundtrip_and_stop(tmp_path: Path) -> None:
    server = _start_or_skip(start_redis, tmp_path)
    try:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert redis_ping("127.0.0.1", server.port)
        if importlib.util.find_spec("redis") is not None:
            import redis.asyncio as aioredis

            client = aioredis.from_url(server.url)
            try:
                await client.set("k", b"v")
                assert await client.get("k") == b"v"
            finally:
                await client.aclose()
        pid = server.pid
        assert pid is not None

        server.stop()
        assert not _pid_alive(pid)
        assert not redis_ping("127.0.0.1", server.port)

        server.start()
        assert server.ping()
    finally:
        server.stop()
    assert not _port_open(server.port)


@pytest.mark.s3
def test_seaweedfs_s3_roundtrip_and_stop(tmp_path: Path) -> None:
    s3 = _start_or_skip(start_seaweedfs, tmp_path)
    try:
        assert s3.endpoint == f"http://127.0.0.1:{s3.port}"
        assert (s3.access_key, s3.secret_key, s3.region) == ("TESTAK", "TESTSECRET", "us-east-1")
        s3.create_bucket("roundtrip")
        client = s3.client()
        client.put_object(
            Bucket="roundtrip", Key="a/b.txt", Body=b"hello", ContentType="text/plain"
        )
        got = client.get_object(Bucket="roundtrip", Key="a/b.txt")
        assert got["Body"].read() == b"hello"
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="roundtrip")["Contents"]]
        assert keys == ["a/b.txt"]

        # a wrong secret is refused: the server really checks signatures
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError

        bad = boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            aws_access_key_id=s3.access_key,
            aws_secret_access_key="WRONG",
            region_name=s3.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        with pytest.raises(ClientError):
            bad.get_object(Bucket="roundtrip", Key="a/b.txt")
        pid = s3.pid
        assert pid is not None
    finally:
        s3.cleanup()
    assert not _pid_alive(pid)
    for port in s3.ports:
        assert not _port_open(port)
        for p in (port, port + 10000):
            assert not list(Path("/tmp").glob(f"seaweedfs-*-{p}.sock"))
    assert not (s3.socket_dir / "filer.sock").exists()
    assert not (s3.socket_dir / "s3.sock").exists()
