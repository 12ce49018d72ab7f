"""Variants of video and audio made at ingest, rendered and recorded through the variants
service: a video's `poster` (a representative frame, not a black first frame; or set from a
thumbnail) and `storyboard` + `storyboard_vtt` (scrubbing previews, processing/storyboard.py),
an audio's `waveform` (PNG) and `waveform_json` (`{"peaks": [0-1, ...]}`)."""

import asyncio
import json
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.errors import MediaError
from mediakeep.ids import new_id
from mediakeep.models import Media, Variant
from mediakeep.processing import storyboard, video
from mediakeep.processing.image import OUTPUT_FORMATS, ImageError, Output, OutputFormat, inspect
from mediakeep.processing.presets import VariantSpec
from mediakeep.processing.probe import ALLOWED_DEMUXERS
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import StorageUnavailable
from mediakeep.variants.service import RenderedVariants, record_variants

log = structlog.get_logger(__name__)

POSTER = VariantSpec("poster", None, None, "inside", "jpeg", None)
WAVEFORM = VariantSpec("waveform", None, None, "inside", "png", None)
WAVEFORM_JSON = VariantSpec("waveform_json", None, None, "inside", "json", None)
STORYBOARD = VariantSpec("storyboard", None, None, "inside", "jpeg", None)
STORYBOARD_VTT = VariantSpec("storyboard_vtt", None, None, "inside", "vtt", None)
# The variants a video or an audio gets at ingest (and again on `POST .../variants`).
EXTRA_NAMES: dict[str, tuple[str, ...]] = {
    "video": (POSTER.name, STORYBOARD.name, STORYBOARD_VTT.name),
    "audio": (WAVEFORM.name, WAVEFORM_JSON.name),
}
_JSON = OutputFormat("json", "application/json", "json", False, False, None)
_VTT = OutputFormat("vtt", "text/vtt", "vtt", False, False, None)
_MIME_FORMAT = {"image/jpeg": "jpeg", "image/webp": "webp", "image/png": "png"}


def _output(path: Path, fmt: str, max_pixels: int) -> Output:
    facts = inspect(path, max_pixels=max_pixels)
    return Output(path, OUTPUT_FORMATS[fmt], facts.width, facts.height, path.stat().st_size)


async def _store(services: Services, media: Media, path: Path, fmt: str) -> RenderedVariants:
    return await _store_as(services, media, path, fmt, POSTER)


async def _store_as(
    services: Services, media: Media, path: Path, fmt: str, spec: VariantSpec
) -> RenderedVariants:
    output = await asyncio.to_thread(_output, path, fmt, services.settings.max_pixels)
    key = keys.variant(media.org_id, media.id, media.version, spec.name, output.format.ext)
    await services.storage.commit_file(path, key, output.format.mime)
    rendered = RenderedVariants(media.id, media.version, (spec,), complete=False)
    rendered.made.append((spec, key, output))
    return rendered


async def render_poster(services: Services, media: Media) -> RenderedVariants | None:
    """Make and store the poster file of a ready video (no database work); None when the
    media is not a probed video or no frame can be taken."""
    demuxer = str((media.metadata_ or {}).get("demuxer") or "")
    if media.kind != "video" or not media.storage_key or demuxer not in ALLOWED_DEMUXERS:
        return None
    settings = services.settings
    out = services.storage.spool_path(keys.incoming(media.org_id, new_id("var")))
    out = out.with_name(out.name + ".jpg")
    try:
        async with services.storage.local_file(media.storage_key) as source:
            await asyncio.to_thread(
                video.make_poster,
                video.ffmpeg_exe(settings.ffmpeg_path),
                source,
                demuxer,
                float(media.duration_seconds or 0.0),
                out,
                timeout=settings.ffmpeg_timeout.total_seconds(),
            )
        return await _store(services, media, out, "jpeg")
    except (video.FfmpegError, ImageError) as exc:
        log.warning("poster failed", media_id=media.id, reason=str(exc))
        return None
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    finally:
        await asyncio.to_thread(out.unlink, missing_ok=True)


