"""Ingest benchmark: a streamed multipart upload against the machine's own limit.

    .venv/bin/python bench/ingest.py [--sizes 100M,1G] [--pairs 3] [--work-dir DIR] [--no-s3]

Starts a real `mediakeep serve` (SQLite, local storage, AUTH_ENABLED=false) with its data dir
in the work dir, builds one payload per size (a valid PCM WAV: a 44-byte header, then random
samples, so the upload passes sniffing and probing like a real file) and, A/B interleaved for
each pair, measures on the same file from the same page cache:

  dd       dd if=payload of=target bs=1M conv=fdatasync   (write + flush to disk)
  openssl  openssl dgst -sha256 payload                   (hashing; sha256sum is not the limit)
  upload   curl -F generate_variants=false -F file=@payload .../api/v1/media/upload
           (stream, hash, write, fsync, probe, commit, insert)

and then, once per size, the same upload with the default `generate_variants=true`: a
synchronous audio upload renders its waveform variants before it answers, so that upload's
RSS and rate show what the inline variant work adds (its RSS is held to the same goal).

The client runs on its own core (`taskset -c <last core>`; the server is not pinned), so the
load generator does not take the server's CPU. With SeaweedFS available (tests/fixtures), the
same uploads are then measured once more against a second server on S3 storage, against the
same limit (a figure, not a goal: the object goes over loopback HTTP to the S3 server, which
shares the machine).

The limit is the slower of dd and openssl; the goal (docs/benchmarks.md, DESIGN.md) is an
upload rate ≥ 0.6× that limit and a server RSS ≤ +64 MiB over idle for every size. The server
RSS is sampled every 50 ms during each upload. Results go to bench/results/ingest.json.
Sizes take binary suffixes: 100M = 100 MiB, 1G = 1 GiB. MB/s are 10^6 bytes per second.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

sys.path.insert(0, str(common.ROOT))
from tests.fixtures.services import ServiceUnavailable, start_seaweedfs  # noqa: E402

ROOT = common.ROOT
RESULTS = ROOT / "bench" / "results" / "ingest.json"
MiB = common.MiB
GOAL_RATIO = 0.6
GOAL_RSS = 64 * MiB
S3_BUCKET = "bench-ingest"
parse_size = common.parse_size
label = common.label
mb_per_s = common.mb_per_s


# --------------------------------------------------------------------------- payload


def wav_header(total_size: int) -> bytes:
    """PCM, 2 channels, 48 kHz, 16 bit; the data chunk covers the rest of the file."""
    fmt = (16).to_bytes(4, "little") + b"\x01\x00\x02\x00"
    fmt += (48000).to_bytes(4, "little") + (192000).to_bytes(4, "little") + b"\x04\x00\x10\x00"
    return (
        b"RIFF"
        + (total_size - 8).to_bytes(4, "little")
        + b"WAVE"
        + b"fmt "
        + fmt
        + b"data"
        + (total_size - 44).to_bytes(4, "little")
    )


def make_payload(path: Path, size: int) -> None:
    block = 8 * MiB
    with path.open("wb") as out:
        out.write(wav_header(size))
        left = size - 44
        while left:
            n = min(block, left)
            out.write(os.urandom(n))
            left -= n
        out.flush()
        os.fsync(out.fileno())


# --------------------------------------------------------------------------- measurements


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def run_dd(payload: Path, target: Path) -> float:
    seconds, _ = timed(
        lambda: subprocess.run(
            ["dd", f"if={payload}", f"of={target}", "bs=1M", "conv=fdatasync", "status=none"],
            check=True,
        )
    )
    target.unlink()
    return float(seconds)


def run_openssl(payload: Path) -> tuple[float, str]:
    seconds, done = timed(
        lambda: subprocess.run(
            ["openssl", "dgst", "-sha256", "-r", str(payload)],
            check=True,
            capture_output=True,
            text=True,
        )
    )
    return float(seconds), done.stdout.split()[0]


def client_cpu() -> int | None:
    """The core the upload client runs on: the last one this process may use (None on one)."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1] if len(cores) > 1 else None


