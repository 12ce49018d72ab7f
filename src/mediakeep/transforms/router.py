"""HTTP for signed transforms: minting URLs (`/api/v1`) and serving them (`/t/`, no auth)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from mediakeep.deps import ReadSession, ServicesDep, Viewer, get_services
from mediakeep.errors import MediaError
from mediakeep.services import Services
from mediakeep.storage.serving import object_response
from mediakeep.transforms import service
from mediakeep.transforms.schemas import TransformUrlIn, TransformUrlOut
from mediakeep.transforms.service import (
    Rendition,
    Target,
    TransformRuntime,
    TransformUnits,
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At shutdown, before the app's own (which closes the database), store and count the
    outputs already answered: the recorder writes them in batches after the response."""
    yield
    runtime: TransformRuntime | None = getattr(app.state, "transforms", None)
    if runtime is not None:
        await runtime.close()


router = APIRouter(prefix="/media", tags=["transforms"])
public_router = APIRouter(tags=["transforms"], lifespan=_lifespan)


# Async dependencies on purpose: FastAPI runs plain `def` ones in a thread, a hop that costs
# more than a cached answer does.
async def _runtime(request: Request) -> TransformRuntime:
    runtime: TransformRuntime | None = getattr(request.app.state, "transforms", None)
    if runtime is None:
        services = get_services(request)
        # This scope's units of work (see TransformUnits: why they are not the request's).
        units = TransformUnits(lookup=services.db.read_session, record=services.db.write_session)
        runtime = TransformRuntime(services.settings, units, services.decode_gate)
        request.app.state.transforms = runtime
    return runtime


RuntimeDep = Annotated[TransformRuntime, Depends(_runtime)]


@router.post(
    "/{media_id}/transform-url",
    response_model=TransformUrlOut,
    responses={422: {"description": "only images can be transformed"}},
)
async def create_url(
    media_id: str,
    body: TransformUrlIn,
    principal: Viewer,
    services: ServicesDep,
    session: ReadSession,
    runtime: RuntimeDep,
) -> TransformUrlOut:
    """A signed `/t/` URL serving this image resized, cropped or re-encoded; anyone may use it."""
    return await service.create_url(services, session, runtime, principal.org_id, media_id, body)


_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "image/jpeg": {},
            "image/png": {},
            "image/webp": {},
            "image/avif": {},
        }
    },
    304: {"description": "not modified (If-None-Match)"},
    403: {"description": "the signature does not match"},
    410: {"description": "the URL expired (`transform.expired`)"},
    429: {"description": "the org's cap on distinct outputs is reached (`rate.limited`)"},
}


@public_router.head("/t/{signature}/{options}/{media_id}", include_in_schema=False)
@public_router.get(
    "/t/{signature}/{options}/{media_id}", response_class=Response, responses=_IMAGE_RESPONSES
)
async def serve(
    signature: str,
    options: str,
    media_id: str,
    request: Request,
) -> Response:
    """The transformed image of a signed URL; the signature is the credential."""
    # No dependencies: resolving them costs more than answering from the memory cache.
    services = get_services(request)
    runtime = await _runtime(request)
    try:
        if services.link_keys is None:
            raise MediaError("not_found", 404, "Transform URLs are not served by this process")
        target = await service.resolve(
            runtime, services.link_keys, signature, options, media_id, request.headers.get("accept")
        )
        if _etag_matches(request, target.etag):
            service.ANSWERS.labels("not_modified").inc()
            return Response(status_code=304, headers=_headers(target))

        async def still_wanted() -> bool:
            return not await request.is_disconnected()

        rendition = await service.obtain(services, runtime, target, still_wanted)
    except service.ClientGone:
        return Response(status_code=499)  # nobody reads it; nginx's "client closed request"
    except MediaError as exc:
        # An error may stop being one (a pending upload finishes, a cap is raised): never cached.
        exc.headers.setdefault("Cache-Control", "no-store")
        raise
    return await _answer(request, services, rendition)


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags or "*" in tags


def _headers(target: Target) -> dict[str, str]:
    headers = {
        "ETag": target.etag,
        "Cache-Control": target.cache_control,
        "X-Content-Type-Options": "nosniff",
    }
    if target.vary_accept:
        headers["Vary"] = "Accept"
    return headers


async def _answer(request: Request, services: Services, rendition: Rendition) -> Response:
    target, info = rendition.target, rendition.info
    modified = info.modified.astimezone(UTC)  # S3 answers dateutil's tzutc, not UTC
    if rendition.body is not None:
        headers = _headers(target) | {
            "Last-Modified": format_datetime(modified.replace(microsecond=0), usegmt=True),
            "Content-Security-Policy": "sandbox",
            "Content-Disposition": "inline",
        }
        body = b"" if request.method == "HEAD" else rendition.body
        response = Response(body, headers=headers, media_type=target.mime)
        if request.method == "HEAD":
            response.headers["Content-Length"] = str(len(rendition.body))
        return response
    response = await object_response(
        request,
        services.storage,
        target.storage_key,
        size=info.size,
        mime=target.mime,
        etag=target.etag,
        last_modified=modified,
        filename=None,
        disposition="inline",
        cache_control=target.cache_control,
    )
    if target.vary_accept:
        response.headers["Vary"] = "Accept"
    return response
