"""The one registry of task functions and the task protocol; both dispatchers run these.

A task takes the job's ids, reloads what it needs, writes its outputs to deterministic keys and
is idempotent: a retry after a crash repeats nothing visible and duplicates nothing. Heavy work
runs off the event loop (a thread, or a child process started with `ctx.start_process`, which
is killed with its whole process group when the job is canceled or times out).

`raise JobFailed("what the user can do")` ends a job as `failed` without retrying; any other
exception is retried with backoff up to MEDIA_JOB_MAX_ATTEMPTS.

Every domain's task module registers its tasks with `@task` when it is imported; the one module
importing them all is `mediakeep.tasks` (the composition layer), which `load_tasks` imports by
name in any process that looks tasks up, so this low module never imports a domain. Test-only
tasks are registered by modules named in the environment variable MEDIAKEEP_TEST_TASKS
(comma-separated), which worker processes import at start.
"""

import asyncio
import contextlib
import functools
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

from mediakeep.db import ReadOnlySession
from mediakeep.events.publish import publish_after_commit
from mediakeep.jobs.repository import JobQueue
from mediakeep.kit.time import now
from mediakeep.services import Services

log = structlog.get_logger(__name__)

TEST_TASKS_ENV = "MEDIAKEEP_TEST_TASKS"
# The composition module importing every domain's task module (as Celery's `include` names its
# task modules): imported by name so that this infrastructure never imports a domain.
TASKS_MODULE = "mediakeep.tasks"

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


def load_tasks() -> None:
    """Register every domain's tasks (idempotent: a module is imported once)."""
    importlib.import_module(TASKS_MODULE)


def get_task(name: str) -> Task | None:
    load_tasks()
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
# Where the OS lets this process make a cgroup v2 child group with the cpu controller (a
# delegated subtree), task children run in one with a low CPU weight (the API's group keeps
# the default 100): under contention they get a tenth of its share, whatever their niceness.
CGROUP_ROOT = Path("/sys/fs/cgroup")
CHILD_GROUP = "mediakeep-processing"
CHILD_CPU_WEIGHT = 10


@functools.cache
def children_cgroup(root: Path = CGROUP_ROOT) -> Path | None:
    """The low-weight cgroup for task children, made once per process; None (said once in
    the log) where there is no cgroup v2 or it may not be written."""
    try:
        if not (root / "cgroup.controllers").exists():
            raise OSError("no cgroup v2 hierarchy is mounted there")
        own = next(
            line[3:]
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )
        group = root / own.strip().lstrip("/") / CHILD_GROUP
        group.mkdir(exist_ok=True)
        (group / "cpu.weight").write_text(str(CHILD_CPU_WEIGHT))
    except (OSError, StopIteration) as exc:
        log.info(
            "processing children run at nice 10 only: no cgroup CPU weight",
            cgroup_root=str(root),
            reason=str(exc) or type(exc).__name__,
        )
        return None
    log.info("processing children run in a cgroup", cgroup=str(group), cpu_weight=CHILD_CPU_WEIGHT)
    return group


def into_children_cgroup(pid: int) -> None:
    group = children_cgroup()
    if group is None:
        return
    try:
        (group / "cgroup.procs").write_text(str(pid))
    except OSError as exc:  # it ended already, or the group went away: it stays niced
        log.info("a processing child stays out of its cgroup", pid=pid, reason=str(exc))


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

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[ReadOnlySession]:
        """A read-only unit of work (the replica when there is one). For reads before a long
        step, so the write transaction (SQLite's write lock) is not held while it runs."""
        async with self.services.db.read_session() as session:
            yield session

    async def report_progress(self, percent: int) -> None:
        """Record progress (0–100) of this job; writes at most ~4 times a second."""
        value = max(0, min(100, int(percent)))
        last_value, last_time = self._last_progress
        if value == last_value or (time.monotonic() - last_time < 0.25 and value < 100):
            return
        self._last_progress = (value, time.monotonic())
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
        into_children_cgroup(process.pid)
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
