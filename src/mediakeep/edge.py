"""Checks at the edge, before routing: the size of small bodies and text in the URL.

Body limit (issue 17, M2). FastAPI reads a JSON or form body whole before any route code runs
(whatever its Content-Type: a 100 MB body to `/auth/login` was read and parsed before the
401), so every body that is not an upload is bounded here by `MEDIA_MAX_JSON_BYTES` and
refused with 413 `validation.body_too_large` before the app sees a byte of it. A declared
`Content-Length` over the limit is refused at once; a chunked body is counted as it arrives
and refused at the first chunk over the limit. A body within the limit is held (it is small)
and replayed to the app. Upload routes stream their bodies and keep their own limits
(`MEDIA_MAX_BYTES...`): multipart uploads, tus, the local backend's signed PUT, and
`POST /api/v1/media`, whose data URLs are uploads inside JSON; caption files get room for their
2,000,000 characters.

URL text (issue 17, L1). A path or query parameter with a control character is refused with
400 `validation.invalid` (`mediakeep.kit.text`'s rule), for every route at once: PostgreSQL
cannot compare a NUL, and no id, slug, filter or search term contains one.
"""

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediakeep.errors import MediaError, error_response
from mediakeep.kit.text import first_control_in_url

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Caption content is up to 2,000,000 characters (captions/schemas.py): up to 4 bytes each in
# UTF-8, plus the JSON around it.
CAPTION_BODY_BYTES = 8_000_000 + 64 * 1024

# Routes that stream their body into a spool or storage under their own size limits.
_UPLOAD_ROUTES = re.compile(
    r"^(?:/api/v1/media(?:/upload)?|/api/v1/uploads/tus(?:/.*)?|/uploads/local/.+)$"
)
_CAPTION_ROUTES = re.compile(r"^/api/v1/media/[^/]+/captions(?:/[^/]+)?$")


def body_limit(path: str, max_json_bytes: int) -> int | None:
    """The most bytes a request body to `path` may have here; None: the route's own limit."""
    if _UPLOAD_ROUTES.match(path):
        return None
    if _CAPTION_ROUTES.match(path):
        return max(CAPTION_BODY_BYTES, max_json_bytes)
    return max_json_bytes


def body_too_large(limit: int) -> MediaError:
    return MediaError(
        "validation.body_too_large",
        413,
        f"The request body is over {limit} bytes (MEDIA_MAX_JSON_BYTES)",
        [{"field": "body", "message": f"at most {limit} bytes"}],
    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class EdgeGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = first_control_in_url(scope["path"], scope.get("query_string", b""))
        if refused is not None:
            where, why = refused
            error = MediaError(
                "validation.invalid", 400, f"{where}: {why}", [{"field": where, "message": why}]
            )
            await error_response(error)(scope, receive, send)
            return
        limit = None
        if scope["method"] in BODY_METHODS:
            services = getattr(getattr(scope.get("app"), "state", None), "services", None)
            settings = getattr(services, "settings", None)
            if settings is not None:
                limit = body_limit(scope["path"], settings.max_json_bytes)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await error_response(body_too_large(limit))(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)  # the client left; the app will notice
                break
            size += len(message.get("body", b""))
            if size > limit:
                await error_response(body_too_large(limit))(scope, receive, send)
                return
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)
