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
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

ROOT = common.ROOT
RESULTS = ROOT / "bench" / "results" / "jobs.json"
MEDIAKEEP = common.MEDIAKEEP
HOST = common.HOST
GOAL_P95 = 1.0
percentile = common.percentile


def png(seed: int) -> bytes:
    image = pyvips.Image.gaussnoise(64, 48, mean=128, sigma=60, seed=seed).cast("uchar")
    return bytes(image.bandjoin([image, image]).copy(interpretation="srgb").pngsave_buffer())


parse_time = common.parse_time


@dataclass
class Stack:
    name: str
    work: Path
    env: dict[str, str]
    processes: list[common.Process] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    until_done: list[float] = field(default_factory=list)
    url: str = ""

    def spawn(self, process: common.Process) -> common.Process:
        self.processes.append(process)
        process.start()
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def base_env(work: Path, port: int) -> dict[str, str]:
    return common.mediakeep_env(
        work / "data",
        MEDIA_API_HOST=HOST,
        MEDIA_API_PORT=port,
        MEDIA_RATE_LIMIT_ENABLED="false",
        MEDIA_WORKERS=2,
    )


def start_local(root: Path) -> Stack:
    work = root / "local"
    work.mkdir()
    port = common.free_port()
    stack = Stack("local", work, base_env(work, port))
    server = common.start_mediakeep(work, stack.env, port=port, name="serve")
    stack.processes.append(server)
    stack.url = server.url
    return stack


def start_celery(root: Path) -> Stack:
    work = root / "celery"
    work.mkdir()
    port = common.free_port()
    redis_port = common.free_port()
    env = base_env(work, port) | {
        "MEDIA_QUEUE_BACKEND": "celery",
        "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
    }
    stack = Stack("celery", work, env)
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    argv = [redis, "--port", str(redis_port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    stack.spawn(common.Process("redis", argv, env, work / "redis.log", work)).wait_log(
        "Ready to accept connections"
    )
    server = common.start_mediakeep(work, env, worker=False, port=port, name="serve")
    stack.processes.append(server)
    stack.url = server.url
    worker = [str(MEDIAKEEP), "worker", "--concurrency", "2"]
    stack.spawn(common.Process("worker", worker, env, work / "worker.log", work)).wait_log(
        "mediakeep worker ready"
    )
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


def run(root: Path, stacks: list[Stack], args: argparse.Namespace) -> None:
    stacks.append(start_local(root))
    if shutil.which("redis-server") or Path("/usr/bin/redis-server").exists():
        stacks.append(start_celery(root))
    else:
        print("celery dispatcher skipped: redis-server is not installed", flush=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="jobs per dispatcher")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds the jobs are split in")
    parser.add_argument("--gap", type=float, default=0.1, help="idle seconds between jobs")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    stacks: list[Stack] = []
    with common.work_dir(args.work_dir, "mediakeep-bench-jobs-") as root:
        info = common.machine(root)
        print(common.describe(info), flush=True)
        try:
            run(root, stacks, args)
        finally:
            for stack in stacks:
                stack.stop()
    per_round = max(1, args.jobs // args.rounds)
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
    common.write_json(
        args.output,
        common.document(
            "jobs",
            method="started_at - created_at of media.process jobs of async uploads, "
            "one at a time on an idle queue; SQLite + local storage; 2 workers",
            machine=info,
            results=results,
        ),
    )
    goals = [
        common.goal(
            f"job start p95, {r['dispatcher']}",
            r["start_latency_ms"]["p95"],
            "<",
            GOAL_P95 * 1000,
            "ms",
        )
        for r in results
    ]
    common.emit_result("jobs", goals, jobs=per_round * args.rounds, rounds=args.rounds)


if __name__ == "__main__":
    main()
