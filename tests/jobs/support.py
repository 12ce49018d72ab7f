"""Helpers for the job tests: a real `mediakeep worker` process, polling jobs, enqueuing the
test-only tasks, and what the storage holds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from mediakeep.jobs import service as jobs
from mediakeep.services import Services
from tests.live import base_env, mediakeep_executable

ROOT = Path(__file__).resolve().parents[2]
JOBS = "/api/v1/jobs"
TERMINAL = {"completed", "failed", "canceled"}
READY_MARK = "mediakeep worker ready"

# Worker processes import the test-only tasks (and find the `tests` package) through these.
TEST_TASKS_ENV = {
    "MEDIAKEEP_TEST_TASKS": "tests.jobs.tasks_for_tests",
    "PYTHONPATH": str(ROOT),
}

# Timings that keep the fault tests short: a dead worker is noticed after 3 s.
FAST_JOBS: dict[str, Any] = {
    "workers": 2,
    "job_max_attempts": 3,
    "job_heartbeat_interval": "0.2s",
    "job_stale_after": "3s",
    "job_poll_interval": "0.5s",
    "job_retry_delay": "0.2s",
    "job_republish_after": "3s",
}
FAST_JOBS_ENV = {
    "MEDIA_WORKERS": "2",
    "MEDIA_JOB_MAX_ATTEMPTS": "3",
    "MEDIA_JOB_HEARTBEAT_INTERVAL": "0.2s",
    "MEDIA_JOB_STALE_AFTER": "3s",
    "MEDIA_JOB_POLL_INTERVAL": "0.5s",
    "MEDIA_JOB_RETRY_DELAY": "0.2s",
    "MEDIA_JOB_REPUBLISH_AFTER": "3s",
}


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


@dataclass
class WorkerProcess:
    """`mediakeep worker ARGS` configured only by environment variables; stopped by PID."""

    env: dict[str, str]
    log_path: Path
    args: list[str] = field(default_factory=lambda: ["--concurrency", "2"])
    cwd: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 90) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [mediakeep_executable(), "worker", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.cwd or self.log_path.parent),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"mediakeep worker exited with {self._proc.returncode}:\n{_tail(self.log_path)}"
                )
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if READY_MARK.encode() in log.read():
                    return
            time.sleep(0.05)  # poll the log while the worker connects to its broker
        self.kill()
        raise RuntimeError(f"mediakeep worker not ready after {timeout}s:\n{_tail(self.log_path)}")

    def tree(self) -> list[int]:
        if self._proc is None:
            return []
        try:
            children = psutil.Process(self._proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        return [self._proc.pid, *(child.pid for child in children)]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the worker and every process below it (by PID) and reap it."""
        for pid in self.tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=30)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL whatever is left."""
        if self._proc is None:
            return
        pids = self.tree()
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        self._proc = None


def worker_env(settings_env: dict[str, str]) -> dict[str, str]:
    return base_env() | settings_env | TEST_TASKS_ENV


async def wait_job(
    client: httpx.AsyncClient,
    job_id: str,
    *,
    headers: dict[str, str] | None = None,
    until: set[str] | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Poll GET /jobs/{id} until its status is in `until` (default: a terminal one)."""
    wanted = until or TERMINAL
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"{JOBS}/{job_id}", headers=headers or {})
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in wanted:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} not {sorted(wanted)} after {timeout}s: {body}")


async def enqueue(
    services: Services,
    org_id: str,
    type: str,
    params: dict[str, Any] | None = None,
    media_id: str | None = None,
) -> str:
    """Write a job the way product code does: in a unit of work, published after commit."""
    import tests.jobs.tasks_for_tests  # noqa: F401 - registers the test tasks here too

    async with services.db.write_session() as session:
        job = await jobs.enqueue(
            services, session, org_id=org_id, type=type, params=params, media_id=media_id
        )
        return job.id


async def wait_for_file_lines(path: Path, count: int, timeout: float = 30) -> list[list[str]]:
    """The first `count` lines of a pid file a test task appends to."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
            if len(lines) >= count:
                return lines
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not get {count} lines in {timeout}s")


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_pid_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_gone(pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"process {pid} still runs after {timeout}s")


def local_objects(root: Path, prefix: str) -> list[str]:
    base = root / prefix
    if not base.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file())
