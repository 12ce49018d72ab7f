"""Running jobs in a worker process, the same way under either dispatcher: claim the row
(pending → active, a conditional UPDATE), run the task while a heartbeat proves the worker lives
and watches for a cancel, then record the end; plus the sweep that re-queues jobs whose worker
died and re-sends jobs the broker may have lost."""

import asyncio
import contextlib
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.config import Settings
from mediakeep.errors import MediaError
from mediakeep.jobs.repository import JobQueue
from mediakeep.jobs.tasks import JobFailed, JobInfo, TaskContext, get_task
from mediakeep.kit.private import prepare_data_dir
from mediakeep.kit.time import now
from mediakeep.models import Job
from mediakeep.services import Services
from mediakeep.storage.base import StorageUnavailable

log = structlog.get_logger(__name__)

MAX_BACKOFF = timedelta(hours=1)


def new_worker_id(kind: str) -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{kind}:{secrets.token_hex(3)}"


async def build_worker_services(settings: Settings) -> Services:
    """A worker process's own database engines, storage and dispatcher (never the API's)."""
    from mediakeep.db import Database
    from mediakeep.jobs.dispatch import create_dispatcher
    from mediakeep.storage.factory import create_storage

    prepare_data_dir(settings)
    services = Services(settings=settings, db=Database(settings), storage=create_storage(settings))
    services.dispatcher = create_dispatcher(settings)
    from mediakeep.events import bus

    if settings.redis_url and bus.bus_of(services.db) is None:
        # Distributed mode: a worker announces its events on Redis itself. In embedded mode
        # the API process tails the events table, so a worker needs no bus.
        bus.install(services.db, bus.create_event_bus(settings, services.db, listen=False))
    return services


def info_of(job: Job) -> JobInfo:
    return JobInfo(
        id=job.id,
        org_id=job.org_id,
        type=job.type,
        media_id=job.media_id,
        params=dict(job.params or {}),
        attempt=job.attempts,
        max_attempts=job.max_attempts,
    )


def backoff(settings: Settings, attempt: int) -> timedelta:
    """Wait before try `attempt + 1`: MEDIA_JOB_RETRY_DELAY, doubling, at most an hour."""
    delay: timedelta = settings.job_retry_delay * (2 ** max(0, attempt - 1))
    return min(delay, max(MAX_BACKOFF, settings.job_retry_delay))


def describe(exc: BaseException) -> str:
    """A failed try's reason for users: what happened and what helps, never a stack trace."""
    if isinstance(exc, MediaError):  # messages made for users (e.g. 503 storage.unavailable)
        return exc.message
    if isinstance(exc, StorageUnavailable):
        return "Storage was unavailable while the job ran"
    if isinstance(exc, OperationalError | DBAPIError):
        return "The database was unavailable while the job ran"
    if isinstance(exc, OSError):
        return f"The worker could not read or write a file ({exc.strerror or 'I/O error'})"
    return (
        f"The job stopped on an internal error ({type(exc).__name__}); "
        "it was logged for the operators"
    )


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


async def publish_job(services: Services, job_id: str, delay: float = 0.0) -> None:
    if services.dispatcher is None:
        return
    try:
        await services.dispatcher.publish(job_id, delay)
    except Exception as exc:  # the sweeper sends it later
        log.warning("job not handed to the queue", job_id=job_id, error=str(exc))
        async with services.db.write_session() as session:
            await JobQueue(session).mark_unpublished(job_id)


async def record_end(
    services: Services,
    job: JobInfo,
    worker_id: str | None,
    status: str,
    *,
    result: dict[str, object] | None = None,
    reason: str | None = None,
) -> bool:
    """Write a terminal status (only while `worker_id` still owns the job; None: any live
    job) and, for a failure or cancel, let the task's hook follow it in the same transaction."""
    task = get_task(job.type)
    for with_hook in (True, False):
        try:
            async with services.db.write_session() as session:
                ended = await JobQueue(session).finish(
                    job.id, worker_id, status, now(), result=result, failed_reason=reason
                )
                if ended and with_hook and status != "completed" and task and task.on_failed:
                    await task.on_failed(session, job, status, reason or status)
                if ended and status in ("completed", "failed"):
                    await _publish_end(session, job, status, result, reason)
            return ended
        except Exception:
            if not with_hook:
                raise
            log.exception("job end hook failed; recording the end without it", job_id=job.id)
    return False


