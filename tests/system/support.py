"""A `mediakeep serve` process started the way a user starts it: no `mediakeep migrate` first."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.services import free_port
from tests.live import HOST, mediakeep_executable

FAST_AUTH = {"AUTH_ARGON2_TIME_COST": "1", "AUTH_ARGON2_MEMORY_KIB": "1024"}


class Serve:
    """One `mediakeep serve --no-worker` process, started with no `mediakeep migrate` before."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    mediakeep_executable(),
                    "serve",
                    "--no-worker",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout: float = 90) -> None:
        """Until /readyz says 200 (database and storage checked); fails if the process ends."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    pytest.fail(f"serve exited with {self.proc.returncode}:\n{self.log()}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        return
                time.sleep(0.05)  # poll interval while the process migrates and binds
        pytest.fail(f"serve not ready after {timeout}s:\n{self.log()}")

    def register(self, email: str) -> httpx.Response:
        """A request that needs the schema: users, orgs and memberships are written."""
        body = {"email": email, "password": "a-long-password"}
        return httpx.post(f"{self.base_url}/api/v1/auth/register", json=body, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def servers() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        server.stop()
