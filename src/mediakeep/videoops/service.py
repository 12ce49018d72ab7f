"""Video and audio operations: plan the ffmpeg command for an operation, run it (in a job with
progress, or inline when `async` is false), and ingest the output as a derived media.

A plan is made from the media row alone (its probed metadata names the demuxer to pin), so the
route can refuse a bad request (422 wrong kind, 400 bad times) before any job is written.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.db import ReadUnit
from mediakeep.errors import MediaError, invalid
from mediakeep.ids import new_id
from mediakeep.ingest.pipeline import IngestFields, IngestResult, ingest_spooled, open_spool
from mediakeep.jobs import service as jobs
from mediakeep.models import Job, Media
from mediakeep.processing import audio, video
from mediakeep.processing.probe import ALLOWED_DEMUXERS
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import StorageUnavailable
from mediakeep.variants import service as variants
from mediakeep.videoops.poster import poster_from_image

VIDEO_FORMATS = ("mp4", "webm")
# Source MIME -> (muxer for a stream-copied cut, extension)
_AUDIO_CONTAINERS = {
    "audio/mpeg": ("mp3", "mp3"),
    "audio/wav": ("wav", "wav"),
    "audio/flac": ("flac", "flac"),
    "audio/ogg": ("ogg", "ogg"),
    "audio/opus": ("ogg", "opus"),
    "audio/aac": ("adts", "aac"),
    "audio/mp4": ("ipod", "m4a"),
}
_AUDIO_REENCODE = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libopus", "-b:a", "128k", "-ar", "48000"],
    "adts": ["-c:a", "aac", "-b:a", "160k"],
    "ipod": ["-c:a", "aac", "-b:a", "160k"],
}


def unprocessable(reason: str) -> MediaError:
    return MediaError("media.unprocessable", 422, f"The file cannot be processed: {reason}")


@dataclass
class Plan:
    """One ffmpeg run over the media's original."""

    operation: str  # video.transcode | audio.transcode | video.trim | audio.trim | video.thumbnail
    demuxer: str
    input_options: list[str]  # before -i (a seek)
    output_options: list[str]
    ext: str
    expected_seconds: float | None  # of output, for progress
    params: dict[str, Any] = field(default_factory=dict)


def _facts(media: Media) -> tuple[str, float, dict[str, Any]]:
    metadata = dict(media.metadata_ or {})
    demuxer = str(metadata.get("demuxer") or "")
    if demuxer not in ALLOWED_DEMUXERS:
        raise unprocessable("the media was not probed as audio or video; upload it again")
    return demuxer, float(media.duration_seconds or 0.0), metadata


def check_media(media: Media) -> None:
    if media.kind not in ("video", "audio"):
        raise unprocessable(f"only video and audio can be processed here; this is {media.kind}")
    if media.status != "ready" or not media.storage_key:
        raise MediaError("media.transcoding", 409, "The media is not ready yet")


def plan_transcode(media: Media, params: dict[str, Any]) -> Plan:
    demuxer, duration, metadata = _facts(media)
    fmt = str(params["format"])
    if fmt in VIDEO_FORMATS:
        if media.kind != "video":
            raise unprocessable(f"{fmt} is a video format; this media is audio")
        try:
            options = video.transcode_args(
                cast(video.VideoFormat, fmt),
                codec=params.get("codec"),
                crf=params.get("crf"),
                preset=params.get("preset"),
                max_height=params.get("max_height"),
                has_audio="audio_codec" in metadata,
            )
        except video.FfmpegError as exc:
            raise invalid(str(exc), "preset" if "presets" in str(exc) else "codec") from exc
        return Plan("video.transcode", demuxer, [], options, fmt, duration, params)
    if media.kind == "video" and "audio_codec" not in metadata:
        raise unprocessable("this video has no sound to make audio from")
    if params.get("codec"):
        raise invalid("codec applies to video formats only", "codec")
    options = audio.transcode_args(cast(audio.AudioFormat, fmt), bitrate_k=params.get("bitrate"))
    return Plan("audio.transcode", demuxer, [], options, audio.extension(fmt), duration, params)


def plan_trim(media: Media, params: dict[str, Any]) -> Plan:
    demuxer, duration, metadata = _facts(media)
    start, end = float(params["start_time"]), float(params["end_time"])
    if end <= start:
        raise invalid("end_time must be after start_time", "end_time")
    if duration and start >= duration:
        raise invalid(f"start_time is past the end of the media ({duration:.3f} s)", "start_time")
    end = min(end, duration) if duration else end
    accurate = bool(params.get("accurate"))
    if media.kind == "video":
        container = "webm" if media.mime == "video/webm" else str(metadata.get("container", ""))
        before, after = video.trim_args(
            start, end, accurate=accurate, container=container,
            has_audio="audio_codec" in metadata,
        )  # fmt: skip
        ext = "webm" if "webm" in after else "mkv" if "matroska" in after else "mp4"
        return Plan("video.trim", demuxer, before, after, ext, end - start, params)
    muxer, ext = _AUDIO_CONTAINERS.get(media.mime, ("ipod", "m4a"))
    codec = _AUDIO_REENCODE[muxer] if accurate else ["-c:a", "copy"]
    after = ["-t", f"{end - start:.3f}", "-map", "0:a:0", "-vn", *codec, "-f", muxer]
    seek = ["-ss", f"{start:.3f}"]
    return Plan("audio.trim", demuxer, seek, after, ext, end - start, params)


