"""HTTP for media: uploads, reads, edits, deletes, links. Logic lives in service.py / ingest."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError

from mediakeep.auth.principal import Principal
from mediakeep.collections import service as collections
from mediakeep.deps import Member, ReadSession, ServicesDep, Viewer, WriteSession
from mediakeep.errors import MediaError, invalid
from mediakeep.events.publish import publish_after_commit
from mediakeep.ingest import sources
from mediakeep.ingest.multipart import read_multipart
from mediakeep.ingest.pipeline import IngestResult, ingest_spooled, open_spool
from mediakeep.jobs import service as jobs
from mediakeep.jobs.schemas import AsyncUploadOut
from mediakeep.kit.text import LINE_PATTERN, TEXT_PATTERN
from mediakeep.media import service
from mediakeep.media.repository import MediaFilters, SortField, SortOrder
from mediakeep.media.schemas import (
    BatchOut,
    CreateMediaIn,
    IdsIn,
    MediaFieldsIn,
    MediaList,
    MediaOut,
    PresignOut,
    ResolveOut,
    TimeFilter,
    UpdateMediaIn,
    VariantList,
)
from mediakeep.services import Services
from mediakeep.storage.base import StorageUnavailable
from mediakeep.storage.serving import object_response

router = APIRouter(prefix="/media", tags=["media"])

MULTIPART_OVERHEAD = 1 << 20
_UPLOAD_FORM_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        # The same text rules as the JSON routes (kit/text.py).
                        "filename": {"type": "string", "pattern": LINE_PATTERN},
                        "alt": {"type": "string", "pattern": TEXT_PATTERN},
                        "caption": {"type": "string", "pattern": TEXT_PATTERN},
                        "description": {"type": "string", "pattern": TEXT_PATTERN},
                        "is_private": {"type": "boolean"},
                        "collection_id": {"type": "string", "pattern": LINE_PATTERN},
                        "generate_variants": {"type": "boolean", "default": True},
                        "async": {"type": "boolean", "default": False},
                    },
                }
            }
        },
    }
}
# Downloads are the stored bytes, of whatever type they sniffed as.
_BYTES: dict[str, Any] = {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
# What every ingest path may refuse (API.md "Errors"), besides 400, 401, 403 and 429.
_INGEST_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such collection (`collection_id`) in this organisation"},
    413: {"description": "over MEDIA_MAX_BYTES or the org's quota"},
    415: {"description": "the sniffed type is not allowed"},
    422: {"description": "the bytes claim a type but do not decode"},
}
_CREATE_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": CreateMediaIn.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            }
        },
    }
}


def _created(result: IngestResult, body: MediaOut) -> JSONResponse:
    if result.job is not None:  # async=true: the media is `processing` until its job ends
        answer = AsyncUploadOut(media=body, job=jobs.to_out(result.job))
        return JSONResponse(answer.model_dump(mode="json"), status_code=202)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if result.deduped else 201)


async def _check_collection(services: Services, principal: Principal, form: MediaFieldsIn) -> None:
    # Before any byte is stored: an unknown collection must leave no media and no object. In a
    # short read unit of work beside the request's write session, which (on SQLite) takes
    # the write lock only at the insert, after the body has streamed.
    if form.collection_id:
        async with services.db.read_session() as reader:
            await collections.check_upload_target(reader, principal, form.collection_id)


async def _into_collection(
    session: WriteSession, principal: Principal, form: MediaFieldsIn, result: IngestResult
) -> None:
    if form.collection_id:
        await collections.add_uploaded(session, principal, form.collection_id, result.media.id)


def _refuse_declared_oversize(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise MediaError(
            "validation.size.exceeds_limit",
            413,
            f"The body is {declared} bytes; the limit is {limit} bytes",
            [{"field": "file", "message": "too large"}],
        )


@router.post(
    "/upload",
    status_code=201,
    response_model=MediaOut,
    openapi_extra=_UPLOAD_FORM_SCHEMA,
    responses=_INGEST_ERRORS
    | {
        200: {"description": "the same bytes already exist in the org (deduped)"},
        202: {"model": AsyncUploadOut, "description": "async=true: processed by the job"},
        503: {"description": "async=true and the job queue is down; nothing was stored"},
    },
)
async def upload(
    request: Request, principal: Member, services: ServicesDep, session: WriteSession
) -> JSONResponse:
    """Upload one file as multipart/form-data; streamed, hashed, sniffed and deduplicated."""
    settings = services.settings
    _refuse_declared_oversize(request, settings.max_bytes_for(None) + MULTIPART_OVERHEAD)
    # The quota and sha256 reads run in short read units of this scope, not in `session`,
    # whose write transaction (SQLite's write lock) must not span the streamed body.
    lookup = services.db.read_session
    async with open_spool(services, principal.org_id, lookup) as spool:
        form = await read_multipart(request, "file", spool.write)
        try:
            # Form fields are text ("true"), read as a query string is: the JSON types of
            # kit/numbers.py are for JSON bodies, and strict=False lifts them here.
            fields = MediaFieldsIn.model_validate(form.fields, strict=False)
        except ValidationError as exc:
            raise _as_invalid(exc) from exc
        await _check_collection(services, principal, fields)
        spooled = await spool.finish()
        result = await ingest_spooled(
            services,
            session,
            org_id=principal.org_id,
            user_id=principal.user_id,
            source="upload",
            spooled=spooled,
            fields=sources.fields_of(fields, form.filename),
            lookup=lookup,
            async_processing=fields.async_,
            generate_variants=fields.generate_variants,
        )
        await _into_collection(session, principal, fields, result)
    return _created(result, await service.present(services, session, result.media, result.deduped))


def _as_invalid(exc: ValidationError) -> MediaError:
    details = [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors()
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return MediaError("validation.invalid", 400, message or "Invalid request", details)


async def _read_json_body(request: Request, limit: int) -> bytes:
    _refuse_declared_oversize(request, limit)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise MediaError(
                "validation.size.exceeds_limit", 413, f"The body is over {limit} bytes"
            )
    return bytes(body)


@router.post(
    "",
    status_code=201,
    response_model=MediaOut,
    openapi_extra=_CREATE_SCHEMA,
    responses=_INGEST_ERRORS
    | {
        200: {"description": "deduped"},
        202: {"model": AsyncUploadOut, "description": "async=true: processed by the job"},
        502: {"description": "remote fetch failed"},
    },
)
async def create(
    request: Request, principal: Member, services: ServicesDep, session: WriteSession
) -> JSONResponse:
    """Create a media from a remote URL or a data URL."""
    # A data URL is base64 inside JSON: 4/3 of the image limit plus room for the other fields.
    limit = services.settings.max_bytes * 4 // 3 + MULTIPART_OVERHEAD
    raw = await _read_json_body(request, limit)
    try:
        body = CreateMediaIn.model_validate_json(raw)
    except ValidationError as exc:
        raise _as_invalid(exc) from exc
    await _check_collection(services, principal, body)
    result = await sources.ingest_source(
        services, session, services.db.read_session, principal, body
    )
    await _into_collection(session, principal, body, result)
    return _created(result, await service.present(services, session, result.media, result.deduped))


@router.get(
    "",
    response_model=MediaList,
    responses={404: {"description": "no such collection (`collection_id`) in this organisation"}},
)
async def list_media(
    principal: Viewer,
    services: ServicesDep,
    session: ReadSession,
    kind: Literal["image", "video", "audio", "document"] | None = None,
    status: Literal["pending", "processing", "ready", "failed", "quarantined"] | None = None,
    mime: Annotated[str | None, Query(max_length=100)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    collection_id: Annotated[str | None, Query(max_length=64)] = None,
    created_after: TimeFilter | None = None,
    created_before: TimeFilter | None = None,
    sort: SortField = "created_at",
    order: SortOrder = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    include_total: bool = False,
) -> MediaList:
    """List the org's media with filters, sorting and cursor pagination."""
    filters = MediaFilters(
        kind,
        status,
        mime,
        search,
        _aware(created_after),
        _aware(created_before),
        collection_id=collection_id,
    )
    if collection_id:  # an unknown (or another org's) collection is 404, not an empty list
        await collections.get_collection(session, principal.org_id, collection_id)
    data, next_cursor, total = await service.list_media(
        services,
        session,
        principal.org_id,
        filters,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        include_total=include_total,
    )
    return MediaList(data=data, next_cursor=next_cursor, total=total)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid("Times need a timezone (e.g. 2026-01-01T00:00:00Z)", "created_after")
    return value


