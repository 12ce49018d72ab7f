"""Serving stored objects over HTTP: Range, conditional requests, safe headers."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from mediakeep.kit.http import content_disposition
from mediakeep.storage.base import Disposition, ObjectReader

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive) for one satisfiable range; None = whole body; False = 416."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None  # multi-range or malformed: RFC 9110 lets us ignore it and send it all
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end


def _not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return etag in tags or "*" in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


async def object_response(
    request: Request,
    storage: ObjectReader,
    key: str,
    *,
    size: int,
    mime: str,
    etag: str,
    last_modified: datetime,
    filename: str | None,
    disposition: Disposition,
    cache_control: str,
) -> Response:
    headers = {
        "ETag": etag,
        # astimezone: S3's times carry dateutil's tzutc, which format_datetime refuses.
        "Last-Modified": format_datetime(
            last_modified.astimezone(UTC).replace(microsecond=0), usegmt=True
        ),
        "Cache-Control": cache_control,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Content-Disposition": content_disposition(filename, disposition, mime),
    }
    if _not_modified(request, etag, last_modified):
        return Response(status_code=304, headers=headers)
    wanted = parse_range(request.headers.get("range"), size)
    if request.headers.get("if-range") not in (None, etag):
        wanted = None
    if wanted is False:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    status = 200
    start, end = 0, size - 1
    if isinstance(wanted, tuple):
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type=mime)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in storage.read(key, start, end):
            yield chunk

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=mime)
