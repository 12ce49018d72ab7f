"""Helpers of the crash matrix (test_crash_matrix.py): requests that stop at a chosen byte of
their body until released, a loopback source that does the same for remote fetches, and the
reconciliation of what a killed-and-restarted server holds (database rows against stored
objects, leftovers of interrupted uploads).

The server is always a real `mediakeep serve` (tests/live); nothing here reaches into its
process: the database is read with its own driver, the store by walking the directory or
listing the bucket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import random
import socket
import sqlite3
import struct
import subprocess
import termios
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from tests.live import (
    BOUNDARY,
    HOST,
    LiveServer,
    RawResponse,
    mediakeep_executable,
    multipart_head,
    multipart_tail,
    read_response,
    wav_header,
)

KiB = 1024
MiB = 1024 * KiB
TUS = "/api/v1/uploads/tus"
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
# Small kernel buffers keep "bytes sent" close to "bytes the server has received".
SNDBUF = 64 * KiB
PAUSE_TIMEOUT = 60.0  # seconds a paused client waits to be released before giving up


def wav_payload(rng: random.Random, size: int) -> bytes:
    """A valid PCM WAV file of `size` bytes whose samples are seeded noise (unique per call,
    so no two payloads dedup onto each other)."""
    return wav_header(size) + rng.randbytes(size - 44)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unsent(sock: socket.socket) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (Linux SIOCOUTQ)."""
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


def _drain(sock: socket.socket, timeout: float = 5.0) -> None:
    """Wait until the peer's kernel has every byte sent so far (it is then the server's to
    read), so a kill that follows lands after those bytes, not before them."""
    deadline = time.monotonic() + timeout
    while _unsent(sock) and time.monotonic() < deadline:
        time.sleep(0.002)  # poll interval of the send queue


# --------------------------------------------------------------------------- paused requests


class PausedRequest(threading.Thread):
    """One HTTP/1.1 request over a raw socket whose body stops after `pause_at` bytes: then
    `paused` is set and the rest is sent only once `release` is set (after the kill it fails,
    as the server is gone). `response` is what the server answered, if it answered."""

    def __init__(
        self,
        server: LiveServer,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        pause_at: int,
    ) -> None:
        super().__init__(daemon=True)
        self.port = server.port
        self.method = method
        self.path = path
        self.headers = headers | {"Content-Length": str(len(body)), "Connection": "close"}
        self.body = body
        self.pause_at = pause_at
        self.paused = threading.Event()
        self.release = threading.Event()
        self.sent = 0
        self.response: RawResponse | None = None
        self.error: OSError | None = None

    def run(self) -> None:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
                sock.connect((HOST, self.port))
                sock.sendall(head + self.body[: self.pause_at])
                self.sent = self.pause_at
                _drain(sock)
                self.paused.set()
                self.release.wait(PAUSE_TIMEOUT)
                sock.sendall(self.body[self.pause_at :])
                self.sent = len(self.body)
                self.response = read_response(sock, timeout=120)
        except OSError as exc:
            self.error = exc
        finally:
            self.paused.set()  # whatever happened, nobody needs to wait for this one any more


def multipart_body(filename: str, content_type: str, payload: bytes) -> tuple[bytes, int]:
    """The form body of a one-file upload and the offset of the payload's first byte in it."""
    head = multipart_head(filename, content_type)
    return head + payload + multipart_tail(), len(head)


def multipart_headers() -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


# --------------------------------------------------------------------------- remote source


@dataclass
class Served:
    """One path of a DripSource: its bytes, where it stops, and how often it was fetched."""

    body: bytes
    pause_at: int | None
    paused: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    requests: int = 0  # GETs answered: a retried fetch really fetched again


class DripSource:
    """A loopback HTTP server for remote fetches: each path serves its bytes; a path with a
    pause sends `pause_at` bytes, sets `paused` and holds the rest until `release` (once: a
    retry of the fetch gets the whole body at once)."""

    def __init__(self) -> None:
        self._items: dict[str, Served] = {}
        self._lock = threading.Lock()
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                with source._lock:
                    item = source._items.get(self.path)
                    if item is None:
                        self.send_error(404)
                        return
                    item.requests += 1
                    pause_at, item.pause_at = item.pause_at, None
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(item.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):  # the fetching server was killed
                    if pause_at is None:
                        self.wfile.write(item.body)
                        return
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
                    self.wfile.write(item.body[:pause_at])
                    self.wfile.flush()
                    _drain(self.connection)
                    item.paused.set()
                    item.release.wait(PAUSE_TIMEOUT)
                    self.wfile.write(item.body[pause_at:])

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args  # quiet: the test prints its own summary

        self._httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> DripSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for item in self._items.values():
            item.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve(self, path: str, body: bytes, pause_at: int | None = None) -> Served:
        with self._lock:
            item = self._items[path] = Served(body, pause_at)
        return item

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self._httpd.server_address[1]}{path}"


