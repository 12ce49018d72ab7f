"""A scripted HTTP server on loopback that stands in for network conditions the real server
does not produce on demand: 429/503 answers with Retry-After, connections dropped before an
answer. Each (method, path) has a queue of replies; the last one repeats."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def error(status: int, code: str, message: str = "scripted", **headers: str) -> Reply:
    return Reply(
        status,
        {"error": {"code": code, "message": message, "details": [], "request_id": "req_fake"}},
        {"X-Request-Id": "req_fake", **headers},
    )


class FakeServer:
    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                seen = Seen(self.command, path, {k.lower(): v for k, v in self.headers.items()},
                            body)
                reply = fake._next(seen)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)] = list(replies)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queue = self.replies.get((seen.method, seen.path))
            if not queue:
                return error(404, "not_found", f"nothing scripted for {seen.method} {seen.path}")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.close()


class DroppingProxy:
    """A TCP proxy on loopback to `target_port` that cuts one connection: once `drop_after`
    bytes of the body of a tus PATCH at `Upload-Offset` ≥ `from_offset` have passed, both
    sides are closed (a network that fails mid-upload). It records the Upload-Offset of every
    PATCH it sees, and the bytes sent upstream."""

    def __init__(self, target_port: int, drop_after: int, from_offset: int = 0) -> None:
        self.target_port = target_port
        self.drop_after = drop_after
        self.from_offset = from_offset
        self.dropped = 0
        self.bytes_up = 0
        self.patch_offsets: list[int] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: list[socket.socket] = []
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stopping:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open += [downstream, upstream]
            state = {"patch_bytes": -1, "patch_offset": -1}
            threading.Thread(
                target=self._pump, args=(downstream, upstream, state, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, downstream, state, False), daemon=True
            ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, state: dict[str, int], up: bool
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if up:
                    with self._lock:
                        self.bytes_up += len(data)
                        self._watch(data, state)
                        cut = (
                            not self.dropped
                            and state["patch_offset"] >= self.from_offset
                            and state["patch_bytes"] > self.drop_after
                        )
                        if cut:
                            self.dropped += 1
                    if cut:
                        for sock in (source, sink):
                            with contextlib.suppress(OSError):
                                sock.shutdown(socket.SHUT_RDWR)
                        break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _watch(self, data: bytes, state: dict[str, int]) -> None:
        start = data.find(b"PATCH /api/v1/uploads/tus/")
        if start >= 0:
            head_end = data.find(b"\r\n\r\n", start)
            head = data[start : head_end if head_end >= 0 else len(data)].decode("latin-1")
            for line in head.split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "upload-offset":
                    self.patch_offsets.append(int(value.strip()))
                    state["patch_offset"] = int(value.strip())
            state["patch_bytes"] = len(data) - (head_end + 4 if head_end >= 0 else len(data))
        elif state["patch_bytes"] >= 0:
            state["patch_bytes"] += len(data)

    def close(self) -> None:
        self._stopping = True
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()
