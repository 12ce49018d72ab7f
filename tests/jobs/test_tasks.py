"""The same task suite through both dispatchers (local worker processes and Celery): async
uploads, failures, retries, worker deaths and cancels, each with real worker processes."""

import asyncio
import os
import re
import signal
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest

import tests.jobs.tasks_for_tests  # noqa: F401 - registers the test-only tasks
from mediakeep.jobs import service as job_service
from mediakeep.kit.time import now
from tests import mediagen
from tests.factories import TestUser
from tests.jobs.conftest import QueueApp
from tests.jobs.support import (
    JOBS,
    enqueue,
    local_objects,
    wait_for_file_lines,
    wait_job,
    wait_pid_gone,
)

MEDIA = "/api/v1/media"
JOB_ID = re.compile(r"^job_[0-9a-hjkmnp-tv-z]{26}$")

pytestmark = pytest.mark.timeout(120)


async def _upload_async(
    client: httpx.AsyncClient, user: TestUser, data: bytes, name: str = "pic.png"
) -> httpx.Response:
    return await client.post(
        f"{MEDIA}/upload",
        files={"file": (name, data, "application/octet-stream")},
        data={"async": "true"},
        headers=user.headers,
    )


def _outputs(queue_app: QueueApp, org_id: str) -> list[str]:
    return local_objects(queue_app.settings.local_storage_path, f"{org_id}/test-outputs")


async def test_async_upload_answers_202_and_its_job_makes_the_media_ready(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await _upload_async(client, user, mediagen.png(40, 30))
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"media", "job"}
    media, job = body["media"], body["job"]
    assert media["status"] == "processing"
    assert media["width"] is None
    assert JOB_ID.match(job["id"])
    assert job["type"] == "media.process"
    assert job["media_id"] == media["id"]
    assert job["status"] in ("pending", "active", "completed")

    done = await wait_job(client, job["id"], headers=user.headers)
    assert done["status"] == "completed", done
    assert done["result"] == {"media_id": media["id"]}
    assert done["progress"] == 100
    assert done["attempts"] == 1
    assert done["failed_reason"] is None
    assert done["started_at"] is not None
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]

    ready = (await client.get(f"{MEDIA}/{media['id']}", headers=user.headers)).json()
    assert ready["status"] == "ready"
    assert (ready["width"], ready["height"]) == (40, 30)
    assert ready["metadata"]["format"] == "png"
    listed = await client.get(JOBS, params={"media_id": media["id"]}, headers=user.headers)
    assert [j["id"] for j in listed.json()["data"]] == [job["id"]]


async def test_the_job_makes_the_same_variants_as_a_synchronous_upload(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    sync = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("sync.jpg", mediagen.jpeg(400, 300), "image/jpeg")},
        headers=user.headers,
    )
    assert sync.status_code == 201, sync.text
    expected = sorted(v["name"] for v in sync.json()["variants"])
    assert expected
    made = await _upload_async(client, user, mediagen.jpeg(400, 300), name="async.jpg")
    assert made.status_code == 202, made.text
    assert made.json()["job"]["params"] == {"generate_variants": True}
    await wait_job(client, made.json()["job"]["id"], headers=user.headers)
    media = (await client.get(f"{MEDIA}/{made.json()['media']['id']}", headers=user.headers)).json()
    assert media["status"] == "ready"
    assert sorted(v["name"] for v in media["variants"]) == expected
    assert (media["placeholder"] is None) == (sync.json()["placeholder"] is None)

    bare = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("bare.jpg", mediagen.jpeg(400, 300), "image/jpeg")},
        data={"async": "true", "generate_variants": "false"},
        headers=user.headers,
    )
    assert bare.status_code == 202, bare.text
    await wait_job(client, bare.json()["job"]["id"], headers=user.headers)
    media = (await client.get(f"{MEDIA}/{bare.json()['media']['id']}", headers=user.headers)).json()
    assert (media["status"], media["variants"]) == ("ready", [])


