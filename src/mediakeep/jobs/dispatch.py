"""The dispatcher protocol and the one factory that picks it from MEDIA_QUEUE_BACKEND.

A dispatcher is told about a job only after the transaction that wrote the job row has
committed (`jobs.service.enqueue` registers that with `db.after_commit`). In both modes the
jobs table stays the truth: a message or nudge only says "look at job X", every worker claims
with a conditional UPDATE, and a duplicate delivery does nothing.

- `local`: worker processes owned by `mediakeep serve` (`jobs/local.py`) poll the jobs table
  and are nudged through a pipe after each enqueue.
- `celery`: the job id is sent to a Celery worker (`jobs/celery_app.py`) through the broker.
"""

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from mediakeep.config import Settings
from mediakeep.jobs.local import LocalWorkerPool
from mediakeep.jobs.repository import JobQueue

if TYPE_CHECKING:
    from mediakeep.db import ReadOnlySession
    from mediakeep.jobs.local import LocalWorkerPool

log = structlog.get_logger(__name__)


class QueueUnavailable(Exception):
    """The queue cannot take jobs now; uploads that need it answer 503 `queue.unavailable`."""


class Dispatcher(Protocol):
    name: str

    async def start(self) -> None:
        """Start what this process owns (local worker processes); idempotent."""
        ...

    async def stop(self) -> None: ...

    async def ensure_available(self) -> None:
        """Raise QueueUnavailable if a job committed now could not be handed on."""
        ...

    async def publish(self, job_id: str, delay: float = 0.0) -> None:
        """Tell the workers that job `job_id` is (or, after `delay` s, will be) due. Raises when
        the queue did not take it; the row then stays `pending` for the sweeper to send."""
        ...

    async def check(self, session: "ReadOnlySession") -> None:
        """Readiness: raise QueueUnavailable naming what is down. `session` is the probe's
        read unit of work (opened by its scope, the readiness route)."""
        ...


def create_dispatcher(settings: Settings, *, workers: bool = False) -> Dispatcher:
    """The dispatcher of MEDIA_QUEUE_BACKEND; with `workers` (local only) it owns
    MEDIA_WORKERS worker processes, started by `start()`."""
    if settings.queue_backend == "celery":
        if not settings.broker_url:
            raise ValueError("MEDIA_QUEUE_BACKEND=celery needs CELERY_BROKER_URL (or REDIS_URL)")
        return CeleryDispatcher(settings)
    return LocalDispatcher(settings, workers=workers)


async def _jobs_table_answers(session: "ReadOnlySession") -> None:
    try:
        await JobQueue(session).answers()
    except Exception as exc:
        raise QueueUnavailable(f"the jobs table does not answer ({type(exc).__name__})") from exc


class LocalDispatcher:
    """Jobs run by local worker processes polling the jobs table; `publish` wakes them."""

    name = "local"

    def __init__(self, settings: Settings, *, workers: bool = False) -> None:
        self.settings = settings
        self.owns_workers = workers
        self.pool: LocalWorkerPool | None = None

    async def start(self) -> None:
        if self.owns_workers and self.pool is None:
            self.pool = LocalWorkerPool(self.settings, self.settings.worker_count)
            await self.pool.start()

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.stop()
            self.pool = None

    async def ensure_available(self) -> None:
        return None  # the jobs table is the queue: if it is down, so is the upload's commit

    async def publish(self, job_id: str, delay: float = 0.0) -> None:  # noqa: ARG002
        if self.pool is not None and delay <= 0:
            self.pool.nudge()

    async def check(self, session: "ReadOnlySession") -> None:
        await _jobs_table_answers(session)
        if self.pool is not None and self.pool.alive() == 0:
            raise QueueUnavailable("no local worker process is running")


class CeleryDispatcher:
    """Job ids go to Celery workers through the broker (Redis)."""

    name = "celery"

    def __init__(self, settings: Settings, app: Any = None) -> None:
        self.settings = settings
        self._app = app
        self._redis: Any = None

    @property
    def app(self) -> Any:
        if self._app is None:
            # Celery is loaded only with MEDIA_QUEUE_BACKEND=celery (a heavy import otherwise
            # paid by every process); tests/test_architecture.py allows this one.
            from mediakeep.jobs.celery_app import create_celery

            self._app = create_celery(self.settings)
        return self._app

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _ping(self) -> None:
        url = self.settings.broker_url
        try:
            if url.startswith(("redis://", "rediss://", "unix://")):
                if self._redis is None:
                    from redis.asyncio import Redis

                    self._redis = Redis.from_url(
                        url, socket_connect_timeout=1.0, socket_timeout=2.0
                    )
                await self._redis.ping()
            else:
                await asyncio.to_thread(self._kombu_ping)
        except Exception as exc:
            raise QueueUnavailable(f"the broker does not answer ({type(exc).__name__})") from exc

    def _kombu_ping(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    async def ensure_available(self) -> None:
        await self._ping()

    async def publish(self, job_id: str, delay: float = 0.0) -> None:
        from mediakeep.jobs.celery_app import send_job  # Celery only with its backend (above)

        await asyncio.to_thread(send_job, self.app, job_id, delay)

    async def check(self, session: "ReadOnlySession") -> None:  # noqa: ARG002
        await self._ping()