async def _publish_end(
    session: AsyncSession,
    job: JobInfo,
    status: str,
    result: dict[str, object] | None,
    reason: str | None,
) -> None:
    from mediakeep.events.publish import publish_after_commit

    data: dict[str, object] = {
        "id": job.id,
        "type": job.type,
        "media_id": job.media_id,
        "status": status,
        "attempts": job.attempt,
    }
    if status == "completed":
        data |= {"progress": 100, "result": result or {}}
    else:
        data["failed_reason"] = reason or status
    await publish_after_commit(session, f"job.{status}", job.org_id, data)


async def claim(services: Services, job_id: str, worker_id: str) -> JobInfo | None:
    """Take one job by id. None when another worker has it, it is not due, or it ended; a
    pending job over its attempt limit (a poison message) is failed instead of run."""
    at = now()
    async with services.db.write_session() as session:
        queue = JobQueue(session)
        if await queue.claim(job_id, worker_id, at):
            job = await queue.get(job_id)
            return info_of(job) if job is not None else None
        job = await queue.get(job_id)
    if job is not None and job.status == "pending":
        if job.cancel_requested:
            await record_end(services, info_of(job), None, "canceled", reason="Canceled")
        elif job.attempts >= job.max_attempts:
            reason = job.failed_reason or "The job failed"
            await record_end(
                services,
                info_of(job),
                None,
                "failed",
                reason=f"{reason} (gave up after {job.attempts} tries)",
            )
    return None


async def claim_next(services: Services, worker_id: str) -> JobInfo | None:
    """The oldest due pending job, claimed for this worker (local dispatcher)."""
    async with services.db.read_session() as session:
        candidates = await JobQueue(session).due_ids(now(), limit=8)
    for job_id in candidates:
        claimed = await claim(services, job_id, worker_id)
        if claimed is not None:
            return claimed
    return None


async def _heartbeat(services: Services, job: JobInfo, worker_id: str) -> bool | None | str:
    try:
        async with services.db.write_session() as session:
            return await JobQueue(session).heartbeat(job.id, worker_id, now())
    except Exception as exc:  # a database hiccup; the next beat tries again
        log.warning("job heartbeat failed", job_id=job.id, error=str(exc))
        return "error"


async def run_claimed(
    services: Services,
    job: JobInfo,
    worker_id: str,
    *,
    stop: asyncio.Event | None = None,
) -> str:
    """Run a job this worker has claimed to its end; returns what happened (for logs/tests):
    completed, failed, canceled, retry, released (worker stopping), or lost."""
    settings = services.settings
    task = get_task(job.type)
    if task is None:
        await record_end(
            services,
            job,
            worker_id,
            "failed",
            reason=f"No worker knows jobs of type {job.type}; deploy a version that does",
        )
        return "failed"
    context = TaskContext(services, job, worker_id)
    loop = asyncio.get_running_loop()
    body = asyncio.ensure_future(task.run(context))
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    deadline = loop.time() + settings.job_timeout.total_seconds()
    interval = settings.job_heartbeat_interval.total_seconds()
    next_beat = loop.time() + interval
    interrupted: str | None = None
    log.info("job started", job_id=job.id, type=job.type, attempt=job.attempt)
    try:
        while not body.done():
            waiting: set[asyncio.Future[Any]] = {body}
            if stopper is not None:
                waiting.add(stopper)
            await asyncio.wait(
                waiting, timeout=max(0.0, next_beat - loop.time()), return_when="FIRST_COMPLETED"
            )
            if body.done():
                break
            if stop is not None and stop.is_set():
                interrupted = "released"
            elif loop.time() >= next_beat:
                next_beat = loop.time() + interval
                beat = await _heartbeat(services, job, worker_id)
                if beat is None:
                    interrupted = "lost"
                elif beat is True:
                    interrupted = "canceled"
                elif loop.time() > deadline:
                    interrupted = "timeout"
            if interrupted:
                context.kill_children()
                body.cancel()
                await asyncio.wait({body})
                break
    finally:
        if stopper is not None:
            stopper.cancel()
        context.kill_children()
        if not body.done():  # cancelled from outside (the worker itself is being torn down)
            body.cancel()
            with contextlib.suppress(BaseException):
                await body
    return await _record(services, job, worker_id, body, interrupted)