async def render_storyboard(services: Services, media: Media) -> RenderedVariants | None:
    """Make and store the storyboard sprite and its WebVTT track of a ready video (no database
    work); None when the media is not a probed video or ffmpeg cannot make it."""
    demuxer = str((media.metadata_ or {}).get("demuxer") or "")
    if media.kind != "video" or not media.storage_key or demuxer not in ALLOWED_DEMUXERS:
        return None
    settings, storage = services.settings, services.storage
    sprite = storage.spool_path(keys.incoming(media.org_id, new_id("var")))
    sprite = sprite.with_name(sprite.name + ".jpg")
    track = sprite.with_name(sprite.name + ".vtt")
    try:
        async with storage.local_file(media.storage_key) as source:
            made = await asyncio.to_thread(
                storyboard.make_storyboard,
                video.ffmpeg_exe(settings.ffmpeg_path),
                source,
                demuxer,
                float(media.duration_seconds or 0.0),
                sprite,
                track,
                timeout=settings.ffmpeg_timeout.total_seconds(),
            )
        rendered = await _store_as(services, media, sprite, "jpeg", STORYBOARD)
        key = keys.variant(media.org_id, media.id, media.version, STORYBOARD_VTT.name, "vtt")
        size = track.stat().st_size
        await storage.commit_file(track, key, _VTT.mime)
        rendered.specs = (STORYBOARD, STORYBOARD_VTT)
        # The track's "dimensions" are those of the tile each cue shows.
        tile = Output(track, _VTT, made.tile_width, made.tile_height, size)
        rendered.made.append((STORYBOARD_VTT, key, tile))
        return rendered
    except (video.FfmpegError, ImageError) as exc:
        log.warning("storyboard failed", media_id=media.id, reason=str(exc))
        return None
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    finally:
        await asyncio.to_thread(sprite.unlink, missing_ok=True)
        await asyncio.to_thread(track.unlink, missing_ok=True)


async def render_waveform(services: Services, media: Media) -> RenderedVariants | None:
    """Make and store the waveform files of a ready audio (no database work); None when the
    media is not a probed audio or ffmpeg cannot draw it."""
    demuxer = str((media.metadata_ or {}).get("demuxer") or "")
    if media.kind != "audio" or not media.storage_key or demuxer not in ALLOWED_DEMUXERS:
        return None
    settings, storage = services.settings, services.storage
    png = storage.spool_path(keys.incoming(media.org_id, new_id("var")))
    png = png.with_name(png.name + ".png")
    peaks_file = png.with_name(png.name + ".json")
    try:
        async with storage.local_file(media.storage_key) as source:
            peaks = await asyncio.to_thread(
                video.make_waveform,
                video.ffmpeg_exe(settings.ffmpeg_path),
                source,
                demuxer,
                float(media.duration_seconds or 0.0),
                png,
                timeout=settings.ffmpeg_timeout.total_seconds(),
            )
        body = json.dumps({"peaks": peaks}, separators=(",", ":")).encode()
        await asyncio.to_thread(peaks_file.write_bytes, body)
        rendered = await _store_as(services, media, png, "png", WAVEFORM)
        key = keys.variant(media.org_id, media.id, media.version, WAVEFORM_JSON.name, "json")
        await storage.commit_file(peaks_file, key, _JSON.mime)
        rendered.specs = (WAVEFORM, WAVEFORM_JSON)
        rendered.made.append(
            (WAVEFORM_JSON, key, Output(peaks_file, _JSON, len(peaks), 1, len(body)))
        )
        return rendered
    except (video.FfmpegError, ImageError) as exc:
        log.warning("waveform failed", media_id=media.id, reason=str(exc))
        return None
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    finally:
        await asyncio.to_thread(png.unlink, missing_ok=True)
        await asyncio.to_thread(peaks_file.unlink, missing_ok=True)


async def render_extras(services: Services, media: Media) -> RenderedVariants | None:
    """The ingest-time variants of a video (poster, storyboard) or an audio (waveform)."""
    if media.kind == "video":
        poster = await render_poster(services, media)
        board = await render_storyboard(services, media)
        # Both were considered, so a regeneration drops the row of one that failed this time.
        merged = RenderedVariants(
            media.id, media.version, (POSTER, STORYBOARD, STORYBOARD_VTT), complete=False
        )
        for part in (poster, board):
            if part is not None:
                merged.made.extend(part.made)
        return merged if merged.made else None
    if media.kind == "audio":
        return await render_waveform(services, media)
    return None


async def extras_after_upload(
    services: Services, session: AsyncSession, media: Media
) -> list[Variant]:
    rendered = await render_extras(services, media)
    if rendered is None:
        return []
    return await record_variants(services, session, media, rendered)


async def poster_from_image(
    services: Services, session: AsyncSession, video_media: Media, image: Media
) -> None:
    """Make `image` (a thumbnail of `video_media`) the video's poster."""
    if image.storage_key is None:
        return
    fmt = _MIME_FORMAT.get(image.mime, "jpeg")
    copy = services.storage.spool_path(keys.incoming(video_media.org_id, new_id("var")))
    try:
        async with services.storage.local_file(image.storage_key) as source:
            await asyncio.to_thread(_copy, source, copy)
        rendered = await _store(services, video_media, copy, fmt)
    finally:
        await asyncio.to_thread(copy.unlink, missing_ok=True)
    await record_variants(services, session, video_media, rendered)


def _copy(source: Path, target: Path) -> None:
    target.write_bytes(source.read_bytes())
