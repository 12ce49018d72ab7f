"""HTTP for AI generation: each request answers 202 with its job (200 + `deduped` for a
repeat). Logic lives in service.py; the work is done by the tasks in tasks.py."""

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from mediakeep.ai import providers, service
from mediakeep.ai.schemas import (
    ASPECTS,
    AiJobOut,
    AudioIn,
    GenerateCaptionIn,
    ImageIn,
    ProviderList,
)
from mediakeep.auth.principal import Principal
from mediakeep.captions.service import language_of
from mediakeep.db import ReadOnlySession
from mediakeep.deps import Member, ReadSession, ServicesDep, Viewer
from mediakeep.errors import MediaError, invalid
from mediakeep.jobs.schemas import JobOut
from mediakeep.media.service import get_media
from mediakeep.ratelimit.route import RouteLimit
from mediakeep.services import Services

router = APIRouter(prefix="/ai", tags=["ai"])

_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": AiJobOut, "description": "a repeat of an earlier request: its job"},
    422: {"description": "`ai.refused.safety`: refused by moderation"},
    429: {"description": "`ai.refused.budget`: the org's daily AI budget is spent"},
}


async def _submit(
    services: Services, reader: ReadOnlySession, principal: Principal, **request: Any
) -> JSONResponse:
    admitted = await service.admit(services, reader, principal, **request)
    if not isinstance(admitted, service.Admitted):
        return _answer(admitted, True)
    # The job in a write unit of work of its own, begun only now: the request's session is a
    # read one, so no write transaction (SQLite's write lock) was held during moderation.
    async with services.db.write_session() as session:
        job, deduped = await service.record(services, session, principal, admitted)
    return _answer(job, deduped)


def _answer(job: JobOut, deduped: bool) -> JSONResponse:
    if deduped:
        body = AiJobOut(job=job, deduped=True).model_dump(mode="json")
        return JSONResponse(body, status_code=200)
    return JSONResponse({"job": job.model_dump(mode="json")}, status_code=202)


@router.post("/generate-image", status_code=202, response_model=AiJobOut, responses=_RESPONSES)
async def generate_image(
    body: ImageIn, principal: Member, services: ServicesDep, reader: ReadSession
) -> JSONResponse:
    """Generate an image from a prompt; the job's `result.media_id` is the image media."""
    size = body.size
    if body.aspect_ratio is not None:
        wanted = ASPECTS[body.aspect_ratio]
        if size is not None and size != wanted and body.aspect_ratio != "1:1":
            raise invalid(f"size {size} does not have the aspect ratio {body.aspect_ratio}", "size")
        size = size or wanted
    model = body.model or services.settings.ai_image_model
    return await _submit(
        services,
        reader,
        principal,
        kind="image",
        job_type="ai.generate_image",
        model=model,
        body={"prompt": body.prompt, "size": size or "1024x1024", "style": body.style},
        moderated=body.prompt,
    )


@router.post("/generate-audio", status_code=202, response_model=AiJobOut, responses=_RESPONSES)
async def generate_audio(
    body: AudioIn, principal: Member, services: ServicesDep, reader: ReadSession
) -> JSONResponse:
    """Speak a text; the job's `result.media_id` is the audio media."""
    language = language_of(body.language) if body.language else None
    return await _submit(
        services,
        reader,
        principal,
        kind="audio",
        job_type="ai.generate_audio",
        model=providers.tts_model(services.settings),
        body={"text": body.text, "voice": body.voice, "language": language, "format": body.format},
        moderated=body.text,
    )


@router.post(
    "/generate-caption",
    status_code=202,
    response_model=AiJobOut,
    responses=_RESPONSES | {404: {"description": "no such media in this organisation"}},
    dependencies=[Depends(RouteLimit("caption"))],
)
async def generate_caption(
    body: GenerateCaptionIn, principal: Member, services: ServicesDep, reader: ReadSession
) -> JSONResponse:
    """Recognize the speech of an audio or video media into captions and a transcript."""
    language = language_of(body.language) if body.language else None
    media = await get_media(reader, principal.org_id, body.media_id)
    if media.kind not in ("audio", "video"):
        raise MediaError(
            "media.unprocessable", 422, f"Only audio and video have speech; this is {media.kind}"
        )
    if media.status != "ready":
        raise MediaError("media.transcoding", 409, "The media is not ready yet")
    if not media.has_audio_track:
        raise MediaError(
            "media.unprocessable", 422, "This video has no audio track: there is no speech"
        )
    return await _submit(
        services,
        reader,
        principal,
        kind="caption",
        job_type="ai.generate_caption",
        model=providers.asr_model(services.settings),
        body={
            "media": f"{media.id}:{media.version}",
            "language": language,
            "review_required": body.review_required,
        },
        moderated=None,
        media_id=media.id,
    )


@router.get("/providers", response_model=ProviderList)
async def list_providers(principal: Viewer, services: ServicesDep) -> ProviderList:
    """The configured provider of each kind and whether it answers now. There is no local
    image model: image generation needs an OpenAI-compatible provider."""
    del principal
    return ProviderList.of(await service.describe(services))
