"""The distributed topology, all real processes on loopback: PostgreSQL, Redis, SeaweedFS, two
`mediakeep serve --no-worker` replicas and one `mediakeep worker`. An async upload through one
replica is processed by the worker and seen through the other; the worker is SIGKILLed in the
middle of a job; Redis goes down and comes back."""

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediakeep.jobs import service as job_service
from mediakeep.services import Services
from tests import mediagen
from tests.fixtures.services import PostgresServer, S3Server, ServiceUnavailable, start_redis
from tests.jobs.support import enqueue, wait_for_file_lines, wait_pid_gone
from tests.jobs.topology import Topology, start_topology

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow, pytest.mark.timeout(240)]

MEDIA = "/api/v1/media"
JOBS = "/api/v1/jobs"


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, s3_server: S3Server
) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    try:
        redis = start_redis(root / "redis")
    except ServiceUnavailable as exc:
        pytest.skip(f"Redis not available: {exc}")
    running = start_topology(root, postgres, s3_server, redis)
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def tester(topology: Topology) -> AsyncIterator[Services]:
    services = await topology.services()
    yield services
    if services.dispatcher is not None:
        await services.dispatcher.stop()
    await services.db.dispose()


def _org_id(api: Any) -> str:
    with api.client() as http:
        me = http.get("/api/v1/users/me")
    assert me.status_code == 200, me.text
    return str(me.json()["default_org_id"])


def _wait_job(api: Any, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    with api.client() as http:
        while time.monotonic() < deadline:
            response = http.get(f"{JOBS}/{job_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            if body["status"] in ("completed", "failed", "canceled"):
                return body
            time.sleep(0.1)  # polling a remote API: there is no event to await
    raise AssertionError(f"job {job_id} did not end in {timeout}s: {body}")


def _upload(api: Any, data: bytes, **fields: str) -> httpx.Response:
    with api.client() as http:
        files = {"file": ("pic.png", data, "image/png")}
        return http.post(f"{MEDIA}/upload", files=files, data=fields)


def test_an_async_upload_through_one_replica_completes_and_shows_on_both(
    topology: Topology,
) -> None:
    first, second = topology.apis
    for api in topology.apis:
        with api.client() as http:
            ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["queue"] == "ok"
    response = _upload(first, mediagen.png(48, 36), **{"async": "true"})
    assert response.status_code == 202, response.text
    media_id = response.json()["media"]["id"]
    done = _wait_job(second, response.json()["job"]["id"])
    assert done["status"] == "completed", done
    assert done["attempts"] == 1
    for api in topology.apis:
        with api.client() as http:
            media = http.get(f"{MEDIA}/{media_id}").json()
            listed = [m["id"] for m in http.get(MEDIA).json()["data"]]
        assert media["status"] == "ready"
        assert (media["width"], media["height"]) == (48, 36)
        assert media_id in listed


async def test_a_worker_killed_mid_job_finishes_it_after_restart_with_one_output(
    topology: Topology, tester: Services, tmp_path: Path
) -> None:
    api = topology.apis[1]
    org_id = _org_id(api)
    pid_file = tmp_path / "pids"
    job_id = await enqueue(
        tester, org_id, "test.child_sleep", {"seconds": 3, "pid_file": str(pid_file)}
    )
    ((child_pid, _, attempt),) = await wait_for_file_lines(pid_file, 1)
    assert attempt == "1"
    assert topology.worker is not None
    topology.worker.kill()  # SIGKILL, the whole `mediakeep worker` process tree
    await wait_pid_gone(int(child_pid))
    topology.worker.start()
    done = await asyncio.to_thread(_wait_job, api, job_id)
    assert done["status"] == "completed", done
    assert done["attempts"] == 2
    assert topology.objects(f"{org_id}/test-outputs/") == [f"{org_id}/test-outputs/{job_id}.txt"]


async def test_with_redis_down_async_uploads_get_503_and_nothing_is_half_written(
    topology: Topology, tester: Services
) -> None:
    first, second = topology.apis
    org_id = _org_id(first)
    with first.client() as http:
        before = {m["id"] for m in http.get(MEDIA, params={"limit": 200}).json()["data"]}
    topology.redis.stop()
    try:
        for api in topology.apis:
            with api.client() as http:
                ready = http.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["failing"] == ["queue"]
        data = mediagen.png()
        refused = _upload(second, data, **{"async": "true"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "queue.unavailable"
        with first.client() as http:
            after = {m["id"] for m in http.get(MEDIA, params={"limit": 200}).json()["data"]}
        assert after == before
        first.cli("sweep", "--max-age", "0s")
        originals = topology.objects(f"{org_id}/originals/")
        assert f"{org_id}/originals/{hashlib.sha256(data).hexdigest()}" not in originals
        assert topology.objects(f"{org_id}/incoming/") == []

        # A job committed while the broker is down stays pending and unpublished ...
        job_id = await enqueue(tester, org_id, "test.child_sleep", {"seconds": 0})
        async with tester.db.read_session() as session:
            job = await job_service.get_job(session, org_id, job_id)
        assert (job.status, job.heartbeat_at) == ("pending", None)
    finally:
        topology.redis.start()  # same port, empty: every queued message is gone
    # ... and the worker's sweeper sends it once the broker is back.
    done = await asyncio.to_thread(_wait_job, first, job_id, 60)
    assert done["status"] == "completed", done
    with second.client() as http:
        assert http.get("/readyz").status_code == 200
    accepted = _upload(first, mediagen.png(), **{"async": "true"})
    assert accepted.status_code == 202, accepted.text
    assert (await asyncio.to_thread(_wait_job, second, accepted.json()["job"]["id"]))[
        "status"
    ] == "completed"
