"""Mixed load run: uploads and reads at once against a real `mediakeep serve`, with locust.

    .venv/bin/python bench/load.py [--duration 60] [--users 16] [--peer-duration 15]
                                   [--distributed] [--work-dir DIR]

Embedded mode (the default): one `mediakeep serve` (SQLite, local storage, in-process
workers, auth on with an API key, rate limits on but far above the load) on loopback.
--distributed instead runs PostgreSQL, SeaweedFS (S3), Redis and `mediakeep serve --no-worker`
plus one `mediakeep worker` (Celery), all started with tests/fixtures/services.py.

For --duration seconds, --users locust users (bench/load_users.py, a process of its own) loop
without think time over: multipart uploads of small JPEGs with unique bytes and of bytes
uploaded before (dedup), GET one media, list, presign followed by a ranged read of the signed
URL, and POST transform-url followed by the /t/ render (mostly three hot sizes, a quarter never
asked before). Reported per request type: count, p50/p95/p99, failures, 5xx. The mediakeep
process trees (API and workers) are sampled every second for RSS and open file descriptors.

Goals (DESIGN.md, reliability): 0 × 5xx; flat RSS and fds, defined here as: the mean of the last
5 samples ≤ FLAT_RATIO × the mean of the 5 samples ending where warm-up ends (--warmup, default
20 % of the run, at least 10 s); the slope after warm-up is printed too. The throughput peer is
the same users against FastAPI's hello world (bench/load_hello.py, the uvicorn settings of
`mediakeep serve`) on this machine, run for --peer-duration before and after the mediakeep run;
the ratio is printed, without a goal (the mix does real work: variants, renders, fsyncs).
Results: bench/results/load.json (load-distributed.json); the last line is RESULT {json}
(bench/_common.py).
"""

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

RESULTS = common.ROOT / "bench" / "results" / "load.json"
USERS_SCRIPT = Path(__file__).resolve().parent / "load_users.py"
HELLO_SCRIPT = Path(__file__).resolve().parent / "load_hello.py"
FLAT_RATIO = 1.1
SAMPLE_EVERY = 1.0
GENEROUS = "1000000/minute"
# Base pictures for uploads: sizes of phone thumbnails to small web images.
IMAGE_SIZES = [(320, 240), (480, 360), (640, 480), (800, 600)]
SEED_MEDIA = 16


