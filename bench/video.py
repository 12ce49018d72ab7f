"""Video benchmark: the HLS ladder job against the bare ffmpeg command it runs, on a real server.

    .venv/bin/python bench/video.py [--seconds 10] [--pairs 3] [--renditions 1080,720,480,360]

Generates a 1080p clip (ffmpeg `testsrc2` + `sine`, H.264/AAC MP4, `--seconds` long) with the
ffmpeg binary mediakeep itself uses (`processing.hls.ffmpeg_binary()`), starts a real
`mediakeep serve` (SQLite, local storage, its own in-process workers,
MEDIA_VIDEO_AUTO_STREAM=false so that nothing encodes unasked) and, per pair, A/B interleaved
(service first in even pairs, bare first in odd ones):

  idle      GET /healthz at a steady --rate (default 20 req/s) for --idle seconds on the idle
            server: the reference latency.
  upload    the clip, `async=true`; the `media.process` job's start latency is
            `started_at - created_at` as the server recorded them (as bench/jobs.py does); the
            stream job's own start latency is measured the same way.
  service   POST /api/v1/media/{id}/stream {renditions} and wait for the job to end: wall =
            the job's `finished_at - started_at` (probe, the ffmpeg run, copying the files into
            storage, the commit); peak RSS of the worker's ffmpeg child tree, sampled every
            50 ms; /healthz sampled at --rate meanwhile.
  bare      the argv `hls.build_command` makes for that ladder (`-progress pipe:1` included,
            its output thrown away) without the job's thread cap (MEDIA_FFMPEG_THREADS) or its
            nice level, run directly on the same file: ffmpeg as a bare run uses the machine;
            wall, peak RSS of its tree; /healthz sampled at the same rate (same load).

Each media is deleted after its pair, so the next upload is not a dedup hit. The server runs
with MEDIA_FFMPEG_THREADS from `--ffmpeg-threads` (default: the server's own default, the CPUs
less one); the cap trades the ladder's wall time for the API's latency, so on two cores the two
goals pull against each other: run it with each setting to see which pair of figures each
gives. Goals (DESIGN.md, issue 20): wall ≤ 1.15× bare, ffmpeg peak RSS ≤ 1.1× bare, /healthz
p99 during a transcode ≤ 2× idle, job start < 1 s after upload. Results go to
bench/results/video.json.
"""

import argparse
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from mediakeep.processing import hls  # noqa: E402

RESULTS = common.ROOT / "bench" / "results" / "video.json"
MiB = common.MiB
GOAL_WALL = 1.15
GOAL_RSS = 1.1
GOAL_HEALTHZ = 2.0
GOAL_START_S = 1.0


def make_clip(ffmpeg: str, path: Path, seconds: float) -> None:
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            "8M",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-shortest",
            "-movflags",
            "+faststart",
            str(path),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )


parse_time = common.parse_time


# --------------------------------------------------------------------------- sampling


class HealthzProbe(threading.Thread):
    """GET /healthz at a steady rate on one keep-alive connection; latencies in ms."""

    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.url = url + "/healthz"
        self.period = 1 / rate
        self.latencies: list[float] = []
        self.errors = 0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            due = time.perf_counter()
            while not self._done.is_set():
                started = time.perf_counter()
                try:
                    ok = http.get(self.url).status_code == 200
                except httpx.TransportError:
                    ok = False
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.errors += not ok
                due += self.period
                # A late answer does not make the next requests bunch up to catch up.
                due = max(due, time.perf_counter())
                self._done.wait(max(0.0, due - time.perf_counter()))

    def finish(self) -> list[float]:
        self._done.set()
        self.join()
        return self.latencies


