"""Captions of a media: validated on the way in, stored as both WebVTT and SubRip under
deterministic keys, listed with signed links, and read back as a transcript."""

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.captions import formats
from mediakeep.captions.repository import CaptionRepository
from mediakeep.captions.schemas import CaptionOut, Segment, TranscriptOut
from mediakeep.db import ReadOnlySession
from mediakeep.errors import MediaError, invalid, not_found
from mediakeep.ids import new_id
from mediakeep.kit.time import now
from mediakeep.media.presenter import caption_out
from mediakeep.media.service import get_media
from mediakeep.models import Caption, Media
from mediakeep.processing.hls import canonical_tag
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import StorageUnavailable

MIME = formats.MIME


def language_of(raw: str) -> str:
    """The normalized language tag (lower case), or 400 naming the field."""
    value = raw.strip().lower().replace("_", "-")
    try:
        return keys.language(value)
    except ValueError:
        message = f"{raw!r} is not a language tag such as 'en' or 'pt-BR'"
        raise invalid(message, "language") from None


def parse(content: str, fmt: formats.Format) -> list[formats.Cue]:
    try:
        return formats.parse(content, fmt)
    except formats.CaptionError as exc:
        raise MediaError(
            "validation.invalid",
            400,
            f"The captions are invalid: {exc}",
            [{"field": "content", "message": str(exc), "line": exc.line}],
        ) from exc


def _storage_error(exc: Exception) -> MediaError:
    return MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}")


async def _put_text(services: Services, key: str, text: str, mime: str) -> None:
    path = services.storage.spool_path(keys.incoming(keys.org_of(key), new_id("cap")))
    await asyncio.to_thread(path.write_text, text, "utf-8")
    try:
        await services.storage.commit_file(path, key, f"{mime}; charset=utf-8")
    except StorageUnavailable as exc:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise _storage_error(exc) from exc


async def read_text(services: Services, key: str) -> str:
    chunks: list[bytes] = []
    try:
        async for chunk in services.storage.read(key):
            chunks.append(chunk)
    except FileNotFoundError as exc:
        raise not_found("caption file") from exc
    except StorageUnavailable as exc:
        raise _storage_error(exc) from exc
    return b"".join(chunks).decode("utf-8")


async def save(
    services: Services,
    session: AsyncSession,
    media: Media,
    language: str,
    cues: Sequence[formats.Cue],
    *,
    source: str,
    approved: bool,
) -> Caption:
    """Write both files (deterministic keys: a retry overwrites) and upsert the row."""
    vtt_key = keys.caption(media.org_id, media.id, language, "vtt")
    srt_key = keys.caption(media.org_id, media.id, language, "srt")
    await _put_text(services, vtt_key, formats.to_vtt(list(cues)), MIME["vtt"])
    await _put_text(services, srt_key, formats.to_srt(list(cues)), MIME["srt"])
    repo = CaptionRepository(session)
    caption = await repo.get(media.org_id, media.id, language)
    at = now()
    if caption is None:
        caption = Caption(
            id=new_id("cap"),
            media_id=media.id,
            org_id=media.org_id,
            language=language,
            source=source,
            approved=approved,
            vtt_key=vtt_key,
            srt_key=srt_key,
            created_at=at,
            updated_at=at,
        )
        await repo.add(caption)
    else:
        caption.source = source
        caption.approved = approved
        caption.vtt_key = vtt_key
        caption.srt_key = srt_key
        caption.updated_at = at
        await session.flush()
    return caption


async def create(
    services: Services,
    session: AsyncSession,
    org_id: str,
    media_id: str,
    language: str,
    content: str,
    fmt: formats.Format,
) -> CaptionOut:
    lang = language_of(language)
    cues = parse(content, fmt)
    media = await get_media(session, org_id, media_id)
    caption = await save(services, session, media, lang, cues, source="manual", approved=True)
    return caption_out(services, media, caption)


async def list_captions(
    services: Services, session: ReadOnlySession, org_id: str, media_id: str, lang: str | None
) -> list[CaptionOut]:
    media = await get_media(session, org_id, media_id)
    wanted = language_of(lang) if lang else None
    rows = await CaptionRepository(session).list(org_id, [media.id], wanted)
    return [caption_out(services, media, row) for row in rows]


async def get_caption(
    session: ReadOnlySession, org_id: str, media_id: str, language: str
) -> tuple[Media, Caption]:
    media = await get_media(session, org_id, media_id)
    caption = await CaptionRepository(session).get(org_id, media.id, language_of(language))
    if caption is None:
        raise not_found("caption")
    return media, caption


async def update(
    services: Services,
    session: AsyncSession,
    org_id: str,
    media_id: str,
    language: str,
    *,
    approved: bool | None,
    content: str | None,
    fmt: formats.Format,
) -> CaptionOut:
    cues = parse(content, fmt) if content is not None else None
    media, caption = await get_caption(session, org_id, media_id, language)
    if cues is not None:
        caption = await save(
            services,
            session,
            media,
            caption.language,
            cues,
            source=caption.source,
            approved=caption.approved if approved is None else approved,
        )
    elif approved is not None:
        caption.approved = approved
        caption.updated_at = now()
        await session.flush()
    return caption_out(services, media, caption)


async def transcript(
    services: Services, session: ReadOnlySession, org_id: str, media_id: str, lang: str | None
) -> TranscriptOut:
    """The transcript of the media in `lang` (or its first captions): its cues' text."""
    media = await get_media(session, org_id, media_id)
    wanted = language_of(lang) if lang else None
    rows = await CaptionRepository(session).list(org_id, [media.id], wanted)
    if not rows:
        raise not_found("transcript")
    caption = rows[0]
    cues = formats.parse(await read_text(services, caption.vtt_key), "vtt")
    segments = [Segment(start=c.start, end=c.end, text=c.text) for c in cues]
    text = " ".join(" ".join(c.text.split()) for c in cues)
    return TranscriptOut(language=canonical_tag(caption.language), text=text, segments=segments)
