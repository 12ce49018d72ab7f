"""tus benchmark: resumable uploads against the plain multipart upload, through a real server.

    .venv/bin/python bench/tus.py [--size 1G] [--pairs 3] [--chunks 1M,8M] [--work-dir DIR]

Starts a real `mediakeep serve` (SQLite, local storage, AUTH_ENABLED=false) and builds one
payload (a valid PCM WAV of random samples, so it passes sniffing and probing). Then, A/B
interleaved in each pair (the order reverses every other pair, so drift favours no side), the
same file from the same page cache is uploaded

  multipart   curl -F file=@payload .../api/v1/media/upload       (one streamed request)
  tus N       POST /api/v1/uploads/tus, then PATCHes of N bytes    (an httpx client on one
              keep-alive connection reading each chunk from disk, as tus-js-client does:
              no Upload-Checksum; each PATCH is written, fsynced and acknowledged)

and each media's SHA-256 is checked against the file. Every upload's media (and tus upload)
is deleted afterwards, so the next one is not a dedup hit. Printed: MB/s (10^6 B/s) medians,
the median of each pair's tus/multipart ratio, and the server's RSS growth. The server runs
with MEDIA_RATE_LIMIT_ENABLED=false: a 1 GiB upload in 1 MiB chunks is 1,024 requests, over
the default per-user limit of 1,000 a minute. Results go to bench/results/tus.json.
"""

import argparse
import base64
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as base  # noqa: E402  (bench/ingest.py: the server, the payload, the machine)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "tus.json"
MiB = base.MiB
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Run:
    seconds: float
    rss_idle: int
    rss_peak: int
    sha256: str


def _forget(server: base.Server, media_id: str, tus_url: str | None = None) -> None:
    with httpx.Client(timeout=120) as http:
        deleted = http.delete(f"{server.url}/api/v1/media/{media_id}")
        if deleted.status_code != 204:
            raise SystemExit(f"delete answered {deleted.status_code}: {deleted.text}")
        if tus_url is not None:
            http.delete(tus_url, headers=TUS_HEADERS)


def _media_sha256(server: base.Server, media_id: str) -> str:
    with httpx.Client(timeout=60) as http:
        response = http.get(f"{server.url}/api/v1/media/{media_id}")
    response.raise_for_status()
    return str(response.json()["sha256"])


def multipart(server: base.Server, payload: Path, work: Path) -> Run:
    idle = server.rss()
    sampler = base.RssSampler(server)
    sampler.start()
    try:
        start = time.perf_counter()
        status, body = base._curl_upload(
            f"{server.url}/api/v1/media/upload", payload, work / "out.json"
        )
        seconds = time.perf_counter() - start
    finally:
        peak = sampler.finish()
    if status != 201:
        raise SystemExit(f"multipart upload answered {status}: {body[:500]!r}")
    media = json.loads(body)
    _forget(server, media["id"])
    return Run(seconds, idle, peak, media["sha256"])