class FfmpegWatch:
    """RSS of the stream job's ffmpeg (and its children) in the server's tree, and how long it
    lived (first to last seen, 50 ms apart): the job's wall minus this is what the service
    adds around ffmpeg."""

    def __init__(self, server_pid: int, binary: str) -> None:
        self.server_pid = server_pid
        self.binary = binary
        self.pid: int | None = None
        self.started: float | None = None
        self.last_seen: float | None = None
        self.sampled: float | None = None
        self.longest_gap = 0.0
        self.lost = 0
        self.pids: set[int] = set()

    def rss(self) -> int:
        now = time.time()
        if self.sampled is not None:
            self.longest_gap = max(self.longest_gap, now - self.sampled)
        self.sampled = now
        # Once found, only the ffmpeg's own tree is read, as on the bare side: a scan of the
        # whole server tree every 50 ms would load the service side more than the bare one.
        if self.pid is not None:
            total = common.tree_rss(self.pid)
            if total:
                self.last_seen = time.time()
                return total
            # Gone (or unreadable): look again rather than read 0 for the rest of the job.
            # A run of 2026-12-07 kept a peak of 18 MiB and a lifetime of 0.85 s for a 9.2 s
            # ffmpeg; `lost` and `longest_gap` (seconds between two samples) tell the cases.
            self.lost += 1
            self.pid = None
        try:
            below = psutil.Process(self.server_pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        for process in below:
            try:
                if process.exe() != self.binary:
                    continue
                # The stream job's own ffmpeg only (its output dir is the job's scratch dir
                # `tmp/stream-<job id>-*`): another ffmpeg of the server's (the 2026-12-07
                # runs caught a short one of 18 MiB at the start of some stream jobs) is not
                # the ladder's, and latching onto it lost the ladder's peak.
                if not any("/stream-" in arg for arg in process.cmdline()):
                    continue
                if self.started is None:
                    # When first seen, not psutil's create_time(): that is derived from the
                    # boot time and was off by ≈ 0.8 s here (a lifetime longer than its job).
                    self.started = time.time()
                self.pid = process.pid
                self.pids.add(process.pid)
                self.last_seen = time.time()
                return common.tree_rss(process.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return 0

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.last_seen is None:
            return None
        return self.last_seen - self.started


# --------------------------------------------------------------------------- one pair


@dataclass
class Side:
    wall_s: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)
    healthz_ms: list[float] = field(default_factory=list)
    healthz_errors: int = 0


@dataclass
class Results:
    service: Side = field(default_factory=Side)
    bare: Side = field(default_factory=Side)
    idle_healthz_ms: list[float] = field(default_factory=list)
    upload_job_start_s: list[float] = field(default_factory=list)
    stream_job_start_s: list[float] = field(default_factory=list)
    service_observed_s: list[float] = field(default_factory=list)
    service_ffmpeg_s: list[float] = field(default_factory=list)
    # Per service run: ffmpeg PIDs the watch latched onto, reads of 0 (its end included) and
    # the longest time between two samples (a stalled sampler would miss the peak).
    service_watch: list[dict[str, float]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)


def wait_job(
    http: httpx.Client, job_id: str, timeout: float = 900, every: float = 0.05
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "canceled"):
            if job["status"] != "completed":
                raise SystemExit(f"job {job_id} ended {job['status']}: {job['failed_reason']}")
            return job
        time.sleep(every)
    raise SystemExit(f"job {job_id} did not end in {timeout:.0f} s")


def job_start(job: dict[str, Any]) -> float:
    return (parse_time(job["started_at"]) - parse_time(job["created_at"])).total_seconds()


def upload(http: httpx.Client, clip: Path, results: Results) -> str:
    with clip.open("rb") as handle:
        response = http.post(
            "/api/v1/media/upload",
            files={"file": (clip.name, handle, "video/mp4")},
            data={"async": "true"},
        )
    if response.status_code != 202:
        raise SystemExit(f"upload answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    done = wait_job(http, body["job"]["id"])
    results.upload_job_start_s.append(job_start(done))
    return str(body["media"]["id"])


def run_service(
    http: httpx.Client,
    server: common.Server,
    binary: str,
    media_id: str,
    renditions: list[int],
    rate: float,
    results: Results,
) -> tuple[float, int]:
    probe = HealthzProbe(server.url, rate)
    watch = FfmpegWatch(server.pid, binary)
    sampler = common.RssSampler(watch.rss)
    probe.start()
    sampler.start()
    try:
        started = time.perf_counter()
        asked = http.post(f"/api/v1/media/{media_id}/stream", json={"renditions": renditions})
        if asked.status_code != 202:
            raise SystemExit(f"stream answered {asked.status_code}: {asked.text[:300]}")
        # Seldom: polling is load the bare side does not carry (the wall time is the job's
        # own timestamps, not when the poll saw it end).
        job = wait_job(http, asked.json()["job"]["id"], every=0.5)
        observed = time.perf_counter() - started
    finally:
        peak = sampler.finish()
        latencies = probe.finish()
    state = http.get(f"/api/v1/media/{media_id}/stream").json()
    if state.get("status") != "ready":
        raise SystemExit(f"the stream is {state}, not ready")
    wall = (parse_time(job["finished_at"]) - parse_time(job["started_at"])).total_seconds()
    results.stream_job_start_s.append(job_start(job))
    results.service_observed_s.append(observed)
    if watch.seconds is not None:
        results.service_ffmpeg_s.append(watch.seconds)
    results.service_watch.append(
        {"pids": len(watch.pids), "zero_reads": watch.lost, "longest_gap_s": watch.longest_gap}
    )
    results.service.wall_s.append(wall)
    results.service.peak_rss.append(peak)
    results.service.healthz_ms += latencies
    results.service.healthz_errors += probe.errors
    return wall, peak


def run_bare(
    argv: list[str], out_dir: Path, server: common.Server, rate: float, side: Side
) -> tuple[float, int]:
    hls.clear(out_dir)
    out_dir.mkdir(parents=True)
    probe = HealthzProbe(server.url, rate)
    probe.start()
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        with common.RssSampler(lambda: common.tree_rss(process.pid)) as sampler:
            _, stderr = process.communicate()
        wall = time.perf_counter() - started
    finally:
        latencies = probe.finish()
    if process.returncode != 0:
        raise SystemExit(f"bare ffmpeg failed: {hls.describe_failure(stderr)}")
    hls.check_outputs(out_dir, hls=True)
    side.wall_s.append(wall)
    side.peak_rss.append(sampler.peak)
    side.healthz_ms += latencies
    side.healthz_errors += probe.errors
    return wall, sampler.peak


def idle_healthz(server: common.Server, rate: float, seconds: float, results: Results) -> None:
    common.wait_idle(server.cpu_seconds, timeout=120)
    probe = HealthzProbe(server.url, rate)
    probe.start()
    time.sleep(seconds)
    results.idle_healthz_ms += probe.finish()


# --------------------------------------------------------------------------- report


def p99(values: list[float]) -> float:
    return common.percentile(values, 0.99)


def table(results: Results) -> str:
    rows = []
    for name, side in (("service (stream job)", results.service), ("bare ffmpeg", results.bare)):
        rows.append(
            [
                name,
                f"{statistics.median(side.wall_s):.2f}",
                f"{max(side.peak_rss) / MiB:.0f} MiB",
                f"{common.percentile(side.healthz_ms, 0.5):.2f}",
                f"{p99(side.healthz_ms):.2f}",
            ]
        )
    idle = results.idle_healthz_ms
    rows.append(["idle server", "", "", f"{common.percentile(idle, 0.5):.2f}", f"{p99(idle):.2f}"])
    header = ["side", "wall s (median)", "ffmpeg peak RSS", "/healthz p50 ms", "/healthz p99 ms"]
    return common.text_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the 1080p clip")
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs (≥ 3)")
    parser.add_argument("--renditions", default="1080,720,480,360", help="ladder heights")
    parser.add_argument("--rate", type=float, default=20.0, help="/healthz requests per second")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle /healthz")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--ffmpeg-threads", type=int, default=0, help="the server's MEDIA_FFMPEG_THREADS (0: auto)"
    )
    args = parser.parse_args()
    if args.pairs < 3:
        parser.error("at least 3 pairs: this machine's speed drifts")
    renditions = [int(x) for x in args.renditions.split(",") if x.strip()]
    binary = hls.ffmpeg_binary()
    results = Results()
    with common.work_dir(args.work_dir, "mediakeep-bench-video-") as work:
        info = common.machine(work)
        print(f"{common.describe(info)}\nffmpeg: {binary}", flush=True)
        clip = work / "clip.mp4"
        make_clip(binary, clip, args.seconds)
        warm = work / "warm.mp4"
        make_clip(binary, warm, 1)
        print(
            f"-- clip: 1920x1080, {args.seconds:g} s, {clip.stat().st_size / 1e6:.1f} MB; "
            f"ladder {renditions}",
            flush=True,
        )
        # The job's own command: same binary, demuxer, ladder and options (with -progress).
        streams = hls.probe_streams(clip, "mov")
        ladder = hls.plan_ladder(
            streams.height,
            renditions,
            video=True,
            audio=streams.audio,
            source_width=streams.width,
        )
        out_dir = work / "bare-out"
        argv = hls.build_command(binary, clip, "mov", out_dir, ladder, hls=True, progress=True)
        env = common.mediakeep_env(
            work / "data", MEDIA_VIDEO_AUTO_STREAM="false", MEDIA_FFMPEG_THREADS=args.ffmpeg_threads
        )
        server = common.start_mediakeep(work, env)
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                # Warm-up on a 1 s clip, not measured: first imports in the workers, the
                # ffmpeg binary in the page cache.
                media_id = upload(http, warm, results)
                run_service(http, server, binary, media_id, renditions, args.rate, results)
                http.delete(f"/api/v1/media/{media_id}").raise_for_status()
                results = Results()
                for pair in range(args.pairs):
                    # Where this pair's /healthz samples start in the pooled lists: the p99s
                    # of each pair give the spread the pooled figure hides.
                    marks = (
                        len(results.idle_healthz_ms),
                        len(results.service.healthz_ms),
                        len(results.bare.healthz_ms),
                    )
                    idle_healthz(server, args.rate, args.idle, results)
                    media_id = upload(http, clip, results)
                    common.wait_idle(server.cpu_seconds, timeout=120)
                    order = ["service", "bare"] if pair % 2 == 0 else ["bare", "service"]
                    seen: dict[str, tuple[float, int]] = {}
                    for name in order:
                        if name == "service":
                            seen[name] = run_service(
                                http, server, binary, media_id, renditions, args.rate, results
                            )
                        else:
                            seen[name] = run_bare(argv, out_dir, server, args.rate, results.bare)
                    http.delete(f"/api/v1/media/{media_id}").raise_for_status()
                    row: dict[str, Any] = {
                        "pair": pair + 1,
                        "order": "/".join(order),
                        "service_wall_s": round(seen["service"][0], 3),
                        "bare_wall_s": round(seen["bare"][0], 3),
                        "wall_ratio": round(seen["service"][0] / seen["bare"][0], 3),
                        "service_ffmpeg_peak_mib": round(seen["service"][1] / MiB, 1),
                        "bare_peak_mib": round(seen["bare"][1] / MiB, 1),
                        "rss_ratio": round(seen["service"][1] / seen["bare"][1], 3),
                        "healthz_p99_idle_ms": round(p99(results.idle_healthz_ms[marks[0] :]), 2),
                        "healthz_p99_service_ms": round(
                            p99(results.service.healthz_ms[marks[1] :]), 2
                        ),
                        "healthz_p99_bare_ms": round(p99(results.bare.healthz_ms[marks[2] :]), 2),
                    }
                    row["healthz_ratio"] = round(
                        row["healthz_p99_service_ms"] / row["healthz_p99_idle_ms"], 3
                    )
                    results.pairs.append(row)
                    print(
                        f"   pair {pair + 1}/{args.pairs} ({row['order']}): service "
                        f"{row['service_wall_s']:.2f} s, bare {row['bare_wall_s']:.2f} s, "
                        f"wall {row['wall_ratio']:.3f}×; ffmpeg peak RSS "
                        f"{row['service_ffmpeg_peak_mib']:.0f} / {row['bare_peak_mib']:.0f} MiB "
                        f"({row['rss_ratio']:.3f}×); /healthz p99 idle "
                        f"{row['healthz_p99_idle_ms']:.1f}, service "
                        f"{row['healthz_p99_service_ms']:.1f}, bare "
                        f"{row['healthz_p99_bare_ms']:.1f} ms ({row['healthz_ratio']:.2f}×); "
                        "upload job start "
                        f"{results.upload_job_start_s[-1] * 1000:.0f} ms; watch "
                        f"{results.service_watch[-1]}",
                        flush=True,
                    )
        finally:
            server.stop()

    wall_ratio = statistics.median(row["wall_ratio"] for row in results.pairs)
    rss_ratio = statistics.median(row["rss_ratio"] for row in results.pairs)
    healthz_ratio = p99(results.service.healthz_ms) / p99(results.idle_healthz_ms)
    pair_healthz = sorted(row["healthz_ratio"] for row in results.pairs)
    starts = results.upload_job_start_s + results.stream_job_start_s
    print()
    print(
        f"video: {len(ladder.heights)}-rung HLS+DASH ladder {list(ladder.heights)} of a "
        f"{args.seconds:g} s 1080p clip, the stream job vs its own ffmpeg argv run bare "
        f"({args.pairs} interleaved pairs; ratios = medians of each pair's ratio; /healthz at "
        f"{args.rate:g} req/s during both sides and for {args.idle:g} s idle per pair)"
    )
    print(table(results))
    print()
    verdict = {True: "met", False: "NOT met"}
    lines = [
        ("wall, service / bare", f"{wall_ratio:.3f}×", f"≤ {GOAL_WALL}×", wall_ratio <= GOAL_WALL),
        (
            "ffmpeg peak RSS, service / bare",
            f"{rss_ratio:.3f}×",
            f"≤ {GOAL_RSS}×",
            rss_ratio <= GOAL_RSS,
        ),
        (
            "/healthz p99, transcoding / idle",
            f"{healthz_ratio:.2f}×",
            f"≤ {GOAL_HEALTHZ}×",
            healthz_ratio <= GOAL_HEALTHZ,
        ),
        (
            "job start after upload (max)",
            f"{max(starts) * 1000:.0f} ms",
            f"< {GOAL_START_S * 1000:.0f} ms",
            max(starts) < GOAL_START_S,
        ),
    ]
    for name, measured, target, met in lines:
        print(f"{name:<34} {measured:>9}  goal {target:<9} {verdict[met]}")
    print(
        "(pooled p99s above; each pair's /healthz p99 transcoding / idle: "
        + ", ".join(f"{r:.2f}" for r in pair_healthz)
        + "; wall ratios "
        + ", ".join(f"{row['wall_ratio']:.3f}" for row in results.pairs)
        + ")"
    )
    uploads = ", ".join(f"{s * 1000:.0f}" for s in results.upload_job_start_s)
    streams_started = ", ".join(f"{s * 1000:.0f}" for s in results.stream_job_start_s)
    print(
        f"(job start: media.process {uploads} ms; media.stream {streams_started} ms; "
        f"stream POST → completed seen by the client, median "
        f"{statistics.median(results.service_observed_s):.2f} s)"
    )
    if results.service_ffmpeg_s:
        print(
            "(the worker's ffmpeg lived "
            + ", ".join(f"{s:.2f}" for s in results.service_ffmpeg_s)
            + " s of the job walls "
            + ", ".join(f"{s:.2f}" for s in results.service.wall_s)
            + " s; sampled every 50 ms)"
        )
    document = common.document(
        "video",
        machine=info,
        clip={"width": 1920, "height": 1080, "seconds": args.seconds, "fps": 30},
        ladder=list(ladder.heights),
        argv=argv,
        pairs=results.pairs,
        samples=asdict(results) | {"pairs": None},
        summary={
            "wall_ratio": wall_ratio,
            "rss_ratio": rss_ratio,
            "healthz_p99_idle_ms": p99(results.idle_healthz_ms),
            "healthz_p99_transcoding_ms": p99(results.service.healthz_ms),
            "healthz_p99_bare_ms": p99(results.bare.healthz_ms),
            "healthz_ratio": healthz_ratio,
            "healthz_ratio_per_pair": pair_healthz,
            "job_start_max_s": max(starts),
        },
    )
    common.write_json(args.output, document)
    common.emit_result(
        "video",
        [
            common.goal("HLS ladder wall, service / bare ffmpeg", wall_ratio, "<=", GOAL_WALL, "x"),
            common.goal("ffmpeg peak RSS, service / bare", rss_ratio, "<=", GOAL_RSS, "x"),
            common.goal("/healthz p99, transcoding / idle", healthz_ratio, "<=", GOAL_HEALTHZ, "x"),
            common.goal(
                "job start after upload (max)", max(starts) * 1000, "<", GOAL_START_S * 1000, "ms"
            ),
        ],
        figures={
            "MEDIA_FFMPEG_THREADS of the server (0: auto)": args.ffmpeg_threads,
            "service wall s (median)": round(statistics.median(results.service.wall_s), 2),
            "bare wall s (median)": round(statistics.median(results.bare.wall_s), 2),
            "worker's ffmpeg lifetime s (median)": round(
                statistics.median(results.service_ffmpeg_s or [0.0]), 2
            ),
            "/healthz p99 idle ms": round(p99(results.idle_healthz_ms), 2),
            "/healthz p99 transcoding ms": round(p99(results.service.healthz_ms), 2),
            "/healthz p99 during bare ffmpeg ms": round(p99(results.bare.healthz_ms), 2),
            "/healthz p99 ratio per pair, min": pair_healthz[0],
            "/healthz p99 ratio per pair, max": pair_healthz[-1],
        },
        seconds=args.seconds,
        pairs=args.pairs,
    )


if __name__ == "__main__":
    main()
