"""A real webhook receiver on loopback, and the Standard Webhooks verification a receiver does."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers the scripted statuses in turn (then 200) and records every request. With a
    `gate`, each request is held (body read, no answer) until the gate is set: `arrived`
    counts the requests that reached it, `received` those answered."""

    statuses: list[int] = field(default_factory=list)
    gate: threading.Event | None = None
    arrived: int = 0
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextmanager
def receiver(
    statuses: list[int] | None = None, gate: threading.Event | None = None
) -> Iterator[Receiver]:
    state = Receiver(statuses=list(statuses or []), gate=gate)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            with lock:
                state.arrived += 1
            if state.gate is not None:
                state.gate.wait(60)  # bounded: a test that forgets to open it still ends
            with lock:
                state.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = state.statuses.pop(0) if state.statuses else 200
            payload = b"ok" if status < 300 else b"receiver error " + b"x" * 3000
            self.send_response(status)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if gate is not None:
            gate.set()
        server.shutdown()
        server.server_close()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check by the field's reference library (`standardwebhooks`), as a
    receiver would run it: signature, and a timestamp within its tolerance."""
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True