async def _record(
    services: Services,
    job: JobInfo,
    worker_id: str,
    body: "asyncio.Future[dict[str, object] | None]",
    interrupted: str | None,
) -> str:
    settings = services.settings
    if interrupted == "lost":
        log.warning("job claim lost (re-queued or ended elsewhere)", job_id=job.id)
        return "lost"
    if interrupted == "released":
        async with services.db.write_session() as session:
            released = await JobQueue(session).release(job.id, worker_id, now())
        if released:
            await publish_job(services, job.id)
        log.info("job handed back: the worker is stopping", job_id=job.id)
        return "released"
    if interrupted == "canceled":
        await record_end(services, job, worker_id, "canceled", reason="Canceled by request")
        return "canceled"
    if interrupted == "timeout":
        reason = (
            f"The job ran longer than the limit of {_human(settings.job_timeout)} "
            "(MEDIA_JOB_TIMEOUT) and was stopped"
        )
        await record_end(services, job, worker_id, "failed", reason=reason)
        return "failed"
    if body.cancelled():
        error: BaseException | None = asyncio.CancelledError()
    else:
        error = body.exception()
    if error is None:
        result = body.result()
        await record_end(services, job, worker_id, "completed", result=dict(result or {}))
        log.info("job completed", job_id=job.id, type=job.type, attempt=job.attempt)
        return "completed"
    if isinstance(error, JobFailed):
        await record_end(services, job, worker_id, "failed", reason=str(error) or "Failed")
        log.info("job failed", job_id=job.id, type=job.type, reason=str(error))
        return "failed"
    reason = describe(error)
    log.error("job try failed", job_id=job.id, type=job.type, attempt=job.attempt, exc_info=error)
    if job.attempt >= job.max_attempts:
        await record_end(
            services,
            job,
            worker_id,
            "failed",
            reason=f"{reason} (gave up after {job.attempt} tries)",
        )
        return "failed"
    delay = backoff(settings, job.attempt)
    async with services.db.write_session() as session:
        again = await JobQueue(session).retry_later(job.id, worker_id, reason, now() + delay, now())
    if again:
        await publish_job(services, job.id, delay.total_seconds())
    return "retry"


async def execute(services: Services, job_id: str, worker_id: str) -> str:
    """Claim one job by id and run it (the Celery task's body): a duplicate delivery, or one
    for a job another worker holds, does nothing."""
    job = await claim(services, job_id, worker_id)
    if job is None:
        return "skipped"
    return await run_claimed(services, job, worker_id)


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class JobSweepReport:
    requeued: int
    failed: int
    republished: int


async def sweep_jobs(services: Services, *, republish: bool = False) -> JobSweepReport:
    """Re-queue active jobs whose heartbeat is older than MEDIA_JOB_STALE_AFTER (their worker
    died), failing those out of attempts; with `republish` (Celery), also hand the broker due
    pending jobs it may not hold."""
    settings = services.settings
    at = now()
    cutoff = at - settings.job_stale_after
    async with services.db.read_session() as session:
        stale = await JobQueue(session).stale(cutoff)
    requeued: list[str] = []
    failed = 0
    for job in stale:
        info = info_of(job)
        if job.cancel_requested or job.attempts >= job.max_attempts:
            status = "canceled" if job.cancel_requested else "failed"
            reason = (
                "Canceled by request (its worker stopped)"
                if job.cancel_requested
                else "The worker running this job stopped unexpectedly "
                f"(gave up after {job.attempts} tries)"
            )
            async with services.db.write_session() as session:
                ended = await JobQueue(session).end_stale(job.id, cutoff, status, reason, at)
                task = get_task(job.type)
                if ended and task and task.on_failed:
                    await task.on_failed(session, info, status, reason)
                if ended and status == "failed":
                    await _publish_end(session, info, status, None, reason)
            failed += int(ended)
            continue
        async with services.db.write_session() as session:
            if await JobQueue(session).requeue_stale(job.id, cutoff, at):
                requeued.append(job.id)
    if requeued or failed:
        log.warning("jobs of dead workers swept", requeued=len(requeued), failed=failed)
    republished = 0
    if republish and services.dispatcher is not None:
        async with services.db.read_session() as session:
            lost = await JobQueue(session).to_publish(
                now(),
                unpublished_before=now(),
                published_before=now() - settings.job_republish_after,
                limit=200,
            )
        sent: list[str] = []
        for job in lost:
            try:
                await services.dispatcher.publish(job.id, 0.0)
            except Exception as exc:
                log.warning("re-publishing jobs failed", error=str(exc))
                break
            sent.append(job.id)
        if sent:
            async with services.db.write_session() as session:
                await JobQueue(session).mark_published(sent, now())
            log.info("pending jobs handed to the queue again", count=len(sent))
        republished = len(sent)
    return JobSweepReport(len(requeued), failed, republished)


def sweep_period(settings: Settings) -> float:
    """How often workers sweep: often enough to notice a dead worker soon after it is stale."""
    return max(0.2, min(10.0, settings.job_stale_after.total_seconds() / 3))
