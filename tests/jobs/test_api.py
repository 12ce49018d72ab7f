"""The job routes (read, list, cancel), tenancy and roles, transactional enqueue, readiness and
the settings handed to worker processes. Runs once, on the local dispatcher."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

import tests.jobs.tasks_for_tests  # noqa: F401 - registers the test-only tasks
from mediakeep.jobs import service as job_service
from mediakeep.jobs.dispatch import Dispatcher
from mediakeep.kit.time import now
from tests.factories import TestUser, new_user
from tests.jobs.conftest import QueueApp
from tests.jobs.support import JOBS, wait_job
from tests.media.support import assert_error

pytestmark = [
    pytest.mark.parametrize("queue_app", ["local"], indirect=True, scope="module"),
    pytest.mark.timeout(60),
]

LATER = timedelta(hours=1)


async def _held_job(queue_app: QueueApp, org_id: str, type: str = "test.crash", **kw: Any) -> str:
    """A pending job no worker takes for an hour."""
    async with queue_app.services.db.write_session() as session:
        job = await job_service.enqueue(
            queue_app.services, session, org_id=org_id, type=type, run_after=now() + LATER, **kw
        )
        return job.id


async def test_a_job_has_the_documented_shape(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    job_id = await _held_job(queue_app, user.org_id, params={"answer": 42})
    response = await client.get(f"{JOBS}/{job_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        "id",
        "type",
        "status",
        "progress",
        "media_id",
        "params",
        "result",
        "failed_reason",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
    } <= set(body)
    assert body["status"] == "pending"
    assert body["params"] == {"answer": 42}
    assert (body["progress"], body["attempts"], body["result"]) == (0, 0, None)
    assert body["created_at"].endswith("Z")
    assert body["started_at"] is None


async def test_list_filters_and_pages_with_a_cursor(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    made = [await _held_job(queue_app, user.org_id) for _ in range(5)]
    other = await _held_job(queue_app, user.org_id, type="test.child_sleep", media_id="med_x")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "type": "test.crash", "include_total": "true"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(JOBS, params=params, headers=user.headers)).json()
        assert page["total"] == 5
        seen += [job["id"] for job in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))  # newest first, each once
    by_media = await client.get(JOBS, params={"media_id": "med_x"}, headers=user.headers)
    assert [j["id"] for j in by_media.json()["data"]] == [other]
    pending = await client.get(JOBS, params={"status": "pending"}, headers=user.headers)
    assert len(pending.json()["data"]) == 6
    none = await client.get(JOBS, params={"status": "completed"}, headers=user.headers)
    assert none.json()["data"] == []
    bad = await client.get(JOBS, params={"status": "sleeping"}, headers=user.headers)
    assert_error(bad, 400, "validation.invalid")
    broken = await client.get(JOBS, params={"cursor": "not-a-cursor"}, headers=user.headers)
    assert_error(broken, 400, "validation.invalid")


async def test_other_orgs_get_404_and_see_nothing(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    job_id = await _held_job(queue_app, user.org_id)
    stranger = await new_user(client)
    assert_error(await client.get(f"{JOBS}/{job_id}", headers=stranger.headers), 404, "not_found")
    assert_error(
        await client.post(f"{JOBS}/{job_id}/cancel", headers=stranger.headers), 404, "not_found"
    )
    listed = await client.get(JOBS, headers=stranger.headers)
    assert listed.json()["data"] == []
    still = await client.get(f"{JOBS}/{job_id}", headers=user.headers)
    assert still.json()["status"] == "pending"
    anonymous = await client.get(f"{JOBS}/job_01hqr8v9k2x3f4g5h6j7k8m9n0")
    assert_error(anonymous, 401, "auth.unauthorized")


async def test_viewers_read_jobs_and_members_cancel_them(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    job_id = await _held_job(queue_app, user.org_id)
    viewer = await new_user(client)
    added = await client.post(
        f"/api/v1/orgs/{user.org_slug}/members",
        json={"email": viewer.email, "role": "viewer"},
        headers=user.headers,
    )
    assert added.status_code == 201, added.text
    as_viewer = viewer.headers | {"X-Org": user.org_slug}
    assert (await client.get(f"{JOBS}/{job_id}", headers=as_viewer)).status_code == 200
    assert (await client.get(JOBS, headers=as_viewer)).json()["data"][0]["id"] == job_id
    refused = await client.post(f"{JOBS}/{job_id}/cancel", headers=as_viewer)
    assert_error(refused, 403, "auth.forbidden")
    canceled = await client.post(f"{JOBS}/{job_id}/cancel", headers=user.headers)
    assert canceled.json()["status"] == "canceled"


async def test_a_finished_job_cannot_be_canceled(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    async with queue_app.services.db.write_session() as session:
        job = await job_service.enqueue(
            queue_app.services, session, org_id=user.org_id, type="test.crash"
        )
    failed = await wait_job(client, job.id, headers=user.headers)
    assert failed["status"] == "failed"
    refused = await client.post(f"{JOBS}/{job.id}/cancel", headers=user.headers)
    assert_error(refused, 409, "conflict")


class _Recorder:
    """Wraps the dispatcher to record what it is told."""

    def __init__(self, inner: Dispatcher) -> None:
        self.inner = inner
        self.name = inner.name
        self.published: list[str] = []

    async def publish(self, job_id: str, delay: float = 0.0) -> None:
        self.published.append(job_id)
        await self.inner.publish(job_id, delay)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_rolled_back_unit_of_work_leaves_no_job_and_tells_no_worker(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    services = queue_app.services
    real = services.dispatcher
    assert real is not None
    recorder = _Recorder(real)
    services.dispatcher = recorder  # type: ignore[assignment]
    try:
        doomed: list[str] = []

        async def failing_request() -> None:
            async with services.db.write_session() as session:
                job = await job_service.enqueue(
                    services, session, org_id=user.org_id, type="test.crash"
                )
                doomed.append(job.id)
                raise RuntimeError("the request failed after the enqueue")

        with pytest.raises(RuntimeError, match="after the enqueue"):
            await failing_request()
        assert recorder.published == []
        gone = await client.get(f"{JOBS}/{doomed[0]}", headers=user.headers)
        assert_error(gone, 404, "not_found")

        async with services.db.write_session() as session:
            job = await job_service.enqueue(
                services, session, org_id=user.org_id, type="test.crash", run_after=now() + LATER
            )
            assert recorder.published == []  # not before the commit
        assert recorder.published == [job.id]
    finally:
        services.dispatcher = real


async def test_readyz_checks_the_queue(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["queue"] == "ok"
