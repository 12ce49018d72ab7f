"""A fake OpenAI-compatible vendor: a real HTTP server on loopback (in a thread, so worker
processes reach it while the test awaits) that records every request and answers with fixture
media, or is told to fail (500) or to hang past the client's timeout."""

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests import mediagen

TRANSCRIPT = {
    "task": "transcribe",
    "language": "english",
    "duration": 2.0,
    "text": "Hello from the fake vendor. Second line.",
    "segments": [
        {"id": 0, "start": 0.0, "end": 1.2, "text": " Hello from the fake vendor."},
        {"id": 1, "start": 1.2, "end": 1.9, "text": " Second line."},
    ],
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeVendor:
    png: bytes = field(default_factory=lambda: mediagen.png(64, 48))
    wav: bytes = field(default_factory=lambda: mediagen.wav(1.0))
    mode: str = "ok"  # ok | fail | hang
    hang_seconds: float = 10.0
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def of(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        self.requests.append(
            Recorded(handler.command, handler.path, dict(handler.headers.items()), body)
        )
        # Failures are of the generation endpoints; moderation keeps answering.
        failing = handler.path != "/v1/moderations"
        if self.mode == "hang" and failing:
            time.sleep(self.hang_seconds)
        if self.mode == "fail" and failing:
            self._send(handler, 500, b'{"error": {"message": "vendor exploded"}}')
            return
        if handler.path == "/v1/images/generations":
            payload = {"created": 1, "data": [{"b64_json": base64.b64encode(self.png).decode()}]}
            self._send(handler, 200, json.dumps(payload).encode())
        elif handler.path == "/v1/audio/speech":
            self._send(handler, 200, self.wav, "audio/wav")
        elif handler.path == "/v1/audio/transcriptions":
            self._send(handler, 200, json.dumps(TRANSCRIPT).encode())
        elif handler.path == "/v1/models":
            self._send(handler, 200, b'{"data": []}')
        elif handler.path == "/v1/moderations":
            text = json.loads(body).get("input", "")
            flagged = "forbidden-by-vendor" in text
            self._send(handler, 200, json.dumps({"results": [{"flagged": flagged}]}).encode())
        else:
            self._send(handler, 404, b"{}")

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/json"
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("content-type", kind)
            handler.send_header("content-length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout tests)

    def start(self) -> "FakeVendor":
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                vendor.answer(self)

            def do_POST(self) -> None:  # noqa: N802
                vendor.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