def make_images(directory: Path) -> list[Path]:
    """Photo-like JPEGs (smooth noise at two scales plus grain), deterministic."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (width, height) in enumerate(IMAGE_SIZES):
        path = directory / f"base-{width}x{height}.jpg"
        if not path.exists():
            bands = []
            for band in range(3):
                coarse = pyvips.Image.perlin(width, height, cell_size=128 >> band, uchar=False)
                fine = pyvips.Image.perlin(width, height, cell_size=16 + 8 * band, uchar=False)
                bands.append(coarse * 90 + fine * 30 + 128 + index * 5)
            image = bands[0].bandjoin(bands[1:]) + pyvips.Image.gaussnoise(width, height, sigma=6)
            image.cast("uchar").copy(interpretation="srgb").jpegsave(str(path), Q=85)
        paths.append(path)
    return paths


def tree_fds(pid: int) -> int:
    total = 0
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        try:
            total += process.num_fds()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class TreeSampler(threading.Thread):
    """RSS and open fds of process trees, once a second: (seconds since start, bytes, fds)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: list[tuple[float, int, int]] = []
        self._done = threading.Event()
        self._t0 = time.monotonic()

    def _take(self) -> None:
        elapsed = time.monotonic() - self._t0
        rss = sum(common.tree_rss(pid) for pid in self.pids)
        fds = sum(tree_fds(pid) for pid in self.pids)
        self.samples.append((round(elapsed, 2), rss, fds))

    def run(self) -> None:
        self._take()
        while not self._done.wait(SAMPLE_EVERY):
            self._take()

    def finish(self) -> list[tuple[float, int, int]]:
        self._done.set()
        self.join()
        self._take()
        return self.samples


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, in units per minute."""
    if len(points) < 2:
        return 0.0
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / var * 60


def flatness(samples: list[tuple[float, int, int]], column: int, warmup: float) -> dict[str, Any]:
    values = [(s[0], float(s[column])) for s in samples]
    before = [v for t, v in values if t <= warmup][-5:] or [values[0][1]]
    after = [(t, v) for t, v in values if t >= warmup]
    end = [v for _, v in values[-5:]]
    warm = sum(before) / len(before)
    last = sum(end) / len(end)
    return {
        "start": values[0][1],
        "after_warmup": round(warm, 1),
        "peak": max(v for _, v in values),
        "end": round(last, 1),
        "end_over_warmup": round(last / warm, 3) if warm else None,
        "slope_per_min_after_warmup": round(slope_per_minute(after), 2),
    }


class Stack:
    """The mediakeep processes under load and the services they use, stopped in reverse."""

    def __init__(self) -> None:
        self.server: common.Server | None = None
        self.mediakeep: list[common.Process] = []
        self.services: list[Any] = []
        self.mode = ""

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.mediakeep]

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.mediakeep)

    def rss_fds(self) -> tuple[int, int]:
        return (
            sum(common.tree_rss(pid) for pid in self.pids),
            sum(tree_fds(pid) for pid in self.pids),
        )

    def stop(self) -> None:
        for process in reversed(self.mediakeep):
            process.stop()
        for service in reversed(self.services):
            service.stop()
            if hasattr(service, "cleanup"):
                service.cleanup()


def start_stack(work: Path, distributed: bool) -> Stack:
    stack = Stack()
    overrides: dict[str, object] = {
        "AUTH_ENABLED": "true",
        "MEDIA_RATE_LIMIT_ANONYMOUS": GENEROUS,
        "MEDIA_RATE_LIMIT_USER": GENEROUS,
        "MEDIA_RATE_LIMIT_API_KEY": GENEROUS,
    }
    try:
        if not distributed:
            stack.mode = "embedded: SQLite, local storage, in-process workers"
            env = common.mediakeep_env(work / "data", **overrides)
            stack.server = common.start_mediakeep(work, env, worker=True)
            stack.mediakeep.append(stack.server)
            return stack
        sys.path.insert(0, str(common.ROOT))
        from tests.fixtures.services import start_postgres, start_redis, start_seaweedfs

        stack.mode = (
            "distributed: PostgreSQL, SeaweedFS S3, Redis (rate limits, events, Celery broker), "
            "`serve --no-worker` + `mediakeep worker` (Celery, concurrency 2)"
        )
        pg = start_postgres(work)
        stack.services.append(pg)
        redis = start_redis(work)
        stack.services.append(redis)
        s3 = start_seaweedfs(work)
        stack.services.append(s3)
        s3.create_bucket("bench-load")
        overrides |= {
            "DB_POSTGRESQL_WRITE_DSN": pg.dsn,
            "MEDIA_STORAGE_BACKEND": "s3",
            "MEDIA_S3_ENDPOINT": s3.endpoint,
            "MEDIA_S3_BUCKET": "bench-load",
            "MEDIA_S3_ACCESS_KEY_ID": s3.access_key,
            "MEDIA_S3_SECRET_ACCESS_KEY": s3.secret_key,
            "MEDIA_S3_REGION": s3.region,
            "MEDIA_S3_USE_PATH_STYLE": "true",
            "MEDIA_QUEUE_BACKEND": "celery",
            "REDIS_URL": redis.url,
        }
        env = common.mediakeep_env(work / "data", **overrides)
        stack.server = common.start_mediakeep(work, env, worker=False)
        stack.mediakeep.append(stack.server)
        worker = common.Process(
            "worker",
            [str(common.MEDIAKEEP), "worker", "--concurrency", "2", "--loglevel", "WARNING"],
            common.mediakeep_env(work / "worker-data", **overrides),
            work / "worker.log",
            cwd=work,
        )
        stack.mediakeep.append(worker)
        worker.start()
        worker.wait_log("mediakeep worker ready", timeout=90)
    except BaseException:
        stack.stop()
        raise
    return stack


def error_excerpt(processes: list[common.Process], limit: int = 80) -> list[str]:
    """What the mediakeep logs (structlog JSON lines) say about warnings and errors, since the
    work dir may be removed afterwards: one line each, plus the end of the first traceback."""
    lines: list[str] = []
    traceback_shown = False
    for process in processes:
        for raw in process.log_text().splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                if "Traceback" in raw or "Error" in raw:
                    lines.append(f"{process.name}: {raw[:300]}")
                continue
            if not isinstance(entry, dict) or entry.get("level") not in ("warning", "error"):
                continue
            detail = {k: v for k, v in entry.items() if k not in ("exception", "timestamp")}
            lines.append(f"{process.name}: {json.dumps(detail)[:300]}")
            if entry.get("exception") and not traceback_shown:
                traceback_shown = True
                lines += [f"    {x}" for x in str(entry["exception"]).splitlines()[-25:]]
    return lines[:limit]


def run_users(
    url: str, setup: Path, users: int, seconds: float, out: Path, log: Path
) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("ab") as sink:
        done = subprocess.run(
            [
                sys.executable,
                str(USERS_SCRIPT),
                "--host",
                url,
                "--setup",
                str(setup),
                "--users",
                str(users),
                "--duration",
                str(seconds),
                "--out",
                str(out),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=seconds + 180,
            check=False,
        )
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"locust users failed (exit {done.returncode}); see {log}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats: dict[str, Any] = json.loads(out.read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stats["load_generator_cpu_s"] = round(cpu, 1)
    return stats


def print_table(stats: dict[str, Any]) -> None:
    print(
        f"{'request type':<20} {'count':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'fail':>5} {'5xx':>4}"
    )
    for name, row in sorted(stats["by_type"].items()):
        print(
            f"{name:<20} {row['count']:>7} {row['req_per_s']:>7.1f} {row['p50_ms']:>7.0f} "
            f"{row['p95_ms']:>7.0f} {row['p99_ms']:>7.0f} {row['failures']:>5} "
            f"{row['status_5xx']:>4}"
        )
    print(
        f"{'all':<20} {stats['requests']:>7} {stats['req_per_s']:>7.1f}   "
        f"({stats['seconds']} s, {stats['users']} users, load generator "
        f"{stats['load_generator_cpu_s']} CPU s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--peer-duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=None, help="seconds (default 20%%)")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="PostgreSQL + SeaweedFS + Redis + a Celery worker instead of embedded mode",
    )
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else max(10.0, args.duration * 0.2)
    if warmup + 10 > args.duration:
        raise SystemExit("--duration must exceed the warm-up by at least 10 s")

    with common.work_dir(args.work_dir, "bench-load-") as work:
        info = common.machine(work)
        print(common.describe(info), flush=True)
        images = make_images(work / "images")
        stack = start_stack(work, args.distributed)
        assert stack.server is not None
        server = stack.server
        print(f"mode: {stack.mode}", flush=True)
        hello_port = common.free_port()
        hello = common.Server(
            "hello",
            [sys.executable, str(HELLO_SCRIPT), "--port", str(hello_port)],
            server.env,
            work / "hello.log",
            hello_port,
        )
        try:
            hello.start()
            account = common.create_account(server.url)
            ids = common.seed_jpegs(
                server.url, account.headers, [p.read_bytes() for p in images], SEED_MEDIA
            )
            setup = work / "setup.json"
            setup.write_text(
                json.dumps(
                    {"headers": account.headers, "ids": ids, "images": [str(p) for p in images]}
                )
            )
            log = work / "locust.log"
            print(f"peer: hello world, {args.peer_duration:.0f} s", flush=True)
            peer_before = run_users(
                hello.url, setup, args.users, args.peer_duration, work / "peer1.json", log
            )
            common.wait_idle(hello.cpu_seconds)
            print(f"mediakeep: {args.duration:.0f} s, warm-up {warmup:.0f} s", flush=True)
            sampler = TreeSampler(stack.pids)
            sampler.start()
            try:
                stats = run_users(
                    server.url, setup, args.users, args.duration, work / "mk.json", log
                )
            finally:
                samples = sampler.finish()
            # Work the load left queued (variants, renders) ends before the second peer run.
            common.wait_idle(stack.cpu_seconds)
            idle_rss, idle_fds = stack.rss_fds()
            print(f"peer: hello world, {args.peer_duration:.0f} s", flush=True)
            peer_after = run_users(
                hello.url, setup, args.users, args.peer_duration, work / "peer2.json", log
            )
            alive = all(p.running for p in stack.mediakeep)
        finally:
            hello.stop()
            stack.stop()
        server_errors = error_excerpt(stack.mediakeep)

    print("\nmediakeep, per request type:")
    print_table(stats)
    print("\nhello world (peer), before and after:")
    print_table(peer_before)
    print_table(peer_after)

    rss = flatness(samples, 1, warmup)
    fds = flatness(samples, 2, warmup)
    mib = common.MiB
    print(
        f"\nRSS (API + workers) MiB: start {rss['start'] / mib:.1f}, after warm-up "
        f"{rss['after_warmup'] / mib:.1f}, peak {rss['peak'] / mib:.1f}, end "
        f"{rss['end'] / mib:.1f}; end/warm-up {rss['end_over_warmup']}; slope after warm-up "
        f"{rss['slope_per_min_after_warmup'] / mib:+.2f} MiB/min; idle after the run "
        f"{idle_rss / mib:.1f}"
    )
    print(
        f"open fds (API + workers): start {fds['start']:.0f}, after warm-up "
        f"{fds['after_warmup']:.1f}, peak {fds['peak']:.0f}, end {fds['end']:.1f}; end/warm-up "
        f"{fds['end_over_warmup']}; slope after warm-up {fds['slope_per_min_after_warmup']:+.2f}"
        f"/min; idle after the run {idle_fds}"
    )

    rows = stats["by_type"].values()
    total_5xx = sum(r["status_5xx"] for r in rows)
    no_answer = sum(r["statuses"].get("no answer", 0) for r in rows)
    other_failures = stats["failures"] - total_5xx
    peer_rps = (peer_before["req_per_s"] + peer_after["req_per_s"]) / 2
    ratio = stats["req_per_s"] / peer_rps if peer_rps else 0.0
    print(
        f"\nthroughput: mediakeep {stats['req_per_s']:.1f} req/s, hello world "
        f"{peer_before['req_per_s']:.1f} / {peer_after['req_per_s']:.1f} req/s (before/after); "
        f"ratio {ratio:.3f}"
    )
    print(
        f"verdict 0 × 5xx: {'MET' if total_5xx == 0 else 'NOT MET'} ({total_5xx} × 5xx, "
        f"{other_failures} other failures of which {no_answer} without an answer, "
        f"{stats['requests']} requests; mediakeep processes alive at the end: {alive})"
    )
    if server_errors:
        print(f"\nserver log, errors and warnings ({len(server_errors)} lines shown):")
        print("\n".join(server_errors))
    rss_flat = (rss["end_over_warmup"] or 0) <= FLAT_RATIO
    fds_flat = (fds["end_over_warmup"] or 0) <= FLAT_RATIO
    print(
        f"verdict flat RSS (end ≤ {FLAT_RATIO}× after warm-up): "
        f"{'MET' if rss_flat else 'NOT MET'} ({rss['end_over_warmup']}×)"
    )
    print(
        f"verdict flat fds (end ≤ {FLAT_RATIO}× after warm-up): "
        f"{'MET' if fds_flat else 'NOT MET'} ({fds['end_over_warmup']}×)"
    )

    document = {
        "setup": {
            "duration_s": args.duration,
            "warmup_s": warmup,
            "users": args.users,
            "peer_duration_s": args.peer_duration,
            "mode": stack.mode,
            "auth": "API key (X-API-Key)",
            "machine": info,
            "commit": common.git_commit(),
        },
        "mediakeep": stats,
        "peer_before": peer_before,
        "peer_after": peer_after,
        "throughput_ratio_vs_hello": round(ratio, 4),
        "rss_bytes": rss,
        "fds": fds,
        "idle_after": {"rss_bytes": idle_rss, "fds": idle_fds},
        "samples": samples,
        "mediakeep_alive_at_end": alive,
        "server_log_errors": server_errors,
    }
    common.write_json(
        RESULTS.with_name("load-distributed.json") if args.distributed else RESULTS, document
    )
    goals = [
        common.goal("5xx answers under mixed load", total_5xx, "<=", 0),
        common.goal("RSS end / after warm-up", rss["end_over_warmup"], "<=", FLAT_RATIO, "x"),
        common.goal("open fds end / after warm-up", fds["end_over_warmup"], "<=", FLAT_RATIO, "x"),
    ]
    common.emit_result(
        "load-distributed" if args.distributed else "load",
        goals,
        requests=stats["requests"],
        req_per_s=stats["req_per_s"],
        failures=stats["failures"],
        throughput_ratio_vs_hello=round(ratio, 4),
        rss_slope_mib_per_min=round(rss["slope_per_min_after_warmup"] / mib, 3),
        fds_slope_per_min=fds["slope_per_min_after_warmup"],
    )


if __name__ == "__main__":
    main()
