"""Two real `mediakeep serve` processes on one Redis spend one budget between them."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.services import free_port

HOST = "127.0.0.1"


def _mediakeep() -> str:
    beside = Path(sys.executable).parent / "mediakeep"
    if not beside.is_file():
        pytest.skip("the `mediakeep` command is not installed in this environment")
    return str(beside)


def _env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    scrubbed = ("MEDIA_", "DB_POSTGRESQL", "AUTH_", "CELERY_", "REDIS_", "PG")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrubbed)}
    return (
        env
        | {
            "VIPS_BLOCK_UNTRUSTED": "1",
            "MEDIA_DATA_DIR": str(data_dir),
            "MEDIA_API_HOST": HOST,
            "MEDIA_API_PORT": str(port),
            "AUTH_ENABLED": "false",
            "AUTH_SECRET_KEY": "shared-budget-secret-" + "x" * 40,
            "MEDIA_LOG_LEVEL": "WARNING",
            "MEDIA_SWEEP_INTERVAL": "1h",
        }
        | extra
    )


@contextlib.contextmanager
def serving(tmp_path: Path, name: str, **extra: str) -> Iterator[str]:
    """A `mediakeep serve` process with its own data dir; its base URL. Stopped by PID."""
    data_dir = tmp_path / name
    data_dir.mkdir()
    port = free_port()
    env = _env(data_dir, port, **extra)
    migrated = subprocess.run(
        [_mediakeep(), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    log_path = tmp_path / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [_mediakeep(), "serve", "--host", HOST, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.05)  # poll interval while the process binds its port
        yield base_url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _alternate(first: str, second: str, times: int) -> list[httpx.Response]:
    answers = []
    with httpx.Client(timeout=10) as client:
        for n in range(times):
            answers.append(client.get(f"{first if n % 2 == 0 else second}/api/v1/media"))
    return answers


@pytest.mark.slow
def test_two_api_processes_on_one_redis_share_the_anonymous_budget(
    tmp_path: Path, redis_url: str
) -> None:
    # AUTH_ENABLED=false: every caller is the local admin, limited by the user tier.
    shared = {"REDIS_URL": redis_url, "MEDIA_RATE_LIMIT_USER": "5/minute"}
    with serving(tmp_path, "a", **shared) as a, serving(tmp_path, "b", **shared) as b:
        answers = _alternate(a, b, 6)
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    assert [int(r.headers["x-ratelimit-remaining"]) for r in answers] == [4, 3, 2, 1, 0, 0]
    assert {r.headers["x-ratelimit-limit"] for r in answers} == {"5"}
    assert answers[-1].json()["error"]["code"] == "rate.limited"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60


@pytest.mark.slow
def test_without_redis_each_process_has_its_own_budget(tmp_path: Path) -> None:
    alone = {"MEDIA_RATE_LIMIT_USER": "5/minute"}
    with serving(tmp_path, "a", **alone) as a, serving(tmp_path, "b", **alone) as b:
        answers = _alternate(a, b, 10)
    assert [r.status_code for r in answers] == [200] * 10
    assert [int(r.headers["x-ratelimit-remaining"]) for r in answers[-2:]] == [0, 0]
