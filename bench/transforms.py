"""Signed-transform benchmark: mediakeep's `/t/` against thumbor 7.8, A/B interleaved.

    .venv/bin/python bench/transforms.py [--pairs 3] [--duration 12] [--work-dir DIR]

What it measures, each figure with wrk (`apt-get install wrk` when missing; without it, a
Python asyncio load generator, and the results say so):

  cold c=8   a 320-ish px JPEG q80 centre crop of a 24 MP JPEG (photo-like, Q90), of a
             1080p PNG (a UI screenshot, what 1080p PNGs mostly are) and of a photo-like
             1080p PNG (smooth structure and grain: the costliest PNG to inflate); every
             request asks for a size never asked before (widths 240..439 × heights 140..359,
             shuffled, a disjoint slice per run), so neither side can answer from a cache.
             mediakeep: `/t/{sig}/w_W,h_H,fit_cover,q_80,f_jpeg/{id}` (URLs signed ahead);
             thumbor: `/unsafe/WxH/[filters:format(jpeg)/]file` with the file loader,
             ENGINE_THREADPOOL_SIZE=4, no storage and no result storage, QUALITY=80.
             req/s, p99 and each server's peak RSS (sampled every 50 ms).
  RSS c=32   per source, one more cold mediakeep run at c=8 and straight after it one at c=32
             (the same age of the process): the c=32 peak RSS over the c=8 one.
  cached     req/s of `/t/` answers already rendered (64 warmed URLs) at c=8, one worker, A/B
             interleaved with `/healthz` of the same server: the app's own ceiling here.

Both servers run for the whole benchmark (one `mediakeep serve --no-worker` process with SQLite
and local storage; one thumbor process), both with MALLOC_ARENA_MAX=2 (see MALLOC_ENV); the
pairs alternate which side goes first, and every run waits until both servers are idle (a
stopped load generator leaves renders running). thumbor is installed at run time into
/tmp/thumbor-venv from PyPI, never into this repository.
Goals (DESIGN.md, issue 20): cold ≥ 2.5× thumbor (24 MP JPEG), ≥ 1.5× (each 1080p PNG), p99
and peak RSS ≤ thumbor's; RSS at c=32 ≤ 1.1× c=8; cached ≥ 2,000 req/s. Results:
bench/results/transforms.json.
"""

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyvips

from mediakeep.kit import signing

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

ROOT = common.ROOT
RESULTS = ROOT / "bench" / "results" / "transforms.json"
MEDIAKEEP = common.MEDIAKEEP
Server = common.Server
THUMBOR_VENV = Path("/tmp/thumbor-venv")
THUMBOR_VERSION = "7.8.0"
HOST = common.HOST
MiB = common.MiB
SECRET = "bench-secret-" + "k" * 40
WIDTHS = range(240, 440)
HEIGHTS = range(140, 360)
GOALS = {"jpeg24mp": 2.5, "png1080p": 1.5, "photopng1080p": 1.5}
GOAL_RSS_RATIO = 1.1
GOAL_CACHED = 2000.0


# --------------------------------------------------------------------------- inputs


def photo_like(width: int, height: int) -> pyvips.Image:
    """Smooth structure (Perlin noise at three scales per band) plus fine grain: compresses and
    decodes like a photograph, unlike pure noise."""
    bands = []
    for band in range(3):
        layer = pyvips.Image.perlin(width, height, cell_size=512 >> band, uchar=False)
        detail = pyvips.Image.perlin(width, height, cell_size=48 + 16 * band, uchar=False)
        bands.append(layer * 90 + detail * 30 + 128)
    image = bands[0].bandjoin(bands[1:])
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, mean=0)
    return (image + grain).cast("uchar").copy(interpretation="srgb")


