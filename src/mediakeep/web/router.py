"""Serve the web app: `GET /` is index.html, `/static/...` the ES modules, CSS and icons.

Every answer carries a strict Content-Security-Policy: scripts and styles only from this
origin (no inline script, no eval), while images, media and fetches may reach any origin so
presigned S3/CDN URLs handed out by the API still load. Media may also be `data:`: hls.js
gives each subtitle track an empty `<track src="data:,WEBVTT">` before filling in its cues.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: *",
        "media-src 'self' data: blob: *",
        "connect-src 'self' *",
        "font-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

# The page is tiny and must pick up new app.js at once; assets revalidate by ETag.
INDEX_CACHE = "no-cache"
STATIC_CACHE = "public, max-age=300, must-revalidate"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The single page of the web app."""
    headers = {**SECURITY_HEADERS, "Cache-Control": INDEX_CACHE}
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=headers)


class _SecureStatic:
    """StaticFiles with the app's security and cache headers added to every answer."""

    def __init__(self) -> None:
        self._files = StaticFiles(directory=STATIC_DIR)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                extra = {**SECURITY_HEADERS, "Cache-Control": STATIC_CACHE}
                headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self._files(scope, receive, send_with_headers)


def mount_web(app: FastAPI) -> None:
    """Add the web app to `app` (`/` and `/static`), outside the OpenAPI document."""
    app.include_router(router)
    app.mount("/static", _SecureStatic(), name="static")