def plan_thumbnail(media: Media, params: dict[str, Any]) -> Plan:
    demuxer, duration, _metadata = _facts(media)
    if media.kind != "video":
        raise unprocessable("only a video has frames to take a thumbnail from")
    at = float(params["timestamp"])
    if duration and at >= duration:
        raise invalid(f"timestamp is past the end of the video ({duration:.3f} s)", "timestamp")
    fmt = cast(video.ImageFormat, params.get("format") or "jpeg")
    return Plan(
        "video.thumbnail",
        demuxer,
        ["-ss", f"{at:.3f}"],
        video.frame_args(fmt),
        video.IMAGE_EXT[fmt],
        None,
        params,
    )


PLANNERS: dict[str, Callable[[Media, dict[str, Any]], Plan]] = {
    "transcode": plan_transcode,
    "trim": plan_trim,
    "thumbnail": plan_thumbnail,
}
JOB_TYPES = {"transcode": "media.transcode", "trim": "media.trim", "thumbnail": "media.thumbnail"}


def argv(services: Services, plan: Plan, source: Path, out: Path) -> list[str]:
    command = [
        video.ffmpeg_exe(services.settings.ffmpeg_path),
        *video.input_args(source, plan.demuxer)[:-4],  # the safety options, then our seek
        *plan.input_options,
        "-f",
        plan.demuxer,
        "-i",
        f"file:{source}",
        *plan.output_options,
        "-y",
        str(out),
    ]
    return video.cap_threads(command, services.settings.ffmpeg_threads)


# An ffmpeg run: (argv, expected output seconds) -> (returncode, stderr). Jobs report progress.
Runner = Callable[[list[str], float | None], Awaitable[tuple[int, bytes]]]


async def run_inline(
    services: Services, command: list[str], _expected: float | None
) -> tuple[int, bytes]:
    timeout = services.settings.ffmpeg_timeout.total_seconds()
    try:
        done = await asyncio.to_thread(video.run_ffmpeg, command, timeout=timeout)
    except video.FfmpegError as exc:
        raise unprocessable(str(exc)) from exc
    return done.returncode, done.stderr


async def produce(services: Services, media: Media, plan: Plan, runner: Runner) -> Path:
    """Run the plan over the original; the output's final path (in the spool area), written
    under a temp name first and renamed once ffmpeg succeeded."""
    assert media.storage_key is not None
    out = services.storage.spool_path(keys.incoming(media.org_id, new_id("op")))
    out = out.with_name(f"{out.name}.{plan.ext}")
    partial = out.with_name(f"{out.name}.part")
    try:
        async with services.storage.local_file(media.storage_key) as source:
            code, stderr = await runner(
                argv(services, plan, source, partial), plan.expected_seconds
            )
        if code != 0 or not partial.exists() or partial.stat().st_size == 0:
            raise unprocessable(f"ffmpeg failed: {video.stderr_reason(stderr)}")
        await asyncio.to_thread(partial.replace, out)
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    finally:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
    return out


async def _copy_into(spool: Any, path: Path) -> None:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, 1 << 20):
            await spool.write(chunk)
    finally:
        await asyncio.to_thread(handle.close)


async def store_output(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    *,
    org_id: str,
    user_id: str | None,
    media: Media,
    plan: Plan,
    output: Path,
) -> IngestResult:
    """Ingest `output` as a media derived from `media` (or the org's identical one).

    `lookup`: the scope's short read unit for the pipeline's reads (pipeline.ingest_spooled)."""
    stem = media.filename.rsplit(".", 1)[0] if "." in media.filename else media.filename
    try:
        async with open_spool(services, org_id, lookup) as spool:
            await _copy_into(spool, output)
            spooled = await spool.finish()
            result = await ingest_spooled(
                services,
                session,
                org_id=org_id,
                user_id=user_id,
                source="derived",
                spooled=spooled,
                fields=IngestFields(
                    filename=f"{stem or media.id}.{plan.ext}", is_private=media.is_private
                ),
                lookup=lookup,
            )
    finally:
        await asyncio.to_thread(output.unlink, missing_ok=True)
    if not result.deduped:
        result.media.derived_from_id = media.id
        result.media.derived_operation = plan.operation
        await session.flush()
    if plan.operation == "video.thumbnail" and plan.params.get("set_poster"):
        poster = await poster_from_image(services, media, result.media)
        if poster is not None:
            await variants.record_variants(services, session, media, poster)
    return result


def _params(body: Any) -> dict[str, Any]:
    data: dict[str, Any] = body.model_dump(exclude={"async_"}, exclude_none=True)
    return data


async def start(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    media: Media,
    operation: str,
    body: Any,
) -> tuple[IngestResult | None, Job | None]:
    """Check and plan the operation; then either enqueue its job (async) or run it now."""
    check_media(media)
    params = _params(body)
    plan = PLANNERS[operation](media, params)
    if body.async_:
        await jobs.ensure_queue(services)
        job = await jobs.enqueue(
            services,
            session,
            org_id=principal.org_id,
            type=JOB_TYPES[operation],
            media_id=media.id,
            params={**params, "user_id": principal.user_id},
        )
        return None, job

    async def inline(command: list[str], expected: float | None) -> tuple[int, bytes]:
        return await run_inline(services, command, expected)

    output = await produce(services, media, plan, inline)
    result = await store_output(
        services,
        session,
        lookup,
        org_id=principal.org_id,
        user_id=principal.user_id,
        media=media,
        plan=plan,
        output=output,
    )
    return result, None
