"""tus benchmark: resumable uploads against the plain multipart upload, through a real server.

    .venv/bin/python bench/tus.py [--size 1G] [--pairs 3] [--chunks 1M,8M] [--work-dir DIR]

Starts a real `mediakeep serve` (SQLite, local storage, AUTH_ENABLED=false) and builds one
payload (a valid PCM WAV of random samples, so it passes sniffing and probing). Then, A/B
interleaved in each pair (the order reverses every other pair, so drift favours no side), the
same file from the same page cache is uploaded

  multipart   curl -F generate_variants=false -F file=@payload .../api/v1/media/upload
              (one streamed request; no inline waveform, which a tus upload does not make either)
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
import json
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

import ingest as base  # noqa: E402  (bench/ingest.py: the payload, curl, openssl)

ROOT = common.ROOT
RESULTS = ROOT / "bench" / "results" / "tus.json"
MiB = base.MiB
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Run:
    seconds: float
    rss_idle: int
    rss_peak: int
    sha256: str


def _forget(server: common.Server, media_id: str, tus_url: str | None = None) -> None:
    with httpx.Client(timeout=120) as http:
        deleted = http.delete(f"{server.url}/api/v1/media/{media_id}")
        if deleted.status_code != 204:
            raise SystemExit(f"delete answered {deleted.status_code}: {deleted.text}")
        if tus_url is not None:
            http.delete(tus_url, headers=TUS_HEADERS)


def _media_sha256(server: common.Server, media_id: str) -> str:
    with httpx.Client(timeout=60) as http:
        response = http.get(f"{server.url}/api/v1/media/{media_id}")
    response.raise_for_status()
    return str(response.json()["sha256"])


def multipart(server: common.Server, payload: Path, work: Path) -> Run:
    idle = server.rss()
    sampler = common.RssSampler(server.rss)
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


def tus(server: common.Server, payload: Path, chunk: int) -> Run:
    size = payload.stat().st_size
    name = base64.b64encode(b"bench.wav").decode()
    idle = server.rss()
    sampler = common.RssSampler(server.rss)
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
    server: common.Server, work: Path, size: int, pairs: int, chunks: list[int]
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
    rows = []
    for result in results:
        s = result.summary()
        mismatches = s["hash_mismatches"]
        rows.append(
            [
                result.name,
                f"{s['mb_s']:.0f}",
                f"{s['ratio_to_multipart']:.2f}",
                f"{s['rss_delta_mib']:+.1f} MiB",
                "ok" if not mismatches else f"{mismatches} MISMATCH",
            ]
        )
    return common.text_table(["method", "MB/s", "× multipart", "RSS Δ", "sha256"], rows)


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

    with common.work_dir(args.work_dir, "mediakeep-bench-tus-") as work:
        env = common.mediakeep_env(
            work / "data",
            MEDIA_MAX_BYTES_VIDEO=max(2 * 1024 * MiB, size),
            MEDIA_RATE_LIMIT_ENABLED="false",
        )
        info = common.machine(work)
        print(f"work dir {work}: {common.describe(info)}\n{info['df']}", flush=True)
        server = common.start_mediakeep(work, env)
        try:
            warm = work / "warm.wav"
            base.make_payload(warm, MiB)
            multipart(server, warm, work)  # load lazily imported code before the idle RSS
            tus(server, warm, MiB // 4)
            warm.unlink()
            results = bench(server, work, size, args.pairs, chunks)
        finally:
            server.stop()

    print()
    print(
        f"tus vs multipart, {base.label(size)} through one server (medians of {args.pairs} "
        "interleaved rounds; × multipart = median of each round's ratio)"
    )
    print(table(results))
    document = common.document(
        "tus",
        size=size,
        label=base.label(size),
        pairs=args.pairs,
        tus_client="httpx, one keep-alive connection, chunks read from disk, no checksum",
        multipart_client="curl -F",
        machine=info,
        results=[asdict(r) | {"summary": r.summary()} for r in results],
    )
    common.write_json(args.output, document)
    # DESIGN.md sets no speed goal for tus: checked are intact bytes and the flat-RSS goal of
    # uploads; the speed ratios go along as figures.
    goals = []
    figures = {}
    for result in results:
        s = result.summary()
        if result.name != "multipart":
            figures[f"{result.name} × multipart"] = s["ratio_to_multipart"]
        goals.append(
            common.goal(f"tus: {result.name} sha256 mismatches", s["hash_mismatches"], "<=", 0)
        )
        goals.append(
            common.goal(
                f"tus: {result.name} RSS Δ", s["rss_delta_mib"], "<=", base.GOAL_RSS // MiB, "MiB"
            )
        )
    common.emit_result("tus", goals, figures=figures, size=size, pairs=args.pairs)


if __name__ == "__main__":
    main()
