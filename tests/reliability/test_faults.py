"""Infrastructure faults under load, all real processes on loopback: PostgreSQL stopped with
`pg_ctl -m immediate` in the middle of a burst of uploads loses no acknowledged upload, and
S3 (SeaweedFS) going away answers 503 `storage.unavailable` with nothing half-written, then
recovers when it is back. (Worker SIGKILL and Redis down are in tests/jobs/test_topology.py.)

Each test owns its PostgreSQL cluster or S3 server: stopping the session's shared ones would
break every other test."""

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import mediagen
from tests.fixtures.services import (
    PostgresServer,
    S3Server,
    ServiceUnavailable,
    free_port,
    start_postgres,
    start_seaweedfs,
)
from tests.live import LiveServer, base_env
from tests.reliability.report import record

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.timeout(300)]

MEDIA = "/api/v1/media"


def _server(root: Path, env: dict[str, str], backend: str) -> LiveServer:
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    values = base_env() | {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_API_HOST": "127.0.0.1",
        "MEDIA_API_PORT": str(port),
        "AUTH_ENABLED": "false",
        "AUTH_SECRET_KEY": "faults-secret-" + "x" * 40,
        "MEDIA_RATE_LIMIT_ENABLED": "false",
        "MEDIA_ORPHAN_TTL": "1h",
        "MEDIA_SWEEP_INTERVAL": "1h",
        "MEDIA_LOG_LEVEL": "WARNING",
        **env,
    }
    return LiveServer(
        data_dir=data_dir, env=values, port=port, log_path=root / "server.log", backend=backend
    )


@dataclass
class Burst:
    """Client threads uploading distinct small images as fast as they can, recording what
    the server acknowledged (2xx with an id) and every other answer."""

    server: LiveServer
    threads: int = 4
    acknowledged: dict[str, str] = field(default_factory=dict)  # media id -> sha256
    refusals: list[tuple[int, str]] = field(default_factory=list)
    transport_errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next_image(self) -> bytes:
        return mediagen.png(24, 16)  # random pixels: new bytes every time, never a dedup hit

    def _run(self) -> None:
        with self.server.client(timeout=30) as http:
            while not self.stop.is_set():
                data = self._next_image()
                try:
                    response = http.post(
                        f"{MEDIA}/upload", files={"file": ("burst.png", data, "image/png")}
                    )
                except httpx.TransportError:
                    with self._lock:
                        self.transport_errors += 1
                    time.sleep(0.05)  # the server is restarting its pool: do not spin
                    continue
                with self._lock:
                    if response.status_code in (200, 201):
                        body = response.json()
                        self.acknowledged[body["id"]] = hashlib.sha256(data).hexdigest()
                    else:
                        code = ""
                        if response.headers.get("content-type", "").startswith("application/json"):
                            code = response.json().get("error", {}).get("code", "")
                        self.refusals.append((response.status_code, code))
                if response.status_code >= 500:
                    time.sleep(0.05)

    def __enter__(self) -> "Burst":
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(60)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < count:
            assert time.monotonic() < deadline, f"only {self.count()} uploads in {timeout}s"
            time.sleep(0.05)  # counting another thread's progress: no event to await


@pytest.fixture
def durable_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    try:
        server = start_postgres(tmp_path / "pg", durable=True)
    except ServiceUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield server
    server.cleanup()


def _stored_sha256(server: LiveServer, media_id: str) -> str:
    """SHA-256 of the bytes the service serves for a media (streamed, never whole in memory)."""
    digest = hashlib.sha256()
    with server.client() as http:
        answer = http.get(f"{MEDIA}/{media_id}")
        assert answer.status_code == 200, answer.text
        with http.stream("GET", answer.json()["url"], follow_redirects=True) as body:
            assert body.status_code == 200
            for chunk in body.iter_bytes():
                digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.postgres
