"""HTTP for tus 1.0 at /api/v1/uploads/tus: headers in, headers out. Logic is in service.py.

Bodies are read from `request.stream()` as they arrive; FastAPI never parses them.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from mediakeep.deps import Member, ServicesDep, WriteSession
from mediakeep.errors import MediaError, not_found
from mediakeep.ids import looks_like_id
from mediakeep.tus import service
from mediakeep.tus.schemas import (
    CHECKSUM_ALGORITHMS,
    TUS_EXTENSIONS,
    TUS_VERSION,
    check_version,
    http_date,
    is_offset_stream,
    parse_checksum,
    parse_content_length,
    parse_length,
    parse_metadata,
    require_offset_stream,
)


class TusRoute(APIRoute):
    """Every tus answer, errors included (401s from auth too), says `Tus-Resumable`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def tus_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except MediaError as exc:
                exc.headers.setdefault("Tus-Resumable", TUS_VERSION)
                raise
            response.headers.setdefault("Tus-Resumable", TUS_VERSION)
            return response

        return tus_handler


# Answers are headers only: no route documents a (JSON) body.
router = APIRouter(
    prefix="/uploads/tus", tags=["tus"], route_class=TusRoute, default_response_class=Response
)

_NO_STORE = {"Cache-Control": "no-store"}
_HEADERS_DOC: dict[str, Any] = {"description": "tus headers only; no body"}
_NO_VERSION: dict[str, Any] = {"description": "`Tus-Resumable` is missing or not 1.0.0"}


def _header(name: str, schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


# The tus headers a request needs, so the document (and clients made from it) can send them.
_DIGITS = {"type": "string", "pattern": "^[0-9]{1,19}$"}
_VERSION = _header("Tus-Resumable", {"type": "string", "enum": [TUS_VERSION]})
_CHECKSUM = _header("Upload-Checksum", {"type": "string"}, required=False)
_CREATE_DOC: dict[str, Any] = {
    "parameters": [
        _VERSION,
        _header("Upload-Length", _DIGITS),
        _header("Upload-Metadata", {"type": "string"}, required=False),
    ]
}
_APPEND_DOC: dict[str, Any] = {
    "parameters": [_VERSION, _header("Upload-Offset", _DIGITS), _CHECKSUM],
    "requestBody": {
        "required": True,
        "content": {
            "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
        },
    },
}
_VERSION_DOC: dict[str, Any] = {"parameters": [_VERSION]}


async def _units(services: ServicesDep) -> service.TusUnits:
    # Not the request's WriteSession: a body streams while the lease is held, and the
    # request's unit would hold a write transaction (SQLite's write lock) all along. A
    # coroutine: FastAPI runs a plain `def` dependency in its thread pool, a hand-off.
    return service.TusUnits(write=services.db.write_session, read=services.db.read_session)


Units = Annotated[service.TusUnits, Depends(_units)]


def _upload_id(value: str) -> str:
    if not looks_like_id(value, "tus"):
        raise not_found("upload")
    return value


def _location(request: Request, services: ServicesDep, upload_id: str) -> str:
    # MEDIA_PUBLIC_URL when set (behind a proxy), else where this request came in.
    base = services.settings.public_url_setting.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}{request.url.path.rstrip('/')}/{upload_id}"


def _discovery(services: ServicesDep) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
            "Tus-Max-Size": str(service.max_upload_bytes(services)),
        },
    )


@router.options("", status_code=204, responses={204: _HEADERS_DOC})
async def discover(services: ServicesDep) -> Response:
    """tus discovery: the protocol version, extensions, checksum algorithms and largest size."""
    return _discovery(services)


@router.options("/{upload_id}", status_code=204, responses={204: _HEADERS_DOC})
async def discover_upload(upload_id: str, services: ServicesDep) -> Response:
    """tus discovery, asked of an upload's URL."""
    del upload_id
    return _discovery(services)


