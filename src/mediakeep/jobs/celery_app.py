"""The Celery side: the app (Redis broker, late acks, reject on worker loss, a visibility
timeout above the longest job), the one Celery task that runs any job by id, and the
`mediakeep worker` entry point.

Celery only carries job ids. The task claims the job row with a conditional UPDATE, so a
message delivered twice (a redelivery after a lost worker, a re-publish by the sweeper) runs
the job at most once at a time; attempts are counted in the row (max-attempts guard against
poison messages), and retries are new messages with a countdown, not Celery retries.
"""

import asyncio
import os
import sys
import threading
from typing import Any

import structlog
from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from mediakeep.config import Settings
from mediakeep.jobs.registry import load_extra_tasks
from mediakeep.jobs.runner import ServicesBuilder, execute, new_worker_id, sweep_jobs, sweep_period
from mediakeep.services import Services

log = structlog.get_logger(__name__)

TASK_NAME = "mediakeep.run_job"
QUEUE = "mediakeep"
VISIBILITY_MARGIN = 3600  # seconds above MEDIA_JOB_TIMEOUT


def visibility_timeout(settings: Settings) -> int:
    """How long Redis keeps a delivered, unacknowledged message before handing it out again:
    longer than any job may run, so a running job is never delivered twice by the broker."""
    return int(settings.job_timeout.total_seconds()) + VISIBILITY_MARGIN


def create_celery(settings: Settings) -> Celery:
    app = Celery("mediakeep", set_as_current=False)
    job_limit = int(settings.job_timeout.total_seconds())
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2.0,
        broker_transport_options={
            "visibility_timeout": visibility_timeout(settings),
            "socket_connect_timeout": 2.0,
        },
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # The runner stops a job at MEDIA_JOB_TIMEOUT; this hard limit only catches a child
        # that no longer answers at all.
        task_time_limit=job_limit + 300,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,
    )

    def run_job(job_id: str) -> str:
        return _runtime(settings).run(job_id)

    app.task(
        name=TASK_NAME,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )(run_job)
    return app


def send_job(app: Celery, job_id: str, delay: float = 0.0) -> None:
    """Publish one job id (blocking; fails at once when the broker is down)."""
    app.send_task(
        TASK_NAME,
        args=[job_id],
        queue=QUEUE,
        countdown=delay if delay > 0 else None,
        retry=False,
    )


async def _not_started(_settings: Settings) -> Services:
    raise RuntimeError("run_worker was not called: no Services builder for this worker")


# Set by run_worker before the pool forks (a child inherits it).
_build_services: ServicesBuilder = _not_started


class _Runtime:
    """One event loop and one set of Services per worker process (made after the fork)."""

    def __init__(self, settings: Settings) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.services = self.loop.run_until_complete(_build_services(settings))
        self.worker_id = new_worker_id("celery")

    def run(self, job_id: str) -> str:
        return self.loop.run_until_complete(execute(self.services, job_id, self.worker_id))


_runtime_lock = threading.Lock()
_current: _Runtime | None = None


def _runtime(settings: Settings) -> _Runtime:
    global _current
    with _runtime_lock:
        if _current is None or _current.pid != os.getpid():
            _current = _Runtime(settings)
        return _current


def _forget_parent_runtime(**_: Any) -> None:
    global _current
    _current = None  # a pool child never uses its parent's engines or loop


worker_process_init.connect(_forget_parent_runtime, weak=False)


def _sweeper(settings: Settings, stop: threading.Event) -> None:
    """In the worker's main process: re-queue jobs of dead workers and re-send lost ones."""

    async def loop() -> None:
        services = await _build_services(settings)
        period = sweep_period(settings)
        while not stop.is_set():
            try:
                await sweep_jobs(services, republish=True)
            except Exception as exc:  # keep sweeping; the database or broker may come back
                log.warning("job sweep failed", error=str(exc))
            # Hold no connection between sweeps: pool children forked meanwhile must not
            # inherit a live one.
            await services.db.dispose()
            await asyncio.to_thread(stop.wait, period)
        if services.dispatcher is not None:
            await services.dispatcher.stop()

    asyncio.run(loop())


def run_worker(
    settings: Settings,
    concurrency: int,
    build_worker_services: ServicesBuilder,
    loglevel: str = "WARNING",
) -> None:
    """`mediakeep worker` with MEDIA_QUEUE_BACKEND=celery: a Celery worker (prefork pool). The
    CLI hands it `bootstrap.build_worker_services`; pool children inherit it when forked."""
    global _build_services
    _build_services = build_worker_services
    loaded = load_extra_tasks()
    app = create_celery(settings)
    stop = threading.Event()

    def _ready(**_: Any) -> None:
        threading.Thread(target=_sweeper, args=(settings, stop), daemon=True).start()
        extra = f", test tasks from {','.join(loaded)}" if loaded else ""
        sys.stderr.write(
            f"mediakeep worker ready (celery, concurrency {concurrency}, pid {os.getpid()}"
            f"{extra})\n"
        )
        sys.stderr.flush()

    def _shutdown(**_: Any) -> None:
        stop.set()

    worker_ready.connect(_ready, weak=False)
    worker_shutdown.connect(_shutdown, weak=False)

    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--loglevel={loglevel}",
            "-Q",
            QUEUE,
            "-n",
            f"mediakeep-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