def test_postgres_stopped_immediately_during_a_burst_loses_no_acknowledged_upload(
    tmp_path: Path, durable_postgres: PostgresServer
) -> None:
    server = _server(
        tmp_path / "api",
        {"DB_POSTGRESQL_WRITE_DSN": durable_postgres.create_database()},
        "postgres-local",
    )
    server.start()
    try:
        with Burst(server) as burst:
            burst.wait_for(20)
            before_crash = burst.count()
            durable_postgres.stop("immediate")  # no checkpoint, no goodbye: a crash
            time.sleep(1.0)  # let the burst meet the dead database for a moment
            durable_postgres.start()  # crash recovery replays the WAL
            burst.wait_for(before_crash + 20, timeout=90)  # the service recovers by itself
        acknowledged = dict(burst.acknowledged)
        refusals = list(burst.refusals)

        with server.client() as http:
            listed: set[str] = set()
            cursor: str | None = None
            while True:
                params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
                page = http.get(MEDIA, params=params).json()
                listed |= {item["id"] for item in page["data"]}
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        lost = sorted(set(acknowledged) - listed)
        mismatched = [
            media_id
            for media_id, sha in acknowledged.items()
            if media_id in listed and _stored_sha256(server, media_id) != sha
        ]
        # During the outage the service refuses clearly, never with a bare 500.
        server_errors = [(status, code) for status, code in refusals if status >= 500]
        unclear = [(status, code) for status, code in server_errors if status != 503 or not code]
        record(
            {
                "suite": "postgres_immediate_stop",
                "acknowledged": len(acknowledged),
                "lost": len(lost),
                "hash_mismatches": len(mismatched),
                "refused_503": sum(1 for status, _ in server_errors if status == 503),
                "unclear_errors": len(unclear),
                "transport_errors": burst.transport_errors,
            }
        )
        assert lost == []
        assert mismatched == []
        assert unclear == [], unclear
    finally:
        server.stop()


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[S3Server]:
    try:
        server = start_seaweedfs(tmp_path / "s3")
    except ServiceUnavailable as exc:
        pytest.skip(f"SeaweedFS not available: {exc}")
    yield server
    server.cleanup()


def test_s3_down_answers_503_writes_nothing_and_recovers(tmp_path: Path, own_s3: S3Server) -> None:
    bucket = "faults"
    own_s3.create_bucket(bucket)
    s3_client = own_s3.client()
    server = _server(
        tmp_path / "api",
        {
            "MEDIA_STORAGE_BACKEND": "s3",
            "MEDIA_S3_ENDPOINT": own_s3.endpoint,
            "MEDIA_S3_BUCKET": bucket,
            "MEDIA_S3_ACCESS_KEY_ID": own_s3.access_key,
            "MEDIA_S3_SECRET_ACCESS_KEY": own_s3.secret_key,
            "MEDIA_S3_USE_PATH_STYLE": "true",
            "MEDIA_S3_REGION": own_s3.region,
        },
        "sqlite-s3",
    )
    server.s3_client = s3_client
    server.bucket = bucket
    server.start()
    try:
        with server.client() as http:
            kept = http.post(
                f"{MEDIA}/upload", files={"file": ("kept.png", mediagen.png(40, 30), "image/png")}
            )
            assert kept.status_code == 201, kept.text
            objects_before = set(server.stored_objects())

            own_s3.stop()
            refused_data = mediagen.png(41, 30)
            refused = http.post(
                f"{MEDIA}/upload", files={"file": ("lost.png", refused_data, "image/png")}
            )
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "storage.unavailable"
            ready = http.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert "storage" in ready.json()["failing"]
            # What lives in the database still answers while the bytes are out of reach.
            assert http.get(f"{MEDIA}/{kept.json()['id']}").status_code == 200
            ids_during = {item["id"] for item in http.get(MEDIA).json()["data"]}
            assert ids_during == {kept.json()["id"]}

            own_s3.start()
            assert http.get("/readyz").status_code == 200
            server.cli("sweep", "--max-age", "0s")
            objects_after = set(server.stored_objects())
            refused_key = hashlib.sha256(refused_data).hexdigest()
            assert not any(refused_key in key for key in objects_after)
            assert not any("/incoming/" in key for key in objects_after)
            assert server.multipart_uploads() == []
            # The kept media's original and variants are all still there, and nothing else.
            assert objects_after == objects_before

            again = http.post(
                f"{MEDIA}/upload", files={"file": ("lost.png", refused_data, "image/png")}
            )
            assert again.status_code == 201, again.text
        assert _stored_sha256(server, again.json()["id"]) == refused_key
        record({"suite": "s3_down", "refused_status": 503, "half_written_objects": 0})
    finally:
        server.stop()
