"""Ingest benchmark: a streamed multipart upload against the machine's own limit.

    .venv/bin/python bench/ingest.py [--sizes 100M,1G] [--pairs 3] [--work-dir DIR]

Starts a real `mediakeep serve` (SQLite, local storage, AUTH_ENABLED=false) with its data dir
in the work dir, builds one payload per size (a valid PCM WAV: a 44-byte header, then random
samples, so the upload passes sniffing and probing like a real file) and, A/B interleaved for
each pair, measures on the same file from the same page cache:

  dd       dd if=payload of=target bs=1M conv=fdatasync   (write + flush to disk)
  openssl  openssl dgst -sha256 payload                   (hashing; sha256sum is not the limit)
  upload   curl -F file=@payload .../api/v1/media/upload  (stream, hash, write, fsync, probe,
                                                          commit, insert)

The limit is the slower of dd and openssl; the goal (docs/benchmarks.md, DESIGN.md) is an
upload rate ≥ 0.6× that limit and a server RSS ≤ +64 MiB over idle for every size. The server
RSS is sampled every 50 ms during each upload. Results go to bench/results/ingest.json.
Sizes take binary suffixes: 100M = 100 MiB, 1G = 1 GiB. MB/s are 10^6 bytes per second.
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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ingest.json"
MEDIAKEEP = Path(sys.executable).parent / "mediakeep"
HOST = "127.0.0.1"
MiB = 1024 * 1024
GOAL_RATIO = 0.6
GOAL_RSS = 64 * MiB
SAMPLE_EVERY = 0.05
_UNITS = {"K": 1024, "M": MiB, "G": 1024 * MiB}


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)


def label(size: int) -> str:
    for suffix, unit in (("GiB", 1024 * MiB), ("MiB", MiB)):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {suffix}"
    return f"{size} B"


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


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


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, log: Path) -> None:
        subprocess.run([str(MEDIAKEEP), "migrate"], env=self.env, check=True, capture_output=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(MEDIAKEEP), "serve", "--host", HOST, "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise SystemExit(f"server not ready after 60 s; see {log}")

    def rss(self) -> int:
        """RSS of the server and any children it has."""
        assert self.proc is not None
        try:
            parent = psutil.Process(self.proc.pid)
            total = parent.memory_info().rss
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += child.memory_info().rss
        except psutil.NoSuchProcess:
            return 0
        return int(total)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class RssSampler(threading.Thread):
    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = server.rss()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(SAMPLE_EVERY):
            self.peak = max(self.peak, self.server.rss())

    def finish(self) -> int:
        self._done.set()
        self.join()
        self.peak = max(self.peak, self.server.rss())
        return self.peak


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


def _curl_upload(url: str, payload: Path, out: Path) -> tuple[int, bytes]:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            str(out),
            "-w",
            "%{http_code}",
            "-H",
            "Expect:",
            "-F",
            f"file=@{payload};type=application/octet-stream;filename=bench.wav",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip()), out.read_bytes()


def _httpx_upload(url: str, payload: Path) -> tuple[int, bytes]:
    boundary = "mediakeep-bench-boundary"
    head = (
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

    response = httpx.post(
        url,
        content=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + payload.stat().st_size + len(tail)),
        },
        timeout=600,
    )
    return response.status_code, response.content


@dataclass
class Upload:
    seconds: float
    rss_idle: int
    rss_peak: int
    sha256: str


def run_upload(server: Server, payload: Path, work: Path, client: str) -> Upload:
    url = f"{server.url}/api/v1/media/upload"
    idle = server.rss()
    sampler = RssSampler(server)
    sampler.start()
    try:
        if client == "curl":
            seconds, (status, body) = timed(lambda: _curl_upload(url, payload, work / "out.json"))
        else:
            seconds, (status, body) = timed(lambda: _httpx_upload(url, payload))
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
        }


def bench_size(server: Server, work: Path, size: int, pairs: int, client: str) -> SizeResult:
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
        print(
            f"   pair {pair + 1}/{pairs} ({'/'.join(order)}): upload {seen['upload']:.0f} MB/s, "
            f"dd {seen['dd']:.0f} MB/s, openssl {seen['openssl']:.0f} MB/s, "
            f"ratio {seen['upload'] / limit:.2f}, RSS +{grew:.1f} MiB"
            f"{'' if upload.sha256 == digest else ', HASH MISMATCH'}",
            flush=True,
        )
    payload.unlink()
    return result


# --------------------------------------------------------------------------- report


def machine(work: Path) -> dict[str, Any]:
    df = subprocess.run(["df", "-hT", str(work)], capture_output=True, text=True, check=False)
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "uname": " ".join(platform.uname()),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "work_dir": str(work),
        "df": df.stdout.strip(),
        "python": platform.python_version(),
        "openssl": subprocess.run(
            ["openssl", "version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def table(results: list[SizeResult]) -> str:
    header = (
        f"{'size':>8} | {'upload MB/s':>11} | {'dd MB/s':>7} | {'openssl MB/s':>12} | "
        f"{'limit':>5} | {'ratio':>5} | {'RSS idle':>8} | {'RSS peak':>8} | {'RSS Δ':>8} | goal met"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        s = result.summary()
        lines.append(
            f"{result.label:>8} | {s['upload_mb_s']:>11.0f} | {s['dd_mb_s']:>7.0f} | "
            f"{s['openssl_mb_s']:>12.0f} | {s['limit_mb_s']:>5.0f} | {s['ratio']:>5.2f} | "
            f"{s['rss_idle_mib']:>5.0f} MiB | {s['rss_peak_mib']:>5.0f} MiB | "
            f"{s['rss_delta_mib']:>+5.1f} MiB | {'yes' if s['goal_met'] else 'no'}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100M,1G", help="comma list, e.g. 100M,1G")
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs per size (≥ 3)")
    parser.add_argument("--work-dir", type=Path, help="default: a new dir under $TMPDIR")
    parser.add_argument("--client", choices=["auto", "curl", "httpx"], default="auto")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [parse_size(item) for item in args.sizes.split(",") if item.strip()]
    client = args.client
    if client == "auto":
        client = "curl" if shutil.which("curl") else "httpx"
    for tool in ("dd", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"`{tool}` is needed to measure the limit")

    work = (
        args.work_dir.resolve()
        if args.work_dir
        else Path(tempfile.mkdtemp(prefix="mediakeep-bench-"))
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
        "MEDIA_MAX_BYTES_VIDEO": str(max([2 * 1024 * MiB, *sizes])),
        "MEDIA_SWEEP_INTERVAL": "1h",
        "MEDIA_LOG_LEVEL": "WARNING",
        "VIPS_BLOCK_UNTRUSTED": "1",
    }
    server = Server(data_dir=data_dir, port=free_port(), env=env)
    info = machine(work)
    print(f"work dir {work} ({info['nproc']} CPUs, {info['cpu']})\n{info['df']}", flush=True)
    results: list[SizeResult] = []
    try:
        server.start(work / "server.log")
        warm = work / "warm.wav"
        make_payload(warm, MiB)
        run_upload(server, warm, work, client)  # load lazily imported code before idle RSS
        warm.unlink()
        for size in sizes:
            results.append(bench_size(server, work, size, args.pairs, client))
    finally:
        server.stop()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"ingest: multipart upload via {client} vs the slower of dd conv=fdatasync and openssl "
        f"dgst -sha256 on the same file (medians of {args.pairs} interleaved pairs; ratio = "
        f"median of each pair's upload/limit; goal ratio ≥ {GOAL_RATIO}, RSS Δ = largest peak "
        f"over the idle RSS before that upload ≤ +{GOAL_RSS // MiB} MiB)"
    )
    print(table(results))
    document = {
        "benchmark": "ingest",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "client": client,
        "goals": {"ratio_min": GOAL_RATIO, "rss_delta_max_mib": GOAL_RSS // MiB},
        "machine": info,
        "results": [asdict(r) | {"summary": r.summary()} for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nwrote {shown}")


if __name__ == "__main__":
    main()
