"""HTTP for direct uploads: upload URLs, finalize, and the local backend's signed PUT target."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from mediakeep.deps import Member, ServicesDep, WriteSession
from mediakeep.errors import MediaError, error_response, not_found
from mediakeep.media import service as media_service
from mediakeep.media.schemas import MediaOut
from mediakeep.ratelimit.route import RouteLimit
from mediakeep.storage import keys
from mediakeep.storage.base import ObjectTooLarge
from mediakeep.uploads import service
from mediakeep.uploads.schemas import FinalizeIn, UploadDedupedOut, UploadUrlIn, UploadUrlOut

router = APIRouter(prefix="/media", tags=["media"])
local_router = APIRouter(tags=["uploads"])

_UPLOAD_URL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": UploadDedupedOut, "description": "the org already has these bytes (sha256)"},
    413: {"description": "over the size limit of the type, or over the org's quota"},
    415: {"description": "the declared type is not allowed"},
}


async def _upload_url(
    body: UploadUrlIn, principal: Member, services: ServicesDep, session: WriteSession
) -> JSONResponse:
    answer = await service.prepare_upload(services, session, principal, body)
    status = 200 if isinstance(answer, UploadDedupedOut) else 201
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)


@router.post(
    "/upload-url",
    status_code=201,
    response_model=UploadUrlOut,
    responses=_UPLOAD_URL_RESPONSES,
    dependencies=[Depends(RouteLimit("upload_url"))],
)
async def upload_url(
    body: UploadUrlIn, principal: Member, services: ServicesDep, session: WriteSession
) -> JSONResponse:
    """Reserve a pending media and get a URL to send its bytes straight to storage."""
    return await _upload_url(body, principal, services, session)


@router.post(
    "/prepare-upload",
    status_code=201,
    response_model=UploadUrlOut,
    responses=_UPLOAD_URL_RESPONSES,
    dependencies=[Depends(RouteLimit("upload_url"))],
)
async def prepare_upload(
    body: UploadUrlIn, principal: Member, services: ServicesDep, session: WriteSession
) -> JSONResponse:
    """Alias of `POST /media/upload-url`."""
    return await _upload_url(body, principal, services, session)


@router.post(
    "/{media_id}/finalize",
    response_model=MediaOut,
    responses={
        409: {"description": "nothing uploaded yet, or already finalized"},
        410: {"description": "the upload expired (`upload.expired`)"},
        413: {"description": "the stored object is larger than declared, or over a limit"},
        415: {"description": "the sniffed type is not allowed"},
        422: {"description": "the bytes do not decode"},
    },
)
async def finalize(
    media_id: str,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
    body: FinalizeIn | None = None,
) -> JSONResponse:
    """Verify the uploaded object (size, type, hash) and make it a ready media."""
    # The row is read from the primary (not a replica: it may be seconds old) in a short unit
    # of work of its own: the request's transaction (on SQLite, the write lock) starts only
    # once the object has been verified.
    async with services.db.write_session() as primary:
        media = await service.pending_upload(primary, principal.org_id, media_id)
    try:
        result = await service.finalize(
            services, session, services.db.read_session, principal, media, body or FinalizeIn()
        )
    except service.UploadRejected as rejected:
        # Answered, not raised: the unit of work must commit the deletion of the spent upload.
        return error_response(rejected.error)
    out = await media_service.present(services, session, result.media, result.deduped)
    return JSONResponse(out.model_dump(mode="json"), status_code=200)


_BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@local_router.put(
    "/uploads/local/{key:path}",
    response_class=Response,
    openapi_extra=_BINARY_BODY,
    responses={
        200: {"description": "stored; `ETag` names the stored version"},
        401: {"description": "the upload URL has expired"},
        403: {"description": "the signature, or the Content-Type signed for, does not match"},
        413: {"description": "the body is over the size the URL was signed for"},
    },
)
async def put_local(
    key: str,
    request: Request,
    services: ServicesDep,
    exp: Annotated[str, Query(max_length=20)],
    size: Annotated[str, Query(max_length=20)],
    type: Annotated[str, Query(max_length=100)],  # noqa: A002 - the URL's name
    sig: Annotated[str, Query(max_length=100)],
) -> Response:
    """The local storage backend's signed upload URL (HMAC over key, expiry, size and type)."""
    storage = services.storage.self_served
    if storage is None:  # this backend's upload URLs go elsewhere (S3)
        raise not_found("upload target")
    verdict = storage.verify_upload(key, exp, size, type, sig)
    if verdict == "bad" or not keys.is_incoming(key):
        raise MediaError("auth.forbidden", 403, "The upload URL's signature is not valid")
    if verdict == "expired":
        raise MediaError("auth.unauthorized", 401, "The upload URL has expired")
    sent_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if sent_type != type:
        raise MediaError(
            "auth.forbidden",
            403,
            f"This upload URL is signed for Content-Type {type}, not {sent_type or 'none'}",
        )
    max_size = int(size)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_size:
        raise _too_large(max_size)
    try:
        info = await storage.receive(key, request.stream(), max_size)
    except ObjectTooLarge as exc:
        raise _too_large(max_size) from exc
    except ValueError as exc:
        raise MediaError("validation.invalid", 400, "The body is empty") from exc
    return Response(status_code=200, headers={"ETag": f'"{info.etag}"'})


def _too_large(limit: int) -> MediaError:
    return MediaError(
        "validation.size.exceeds_limit",
        413,
        f"The body is larger than the {limit} bytes this upload URL was signed for",
    )
