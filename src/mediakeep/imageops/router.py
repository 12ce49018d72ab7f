"""HTTP for image operations (convert, resize, crop). Logic lives in service.py.

The routes share the media tag, so their operation ids read `media_convert`, `media_resize`,
`media_crop`. Images are processed synchronously (API.md: `async` defaults to false for images).
"""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mediakeep.auth.principal import Principal
from mediakeep.deps import Member, ServicesDep, WriteSession
from mediakeep.imageops import service
from mediakeep.imageops.schemas import BatchConvertIn, BatchConvertOut, ConvertIn, CropIn, ResizeIn
from mediakeep.ingest.pipeline import IngestResult
from mediakeep.media import service as media_service
from mediakeep.media.schemas import MediaOut
from mediakeep.models import Media
from mediakeep.services import Services

router = APIRouter(prefix="/media", tags=["media"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the result's bytes already exist in the org (deduped)"},
    400: {"description": "invalid request, or a result over MEDIA_MAX_PIXELS"},
    404: {"description": "no such media in this organisation"},
    409: {"description": "the media is not ready, or changed meanwhile"},
    413: {"description": "the result is over MEDIA_MAX_BYTES or the org's quota"},
    422: {"description": "not a raster image, or its bytes do not decode"},
}


async def _answer(services: Services, session: WriteSession, result: IngestResult) -> JSONResponse:
    body = await media_service.present(services, session, result.media, result.deduped)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if result.deduped else 201)


async def _load_image(services: Services, principal: Principal, media_id: str) -> Media:
    # A short read unit of work of its own, beside the request's write session: SQLite's
    # write lock is taken only once the pixels are made and the result is stored.
    async with services.db.read_session() as reader:
        return await service.load_image(reader, principal.org_id, media_id)


# Registered before `/{media_id}/convert`, which would otherwise take "batch" for a media id.
@router.post("/batch/convert", status_code=202, response_model=BatchConvertOut)
async def batch_convert(
    body: BatchConvertIn, principal: Member, services: ServicesDep, session: WriteSession
) -> BatchConvertOut:
    """Convert up to 20 images as jobs, one per asset; ids not in this org (or not images) are
    listed as missing. Each job's `result.media_id` is its derived media."""
    return await service.batch_convert(services, session, principal, body)


@router.post("/{media_id}/convert", status_code=201, response_model=MediaOut, responses=_RESPONSES)
async def convert(
    media_id: str,
    body: ConvertIn,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> JSONResponse:
    """Convert an image to another format, upright and without private metadata, as a new
    derived media (`derived_from.operation` = `image.convert`); animations stay animated in
    gif and webp."""
    media = await _load_image(services, principal, media_id)
    result = await service.convert(
        services, session, services.db.read_session, principal, media, body
    )
    return await _answer(services, session, result)


@router.post("/{media_id}/resize", status_code=201, response_model=MediaOut, responses=_RESPONSES)
async def resize(
    media_id: str,
    body: ResizeIn,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> JSONResponse:
    """Resize an image (fit as in sharp: cover, contain, fill, inside, outside) into a new
    derived media (`image.resize`)."""
    media = await _load_image(services, principal, media_id)
    result = await service.resize(
        services, session, services.db.read_session, principal, media, body
    )
    return await _answer(services, session, result)


@router.post("/{media_id}/crop", status_code=201, response_model=MediaOut, responses=_RESPONSES)
async def crop(
    media_id: str,
    body: CropIn,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> JSONResponse:
    """Crop a rectangle of the upright image (then rotate clockwise, then scale): `copy` makes a
    derived media (`image.crop`), `replace` makes the media's next version (same id)."""
    media = await _load_image(services, principal, media_id)
    result = await service.crop(services, session, services.db.read_session, principal, media, body)
    return await _answer(services, session, result)
