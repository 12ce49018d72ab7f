"""The one registry of task functions; both dispatchers run these.

A task takes the job's ids, reloads what it needs, writes its outputs to deterministic keys and
is idempotent: a retry after a crash repeats nothing visible and duplicates nothing. Heavy work
runs off the event loop (a thread, or a child process started with `ctx.start_process`, which
is killed with its whole process group when the job is canceled or times out).

`raise JobFailed("what the user can do")` ends a job as `failed` without retrying; any other
exception is retried with backoff up to MEDIA_JOB_MAX_ATTEMPTS. Test-only tasks are registered
by modules named in the environment variable MEDIAKEEP_TEST_TASKS (comma-separated), which
worker processes import at start.
"""

import asyncio
import contextlib
import importlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.kit.time import now
from mediakeep.services import Services

log = structlog.get_logger(__name__)

TEST_TASKS_ENV = "MEDIAKEEP_TEST_TASKS"

TaskResult = dict[str, Any] | None


class JobFailed(Exception):
    """A failure retrying cannot fix; the message is shown to the user as `failed_reason`."""


@dataclass(frozen=True)
class JobInfo:
    """What a task knows of its job: ids and parameters, never live rows."""

    id: str
    org_id: str
    type: str
    media_id: str | None
    params: dict[str, Any]
    attempt: int
    max_attempts: int


# (session, job, final status "failed" | "canceled", reason): keeps what the job was working on
# consistent with its end, in the transaction that records that end.
FinalHook = Callable[[AsyncSession, JobInfo, str, str], Awaitable[None]]
TaskFunction = Callable[["TaskContext"], Awaitable[TaskResult]]


@dataclass(frozen=True)
class Task:
    name: str
    run: TaskFunction
    on_failed: FinalHook | None = None


REGISTRY: dict[str, Task] = {}


def task(
    name: str, *, on_failed: FinalHook | None = None
) -> Callable[[TaskFunction], TaskFunction]:
    """Register a task function under `name` (the job's `type`)."""

    def register(function: TaskFunction) -> TaskFunction:
        REGISTRY[name] = Task(name, function, on_failed)
        return function

    return register


def get_task(name: str) -> Task | None:
    return REGISTRY.get(name)


def load_extra_tasks() -> list[str]:
    """Import the modules named in MEDIAKEEP_TEST_TASKS so their tasks register (tests only)."""
    names = [n.strip() for n in os.environ.get(TEST_TASKS_ENV, "").split(",") if n.strip()]
    for name in names:
        importlib.import_module(name)
    return names


# A child outlives a worker that is SIGKILLed (it has its own process group); util-linux's
# setpriv makes the kernel kill it with its parent, so an OOM-killed worker leaves no ffmpeg
# burning CPU. The PID stays the child's own: setpriv execs the command.
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_WORKER = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
# Encoders take every core they see; at a lower priority they still do, but an API process on
# the same machine keeps answering promptly (DESIGN.md: /healthz p99 during a transcode ≤ 2×
# idle). `nice` execs the command too, so the PID is still the child's.
_NICE = shutil.which("nice")
_BACKGROUND = [_NICE, "-n", "10"] if _NICE else []


@dataclass
class ChildResult:
    returncode: int
    stdout: bytes
    stderr: bytes


@dataclass
class Child:
    """A child process of a task, in its own process group."""

    process: asyncio.subprocess.Process
    context: "TaskContext"

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait(self) -> ChildResult:
        try:
            stdout, stderr = await self.process.communicate()
        except asyncio.CancelledError:
            self.context.kill_group(self.process.pid)
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(self.process.wait())
            raise
        finally:
            self.context.forget(self.process.pid)
        return ChildResult(self.process.returncode or 0, stdout or b"", stderr or b"")


