"""HTTP for captions and transcripts of a media; logic lives in service.py."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mediakeep.captions import service
from mediakeep.captions.schemas import (
    CaptionIn,
    CaptionList,
    CaptionOut,
    CaptionPatch,
    TranscriptOut,
)
from mediakeep.deps import Member, ReadSession, ServicesDep, Viewer, WriteSession

router = APIRouter(prefix="/media", tags=["captions"])


@router.get("/{media_id}/captions", response_model=CaptionList)
async def list_captions(
    media_id: str,
    principal: Viewer,
    services: ServicesDep,
    session: ReadSession,
    lang: Annotated[str | None, Query(max_length=35)] = None,
) -> CaptionList:
    """The media's captions, one entry per language, with signed links to both formats."""
    data = await service.list_captions(services, session, principal.org_id, media_id, lang)
    return CaptionList(data=data)


@router.post("/{media_id}/captions", status_code=201, response_model=CaptionOut)
async def create_caption(
    media_id: str,
    body: CaptionIn,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> CaptionOut:
    """Add (or replace) one language's captions from WebVTT or SubRip text; approved."""
    return await service.create(
        services, session, principal.org_id, media_id, body.language, body.content, body.format
    )


@router.patch("/{media_id}/captions/{language}", response_model=CaptionOut)
async def update_caption(
    media_id: str,
    language: str,
    body: CaptionPatch,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
) -> CaptionOut:
    """Approve (or unapprove) captions, or replace their text."""
    return await service.update(
        services,
        session,
        principal.org_id,
        media_id,
        language,
        approved=body.approved,
        content=body.content,
        fmt=body.format,
    )


async def _file(
    services: ServicesDep, session: ReadSession, org_id: str, media_id: str, language: str, ext: str
) -> Response:
    _media, caption = await service.get_caption(session, org_id, media_id, language)
    key = caption.vtt_key if ext == "vtt" else caption.srt_key
    text = await service.read_text(services, key)
    return Response(
        text.encode("utf-8"),
        media_type=f"{service.MIME[ext]}; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{caption.language}.{ext}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-cache",
        },
    )


@router.get(
    "/{media_id}/captions/{language}.vtt",
    response_class=Response,
    responses={200: {"content": {"text/vtt": {}}}},
)
async def caption_vtt(
    media_id: str, language: str, principal: Viewer, services: ServicesDep, session: ReadSession
) -> Response:
    """The captions as WebVTT."""
    return await _file(services, session, principal.org_id, media_id, language, "vtt")


@router.get(
    "/{media_id}/captions/{language}.srt",
    response_class=Response,
    responses={200: {"content": {"application/x-subrip": {}}}},
)
async def caption_srt(
    media_id: str, language: str, principal: Viewer, services: ServicesDep, session: ReadSession
) -> Response:
    """The captions as SubRip."""
    return await _file(services, session, principal.org_id, media_id, language, "srt")


@router.get("/{media_id}/transcript", response_model=TranscriptOut)
async def transcript(
    media_id: str,
    principal: Viewer,
    services: ServicesDep,
    session: ReadSession,
    lang: Annotated[str | None, Query(max_length=35)] = None,
) -> TranscriptOut:
    """The media's transcript: the text of its captions, with timed segments (404 if none)."""
    return await service.transcript(services, session, principal.org_id, media_id, lang)