async def test_async_upload_of_known_bytes_answers_the_existing_media_and_makes_no_job(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png()
    first = await _upload_async(client, user, data)
    assert first.status_code == 202, first.text
    again = await _upload_async(client, user, data, name="again.png")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["media"]["id"]
    assert again.json()["deduped"] is True
    assert "job" not in again.json()
    listed = await client.get(
        JOBS, params={"media_id": first.json()["media"]["id"]}, headers=user.headers
    )
    assert len(listed.json()["data"]) == 1


async def test_async_upload_that_does_not_decode_fails_its_job_and_its_media(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await _upload_async(client, user, mediagen.truncated_jpeg(), name="cut.jpg")
    assert response.status_code == 202, response.text
    media_id = response.json()["media"]["id"]
    done = await wait_job(client, response.json()["job"]["id"], headers=user.headers)
    assert done["status"] == "failed", done
    assert done["attempts"] == 1  # bytes that do not decode are not retried
    assert done["failed_reason"].startswith("The file cannot be processed")
    media = (await client.get(f"{MEDIA}/{media_id}", headers=user.headers)).json()
    assert media["status"] == "failed"
    assert media["metadata"]["failed_reason"] == done["failed_reason"]


async def test_a_task_that_always_crashes_ends_failed_after_max_attempts(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    job_id = await enqueue(queue_app.services, user.org_id, "test.crash")
    done = await wait_job(client, job_id, headers=user.headers)
    assert done["status"] == "failed", done
    assert done["attempts"] == queue_app.settings.job_max_attempts == 3
    reason = done["failed_reason"]
    assert "gave up after 3 tries" in reason
    for leak in ("Traceback", "secret.py", "deliberate", "line 42"):
        assert leak not in reason
    # No loop: a failed job is never taken again (a negative needs a wait: several retry
    # delays and sweep periods).
    await asyncio.sleep(2)
    again = await wait_job(client, job_id, headers=user.headers)
    assert (again["status"], again["attempts"], again["finished_at"]) == (
        "failed",
        3,
        done["finished_at"],
    )


async def test_a_worker_that_dies_mid_job_is_replaced_and_the_job_completes_once(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    job_id = await enqueue(
        queue_app.services, user.org_id, "test.kill_first", {"pid_file": str(pid_file)}
    )
    done = await wait_job(client, job_id, headers=user.headers, timeout=60)
    assert done["status"] == "completed", done
    assert done["attempts"] == 2
    first, second = await wait_for_file_lines(pid_file, 2)
    assert first[1] != second[1], "the second try ran in a new worker process"
    assert _outputs(queue_app, user.org_id) == [f"{user.org_id}/test-outputs/{job_id}.txt"]
    output = queue_app.settings.local_storage_path / _outputs(queue_app, user.org_id)[0]
    assert output.read_text() == "attempt 2\n"


async def test_sigkill_of_the_worker_running_a_child_retries_the_job_and_kills_the_child(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    job_id = await enqueue(
        queue_app.services,
        user.org_id,
        "test.child_sleep",
        {"seconds": 2, "pid_file": str(pid_file)},
    )
    ((child_pid, worker_pid, attempt),) = await wait_for_file_lines(pid_file, 1)
    assert attempt == "1"
    os.kill(int(worker_pid), signal.SIGKILL)
    await wait_pid_gone(int(child_pid))  # the kernel kills it with its worker (pdeathsig)
    done = await wait_job(client, job_id, headers=user.headers, timeout=60)
    assert done["status"] == "completed", done
    assert done["attempts"] == 2
    assert done["progress"] == 100
    assert _outputs(queue_app, user.org_id) == [f"{user.org_id}/test-outputs/{job_id}.txt"]


async def test_cancel_of_a_running_job_kills_its_child_process(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    job_id = await enqueue(
        queue_app.services,
        user.org_id,
        "test.child_sleep",
        {"seconds": 30, "pid_file": str(pid_file)},
    )
    ((child_pid, _, _),) = await wait_for_file_lines(pid_file, 1)
    running = await wait_job(client, job_id, headers=user.headers, until={"active"})
    assert running["started_at"] is not None
    # Children run 10 steps below their worker's priority, so the API keeps its latency.
    child = psutil.Process(int(child_pid))
    assert child.nice() == min(19, child.parent().nice() + 10)
    canceled = await client.post(f"{JOBS}/{job_id}/cancel", headers=user.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] in ("active", "canceled")
    done = await wait_job(client, job_id, headers=user.headers, timeout=15)
    assert done["status"] == "canceled", done
    assert done["finished_at"] is not None
    assert done["attempts"] == 1
    await wait_pid_gone(int(child_pid), timeout=5)
    assert _outputs(queue_app, user.org_id) == []


async def test_cancel_of_a_pending_job_is_immediate_and_idempotent(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    async with queue_app.services.db.write_session() as session:
        job = await job_service.enqueue(
            queue_app.services,
            session,
            org_id=user.org_id,
            type="test.crash",
            run_after=now() + timedelta(hours=1),
        )
    first = await client.post(f"{JOBS}/{job.id}/cancel", headers=user.headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "canceled"
    assert first.json()["attempts"] == 0
    assert first.json()["finished_at"] is not None
    second = await client.post(f"{JOBS}/{job.id}/cancel", headers=user.headers)
    assert second.status_code == 200
    assert second.json()["status"] == "canceled"
