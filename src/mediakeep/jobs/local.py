"""The local dispatcher's workers: processes of `mediakeep worker --local`, started and watched
by `mediakeep serve` (MEDIA_WORKERS of them), each running one job at a time from the jobs
table.

A worker polls for due jobs every MEDIA_JOB_POLL_INTERVAL and is woken at once by a byte on its
stdin, which the API process writes after each enqueue commits. End of file on stdin means its
owner is gone: the worker hands its job back and exits. Idle workers sweep: an active job whose
heartbeat is older than MEDIA_JOB_STALE_AFTER belonged to a worker that died and is re-queued.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import structlog

from mediakeep.config import Settings
from mediakeep.jobs.registry import load_extra_tasks
from mediakeep.jobs.runner import (
    ServicesBuilder,
    claim_next,
    new_worker_id,
    run_claimed,
    sweep_jobs,
    sweep_period,
)

log = structlog.get_logger(__name__)

RESTART_DELAY = 1.0  # a worker that died within this long of its start is restarted slower


def worker_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "mediakeep.cli", "worker", "--local", *extra]


@dataclass
class _Slot:
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


@dataclass
class LocalWorkerPool:
    """N worker processes owned by this process: restarted when they die, nudged on enqueue,
    stopped (jobs handed back) on shutdown."""

    settings: Settings
    size: int
    _slots: list[_Slot] = field(default_factory=list)
    _supervisor: "asyncio.Task[None] | None" = None
    _stopping: bool = False

    async def start(self) -> None:
        self._slots = [_Slot() for _ in range(self.size)]
        for slot in self._slots:
            self._spawn(slot)
        self._supervisor = asyncio.create_task(self._supervise())
        log.info("local workers started", count=self.size)

    def _spawn(self, slot: _Slot) -> None:
        env = os.environ | self.settings.as_env()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            worker_command("--nudge-stdin"),
            stdin=subprocess.PIPE,
            env=env,
            # Not in the terminal's process group: a Ctrl-C reaches `serve`, which then stops
            # its workers in order (they hand their jobs back) instead of racing it.
            start_new_session=True,
        )
        assert process.stdin is not None
        os.set_blocking(process.stdin.fileno(), False)
        slot.process = process
        slot.started = time.monotonic()

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.2)
            for slot in self._slots:
                process = slot.process
                if process is None or process.poll() is None:
                    continue
                if slot.restart_at == 0.0:
                    quick = time.monotonic() - slot.started < RESTART_DELAY * 5
                    slot.failures = slot.failures + 1 if quick else 0
                    slot.restart_at = time.monotonic() + min(30.0, RESTART_DELAY * slot.failures)
                    log.warning(
                        "local worker exited; restarting it",
                        pid=process.pid,
                        returncode=process.returncode,
                    )
                if time.monotonic() >= slot.restart_at and not self._stopping:
                    slot.restart_at = 0.0
                    with contextlib.suppress(OSError):
                        if process.stdin is not None:
                            process.stdin.close()
                    self._spawn(slot)

    def nudge(self) -> None:
        """Wake every idle worker (the first to claim the new job wins)."""
        for slot in self._slots:
            process = slot.process
            if process is None or process.stdin is None or process.poll() is not None:
                continue
            with contextlib.suppress(OSError):  # full pipe (already nudged) or a dead worker
                os.write(process.stdin.fileno(), b"\n")

    def alive(self) -> int:
        return sum(1 for s in self._slots if s.process is not None and s.process.poll() is None)

    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process is not None]

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every worker (each hands its job back), then SIGKILL what is left."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        processes = [s.process for s in self._slots if s.process is not None]
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.to_thread(process.wait, remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.to_thread(process.wait)
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        log.info("local workers stopped", count=len(processes))


async def run_local_worker(
    settings: Settings, build_worker_services: ServicesBuilder, *, nudge_stdin: bool = False
) -> None:
    """One local worker: claim the oldest due job, run it, repeat; sweep when idle. The CLI
    hands it `bootstrap.build_worker_services` (composition stays above the job machinery)."""
    loaded = load_extra_tasks()
    services = await build_worker_services(settings)
    worker_id = new_worker_id("local")
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if nudge_stdin:
        stdin = sys.stdin.fileno()
        os.set_blocking(stdin, False)

        def on_input() -> None:
            try:
                data = os.read(stdin, 4096)
            except BlockingIOError:
                return
            if not data:  # the owning process is gone
                loop.remove_reader(stdin)
                stop.set()
            wake.set()

        loop.add_reader(stdin, on_input)
    extra = f", test tasks from {','.join(loaded)}" if loaded else ""
    sys.stderr.write(f"mediakeep worker ready (local, pid {os.getpid()}{extra})\n")
    sys.stderr.flush()
    poll = settings.job_poll_interval.total_seconds()
    period = sweep_period(settings)
    next_sweep = 0.0
    try:
        while not stop.is_set():
            wake.clear()  # before looking: a nudge from now on is not lost
            try:
                job = await claim_next(services, worker_id)
                if job is not None:
                    await run_claimed(services, job, worker_id, stop=stop)
                    continue
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + period
                    await sweep_jobs(services)
            except Exception as exc:  # the database may be restarting: wait and try again
                log.warning("local worker loop failed", error=str(exc))
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=poll, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()
    finally:
        await services.db.dispose()
