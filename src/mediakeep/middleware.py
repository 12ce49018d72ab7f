"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed bodies)."""

import re
import time

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediakeep.ids import new_id
from mediakeep.kit.request_context import set_request_id

log = structlog.get_logger("mediakeep.access")

REQUESTS = Counter("mediakeep_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "mediakeep_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)

_INCOMING_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class RequestContextMiddleware:
    """Assigns `X-Request-Id` (keeping a sane incoming one), logs and counts every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.match(incoming) else new_id("req")
        set_request_id(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                route = scope.get("route")
                route_path = getattr(route, "path", "unmatched")
                elapsed = time.perf_counter() - started
                REQUESTS.labels(scope["method"], route_path, str(status)).inc()
                LATENCY.labels(scope["method"], route_path).observe(elapsed)
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