def tus(server: base.Server, payload: Path, chunk: int) -> Run:
    size = payload.stat().st_size
    name = base64.b64encode(b"bench.wav").decode()
    idle = server.rss()
    sampler = base.RssSampler(server)
    sampler.start()
    try:
        with httpx.Client(timeout=600) as http, payload.open("rb") as source:
            start = time.perf_counter()
            created = http.post(
                f"{server.url}/api/v1/uploads/tus",
                headers=TUS_HEADERS
                | {"Upload-Length": str(size), "Upload-Metadata": f"filename {name}"},
            )
            if created.status_code != 201:
                raise SystemExit(f"tus creation answered {created.status_code}: {created.text}")
            url = created.headers["location"]
            offset = 0
            media_id = None
            while offset < size:
                block = source.read(chunk)
                response = http.patch(
                    url,
                    content=block,
                    headers=TUS_HEADERS
                    | {
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                if response.status_code != 204:
                    raise SystemExit(f"PATCH answered {response.status_code}: {response.text}")
                offset = int(response.headers["upload-offset"])
                media_id = response.headers.get("media-id")
            seconds = time.perf_counter() - start
    finally:
        peak = sampler.finish()
    if media_id is None:
        raise SystemExit("the last PATCH answered no Media-Id")
    digest = _media_sha256(server, media_id)
    _forget(server, media_id, url)
    return Run(seconds, idle, peak, digest)


@dataclass
class MethodResult:
    name: str
    mb_s: list[float] = field(default_factory=list)
    ratio_to_multipart: list[float] = field(default_factory=list)
    rss_delta: list[int] = field(default_factory=list)
    hash_mismatches: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "mb_s": round(statistics.median(self.mb_s), 1),
            "ratio_to_multipart": round(statistics.median(self.ratio_to_multipart), 3),
            "rss_delta_mib": round(max(self.rss_delta) / MiB, 1),
            "hash_mismatches": self.hash_mismatches,
        }


def bench(
    server: base.Server, work: Path, size: int, pairs: int, chunks: list[int]
) -> list[MethodResult]:
    payload = work / "payload.wav"
    print(f"-- {base.label(size)}: writing the payload ...", flush=True)
    base.make_payload(payload, size)
    digest = base.run_openssl(payload)[1]
    names = ["multipart"] + [f"tus {base.label(chunk)} chunks" for chunk in chunks]
    results = {name: MethodResult(name) for name in names}
    for pair in range(pairs):
        order = list(range(len(names)))
        if pair % 2:
            order.reverse()
        seen: dict[str, float] = {}
        for index in order:
            name = names[index]
            if index == 0:
                run = multipart(server, payload, work)
            else:
                run = tus(server, payload, chunks[index - 1])
            seen[name] = base.mb_per_s(size, run.seconds)
            results[name].mb_s.append(seen[name])
            results[name].rss_delta.append(run.rss_peak - run.rss_idle)
            if run.sha256 != digest:
                results[name].hash_mismatches += 1
        for name in names:
            results[name].ratio_to_multipart.append(seen[name] / seen["multipart"])
        shown = ", ".join(
            f"{name} {seen[name]:.0f} MB/s ({seen[name] / seen['multipart']:.2f}×)"
            for name in names
        )
        print(f"   pair {pair + 1}/{pairs}: {shown}", flush=True)
    payload.unlink()
    return list(results.values())


def table(results: list[MethodResult]) -> str:
    header = f"{'method':>18} | {'MB/s':>6} | {'× multipart':>11} | {'RSS Δ':>9} | sha256"
    lines = [header, "-" * len(header)]
    for result in results:
        s = result.summary()
        lines.append(
            f"{result.name:>18} | {s['mb_s']:>6.0f} | {s['ratio_to_multipart']:>11.2f} | "
            f"{s['rss_delta_mib']:>+5.1f} MiB | "
            f"{'ok' if not s['hash_mismatches'] else str(s['hash_mismatches']) + ' MISMATCH'}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="payload size, e.g. 256M, 1G")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved rounds (≥ 3)")
    parser.add_argument("--chunks", default="1M,8M", help="tus PATCH sizes, comma list")
    parser.add_argument("--work-dir", type=Path, help="default: a new dir under $TMPDIR")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    size = base.parse_size(args.size)
    chunks = [base.parse_size(item) for item in args.chunks.split(",") if item.strip()]
    if shutil.which("curl") is None:
        raise SystemExit("`curl` is needed for the multipart side")

    work = (
        args.work_dir.resolve()
        if args.work_dir
        else Path(tempfile.mkdtemp(prefix="mediakeep-bench-tus-"))
    )
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MEDIA_", "DB_POSTGRESQL", "AUTH_", "CELERY_", "REDIS_"))
    }
    env |= {
        "MEDIA_DATA_DIR": str(data_dir),
        "AUTH_ENABLED": "false",
        "MEDIA_MAX_BYTES_VIDEO": str(max(2 * 1024 * MiB, size)),
        "MEDIA_RATE_LIMIT_ENABLED": "false",
        "MEDIA_SWEEP_INTERVAL": "1h",
        "MEDIA_LOG_LEVEL": "WARNING",
        "VIPS_BLOCK_UNTRUSTED": "1",
    }
    server = base.Server(data_dir=data_dir, port=base.free_port(), env=env)
    info = base.machine(work)
    print(f"work dir {work} ({info['nproc']} CPUs, {info['cpu']})\n{info['df']}", flush=True)
    try:
        server.start(work / "server.log")
        warm = work / "warm.wav"
        base.make_payload(warm, MiB)
        multipart(server, warm, work)  # load lazily imported code before the idle RSS
        tus(server, warm, MiB // 4)
        warm.unlink()
        results = bench(server, work, size, args.pairs, chunks)
    finally:
        server.stop()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"tus vs multipart, {base.label(size)} through one server (medians of {args.pairs} "
        "interleaved rounds; × multipart = median of each round's ratio)"
    )
    print(table(results))
    document = {
        "benchmark": "tus",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "size": size,
        "label": base.label(size),
        "pairs": args.pairs,
        "tus_client": "httpx, one keep-alive connection, chunks read from disk, no checksum",
        "multipart_client": "curl -F",
        "machine": info,
        "results": [asdict(r) | {"summary": r.summary()} for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nwrote {shown}")


if __name__ == "__main__":
    main()