def _curl_upload(url: str, payload: Path, out: Path, variants: bool = False) -> tuple[int, bytes]:
    cpu = client_cpu()
    pin = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
    done = subprocess.run(
        [
            *pin,
            "curl",
            "-sS",
            "-o",
            str(out),
            "-w",
            "%{http_code}",
            "-H",
            "Expect:",
            "-F",
            f"generate_variants={str(variants).lower()}",
            "-F",
            f"file=@{payload};type=application/octet-stream;filename=bench.wav",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip()), out.read_bytes()


def _httpx_upload(url: str, payload: Path, variants: bool = False) -> tuple[int, bytes]:
    boundary = "mediakeep-bench-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="generate_variants"\r\n\r\n'
        f"{str(variants).lower()}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.wav"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with payload.open("rb") as source:
            while block := source.read(MiB):
                yield block
        yield tail

    cpu = client_cpu()
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})  # this process is the client while it sends
    try:
        response = httpx.post(
            url,
            content=body(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + payload.stat().st_size + len(tail)),
            },
            timeout=600,
        )
    finally:
        os.sched_setaffinity(0, before)
    return response.status_code, response.content


@dataclass
class Upload:
    seconds: float
    rss_idle: int
    rss_peak: int
    sha256: str


def run_upload(
    server: common.Server, payload: Path, work: Path, client: str, variants: bool = False
) -> Upload:
    url = f"{server.url}/api/v1/media/upload"
    idle = server.rss()
    sampler = common.RssSampler(server.rss)
    sampler.start()
    try:
        if client == "curl":
            seconds, (status, body) = timed(
                lambda: _curl_upload(url, payload, work / "out.json", variants)
            )
        else:
            seconds, (status, body) = timed(lambda: _httpx_upload(url, payload, variants))
    finally:
        peak = sampler.finish()
    if status != 201:
        raise SystemExit(f"upload answered {status}: {body[:500]!r}")
    media = json.loads(body)
    deleted = httpx.delete(f"{server.url}/api/v1/media/{media['id']}", timeout=60)
    if deleted.status_code != 204:
        raise SystemExit(f"delete answered {deleted.status_code}: {deleted.text}")
    return Upload(float(seconds), idle, peak, media["sha256"])


@dataclass
class SizeResult:
    size: int
    label: str
    pairs: int
    upload_mb_s: list[float] = field(default_factory=list)
    dd_mb_s: list[float] = field(default_factory=list)
    openssl_mb_s: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    rss_idle: list[int] = field(default_factory=list)
    rss_peak: list[int] = field(default_factory=list)
    hash_mismatches: int = 0
    # One more upload with the default variants rendered inline (an audio's waveform).
    variants_mb_s: float | None = None
    variants_rss_delta: int | None = None
    # The same upload to a server on S3 storage (SeaweedFS), in each pair, against its limit.
    s3_mb_s: list[float] = field(default_factory=list)
    s3_ratios: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        upload = statistics.median(self.upload_mb_s)
        dd = statistics.median(self.dd_mb_s)
        openssl = statistics.median(self.openssl_mb_s)
        ratio = statistics.median(self.ratios)
        rss_delta = max(
            peak - idle for idle, peak in zip(self.rss_idle, self.rss_peak, strict=True)
        )
        return {
            "upload_mb_s": round(upload, 1),
            "dd_mb_s": round(dd, 1),
            "openssl_mb_s": round(openssl, 1),
            "limit_mb_s": round(min(dd, openssl), 1),
            "limit_is": "dd conv=fdatasync" if dd <= openssl else "openssl dgst -sha256",
            "ratio": round(ratio, 3),
            "rss_idle_mib": round(min(self.rss_idle) / MiB, 1),
            "rss_peak_mib": round(max(self.rss_peak) / MiB, 1),
            "rss_delta_mib": round(rss_delta / MiB, 1),
            "goal_met": ratio >= GOAL_RATIO and rss_delta <= GOAL_RSS and not self.hash_mismatches,
            "s3_mb_s": round(statistics.median(self.s3_mb_s), 1) if self.s3_mb_s else None,
            "s3_ratio": round(statistics.median(self.s3_ratios), 3) if self.s3_ratios else None,
        }


