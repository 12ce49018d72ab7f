"""Variants of video and audio made at ingest, rendered and recorded through the variants
service: a video's `poster` (a representative frame, not a black first frame; or set from a
thumbnail) and `storyboard` + `storyboard_vtt` (scrubbing previews, processing/storyboard.py),
an audio's `waveform` (PNG) and `waveform_json` (`{"peaks": [0-1, ...]}`)."""

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from mediakeep.errors import MediaError
from mediakeep.ids import new_id
from mediakeep.models import Media
from mediakeep.processing import storyboard, video
from mediakeep.processing.image import OUTPUT_FORMATS, ImageError, Output, OutputFormat, inspect
from mediakeep.processing.presets import VariantSpec
from mediakeep.processing.probe import ALLOWED_DEMUXERS
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import StorageUnavailable
from mediakeep.variants.rendered import RenderedVariants

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
_JSON = OutputFormat("json", "application/json", "json", False, False)
_VTT = OutputFormat("vtt", "text/vtt", "vtt", False, False)
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


def _scratch(services: Services, media: Media, suffix: str) -> Path:
    """A fresh spool path for one output file of `media`'s rendering."""
    path = services.storage.spool_path(keys.incoming(media.org_id, new_id("var")))
    return path.with_name(path.name + suffix)


async def _attempt(
    what: str, media: Media, make: Callable[[], Awaitable[RenderedVariants]], *scratch: Path
) -> RenderedVariants | None:
    """Run one rendering step: None (logged) when ffmpeg or libvips cannot make it, 503 when
    storage is down; its scratch files are removed either way."""
    try:
        return await make()
    except (video.FfmpegError, ImageError) as exc:
        log.warning(f"{what} failed", media_id=media.id, reason=str(exc))
        return None
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    finally:
        for path in scratch:
            await asyncio.to_thread(path.unlink, missing_ok=True)


async def _poster(
    services: Services, media: Media, source: Path, demuxer: str
) -> RenderedVariants | None:
    settings = services.settings
    out = _scratch(services, media, ".jpg")

    async def make() -> RenderedVariants:
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

    return await _attempt("poster", media, make, out)


async def _storyboard(
    services: Services, media: Media, source: Path, demuxer: str
) -> RenderedVariants | None:
    settings, storage = services.settings, services.storage
    sprite = _scratch(services, media, ".jpg")
    track = sprite.with_name(sprite.name + ".vtt")

    async def make() -> RenderedVariants:
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

    return await _attempt("storyboard", media, make, sprite, track)


async def _waveform(
    services: Services, media: Media, source: Path, demuxer: str
) -> RenderedVariants | None:
    settings, storage = services.settings, services.storage
    png = _scratch(services, media, ".png")
    peaks_file = png.with_name(png.name + ".json")

    async def make() -> RenderedVariants:
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

    return await _attempt("waveform", media, make, png, peaks_file)


async def render_extras(services: Services, media: Media) -> RenderedVariants | None:
    """Make and store (no database work) the ingest-time variants of a ready video (poster,
    storyboard) or audio (waveform), reading the original once; None when the media is not a
    probed video/audio or nothing could be made."""
    demuxer = str((media.metadata_ or {}).get("demuxer") or "")
    if media.kind not in EXTRA_NAMES or not media.storage_key or demuxer not in ALLOWED_DEMUXERS:
        return None
    try:
        async with services.storage.local_file(media.storage_key) as source:
            if media.kind == "audio":
                return await _waveform(services, media, source, demuxer)
            poster = await _poster(services, media, source, demuxer)
            board = await _storyboard(services, media, source, demuxer)
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    # Both were considered, so a regeneration drops the row of one that failed this time.
    merged = RenderedVariants(
        media.id, media.version, (POSTER, STORYBOARD, STORYBOARD_VTT), complete=False
    )
    for part in (poster, board):
        if part is not None:
            merged.made.extend(part.made)
    return merged if merged.made else None


async def poster_from_image(
    services: Services, video_media: Media, image: Media
) -> RenderedVariants | None:
    """Store `image` (a thumbnail of `video_media`) as the video's poster, for the caller to
    record (`variants.service.record_variants`)."""
    if image.storage_key is None:
        return None
    fmt = _MIME_FORMAT.get(image.mime, "jpeg")
    copy = services.storage.spool_path(keys.incoming(video_media.org_id, new_id("var")))
    try:
        async with services.storage.local_file(image.storage_key) as source:
            await asyncio.to_thread(shutil.copyfile, source, copy)
        rendered = await _store(services, video_media, copy, fmt)
    finally:
        await asyncio.to_thread(copy.unlink, missing_ok=True)
    return rendered
