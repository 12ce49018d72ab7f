"""Tests against a real `mediakeep serve` process: streaming limits, memory and crashes.

The helpers live here (fixtures in conftest.py): `LiveServer` runs the CLI exactly as a user
would, configured only by environment variables, and raw-socket helpers let a test decide
when each byte of a request is sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

HOST = "127.0.0.1"
MiB = 1024 * 1024
BOUNDARY = "mediakeep-live-boundary-7f3a9c"

# Variables of the caller's shell that could point a child server somewhere else.
_SCRUBBED_PREFIXES = ("MEDIA_", "DB_POSTGRESQL", "AUTH_", "CELERY_", "REDIS_", "PG")


def mediakeep_executable() -> str:
    """The `mediakeep` script of the venv running the tests."""
    beside = Path(sys.executable).parent / "mediakeep"
    if beside.is_file():
        return str(beside)
    found = shutil.which("mediakeep")
    if found is None:
        raise RuntimeError("the `mediakeep` command is not installed in this environment")
    return found


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["VIPS_BLOCK_UNTRUSTED"] = "1"
    # Every test registers its users from 127.0.0.1; the sign-up limit is tests/security's.
    env["MEDIA_RATE_LIMIT_REGISTER"] = "1000000/minute"
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


@dataclass
class LiveServer:
    """One `mediakeep serve` process on 127.0.0.1:`port` with its own MEDIA_DATA_DIR."""

    data_dir: Path
    env: dict[str, str]
    port: int
    log_path: Path
    backend: str = "sqlite-local"
    s3_client: Any = None
    bucket: str | None = None
    serve_args: tuple[str, ...] = ()  # more `mediakeep serve` options (e.g. --workers 2)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _migrated: bool = field(default=False, repr=False)

    # -- addresses and places

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "the server is not running"
        return self._proc.pid

    @property
    def objects_dir(self) -> Path:
        """The local backend's store (MEDIA_LOCAL_STORAGE_PATH defaults to data_dir/objects)."""
        return self.data_dir / "objects"

    @property
    def spool_dir(self) -> Path:
        """Scratch space of the S3 backend (and downloads for processing)."""
        return self.data_dir / "spool"

    # -- lifecycle

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60) -> None:
        if self.is_running():
            return
        if not self._migrated:
            self.cli("migrate")
            self._migrated = True
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    mediakeep_executable(),
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    *self.serve_args,
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.data_dir.parent),
                start_new_session=True,
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        f"mediakeep serve exited with {self._proc.returncode}:\n"
                        f"{_tail(self.log_path)}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        return
                time.sleep(0.05)  # poll interval while the process binds its port
        self.stop()
        raise RuntimeError(f"mediakeep serve not ready after {timeout}s:\n{_tail(self.log_path)}")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Send `sig` to the server (by PID) and wait for it to exit; its children go too."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.kill(signal.SIGTERM, timeout=15)
        self._proc = None

    def restart(self, timeout: float = 60) -> None:
        """Stop the process if it still runs and start a new one on the same data dir and port."""
        if self.is_running():
            self.stop()
        self._proc = None
        self.start(timeout)

    # -- talking to it

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=kwargs.pop("timeout", 60), **kwargs)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `mediakeep ARGS` with the server's environment; fail the test on a non-zero exit."""
        result = subprocess.run(
            [mediakeep_executable(), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(self.data_dir.parent),
            check=False,
        )
        assert result.returncode == 0, (
            f"mediakeep {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
        return result

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def media_ids(self) -> list[str]:
        with self.client() as client:
            response = client.get("/api/v1/media", params={"limit": 200})
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    # -- what is on disk / in the bucket

    def spool_files(self) -> list[Path]:
        """Bytes of uploads in flight: `{org}/incoming/*` in the local store, anything in the
        spool dir, and the local backend's interrupted-commit temp files."""
        found: list[Path] = []
        if self.objects_dir.is_dir():
            found += [p for p in self.objects_dir.glob("*/incoming/**/*") if p.is_file()]
            found += [p for p in self.objects_dir.rglob(".*.tmp-*") if p.is_file()]
        if self.spool_dir.is_dir():
            found += [p for p in self.spool_dir.rglob("*") if p.is_file()]
        return sorted(set(found))

    def stored_objects(self) -> list[str]:
        """Every object key the storage backend holds (local: every file below the store)."""
        if self.s3_client is not None:
            keys: list[str] = []
            paginator = self.s3_client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket):
                keys += [item["Key"] for item in page.get("Contents", [])]
            return keys
        if not self.objects_dir.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.objects_dir)) for p in self.objects_dir.rglob("*") if p.is_file()
        )

    def multipart_uploads(self) -> list[str]:
        """Keys of S3 multipart uploads begun and neither completed nor aborted."""
        if self.s3_client is None:
            return []
        response = self.s3_client.list_multipart_uploads(Bucket=self.bucket)
        return [upload["Key"] for upload in response.get("Uploads", [])]


