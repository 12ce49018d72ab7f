"""HTTP for video and audio operations (transcode, trim, thumbnail). Logic lives in service.py.

The routes share the media tag, so their operation ids read `media_transcode`, `media_trim`,
`media_thumbnail`. `async` defaults to true (API.md): 202 `{job}`, whose result names the
derived media; with `async: false` the operation runs in the request and answers 201 media.
"""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mediakeep.auth.principal import Principal
from mediakeep.deps import Member, ServicesDep, WriteSession
from mediakeep.jobs import service as jobs
from mediakeep.jobs.schemas import JobOut
from mediakeep.media import service as media_service
from mediakeep.media.schemas import MediaOut
from mediakeep.services import Services
from mediakeep.videoops import service
from mediakeep.videoops.schemas import ThumbnailIn, TranscodeIn, TrimIn

router = APIRouter(prefix="/media", tags=["media"])


class JobAccepted(BaseModel):
    """202 answer: the job doing the operation."""

    job: JobOut


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "async=false: the result's bytes already exist in the org (deduped)"},
    202: {"model": JobAccepted, "description": "async=true: the job making the derived media"},
    400: {"description": "invalid request (times, codec for the format)"},
    404: {"description": "no such media in this organisation"},
    409: {"description": "the media is not ready"},
    422: {"description": "not video/audio, the wrong kind for the operation, or ffmpeg failed"},
    503: {"description": "the job queue or storage is unavailable"},
}


async def _answer(
    services: Services,
    session: WriteSession,
    principal: Principal,
    media_id: str,
    operation: str,
    body: Any,
) -> JSONResponse:
    # The media is read in a short read unit of work of its own, beside the request's write
    # session: SQLite's write lock is taken only once ffmpeg is done (async=false).
    async with services.db.read_session() as reader:
        media = await media_service.get_media(reader, principal.org_id, media_id)
    lookup = services.db.read_session  # the same for the ingest's reads (quota, sha256)
    result, job = await service.start(services, session, lookup, principal, media, operation, body)
    if job is not None:
        answer = JobAccepted(job=jobs.to_out(job))
        return JSONResponse(answer.model_dump(mode="json"), status_code=202)
    assert result is not None
    out = await media_service.present(services, session, result.media, result.deduped)
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if result.deduped else 201)


@router.post(
    "/{media_id}/transcode", status_code=201, response_model=MediaOut, responses=_RESPONSES
)
async def transcode(
    media_id: str,
    body: TranscodeIn,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> JSONResponse:
    """Transcode a video (mp4/h264, webm/vp9, av1) or audio (mp3, aac, opus, wav, flac) into
    a derived media (`video.transcode` / `audio.transcode`)."""
    return await _answer(services, session, principal, media_id, "transcode", body)


@router.post("/{media_id}/trim", status_code=201, response_model=MediaOut, responses=_RESPONSES)
async def trim(
    media_id: str, body: TrimIn, principal: Member, services: ServicesDep, session: WriteSession
) -> JSONResponse:
    """Cut a video or audio between two times into a derived media (`video.trim` /
    `audio.trim`): stream copy, or frame-accurate re-encode with `accurate: true`."""
    return await _answer(services, session, principal, media_id, "trim", body)


@router.post(
    "/{media_id}/thumbnail", status_code=201, response_model=MediaOut, responses=_RESPONSES
)
async def thumbnail(
    media_id: str,
    body: ThumbnailIn,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> JSONResponse:
    """The video's frame at a timestamp as a derived image (`video.thumbnail`); with
    `set_poster: true` also the video's `poster` variant."""
    return await _answer(services, session, principal, media_id, "thumbnail", body)