@router.post(
    "",
    status_code=201,
    responses={201: _HEADERS_DOC, 412: _NO_VERSION, 413: {}, 460: {}},
    openapi_extra=_CREATE_DOC,
)
async def create(
    request: Request, principal: Member, services: ServicesDep, units: Units
) -> Response:
    """Create a resumable upload (`Upload-Length`, `Upload-Metadata`); a body sent as
    application/offset+octet-stream is its first chunk. 201 with `Location`."""
    headers = request.headers
    check_version(headers.get("tus-resumable"))
    if "upload-defer-length" in headers:
        raise MediaError(
            "validation.invalid",
            400,
            "Upload-Defer-Length is not supported; send Upload-Length",
            [{"field": "Upload-Defer-Length", "message": "not supported"}],
        )
    length = parse_length(headers.get("upload-length"), "Upload-Length")
    metadata = parse_metadata(headers.get("upload-metadata"))
    content_length = parse_content_length(headers.get("content-length"))
    with_body = is_offset_stream(headers.get("content-type")) and (
        content_length is None or content_length > 0
    )
    checksum = parse_checksum(headers.get("upload-checksum")) if with_body else None
    upload = await service.create(services, units, principal, length=length, metadata=metadata)
    location = _location(request, services, upload.id)
    answer = {"Location": location, "Upload-Offset": "0"}
    if with_body:
        try:
            state = await service.append(
                services,
                units,
                principal,
                upload.id,
                offset=0,
                content_length=content_length,
                checksum=checksum,
                chunks=request.stream(),
            )
        except MediaError as exc:
            exc.headers.setdefault("Location", location)  # the upload exists; resume it there
            raise
        answer |= state.headers()
    else:
        answer["Upload-Expires"] = http_date(upload.expires_at)
    return Response(status_code=201, headers=answer)


@router.head(
    "/{upload_id}",
    status_code=200,
    responses={200: _HEADERS_DOC, 412: _NO_VERSION},
    openapi_extra=_VERSION_DOC,
)
async def status(
    upload_id: str, request: Request, principal: Member, services: ServicesDep, units: Units
) -> Response:
    """The upload's offset and length (`Upload-Offset`, `Upload-Length`); `Media-Id` once it
    is finished."""
    check_version(request.headers.get("tus-resumable"))
    state = await service.status(services, units, principal, _upload_id(upload_id))
    return Response(status_code=200, headers=state.headers(with_length=True) | _NO_STORE)


@router.patch(
    "/{upload_id}",
    status_code=204,
    responses={
        204: _HEADERS_DOC,
        409: {"description": "`Upload-Offset` is not the upload's current offset"},
        412: _NO_VERSION,
        415: {"description": "the body is not application/offset+octet-stream"},
        460: {},
    },
    openapi_extra=_APPEND_DOC,
)
async def append(
    upload_id: str, request: Request, principal: Member, services: ServicesDep, units: Units
) -> Response:
    """Append the body (application/offset+octet-stream) at `Upload-Offset`, optionally checked
    by `Upload-Checksum: sha1|md5|sha256 <base64>`; the last chunk answers the media's
    `Media-Id`."""
    headers = request.headers
    check_version(headers.get("tus-resumable"))
    require_offset_stream(headers.get("content-type"))
    offset = parse_length(headers.get("upload-offset"), "Upload-Offset")
    checksum = parse_checksum(headers.get("upload-checksum"))
    content_length = parse_content_length(headers.get("content-length"))
    state = await service.append(
        services,
        units,
        principal,
        _upload_id(upload_id),
        offset=offset,
        content_length=content_length,
        checksum=checksum,
        chunks=request.stream(),
    )
    return Response(status_code=204, headers=state.headers())


@router.delete(
    "/{upload_id}", status_code=204, responses={412: _NO_VERSION}, openapi_extra=_VERSION_DOC
)
async def terminate(
    upload_id: str,
    request: Request,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> Response:
    """Terminate the upload: its bytes are removed and later requests answer 404."""
    check_version(request.headers.get("tus-resumable"))
    await service.terminate(services, session, principal, _upload_id(upload_id))
    return Response(status_code=204)