# --------------------------------------------------------------------------- memory


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (ffmpeg, workers), in bytes."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += int(process.memory_info().rss)
    return total


class RssSampler:
    """Samples the RSS of a server's process tree from a thread while the block runs: `grown`
    is the highest sample minus the baseline taken on entry. This measures the server where
    the memory is used, during the operation (the test process's own peak-RSS high-water mark
    says nothing once an earlier test has pushed it up)."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def sample(self) -> None:
        self.peak = max(self.peak, tree_rss(self.pid))
        self.samples += 1

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = tree_rss(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        self.sample()

    @property
    def grown(self) -> int:
        return self.peak - self.baseline

    def describe(self) -> str:
        return (
            f"server tree RSS {self.baseline / MiB:.0f} MiB -> peak {self.peak / MiB:.0f} MiB "
            f"(+{self.grown / MiB:.1f} MiB, {self.samples} samples)"
        )


# --------------------------------------------------------------------------- payloads


def wav_header(total_size: int, *, channels: int = 2, rate: int = 48000) -> bytes:
    """A 44-byte PCM WAV header for a file of `total_size` bytes; any bytes after it are
    valid 16-bit samples (noise), so the file sniffs as audio/wav and decodes."""
    block_align = channels * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block_align, block_align, 16)
    riff = struct.pack("<I", total_size - 8)
    data = struct.pack("<I", total_size - 44)
    return b"RIFF" + riff + b"WAVE" + b"fmt " + fmt + b"data" + data


def small_png(width: int = 32, height: int = 24) -> bytes:
    import pyvips

    image = pyvips.Image.black(width, height, bands=3) + [40, 120, 200]
    return bytes(image.cast("uchar").pngsave_buffer())


def multipart_head(filename: str, content_type: str, boundary: str = BOUNDARY) -> bytes:
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


def multipart_tail(boundary: str = BOUNDARY) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode()


def repeated(block: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes as pieces of `block` (the last one cut)."""
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece


# --------------------------------------------------------------------------- raw HTTP


def request_head(
    server: LiveServer, path: str, headers: dict[str, str], method: str = "POST"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{server.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(server: LiveServer, *, sndbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if sndbuf is not None:
        # Small kernel buffers keep "bytes sent" close to "bytes the server has read".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.connect((HOST, server.port))
    return sock


def response_ready(sock: socket.socket, timeout: float) -> bool:
    readable, _, _ = select.select([sock], [], [], timeout)
    return bool(readable)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(sock: socket.socket, timeout: float = 30) -> RawResponse:
    """Read one HTTP/1.1 response (Content-Length or until close); tolerate a reset that
    follows it, as a server that stops reading an unfinished body may send one."""
    sock.settimeout(timeout)
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock)
        if not chunk:
            raise ConnectionError(f"connection closed before a response: {bytes(data)!r}")
        data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    rest = bytearray(body)
    while length is None or len(rest) < int(length):
        chunk = _recv(sock)
        if not chunk:
            break
        rest += chunk
    return RawResponse(int(status_line.split()[1]), headers, bytes(rest))


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
