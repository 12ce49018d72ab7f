"""Job start latency: an async upload's commit → its `media.process` job `active`, for both
dispatchers, on real processes.

    .venv/bin/python bench/jobs.py [--jobs 30] [--rounds 3] [--work-dir DIR]

Starts, on loopback, with SQLite and local storage in the work dir:

  local   `mediakeep serve` with its own worker processes (MEDIA_WORKERS=2), nudged through a
          pipe after each commit (and polling every MEDIA_JOB_POLL_INTERVAL=1s as a fallback)
  celery  redis-server, `mediakeep serve --no-worker` and `mediakeep worker --concurrency 2`

and uploads small PNGs with `async=true`, one at a time (the queue is idle, so this measures
latency, not throughput), alternating between the two stacks in rounds (A/B interleaved). For
each job the latency is `started_at - created_at` as the server recorded them (one clock):
`created_at` is stamped when the job row is built, just before the upload's transaction
commits, so the figure includes the commit. The goal (DESIGN.md) is p95 < 1 s. Results go to
bench/results/jobs.json.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyvips

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "jobs.json"
MEDIAKEEP = Path(sys.executable).parent / "mediakeep"
HOST = "127.0.0.1"
GOAL_P95 = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def png(seed: int) -> bytes:
    image = pyvips.Image.gaussnoise(64, 48, mean=128, sigma=60, seed=seed).cast("uchar")
    return bytes(image.bandjoin([image, image]).copy(interpretation="srgb").pngsave_buffer())


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Stack:
    name: str
    work: Path
    env: dict[str, str]
    port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    until_done: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.work / log).open("ab") as out:
            process = subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.work,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def wait_log(self, log: str, mark: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if mark in (self.work / log).read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no {mark!r} in {log}:\n{(self.work / log).read_text()}")

    def wait_http(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: API not ready")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def base_env(work: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MEDIA_", "DB_POSTGRESQL", "AUTH_", "CELERY_", "REDIS_"))
    }
    return env | {
        "MEDIA_DATA_DIR": str(work / "data"),
        "MEDIA_API_HOST": HOST,
        "MEDIA_API_PORT": str(port),
        "AUTH_ENABLED": "false",
        "AUTH_SECRET_KEY": "bench-secret-" + "x" * 40,
        "MEDIA_RATE_LIMIT_ENABLED": "false",
        "MEDIA_LOG_LEVEL": "WARNING",
        "MEDIA_WORKERS": "2",
        "VIPS_BLOCK_UNTRUSTED": "1",
    }


def migrate(stack: Stack) -> None:
    subprocess.run(
        [str(MEDIAKEEP), "migrate"], env=stack.env, cwd=stack.work, check=True, capture_output=True
    )


def start_local(root: Path) -> Stack:
    work = root / "local"
    work.mkdir()
    port = free_port()
    stack = Stack("local", work, base_env(work, port), port)
    migrate(stack)
    stack.spawn([str(MEDIAKEEP), "serve"], "serve.log")
    stack.wait_http()
    stack.wait_log("serve.log", "mediakeep worker ready", 60)
    return stack


def start_celery(root: Path) -> Stack:
    work = root / "celery"
    work.mkdir()
    port = free_port()
    redis_port = free_port()
    env = base_env(work, port) | {
        "MEDIA_QUEUE_BACKEND": "celery",
        "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
    }
    stack = Stack("celery", work, env, port)
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    stack.spawn(
        [redis, "--port", str(redis_port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        "redis.log",
    )
    stack.wait_log("redis.log", "Ready to accept connections")
    migrate(stack)
    stack.spawn([str(MEDIAKEEP), "serve", "--no-worker"], "serve.log")
    stack.spawn([str(MEDIAKEEP), "worker", "--concurrency", "2"], "worker.log")
    stack.wait_http()
    stack.wait_log("worker.log", "mediakeep worker ready", 60)
    return stack


def one_job(stack: Stack, client: httpx.Client, seed: int) -> None:
    response = client.post(
        f"{stack.url}/api/v1/media/upload",
        files={"file": (f"b{seed}.png", png(seed), "image/png")},
        data={"async": "true"},
    )
    if response.status_code != 202:
        raise RuntimeError(f"{stack.name}: upload answered {response.status_code}: {response.text}")
    job_id = response.json()["job"]["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"{stack.url}/api/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "canceled"):
            break
        time.sleep(0.02)
    else:
        raise RuntimeError(f"{stack.name}: job {job_id} did not end: {job}")
    if job["status"] != "completed":
        raise RuntimeError(f"{stack.name}: job {job_id} ended {job}")
    created = parse_time(job["created_at"])
    stack.latencies.append((parse_time(job["started_at"]) - created).total_seconds())
    stack.until_done.append((parse_time(job["finished_at"]) - created).total_seconds())


def summary(stack: Stack) -> dict[str, Any]:
    ms = [v * 1000 for v in stack.latencies]
    done = [v * 1000 for v in stack.until_done]
    return {
        "dispatcher": stack.name,
        "jobs": len(ms),
        "start_latency_ms": {
            "p50": round(percentile(ms, 0.50), 1),
            "p95": round(percentile(ms, 0.95), 1),
            "max": round(max(ms), 1),
            "mean": round(statistics.fmean(ms), 1),
        },
        "created_to_completed_ms": {
            "p50": round(percentile(done, 0.50), 1),
            "p95": round(percentile(done, 0.95), 1),
        },
        "goal_p95_ms": GOAL_P95 * 1000,
        "meets_goal": percentile(ms, 0.95) < GOAL_P95 * 1000,
        "samples_ms": [round(v, 2) for v in ms],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="jobs per dispatcher")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds the jobs are split in")
    parser.add_argument("--gap", type=float, default=0.1, help="idle seconds between jobs")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="mediakeep-bench-jobs-"))
    root.mkdir(parents=True, exist_ok=True)
    stacks: list[Stack] = []
    try:
        stacks = [start_local(root), start_celery(root)]
        with httpx.Client(timeout=30) as client:
            for stack in stacks:  # warm-up: first imports, first connections
                for seed in range(2):
                    one_job(stack, client, 10_000 + seed + (100 if stack.name == "celery" else 0))
                stack.latencies.clear()
                stack.until_done.clear()
            per_round = max(1, args.jobs // args.rounds)
            seed = 0
            for round_number in range(args.rounds):
                order = stacks if round_number % 2 == 0 else list(reversed(stacks))
                for stack in order:
                    for _ in range(per_round):
                        seed += 1
                        one_job(stack, client, seed)
                        time.sleep(args.gap)
    finally:
        for stack in stacks:
            stack.stop()
    results = [summary(stack) for stack in stacks]
    print(
        f"job start latency (upload committed -> job active), {per_round * args.rounds} "
        f"jobs each, {args.rounds} A/B rounds, goal p95 < {GOAL_P95 * 1000:.0f} ms"
    )
    print(
        f"{'dispatcher':<10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8} "
        f"{'done p50':>9} {'goal':>5}"
    )
    for result in results:
        lat = result["start_latency_ms"]
        print(
            f"{result['dispatcher']:<10} {lat['p50']:>8.1f} {lat['p95']:>8.1f} {lat['max']:>8.1f} "
            f"{lat['mean']:>8.1f} {result['created_to_completed_ms']['p50']:>9.1f} "
            f"{'ok' if result['meets_goal'] else 'MISS':>5}"
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "jobs",
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "commit": commit,
                "method": "started_at - created_at of media.process jobs of async uploads, "
                "one at a time on an idle queue; SQLite + local storage; 2 workers",
                "machine": {"uname": " ".join(platform.uname()), "nproc": os.cpu_count()},
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    if root != args.work_dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