@dataclass
class TaskContext:
    """What the runner hands a task: services of this worker process, the job, and helpers."""

    services: Services
    job: JobInfo
    worker_id: str
    _groups: set[int] = field(default_factory=set)
    _last_progress: tuple[int, float] = (0, 0.0)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The worker's unit of work: committed when the block ends, rolled back on error."""
        async with self.services.db.write_session() as session:
            yield session

    async def report_progress(self, percent: int) -> None:
        """Record progress (0–100) of this job; writes at most ~4 times a second."""
        from mediakeep.jobs.repository import JobQueue

        value = max(0, min(100, int(percent)))
        last_value, last_time = self._last_progress
        if value == last_value or (time.monotonic() - last_time < 0.25 and value < 100):
            return
        self._last_progress = (value, time.monotonic())
        from mediakeep.events.publish import publish_after_commit

        async with self.services.db.write_session() as session:
            await JobQueue(session).set_progress(self.job.id, self.worker_id, value, now())
            await publish_after_commit(
                session,
                "job.progress",
                self.job.org_id,
                {
                    "id": self.job.id,
                    "type": self.job.type,
                    "media_id": self.job.media_id,
                    "status": "active",
                    "progress": value,
                },
            )

    async def start_process(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        capture: bool = True,
    ) -> Child:
        """Start a child (ffmpeg, vips, ...) in a new process group. The group is killed when
        the job is canceled, times out or loses its worker's claim."""
        pipe = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(
            *_DIE_WITH_WORKER,
            *_BACKGROUND,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=pipe,
            stderr=pipe,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        self._groups.add(process.pid)
        return Child(process, self)

    def kill_group(self, pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def forget(self, pgid: int) -> None:
        self._groups.discard(pgid)

    def kill_children(self) -> None:
        """Kill every process group this task started and has not seen end."""
        for pgid in list(self._groups):
            self.kill_group(pgid)


# --------------------------------------------------------------------------- media.process


async def _media_failed(session: AsyncSession, job: JobInfo, _status: str, reason: str) -> None:
    """The media follows its processing job: a job that ends without success fails it."""
    from mediakeep.media.repository import MediaRepository

    if job.media_id is None:
        return
    media = await MediaRepository(session).get(job.org_id, job.media_id)
    if media is None or media.status != "processing":
        return
    media.status = "failed"
    media.metadata_ = {**(media.metadata_ or {}), "failed_reason": reason, "failed_job": job.id}
    media.updated_at = now()
    await session.flush()


@task("media.process", on_failed=_media_failed)
async def process_media(ctx: TaskContext) -> TaskResult:
    """Probe an uploaded original (dimensions, duration, codecs; full decode check), run the
    post-ingest step (ingest/finish.py; its files unless `params.generate_variants` is false),
    and make the media `ready` with its variants in one commit; or `failed`, with the reason,
    when the bytes do not decode."""
    from mediakeep.errors import MediaError
    from mediakeep.ingest.finish import PostIngest, probe_upload
    from mediakeep.media.repository import MediaRepository
    from mediakeep.models import Media
    from mediakeep.processing.probe import ProbeError

    job = ctx.job
    if job.media_id is None:
        raise JobFailed("This job names no media")
    async with ctx.services.db.read_session() as session:
        media = await MediaRepository(session).get(job.org_id, job.media_id)
    if media is None:
        raise JobFailed("The media was deleted before it could be processed")
    if media.status == "ready":  # a retry after the work was already recorded
        return {"media_id": media.id}
    if media.status != "processing" or not media.storage_key:
        raise JobFailed(f"The media is {media.status}; only a processing media can be processed")
    await ctx.report_progress(5)
    try:
        async with ctx.services.storage.local_file(media.storage_key) as path:
            facts = await probe_upload(ctx.services, path, media.kind, media.mime)
    except ProbeError as exc:
        raise JobFailed(f"The file cannot be processed: {exc}") from exc
    except MediaError as exc:
        if exc.status != 422:  # server.busy: the job is tried again later
            raise
        raise JobFailed(f"The file cannot be processed: {exc.message}") from exc
    await ctx.report_progress(40)
    # The files are rendered before the commit that makes the media ready (outside any
    # transaction, to deterministic keys), so `ready` and its variants appear together.
    as_ready = Media(
        id=media.id,
        org_id=media.org_id,
        kind=media.kind,
        mime=media.mime,
        status="ready",
        storage_key=media.storage_key,
        version=media.version,
        metadata_=facts.metadata,
        duration_seconds=facts.duration_seconds,
    )
    step = PostIngest(ctx.services, wanted=bool(job.params.get("generate_variants", True)))
    await step.render(as_ready)
    await ctx.report_progress(90)
    async with ctx.transaction() as session:
        current = await MediaRepository(session).get(job.org_id, job.media_id)
        if current is None:
            raise JobFailed("The media was deleted while it was processed")
        if current.status == "processing":
            current.width = facts.width
            current.height = facts.height
            current.duration_seconds = facts.duration_seconds
            # What the uploader said wins over what was probed, as on the synchronous path.
            current.metadata_ = {**facts.metadata, **(current.metadata_ or {})}
            current.placeholder = getattr(facts, "placeholder", None)
            current.status = "ready"
            current.updated_at = now()
            await session.flush()
            await step.record(session, current)  # its variants; MEDIA_VIDEO_AUTO_STREAM
            from mediakeep.events.publish import publish_media

            await publish_media(session, ctx.services, "media.ready", current)
    return {"media_id": job.media_id}


# Tasks of other domains register by being imported (after everything above exists).
import mediakeep.ai.tasks  # noqa: E402, F401
import mediakeep.imageops.tasks  # noqa: E402, F401
import mediakeep.streaming.tasks  # noqa: E402, F401

# Task modules of other domains register themselves on import; imported last, so they see this
# module complete.
import mediakeep.videoops.tasks  # noqa: E402, F401
