"""Jobs for the rest of the service: enqueue one in the caller's transaction (the dispatcher is
told after commit), and read, list and cancel them for the API."""

from datetime import datetime
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import ReadOnlySession, after_commit
from mediakeep.errors import MediaError, conflict, not_found
from mediakeep.ids import new_id
from mediakeep.jobs import registry as tasks
from mediakeep.jobs.dispatch import QueueUnavailable
from mediakeep.jobs.repository import JobFilters, JobRepository
from mediakeep.jobs.runner import info_of, publish_job
from mediakeep.jobs.schemas import JobOut
from mediakeep.kit.time import now
from mediakeep.models import Job
from mediakeep.services import Services

log = structlog.get_logger(__name__)


def queue_unavailable(reason: object) -> MediaError:
    return MediaError(
        "queue.unavailable",
        503,
        f"The job queue is unavailable ({reason}); nothing was stored, try again later",
    )


async def ensure_queue(services: Services) -> None:
    """Before committing work that needs a job: 503 `queue.unavailable` if the queue is down."""
    if services.dispatcher is None:
        return
    try:
        await services.dispatcher.ensure_available()
    except QueueUnavailable as exc:
        raise queue_unavailable(exc) from exc


async def enqueue(
    services: Services,
    session: AsyncSession,
    *,
    org_id: str,
    type: str,
    media_id: str | None = None,
    params: dict[str, object] | None = None,
    run_after: datetime | None = None,
) -> Job:
    """Write a pending job in `session`'s transaction; the dispatcher hears of it only once
    that commits (never, if it rolls back). `run_after` holds it back until then."""
    if tasks.get_task(type) is None:
        raise ValueError(f"no task is registered for job type {type!r}")
    at = now()
    job = Job(
        id=new_id("job"),
        org_id=org_id,
        media_id=media_id,
        type=type,
        status="pending",
        progress=0,
        params=dict(params or {}),
        attempts=0,
        max_attempts=services.settings.job_max_attempts,
        cancel_requested=False,
        run_after=run_after,
        # For a pending job: when it was handed to the dispatcher (the after-commit publish
        # below; a failed publish clears it, so the sweeper sends the job again).
        heartbeat_at=at,
        created_at=at,
        updated_at=at,
    )
    await JobRepository(session).add(job)
    delay = max(0.0, (run_after - at).total_seconds()) if run_after else 0.0
    after_commit(session, partial(publish_job, services, job.id, delay))
    return job


def to_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        type=job.type,
        status=job.status,
        progress=job.progress,
        media_id=job.media_id,
        params=dict(job.params or {}),
        result=dict(job.result) if job.result is not None else None,
        failed_reason=job.failed_reason,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        cancel_requested=job.cancel_requested and job.status == "active",
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


async def get_job(session: ReadOnlySession, org_id: str, job_id: str) -> Job:
    job = await JobRepository(session).get(org_id, job_id)
    if job is None:
        raise not_found("job")
    return job


async def list_jobs(
    session: ReadOnlySession,
    org_id: str,
    filters: JobFilters,
    *,
    limit: int,
    cursor: str | None,
    include_total: bool,
) -> tuple[list[JobOut], str | None, int | None]:
    repo = JobRepository(session)
    rows, next_cursor = await repo.list(org_id, filters, limit=limit, cursor=cursor)
    total = await repo.count(org_id, filters) if include_total else None
    return [to_out(job) for job in rows], next_cursor, total


async def cancel(session: AsyncSession, org_id: str, job_id: str) -> Job:
    """pending → canceled now; active → its worker is asked to stop it (kills its child
    processes, then records `canceled`); canceled → unchanged; completed/failed → 409."""
    repo = JobRepository(session)
    job = await get_job(session, org_id, job_id)
    at = now()
    if job.status == "pending" and await repo.cancel_pending(org_id, job_id, at):
        task = tasks.get_task(job.type)
        if task is not None and task.on_failed is not None:
            await task.on_failed(session, info_of(job), "canceled", "Canceled before it started")
    elif job.status in ("pending", "active"):
        # Claimed by a worker since we looked, or running: ask its worker to stop it.
        await repo.request_cancel(org_id, job_id, at)
    await session.refresh(job)
    if job.status in ("completed", "failed"):
        raise conflict(f"The job has already {job.status}; there is nothing to cancel")
    return job