def screenshot_like(width: int, height: int) -> pyvips.Image:
    """What 1080p PNGs mostly are: a UI screenshot (flat panels, a gradient, rows of "text",
    one photo inset), deterministic."""
    rng = random.Random(1080)
    image = pyvips.Image.black(width, height, bands=3).new_from_image([236, 238, 242])
    image = image.draw_rect([40, 44, 52], 0, 0, width, 56, fill=True)
    image = image.draw_rect([250, 250, 252], 0, 56, 300, height - 56, fill=True)
    ramp = pyvips.Image.xyz(width - 340, 180)[0] / (width - 340) * 120 + 90
    image = image.insert(ramp.bandjoin([ramp * 0.6 + 40, ramp * 0.3 + 120]).cast("uchar"), 320, 80)
    ink = (pyvips.Image.gaussnoise(width, height, mean=128, sigma=90) > 200).ifthenelse(
        [60, 60, 70], [255, 255, 255]
    )
    mask = pyvips.Image.black(width, height)
    for row in range(300, height - 40, 28):
        x = 340
        while x < width - 400:
            word = rng.randint(30, 140)
            mask = mask.draw_rect(255, x, row, word, 12, fill=True)
            x += word + rng.randint(8, 24)
    for row in range(80, height - 40, 24):
        mask = mask.draw_rect(255, 20, row, rng.randint(120, 260), 10, fill=True)
    image = (mask > 0).ifthenelse(ink, image)
    image = image.insert(photo_like(560, 360), width - 620, 320)
    return image.cast("uchar").copy(interpretation="srgb")