@router.post("/batch", response_model=BatchOut)
async def batch(
    body: IdsIn, principal: Viewer, services: ServicesDep, session: ReadSession
) -> BatchOut:
    """Fetch up to 100 media by id; ids not in this org are listed as missing."""
    data, missing = await service.batch(services, session, principal.org_id, body.ids)
    return BatchOut(data=data, missing=missing)


@router.post("/resolve", response_model=ResolveOut)
async def resolve(
    body: IdsIn, principal: Viewer, services: ServicesDep, session: ReadSession
) -> ResolveOut:
    """Fresh signed download URLs for up to 100 media."""
    return await service.resolve(services, session, principal.org_id, body.ids)


@router.get("/{media_id}", response_model=MediaOut)
async def get_media(
    media_id: str, principal: Viewer, services: ServicesDep, session: ReadSession
) -> MediaOut:
    """One media with fresh signed URLs."""
    return await service.get_out(services, session, principal.org_id, media_id)


@router.patch("/{media_id}", response_model=MediaOut)
async def update_media(
    media_id: str,
    body: UpdateMediaIn,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> MediaOut:
    """Change alt, caption, description, privacy, filename or metadata; only given fields."""
    limits = services.settings.metadata_limits
    media = await service.update(session, principal.org_id, media_id, body, limits)
    out = await service.present(services, session, media)
    await publish_after_commit(session, "media.updated", principal.org_id, out)
    return out


@router.delete("/{media_id}", status_code=204, response_class=Response)
async def delete_media(
    media_id: str, principal: Member, services: ServicesDep, session: WriteSession
) -> Response:
    """Delete a media and its variants, renditions and captions."""
    await service.delete(services, session, principal, media_id)
    return Response(status_code=204)


@router.get("/{media_id}/presign", response_model=PresignOut)
async def presign(
    media_id: str,
    principal: Viewer,
    services: ServicesDep,
    session: ReadSession,
    expires_in: Annotated[int | None, Query()] = None,
    variant: Annotated[str | None, Query(max_length=40)] = None,
) -> PresignOut:
    """A signed download URL valid for `expires_in` seconds (1 ≤ S ≤ MEDIA_S3_PRESIGN_TTL)."""
    longest = int(services.settings.s3_presign_ttl.total_seconds())
    seconds = (
        expires_in
        if expires_in is not None
        else int(services.settings.download_url_ttl.total_seconds())
    )
    if not 1 <= seconds <= longest:
        raise invalid(f"expires_in must be between 1 and {longest} seconds", "expires_in")
    return await service.presign(services, session, principal.org_id, media_id, seconds, variant)


@router.head("/{media_id}/content", include_in_schema=False)
@router.get(
    "/{media_id}/content",
    response_class=Response,
    responses={200: _BYTES, 206: {}, 302: {}, 304: {}},
)
async def content(
    media_id: str,
    request: Request,
    principal: Viewer,
    services: ServicesDep,
    session: ReadSession,
    variant: Annotated[str | None, Query(max_length=40)] = None,
    download: bool = False,
) -> Response:
    """The bytes of the original (or a variant), streamed with Range, ETag and Last-Modified."""
    media = await service.get_media(session, principal.org_id, media_id)
    key, mime, filename = await service.object_of(session, media, variant)
    disposition = service.disposition_for(mime, "attachment" if download else "inline")
    if not services.settings.proxy_download:
        url = service.signed_link(
            services,
            key,
            filename=filename,
            mime=mime,
            disposition=disposition,
            private=media.is_private,
        ).url
        return RedirectResponse(url, status_code=302)
    try:
        info = await services.storage.stat(key)
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    if info is None:
        raise MediaError("not_found", 404, "The stored bytes of this media are missing")
    etag = f'"{media.sha256}"' if variant is None and media.sha256 else f'"{info.etag or key}"'
    return await object_response(
        request,
        services.storage,
        key,
        size=info.size,
        mime=mime,
        etag=etag,
        last_modified=media.updated_at if variant is None else info.modified,
        filename=filename,
        disposition=disposition,
        cache_control="private, max-age=31536000, immutable",
    )


@router.get("/{media_id}/variants", response_model=VariantList)
async def list_variants(
    media_id: str, principal: Viewer, services: ServicesDep, session: ReadSession
) -> VariantList:
    """The variants made for this media so far."""
    return VariantList(
        data=await service.list_variants(services, session, principal.org_id, media_id)
    )


@router.get("/{media_id}/variants/{name}", status_code=302, response_class=RedirectResponse)
async def get_variant(
    media_id: str, name: str, principal: Viewer, services: ServicesDep, session: ReadSession
) -> RedirectResponse:
    """Redirect to one variant's signed URL; 404 if it does not exist."""
    media = await service.get_media(session, principal.org_id, media_id)
    key, mime, filename = await service.object_of(session, media, name)
    url = service.signed_link(
        services, key, filename=filename, mime=mime, private=media.is_private
    ).url
    return RedirectResponse(url, status_code=302)