class Call(threading.Thread):
    """One ordinary httpx request in the background (a remote-URL create, a finalize)."""

    def __init__(self, server: LiveServer, method: str, path: str, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.method = method
        self.path = path
        self.kwargs = kwargs
        self.status: int | None = None
        self.body: Any = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with self.server.client(timeout=120) as client:
                response = client.request(self.method, self.path, **self.kwargs)
            self.status = response.status_code
            self.body = response.json() if response.content else None
        except Exception as exc:  # the server was killed under it
            self.error = exc


# --------------------------------------------------------------------------- tus


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def tus_path(location: str) -> str:
    """The path of an upload URL (Location may be absolute)."""
    return urlsplit(location).path


def tus_patch_headers(offset: int) -> dict[str, str]:
    return TUS_HEADERS | {
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset),
    }


def tus_finish(server: LiveServer, path: str, data: bytes, timeout: float = 60) -> tuple[int, str]:
    """Resume an upload as a client does after a crash: HEAD for the offset, PATCH the rest.
    A PATCH cut off by the kill holds the upload's lease until it goes stale: 423 is retried.
    Returns (the offset HEAD reported, the Media-Id of the last PATCH)."""
    deadline = time.monotonic() + timeout
    with server.client() as client:
        head = client.head(path, headers=TUS_HEADERS)
        assert head.status_code in (200, 204), (head.status_code, head.headers)
        resumed_at = int(head.headers["upload-offset"])
        offset = resumed_at
        while True:
            if offset == len(data) and "media-id" in head.headers:
                return resumed_at, head.headers["media-id"]
            answer = client.patch(path, headers=tus_patch_headers(offset), content=data[offset:])
            if answer.status_code == 204:
                return resumed_at, answer.headers["media-id"]
            assert answer.status_code in (409, 423), (answer.status_code, answer.text)
            assert time.monotonic() < deadline, f"tus upload stuck: {answer.text}"
            if answer.status_code == 409:  # the offset moved (a lease taken over): ask again
                head = client.head(path, headers=TUS_HEADERS)
                offset = int(head.headers["upload-offset"])
            time.sleep(0.25)  # Retry-After says 1 s; the lease expires LEASE after its stamp


# --------------------------------------------------------------------------- the sweep


