"""The post-ingest step: what every new media gets after its bytes were accepted.

Every ingest path (multipart, remote URL, data URL, presigned finalize, tus, and the media that
jobs and operations derive) ends in `ingest_spooled`, which runs this step for each new media,
and the `media.process` job runs it for an async upload. One step, so no path can forget a
derived output: an image's variants (MEDIA_VARIANTS); a video's poster, storyboard and its
WebVTT track; an audio's waveform and its peaks; and, with MEDIA_VIDEO_AUTO_STREAM, a video's
HLS/DASH job. (The placeholders, BlurHash and ThumbHash, are facts of the probe and are
written with the media's row by the same callers.)

The step has two halves, so that the slow part never holds the write transaction (on SQLite,
the database's write lock): `render` makes and stores the files at their deterministic keys
before the media's row is written, without touching the database; `record` writes their rows
(and the streaming job) in the unit of work that writes the media. An async upload does
neither at ingest: `enqueue` writes its `media.process` job instead, which runs both halves.
"""

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.errors import MediaError
from mediakeep.jobs import service as jobs
from mediakeep.models import Job, Media
from mediakeep.processing.image import (
    RELEASE_ABOVE_BYTES,
    Footprint,
    ImageError,
    footprint,
    release_memory,
)
from mediakeep.processing.probe import ProbeError, ProbeResult, probe
from mediakeep.services import Services
from mediakeep.storage.base import StorageUnavailable
from mediakeep.streaming.service import start_after_upload
from mediakeep.variants.rendered import RenderedVariants
from mediakeep.variants.service import has_variants, record_variants, render_variants
from mediakeep.videoops.poster import render_extras

log = structlog.get_logger(__name__)

PROCESS_JOB = "media.process"
T = TypeVar("T")


async def probe_upload(services: Services, path: Path, kind: str, mime: str) -> ProbeResult:
    """Probe a new file; an image's probe (its full sequential decode and its placeholder)
    runs under the process's decode gate, admitted by what its header says decoding holds:
    it waits for a slot and for budget, 503 `server.busy` when the queue is full, 422 when it
    could never fit MEDIA_MAX_DECODE_BYTES. ProbeError for bytes that are not what they claim."""
    settings = services.settings
    run = functools.partial(
        probe,
        path,
        kind,
        max_pixels=settings.max_pixels,
        max_duration=settings.max_duration.total_seconds(),
        mime=mime,
    )
    if kind != "image" or mime == "image/svg+xml":
        return await asyncio.to_thread(run)
    try:
        return await decode_gated(services, path, lambda size: size.probe_bytes, run)
    except ImageError as exc:
        raise ProbeError(str(exc)) from exc


async def decode_gated(
    services: Services, path: Path, cost: Callable[[Footprint], int], work: Callable[[], T]
) -> T:
    """Run `work` (in a thread) under the decode gate with the bytes `cost` says it holds,
    from the image's header; ImageError when the header does not read. Work that decodes
    nothing (cost 0) runs at once."""
    size = await asyncio.to_thread(footprint, path, max_pixels=services.settings.max_pixels)
    needed = cost(size)
    if not needed:
        return await asyncio.to_thread(work)
    async with services.decode_gate.hold(needed):
        try:
            return await asyncio.to_thread(work)
        finally:
            if needed > RELEASE_ABOVE_BYTES:
                await asyncio.to_thread(release_memory)


async def render_outputs(services: Services, media: Media) -> RenderedVariants | None:
    """Make and store the derived files of a ready media (no database work): the image
    presets, or a video's poster and storyboard, or an audio's waveform. A file that cannot be
    made leaves the media standing (it was probed already) and is logged; storage trouble is a
    503."""
    if media.status != "ready":
        return None
    if media.kind in ("video", "audio"):
        return await render_extras(services, media)
    if not has_variants(media):
        return None
    try:
        return await render_variants(services, media)
    except MediaError as exc:
        if exc.status != 422:
            raise
        log.warning("variants failed", media_id=media.id, reason=exc.message)
        return None


@dataclass
class PostIngest:
    """The post-ingest step of one new media. `wanted` is the uploader's `generate_variants`."""

    services: Services
    wanted: bool = True
    rendered: RenderedVariants | None = None

    async def render(self, media: Media) -> None:
        """Before the row is written: make and store `media`'s derived files."""
        self.rendered = None
        if self.wanted:
            self.rendered = await render_outputs(self.services, media)

    async def record(self, session: AsyncSession, media: Media) -> None:
        """In the unit of work that writes `media`: the rows of what `render` made, and the
        streaming job of MEDIA_VIDEO_AUTO_STREAM. Nothing for a media that is not ready."""
        if media.status != "ready":
            return
        if self.rendered is not None and self.rendered.media_id == media.id:
            await record_variants(self.services, session, media, self.rendered)
        await start_after_upload(self.services, session, media)

    async def enqueue(self, session: AsyncSession, media: Media) -> Job:
        """An async upload: its `media.process` job (in the row's transaction) does the step."""
        return await jobs.enqueue(
            self.services,
            session,
            org_id=media.org_id,
            type=PROCESS_JOB,
            media_id=media.id,
            params={"generate_variants": self.wanted},
        )

    async def discard(self) -> None:
        """The media was never written (a concurrent upload of the same bytes won): remove
        what `render` stored for it. Best effort; nothing refers to these keys."""
        rendered, self.rendered = self.rendered, None
        if rendered is None:
            return
        for _spec, key, _output in rendered.made:
            try:
                await self.services.storage.delete(key)
            except StorageUnavailable:
                log.warning("derived file not removed", key=key, exc_info=True)


async def outputs_again(services: Services, session: AsyncSession, media: Media) -> None:
    """The step's files and rows for a media whose original was replaced in place (a new
    version), in the caller's unit of work."""
    rendered = await render_outputs(services, media)
    if rendered is not None:
        await record_variants(services, session, media, rendered)
