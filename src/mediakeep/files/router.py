"""`GET /files/{key}`: the local storage backend's signed download links."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from mediakeep.deps import ServicesDep
from mediakeep.errors import MediaError, not_found
from mediakeep.media.service import disposition_for
from mediakeep.storage.serving import object_response

router = APIRouter(tags=["files"])


# The stored bytes, of whatever type they sniffed as.
_BYTES: dict[str, Any] = {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}


@router.head("/files/{key:path}", include_in_schema=False)
@router.get(
    "/files/{key:path}",
    response_class=Response,
    responses={200: _BYTES, 206: {}, 401: {}, 403: {}},
)
async def download(
    key: str,
    request: Request,
    services: ServicesDep,
    exp: Annotated[str, Query(max_length=20)],
    sig: Annotated[str, Query(max_length=100)],
    name: Annotated[str | None, Query(max_length=300)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,  # noqa: A002 - the URL's name
    disp: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Serve a stored object through a signed link (HMAC over key, expiry and headers)."""
    storage = services.storage
    links = storage.self_served
    if links is None:  # this backend's links are served elsewhere (S3)
        raise not_found("file")
    verdict = links.verify_signed(key, exp, sig, name, type, disp)
    if verdict == "bad":
        raise MediaError("auth.forbidden", 403, "The link's signature is not valid")
    if verdict == "expired":
        raise MediaError("auth.unauthorized", 401, "The link has expired")
    info = await storage.stat(key)
    if info is None:
        raise not_found("file")
    mime = type or "application/octet-stream"
    return await object_response(
        request,
        storage,
        key,
        size=info.size,
        mime=mime,
        etag=f'"{info.etag or info.size}-{int(info.modified.timestamp())}"',
        last_modified=info.modified,
        filename=name,
        disposition=disposition_for(mime, "attachment" if disp == "attachment" else "inline"),
        cache_control="private, max-age=3600",
    )
