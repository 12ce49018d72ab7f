"""HTTP for making variants again. Listing and fetching variants live in media/router.py."""

from fastapi import APIRouter

from mediakeep.deps import Member, ServicesDep, WriteSession
from mediakeep.media import service as media_service
from mediakeep.media.schemas import VariantList
from mediakeep.variants import service
from mediakeep.variants.schemas import RegenerateVariantsIn

router = APIRouter(prefix="/media", tags=["media"])


@router.post(
    "/{media_id}/variants",
    status_code=201,
    response_model=VariantList,
    responses={
        400: {"description": "an unknown preset name"},
        404: {"description": "no such media in this organisation"},
        409: {"description": "the media is not ready yet"},
        422: {"description": "not an image, video or audio, or its original no longer decodes"},
    },
)
async def regenerate_variants(
    media_id: str,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
    body: RegenerateVariantsIn | None = None,
) -> VariantList:
    """Make the variants again from the current original: an image's MEDIA_VARIANTS presets (or
    `names`), a video's poster and storyboard, an audio's waveform."""
    async with services.db.read_session() as reader:  # no write lock while pixels are made
        media = await media_service.get_media(reader, principal.org_id, media_id)
    names = body.names if body else None
    if media.kind in ("video", "audio"):
        rendered = await service.render_extras_again(services, media, names)
    else:
        rendered = await service.render_variants(services, media, names)
    current = await media_service.get_media(session, principal.org_id, media_id)
    rows = await service.record_variants(services, session, current, rendered)
    return VariantList(data=[media_service.variant_out(services, current, row) for row in rows])