def make_inputs(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    jpeg = directory / "photo24.jpg"
    png = directory / "screenshot1080.png"
    photo_png = directory / "photo1080.png"
    if not jpeg.exists():
        photo_like(6000, 4000).jpegsave(str(jpeg), Q=90)
    if not png.exists():
        screenshot_like(1920, 1080).pngsave(str(png), compression=6)
    if not photo_png.exists():
        photo_like(1920, 1080).pngsave(str(photo_png), compression=6)
    return {"jpeg24mp": jpeg, "png1080p": png, "photopng1080p": photo_png}


def cold_sizes(seed: int) -> list[tuple[int, int]]:
    sizes = [(w, h) for w in WIDTHS for h in HEIGHTS]
    random.Random(seed).shuffle(sizes)
    return sizes


# --------------------------------------------------------------------------- servers


def ensure_thumbor() -> Path:
    binary = THUMBOR_VENV / "bin" / "thumbor"
    if binary.exists():
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
        if THUMBOR_VERSION in done.stdout + done.stderr:
            return binary
    if not (THUMBOR_VENV / "bin" / "python").exists():
        subprocess.run(["python3", "-m", "venv", str(THUMBOR_VENV)], check=True)
    subprocess.run(
        [str(THUMBOR_VENV / "bin" / "pip"), "install", "-q", f"thumbor=={THUMBOR_VERSION}"],
        check=True,
    )
    return binary


# glibc gives each thread that allocates its own arena (up to 8 per core) and keeps freed
# memory in them, so RSS creeps up with the number of threads that ever rendered; libvips
# deployments (imgproxy, sharp) cap them. Both servers get the same setting.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


def start_mediakeep(work: Path) -> Server:
    env = common.mediakeep_env(
        work / "mediakeep-data",
        AUTH_SECRET_KEY=SECRET,
        MEDIA_RATE_LIMIT_ENABLED="false",
        MEDIA_MAX_BYTES=64 * MiB,
        MEDIA_SWEEP_INTERVAL=None,
        VIPS_BLOCK_UNTRUSTED=None,
        **MALLOC_ENV,
    )
    return common.start_mediakeep(work, env, worker=False)


def start_thumbor(work: Path, binary: Path, images: Path) -> Server:
    conf = work / "thumbor.conf"
    conf.write_text(
        "\n".join(
            [
                "LOADER = 'thumbor.loaders.file_loader'",
                f"FILE_LOADER_ROOT_PATH = '{images}'",
                "STORAGE = 'thumbor.storages.no_storage'",
                "RESULT_STORAGE = None",
                "ENGINE_THREADPOOL_SIZE = 4",
                "QUALITY = 80",
                "ALLOW_UNSAFE_URL = True",
                "MAX_PIXELS = 100000000",
                "",
            ]
        )
    )
    port = common.free_port()
    server = Server(
        "thumbor",
        [str(binary), "-p", str(port), "-i", HOST, "-c", str(conf), "-l", "warning"],
        dict(os.environ) | MALLOC_ENV,
        work / "thumbor.log",
        port,
        ready_path="/healthcheck",
    )
    server.start()
    return server


# --------------------------------------------------------------------------- mediakeep URLs


@dataclass
class Source:
    name: str
    path: Path
    media_id: str = ""
    org_id: str = ""
    sizes: list[tuple[int, int]] = field(default_factory=list)
    cursor: int = 0
    seconds: float = 12.0

    def take(self, count: int) -> list[tuple[int, int]]:
        if self.cursor + count > len(self.sizes):
            raise SystemExit(f"{self.name}: out of never-used sizes; lower --duration")
        taken = self.sizes[self.cursor : self.cursor + count]
        self.cursor += count
        return taken


def options(width: int, height: int) -> str:
    return f"w_{width},h_{height},fit_cover,q_80,f_jpeg"


def mediakeep_path(source: Source, width: int, height: int) -> str:
    key = signing.derive_key(SECRET, "transform:" + source.org_id)
    segment = options(width, height)
    return f"/t/{signing.sign(key, f'{segment}/{source.media_id}')}/{segment}/{source.media_id}"


def thumbor_path(source: Source, width: int, height: int) -> str:
    fmt = "filters:format(jpeg)/" if source.path.suffix == ".png" else ""
    return f"/unsafe/{width}x{height}/{fmt}{source.path.name}"


def upload(server: Server, source: Source) -> None:
    with source.path.open("rb") as handle:
        response = httpx.post(
            f"{server.url}/api/v1/media/upload",
            files={"file": (source.path.name, handle, "application/octet-stream")},
            timeout=120,
        )
    response.raise_for_status()
    body = response.json()
    source.media_id, source.org_id = body["id"], body["org_id"]
    minted = httpx.post(
        f"{server.url}/api/v1/media/{source.media_id}/transform-url",
        json={"width": 10, "height": 10, "fit": "cover", "quality": 80, "format": "jpeg"},
        timeout=30,
    )
    minted.raise_for_status()
    expected = server.url + mediakeep_path(source, 10, 10)
    assert minted.json()["url"] == expected, (minted.json(), expected)


# --------------------------------------------------------------------------- load


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_seconds: float = 0.0  # the server's process tree, during the run

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else 0.0


def run_wrk(wrk: str, url: str, paths: list[str], concurrency: int, seconds: float) -> Load:
    data = common.run_wrk(wrk, url, paths, concurrency, seconds)
    return Load(
        requests=data["requests"],
        seconds=data["seconds"],
        errors=data["errors"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
    )


def run_python_load(url: str, paths: list[str], concurrency: int, seconds: float) -> Load:
    """The fallback when wrk cannot be installed: asyncio + httpx, one connection per worker."""

    async def main() -> Load:
        latencies: list[float] = []
        errors = 0
        counter = iter(range(10**9))
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    path = paths[next(counter) % len(paths)]
                    started = time.perf_counter()
                    response = await client.get(path)
                    latencies.append(time.perf_counter() - started)
                    if response.status_code >= 400:
                        errors += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return Load(
            requests=len(latencies),
            seconds=elapsed,
            errors=errors,
            p50_ms=latencies[len(latencies) // 2] * 1000,
            p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        )

    return asyncio.run(main())


@dataclass
class Bench:
    wrk: str | None
    duration: float
    servers: tuple[Server, Server]

    def load(self, server: Server, paths: list[str], concurrency: int, seconds: float) -> Load:
        if self.wrk:
            return run_wrk(self.wrk, server.url, paths, concurrency, seconds)
        return run_python_load(server.url, paths, concurrency, seconds)

    def measured(
        self, server: Server, paths: list[str], concurrency: int, seconds: float | None = None
    ) -> tuple[Load, int]:
        mediakeep, thumbor = self.servers
        common.wait_idle(mediakeep.cpu_seconds)
        common.wait_idle(thumbor.cpu_seconds)
        sampler = common.RssSampler(server.rss)
        cpu_before = server.cpu_seconds()
        sampler.start()
        try:
            result = self.load(server, paths, concurrency, seconds or self.duration)
        finally:
            peak = sampler.finish()
        # What the server spent per answer: unlike req/s, it hardly moves with what else runs on
        # the machine (renders left running when the load stops are counted, as they should).
        common.wait_idle(server.cpu_seconds)
        result.cpu_seconds = server.cpu_seconds() - cpu_before
        return result, peak


def capacity(duration: float, concurrency: int) -> int:
    """Never-used sizes one cold run may need: generous (100 req/s per 8 connections, far over
    what two cores render), so a run never wraps around to a size already cached."""
    return int(duration * 100 * max(1, concurrency // 8)) + 200


def fmt_load(load: Load, peak: int) -> dict[str, Any]:
    return {
        "requests": load.requests,
        "seconds": round(load.seconds, 2),
        "req_per_s": round(load.rps, 1),
        "p50_ms": round(load.p50_ms, 1),
        "p99_ms": round(load.p99_ms, 1),
        "errors": load.errors,
        "peak_rss_mib": round(peak / MiB, 1),
        "cpu_ms_per_req": round(load.cpu_ms_per_request, 2),
    }


def cold_run(bench: Bench, server: Server, source: Source, concurrency: int) -> tuple[Load, int]:
    seconds = source.seconds
    sizes = source.take(capacity(seconds, concurrency))
    if server.name == "mediakeep":
        paths = [mediakeep_path(source, w, h) for w, h in sizes]
    else:
        paths = [thumbor_path(source, w, h) for w, h in sizes]
    load, peak = bench.measured(server, paths, concurrency, seconds)
    if load.requests > len(paths):
        raise SystemExit(f"{server.name} ran past its {len(paths)} distinct sizes")
    return load, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per PNG run")
    parser.add_argument(
        "--jpeg-duration",
        type=float,
        default=30.0,
        help="seconds per 24 MP JPEG run (thumbor needs over a second per request there)",
    )
    parser.add_argument("--cached-duration", type=float, default=8.0)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_at_start = os.getloadavg()

    wrk = common.ensure_wrk()
    try:
        thumbor_bin = ensure_thumbor()
    except (OSError, subprocess.CalledProcessError) as exc:
        common.skip(
            "transforms", f"thumbor {THUMBOR_VERSION} (the peer) cannot be installed: {exc}"
        )
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-transforms-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "mediakeep-data", ignore_errors=True)
    images = make_inputs(work / "images")
    seconds = {
        "jpeg24mp": args.jpeg_duration,
        "png1080p": args.duration,
        "photopng1080p": args.duration,
    }
    sources = {
        name: Source(name, path, sizes=cold_sizes(index), seconds=seconds[name])
        for index, (name, path) in enumerate(images.items())
    }
    print(
        f"load generator: {'wrk' if wrk else 'python asyncio (wrk unavailable)'}; work dir {work}"
    )

    mediakeep = start_mediakeep(work)
    thumbor = start_thumbor(work, thumbor_bin, work / "images")
    bench = Bench(wrk, args.duration, (mediakeep, thumbor))
    results: dict[str, Any] = {"runs": [], "sources": {}}
    try:
        for source in sources.values():
            upload(mediakeep, source)
            results["sources"][source.name] = {
                "file": source.path.name,
                "bytes": source.path.stat().st_size,
                "media_id": source.media_id,
            }
            # One request each to load code paths and libraries (not measured).
            for server, path in (
                (mediakeep, mediakeep_path(source, *source.take(1)[0])),
                (thumbor, thumbor_path(source, *source.take(1)[0])),
            ):
                warm = httpx.get(server.url + path, timeout=120)
                assert warm.status_code == 200, (server.name, warm.status_code, warm.text[:300])

        per_source: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {"mediakeep": [], "thumbor": []} for name in sources
        }
        for pair in range(args.pairs):
            for source in sources.values():
                order = (mediakeep, thumbor) if pair % 2 == 0 else (thumbor, mediakeep)
                for server in order:
                    load, peak = cold_run(bench, server, source, 8)
                    row = fmt_load(load, peak) | {
                        "pair": pair,
                        "source": source.name,
                        "server": server.name,
                        "concurrency": 8,
                    }
                    per_source[source.name][server.name].append(row)
                    results["runs"].append(row)
                    print(json.dumps(row))

        # RSS against concurrency: a c=8 run straight before the c=32 one, so both are
        # measured at the same age of the process.
        rss8: dict[str, Any] = {}
        rss32: dict[str, Any] = {}
        for source in sources.values():
            for concurrency, into in ((8, rss8), (32, rss32)):
                load, peak = cold_run(bench, mediakeep, source, concurrency)
                row = fmt_load(load, peak) | {
                    "source": source.name,
                    "server": "mediakeep",
                    "concurrency": concurrency,
                    "rss_experiment": True,
                }
                results["runs"].append(row)
                print(json.dumps(row))
                into[source.name] = row

        warm_sizes = sources["jpeg24mp"].take(64)
        warm_paths = [mediakeep_path(sources["jpeg24mp"], w, h) for w, h in warm_sizes]
        for path in warm_paths:
            assert httpx.get(mediakeep.url + path, timeout=120).status_code == 200
        # The ceiling on this machine: /healthz through the same app and middleware, A/B
        # interleaved with the cached runs.
        cached_runs, healthz_runs = [], []
        for _ in range(2):
            cached_load, cached_peak = bench.measured(
                mediakeep, warm_paths, 8, args.cached_duration
            )
            cached_runs.append(fmt_load(cached_load, cached_peak))
            healthz_load, healthz_peak = bench.measured(
                mediakeep, ["/healthz"], 8, args.cached_duration
            )
            healthz_runs.append(fmt_load(healthz_load, healthz_peak))
            print(json.dumps({"cached": cached_runs[-1], "healthz": healthz_runs[-1]}))
        cached = max(cached_runs, key=lambda r: r["req_per_s"]) | {"concurrency": 8}
        cached["healthz_req_per_s"] = max(r["req_per_s"] for r in healthz_runs)
        cached["runs"] = cached_runs
        cached["healthz_runs"] = healthz_runs
    finally:
        mediakeep.stop()
        thumbor.stop()

    summary: dict[str, Any] = {}
    for name, sides in per_source.items():
        mk, th = sides["mediakeep"], sides["thumbor"]
        ratios = [
            a["req_per_s"] / b["req_per_s"] if b["req_per_s"] else float("inf")
            for a, b in zip(mk, th, strict=True)
        ]
        cpu_ratios = [
            b["cpu_ms_per_req"] / a["cpu_ms_per_req"] if a["cpu_ms_per_req"] else 0.0
            for a, b in zip(mk, th, strict=True)
        ]
        mk_peak = max(r["peak_rss_mib"] for r in mk)
        th_peak = max(r["peak_rss_mib"] for r in th)
        entry = {
            "mediakeep_req_per_s": statistics.median(r["req_per_s"] for r in mk),
            "thumbor_req_per_s": statistics.median(r["req_per_s"] for r in th),
            "ratio_per_pair": [round(r, 2) for r in ratios],
            "ratio_median": round(statistics.median(ratios), 2),
            "goal_ratio": GOALS[name],
            "mediakeep_cpu_ms_per_req": statistics.median(r["cpu_ms_per_req"] for r in mk),
            "thumbor_cpu_ms_per_req": statistics.median(r["cpu_ms_per_req"] for r in th),
            "cpu_ratio_per_pair": [round(r, 2) for r in cpu_ratios],
            "cpu_ratio_median": round(statistics.median(cpu_ratios), 2),
            "mediakeep_p99_ms": statistics.median(r["p99_ms"] for r in mk),
            "thumbor_p99_ms": statistics.median(r["p99_ms"] for r in th),
            "mediakeep_peak_rss_mib": mk_peak,
            "thumbor_peak_rss_mib": th_peak,
            "mediakeep_errors": sum(r["errors"] for r in mk),
            "thumbor_errors": sum(r["errors"] for r in th),
            "mediakeep_c8_peak_rss_mib_before_c32": rss8[name]["peak_rss_mib"],
            "mediakeep_c32_peak_rss_mib": rss32[name]["peak_rss_mib"],
            "rss_c32_over_c8": round(rss32[name]["peak_rss_mib"] / rss8[name]["peak_rss_mib"], 3),
            "mediakeep_c32_req_per_s": rss32[name]["req_per_s"],
            "mediakeep_c32_p99_ms": rss32[name]["p99_ms"],
        }
        entry["meets"] = {
            "throughput": entry["ratio_median"] >= GOALS[name],
            "p99": entry["mediakeep_p99_ms"] <= entry["thumbor_p99_ms"],
            "peak_rss": mk_peak <= th_peak,
            "rss_c32": entry["rss_c32_over_c8"] <= GOAL_RSS_RATIO,
        }
        summary[name] = entry
    summary["cached"] = cached | {
        "goal_req_per_s": GOAL_CACHED,
        "meets": cached["req_per_s"] >= GOAL_CACHED,
    }
    results["summary"] = summary
    results["setup"] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{round(psutil.virtual_memory().total / 1024**3)} GiB",
        "python": platform.python_version(),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "thumbor": THUMBOR_VERSION,
        "load_generator": "wrk" if wrk else "python asyncio + httpx (wrk unavailable)",
        "pairs": args.pairs,
        "seconds_per_run": {name: source.seconds for name, source in sources.items()},
        "cached_seconds_per_run": args.cached_duration,
        "load_average_at_start": load_at_start,
        "server_env": MALLOC_ENV,
        "load_average_at_end": os.getloadavg(),
        "cold_sizes": f"widths {WIDTHS.start}..{WIDTHS.stop - 1} x heights "
        f"{HEIGHTS.start}..{HEIGHTS.stop - 1}, each used once",
    }
    results["setup"]["machine_details"] = common.machine(work)
    print_table(summary)
    common.write_json(args.output, results)

    def share(a: float, b: float) -> float | None:
        return a / b if b else None  # a side that answered nothing has no p99

    goals = []
    figures = {"/healthz req/s (same server)": summary["cached"]["healthz_req_per_s"]}
    for name in GOALS:
        e = summary[name]
        pairs = e["ratio_per_pair"]
        figures[f"{name}: thumbor's CPU per cold answer / mediakeep's"] = e["cpu_ratio_median"]
        goals += [
            common.goal(
                f"{name}: cold req/s × thumbor",
                e["ratio_median"],
                ">=",
                GOALS[name],
                "x",
                spread=(min(pairs), max(pairs)),
            ),
            common.goal(
                f"{name}: p99 / thumbor's",
                share(e["mediakeep_p99_ms"], e["thumbor_p99_ms"]),
                "<=",
                1,
                "x",
            ),
            common.goal(
                f"{name}: peak RSS / thumbor's",
                share(e["mediakeep_peak_rss_mib"], e["thumbor_peak_rss_mib"]),
                "<=",
                1,
                "x",
            ),
            common.goal(f"{name}: RSS c=32 / c=8", e["rss_c32_over_c8"], "<=", GOAL_RSS_RATIO, "x"),
        ]
    goals.append(
        common.goal("cached hits, c=8", summary["cached"]["req_per_s"], ">=", GOAL_CACHED, "req/s")
    )
    common.emit_result(
        "transforms",
        goals,
        figures=figures,
        pairs=args.pairs,
        load_generator=results["setup"]["load_generator"],
    )
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


def print_table(summary: dict[str, Any]) -> None:
    lines = [
        "| source | mediakeep req/s | thumbor req/s | ratio (goal) | p99 mk / th ms "
        "| peak RSS mk / th MiB | RSS c=32 / c=8 | CPU ms per answer mk / th |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in GOALS:
        e = summary[name]
        lines.append(
            f"| {name} | {e['mediakeep_req_per_s']:.1f} | {e['thumbor_req_per_s']:.1f} "
            f"| {e['ratio_median']:.2f}× [{min(e['ratio_per_pair']):.2f}–"
            f"{max(e['ratio_per_pair']):.2f}] ({e['goal_ratio']}×) "
            f"| {e['mediakeep_p99_ms']:.0f} / {e['thumbor_p99_ms']:.0f} "
            f"| {e['mediakeep_peak_rss_mib']:.0f} / {e['thumbor_peak_rss_mib']:.0f} "
            f"| {e['rss_c32_over_c8']:.2f}× "
            f"| {e['mediakeep_cpu_ms_per_req']:.1f} / {e['thumbor_cpu_ms_per_req']:.1f} |"
        )
    c = summary["cached"]
    lines.append(
        f"\ncached hits, c=8: {c['req_per_s']:.0f} req/s (goal ≥ {GOAL_CACHED:.0f}), "
        f"p99 {c['p99_ms']:.1f} ms; /healthz on the same server {c['healthz_req_per_s']:.0f} req/s"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