def run_sweep(server: LiveServer) -> str:
    """`mediakeep sweep` with MEDIA_ORPHAN_TTL=0s, so whatever the kills just left qualifies
    (the periodic sweeper would do the same an hour later)."""
    result = subprocess.run(
        [mediakeep_executable(), "sweep"],
        env=server.env | {"MEDIA_ORPHAN_TTL": "0s"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(server.data_dir.parent),
        check=False,
    )
    assert result.returncode == 0, f"sweep failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip()


# --------------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class Row:
    id: str
    org_id: str
    source: str
    status: str
    sha256: str | None
    storage_key: str | None


_MEDIA_SQL = "SELECT id, org_id, source, status, sha256, storage_key FROM media ORDER BY id"
_TUS_SQL = "SELECT id FROM tus_uploads WHERE media_id IS NULL"


def _query(server: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    dsn = server.env.get("DB_POSTGRESQL_WRITE_DSN")
    if dsn:

        async def fetch() -> list[tuple[Any, ...]]:
            connection = await asyncpg.connect(
                dsn.replace("postgresql+asyncpg://", "postgresql://")
            )
            try:
                return [tuple(record) for record in await connection.fetch(sql)]
            finally:
                await connection.close()

        return asyncio.run(fetch())
    with contextlib.closing(sqlite3.connect(server.data_dir / "mediakeep.db")) as db:
        return list(db.execute(sql).fetchall())


def media_rows(server: LiveServer) -> list[Row]:
    return [Row(*row) for row in _query(server, _MEDIA_SQL)]


def unfinished_tus_uploads(server: LiveServer) -> list[str]:
    return [str(row[0]) for row in _query(server, _TUS_SQL)]


def stored_sha256(server: LiveServer, key: str) -> str | None:
    """The SHA-256 of the stored object, streamed from the store; None when it is missing."""
    digest = hashlib.sha256()
    if server.s3_client is not None:
        try:
            body = server.s3_client.get_object(Bucket=server.bucket, Key=key)["Body"]
        except server.s3_client.exceptions.NoSuchKey:
            return None
        for chunk in body.iter_chunks(MiB):
            digest.update(chunk)
        return digest.hexdigest()
    path = server.objects_dir / key
    try:
        with path.open("rb") as handle:
            while block := handle.read(MiB):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


@dataclass(frozen=True)
class Acked:
    """An upload the client saw succeed: its media must survive every later kill."""

    path: str
    media_id: str
    sha256: str


@dataclass
class Reconciliation:
    rows: list[Row]
    missing_objects: list[str]  # row ids whose object is not in the store
    mismatches: list[str]  # row ids whose stored bytes do not hash to the row's sha256
    orphan_rows: list[str]  # rows that are not ready (pending, failed...) after recovery
    orphan_objects: list[str]  # originals no row points to
    temp_files: list[str]
    multipart_uploads: list[str]
    unfinished_tus: list[str]
    lost: list[Acked]  # acknowledged uploads missing, or with another sha256


def reconcile(server: LiveServer, acked: list[Acked]) -> Reconciliation:
    rows = media_rows(server)
    missing: list[str] = []
    mismatches: list[str] = []
    for row in rows:
        if row.storage_key is None:
            continue
        digest = stored_sha256(server, row.storage_key)
        if digest is None:
            missing.append(row.id)
        elif digest != row.sha256:
            mismatches.append(row.id)
    referenced = {row.storage_key for row in rows if row.storage_key}
    originals = [key for key in server.stored_objects() if key.split("/")[1:2] == ["originals"]]
    by_id = {row.id: row for row in rows}
    lost = [
        ack
        for ack in acked
        if ack.media_id not in by_id
        or by_id[ack.media_id].sha256 != ack.sha256
        or by_id[ack.media_id].status != "ready"
    ]
    return Reconciliation(
        rows=rows,
        missing_objects=missing,
        mismatches=mismatches,
        orphan_rows=[row.id for row in rows if row.status != "ready"],
        orphan_objects=sorted(set(originals) - referenced),
        temp_files=[str(p.relative_to(server.data_dir)) for p in server.spool_files()],
        multipart_uploads=server.multipart_uploads(),
        unfinished_tus=unfinished_tus_uploads(server),
        lost=lost,
    )


# --------------------------------------------------------------------------- the report


@dataclass
class PathTally:
    """What happened to one ingest path on one backend, for docs/reliability.md."""

    path: str
    backend: str
    seed: int
    kills: int = 0
    answered_before_kill: int = 0  # the request finished before the kill landed
    resumed: int = 0  # uploads completed after a kill (retried, re-finalized or tus-resumed)
    acked: int = 0
    orphan_rows: int = 0
    orphan_objects: int = 0
    mismatches: int = 0
    lost: int = 0
    kill_points: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"crash-matrix {self.backend:<12} {self.path:<10} kills={self.kills} "
            f"answered_before_kill={self.answered_before_kill} resumed={self.resumed} "
            f"acked={self.acked} orphan_rows={self.orphan_rows} "
            f"orphan_objects={self.orphan_objects} mismatches={self.mismatches} "
            f"lost={self.lost} seed={self.seed}"
        )


def report(tallies: list[PathTally], extra: dict[str, Any]) -> None:
    """Print one line per path and append them as JSON lines to $MEDIAKEEP_RELIABILITY_REPORT."""
    for tally in tallies:
        print(tally.line())  # noqa: T201 - the figures docs/reliability.md is written from
    target = os.environ.get("MEDIAKEEP_RELIABILITY_REPORT")
    if not target:
        return
    with Path(target).open("a", encoding="utf-8") as out:
        for tally in tallies:
            record = {"test": "crash_matrix", **asdict(tally), **extra}
            out.write(json.dumps(record, sort_keys=True) + "\n")


def wait_all(events: list[threading.Event], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    return all(event.wait(max(0.0, deadline - time.monotonic())) for event in events)
