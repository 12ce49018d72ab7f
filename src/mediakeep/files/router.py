"""`GET /files/{key}`: download links signed with the org's link key (storage/links.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from mediakeep.deps import ServicesDep
from mediakeep.errors import MediaError, not_found
from mediakeep.media.service import disposition_for
from mediakeep.storage.links import REDIRECT_SECONDS, check_files_link, org_of
from mediakeep.storage.serving import object_response

router = APIRouter(tags=["files"])


# The stored bytes, of whatever type they sniffed as.
_BYTES: dict[str, Any] = {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}


@router.head("/files/{key:path}", include_in_schema=False)
@router.get(
    "/files/{key:path}",
    response_class=Response,
    responses={200: _BYTES, 206: {}, 302: {}, 401: {}, 403: {}},
)
async def download(
    key: str,
    request: Request,
    services: ServicesDep,
    exp: Annotated[str, Query(max_length=20)],
    sig: Annotated[str, Query(max_length=100)],
    kid: Annotated[str | None, Query(max_length=40)] = None,
    name: Annotated[str | None, Query(max_length=300)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,  # noqa: A002 - the URL's name
    disp: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Serve a stored object through a signed link (HMAC with the org's key `kid` over key,
    expiry and headers); on S3, redirect to a presigned URL that lives a minute."""
    storage = services.storage
    ring = services.link_keys
    if ring is None:
        raise not_found("file")
    keys = await ring.load(org_of(key))
    verdict = check_files_link(keys.get, key, exp, sig, kid, name, type, disp)
    if verdict == "bad":
        raise MediaError("auth.forbidden", 403, "The link's signature is not valid")
    if verdict == "expired":
        raise MediaError("auth.unauthorized", 401, "The link has expired")
    mime = type or "application/octet-stream"
    disposition = disposition_for(mime, "attachment" if disp == "attachment" else "inline")
    presigned = storage.presigned
    if presigned is not None:  # S3 serves the bytes, for a minute past this check
        url = presigned.signed_url(
            key, REDIRECT_SECONDS, filename=name, content_type=mime, disposition=disposition
        )
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    info = await storage.stat(key)
    if info is None:
        raise not_found("file")
    return await object_response(
        request,
        storage,
        key,
        size=info.size,
        mime=mime,
        etag=f'"{info.etag or info.size}-{int(info.modified.timestamp())}"',
        last_modified=info.modified,
        filename=name,
        disposition=disposition,
        cache_control="private, max-age=3600",
    )