def bench_size(
    server: common.Server,
    work: Path,
    size: int,
    pairs: int,
    client: str,
    with_variants: bool,
    s3: common.Server | None = None,
) -> SizeResult:
    payload = work / f"payload-{size}.wav"
    print(f"-- {label(size)}: writing the payload ...", flush=True)
    make_payload(payload, size)
    result = SizeResult(size=size, label=label(size), pairs=pairs)
    for pair in range(pairs):
        order = ["dd", "openssl", "upload"]
        if pair % 2:
            order.reverse()  # A/B/C then C/B/A: drift does not favour one side
        seen: dict[str, float] = {}
        digest = ""
        upload: Upload | None = None
        for name in order:
            if name == "dd":
                seen["dd"] = mb_per_s(size, run_dd(payload, work / "dd-target"))
            elif name == "openssl":
                seconds, digest = run_openssl(payload)
                seen["openssl"] = mb_per_s(size, seconds)
            else:
                upload = run_upload(server, payload, work, client)
                seen["upload"] = mb_per_s(size, upload.seconds)
        assert upload is not None
        limit = min(seen["dd"], seen["openssl"])
        result.upload_mb_s.append(seen["upload"])
        result.dd_mb_s.append(seen["dd"])
        result.openssl_mb_s.append(seen["openssl"])
        result.ratios.append(seen["upload"] / limit)
        result.rss_idle.append(upload.rss_idle)
        result.rss_peak.append(upload.rss_peak)
        if upload.sha256 != digest:
            result.hash_mismatches += 1
        grew = (upload.rss_peak - upload.rss_idle) / MiB
        if s3 is not None:
            on_s3 = run_upload(s3, payload, work, client)
            result.s3_mb_s.append(mb_per_s(size, on_s3.seconds))
            result.s3_ratios.append(result.s3_mb_s[-1] / limit)
            if on_s3.sha256 != digest:
                result.hash_mismatches += 1
            print(
                f"   pair {pair + 1}/{pairs} on S3: upload {result.s3_mb_s[-1]:.0f} MB/s, "
                f"ratio {result.s3_ratios[-1]:.2f}",
                flush=True,
            )
        print(
            f"   pair {pair + 1}/{pairs} ({'/'.join(order)}): upload {seen['upload']:.0f} MB/s, "
            f"dd {seen['dd']:.0f} MB/s, openssl {seen['openssl']:.0f} MB/s, "
            f"ratio {seen['upload'] / limit:.2f}, RSS +{grew:.1f} MiB"
            f"{'' if upload.sha256 == digest else ', HASH MISMATCH'}",
            flush=True,
        )
    if with_variants:
        upload = run_upload(server, payload, work, client, variants=True)
        result.variants_mb_s = mb_per_s(size, upload.seconds)
        result.variants_rss_delta = upload.rss_peak - upload.rss_idle
        print(
            f"   with inline variants (waveform): upload {result.variants_mb_s:.0f} MB/s, "
            f"RSS +{result.variants_rss_delta / MiB:.1f} MiB",
            flush=True,
        )
    payload.unlink()
    return result


# --------------------------------------------------------------------------- report


def table(results: list[SizeResult]) -> str:
    rows = []
    for result in results:
        s = result.summary()
        rows.append(
            [
                result.label,
                f"{s['upload_mb_s']:.0f}",
                f"{s['dd_mb_s']:.0f}",
                f"{s['openssl_mb_s']:.0f}",
                f"{s['limit_mb_s']:.0f}",
                f"{s['ratio']:.2f}",
                f"{s['rss_idle_mib']:.0f} MiB",
                f"{s['rss_peak_mib']:.0f} MiB",
                f"{s['rss_delta_mib']:+.1f} MiB",
                "yes" if s["goal_met"] else "no",
                "-" if s["s3_ratio"] is None else f"{s['s3_mb_s']:.0f} ({s['s3_ratio']:.2f}×)",
            ]
        )
    header = ["size", "upload MB/s", "dd MB/s", "openssl MB/s", "limit", "ratio", "RSS idle"]
    return common.text_table([*header, "RSS peak", "RSS Δ", "goal met", "S3 MB/s (ratio)"], rows)


def start_s3_server(
    work: Path, stack: contextlib.ExitStack, sizes: list[int]
) -> common.Server | None:
    """A second mediakeep on S3 storage (SeaweedFS), or None (said why) when there is none."""
    try:
        weed = start_seaweedfs(work)
    except ServiceUnavailable as exc:
        print(f"S3 uploads skipped: {exc}", flush=True)
        return None
    stack.callback(weed.cleanup)
    stack.callback(weed.stop)
    weed.create_bucket(S3_BUCKET)
    env = common.mediakeep_env(
        work / "data-s3",
        MEDIA_MAX_BYTES_VIDEO=max([2 * 1024 * MiB, *sizes]),
        MEDIA_STORAGE_BACKEND="s3",
        MEDIA_S3_ENDPOINT=weed.endpoint,
        MEDIA_S3_BUCKET=S3_BUCKET,
        MEDIA_S3_ACCESS_KEY_ID=weed.access_key,
        MEDIA_S3_SECRET_ACCESS_KEY=weed.secret_key,
        MEDIA_S3_REGION=weed.region,
        MEDIA_S3_USE_PATH_STYLE="true",
    )
    server = common.start_mediakeep(work, env, name="mediakeep-s3")
    stack.callback(server.stop)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100M,1G", help="comma list, e.g. 100M,1G")
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs per size (≥ 3)")
    parser.add_argument("--work-dir", type=Path, help="default: a new dir under $TMPDIR")
    parser.add_argument("--client", choices=["auto", "curl", "httpx"], default="auto")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--no-variants-run", action="store_true", help="skip the upload with inline variants"
    )
    parser.add_argument("--no-s3", action="store_true", help="skip the uploads to S3 storage")
    args = parser.parse_args()
    sizes = [parse_size(item) for item in args.sizes.split(",") if item.strip()]
    client = args.client
    if client == "auto":
        client = "curl" if shutil.which("curl") else "httpx"
    for tool in ("dd", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"`{tool}` is needed to measure the limit")

    results: list[SizeResult] = []
    with common.work_dir(args.work_dir, "mediakeep-bench-") as work:
        env = common.mediakeep_env(
            work / "data", MEDIA_MAX_BYTES_VIDEO=max([2 * 1024 * MiB, *sizes])
        )
        info = common.machine(work)
        print(f"work dir {work}: {common.describe(info)}\n{info['df']}", flush=True)
        with contextlib.ExitStack() as stack:
            server = common.start_mediakeep(work, env)
            stack.callback(server.stop)
            s3 = None if args.no_s3 else start_s3_server(work, stack, sizes)
            warm = work / "warm.wav"
            make_payload(warm, MiB)
            for each in (server, s3):
                if each is not None:  # load lazily imported code before idle RSS
                    run_upload(each, warm, work, client)
            warm.unlink()
            for size in sizes:
                results.append(
                    bench_size(server, work, size, args.pairs, client, not args.no_variants_run, s3)
                )

    print()
    print(
        f"ingest: multipart upload via {client} vs the slower of dd conv=fdatasync and openssl "
        f"dgst -sha256 on the same file (medians of {args.pairs} interleaved pairs; ratio = "
        f"median of each pair's upload/limit; goal ratio ≥ {GOAL_RATIO}, RSS Δ = largest peak "
        f"over the idle RSS before that upload ≤ +{GOAL_RSS // MiB} MiB)"
    )
    print(table(results))
    document = common.document(
        "ingest",
        client=client,
        goals={"ratio_min": GOAL_RATIO, "rss_delta_max_mib": GOAL_RSS // MiB},
        machine=info,
        results=[asdict(r) | {"summary": r.summary()} for r in results],
    )
    common.write_json(args.output, document)
    goals = []
    figures: dict[str, float] = {}
    for result in results:
        s = result.summary()
        goals.append(
            common.goal(f"ingest {result.label}: upload / limit", s["ratio"], ">=", GOAL_RATIO, "x")
        )
        goals.append(
            common.goal(
                f"ingest {result.label}: server RSS over idle",
                s["rss_delta_mib"],
                "<=",
                GOAL_RSS // MiB,
                "MiB",
            )
        )
        if result.variants_rss_delta is not None:
            goals.append(
                common.goal(
                    f"ingest {result.label} with inline variants: server RSS over idle",
                    result.variants_rss_delta / MiB,
                    "<=",
                    GOAL_RSS // MiB,
                    "MiB",
                )
            )
            figures[f"ingest {result.label} with inline variants: MB/s"] = round(
                result.variants_mb_s or 0, 1
            )
        if s["s3_ratio"] is not None:
            figures[f"ingest {result.label} on S3: MB/s"] = s["s3_mb_s"]
            figures[f"ingest {result.label} on S3: upload / limit"] = s["s3_ratio"]
        if result.hash_mismatches:
            goals.append(
                common.goal(
                    f"ingest {result.label}: sha256 mismatches", result.hash_mismatches, "<=", 0
                )
            )
    common.emit_result("ingest", goals, figures=figures, client=client, pairs=args.pairs)


if __name__ == "__main__":
    main()
